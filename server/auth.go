package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"connectrpc.com/connect"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
	"github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1/pluginv1connect"
)

// Role is what a principal may do; each role includes the ones below it.
type Role int

// The roles.
const (
	Viewer   Role = iota + 1 // get, list, history, watch, list hooks
	Operator                 // + register agents, transition
	Admin                    // + forced transitions, register and unregister hooks, delete agents
)

var roleNames = map[string]Role{"viewer": Viewer, "operator": Operator, "admin": Admin}

func (r Role) String() string {
	for name, v := range roleNames {
		if v == r {
			return name
		}
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// needs is the role each procedure requires; a forced transition needs Admin.
var needs = map[string]Role{
	lifecyclev1connect.LifecycleManagerGetStateProcedure:             Viewer,
	lifecyclev1connect.LifecycleManagerListAgentsProcedure:           Viewer,
	lifecyclev1connect.LifecycleManagerGetTransitionHistoryProcedure: Viewer,
	lifecyclev1connect.LifecycleManagerWatchEventsProcedure:          Viewer,
	lifecyclev1connect.LifecycleManagerListHooksProcedure:            Viewer,
	lifecyclev1connect.LifecycleManagerRegisterAgentProcedure:        Operator,
	lifecyclev1connect.LifecycleManagerTransitionStateProcedure:      Operator,
	lifecyclev1connect.LifecycleManagerHeartbeatProcedure:            Operator,
	lifecyclev1connect.LifecycleManagerSetSupervisionPolicyProcedure: Operator,
	lifecyclev1connect.LifecycleManagerRegisterHookProcedure:         Admin,
	lifecyclev1connect.LifecycleManagerUnregisterHookProcedure:       Admin,
	lifecyclev1connect.LifecycleManagerServeHooksProcedure:           Admin,
	lifecyclev1connect.LifecycleManagerDeleteAgentProcedure:          Admin,

	pluginv1connect.PluginLifecycleManagerGetPluginProcedure:         Viewer,
	pluginv1connect.PluginLifecycleManagerListPluginsProcedure:       Viewer,
	pluginv1connect.PluginLifecycleManagerGetPluginHistoryProcedure:  Viewer,
	pluginv1connect.PluginLifecycleManagerWatchPluginEventsProcedure: Viewer,
	pluginv1connect.PluginLifecycleManagerResolvePluginProcedure:     Viewer,
	pluginv1connect.PluginLifecycleManagerScanPluginsProcedure:       Operator,
	pluginv1connect.PluginLifecycleManagerValidatePluginProcedure:    Operator,
	pluginv1connect.PluginLifecycleManagerLoadPluginProcedure:        Operator,
	pluginv1connect.PluginLifecycleManagerActivatePluginProcedure:    Operator,
	pluginv1connect.PluginLifecycleManagerDeactivatePluginProcedure:  Operator,
	pluginv1connect.PluginLifecycleManagerResetPluginProcedure:       Operator,
	pluginv1connect.PluginLifecycleManagerDeprecatePluginProcedure:   Admin,
}

// Principal is an authenticated caller.
type Principal struct {
	Name string
	Role Role
}

// Tokens maps credentials to principals: bearer tokens (kept as SHA-256 digests, so a
// lookup compares digests, not secrets) and the common names of verified client
// certificates.
type Tokens struct {
	byDigest map[[32]byte]Principal
	byCert   map[string]Principal
}

// tokensFile is the file format:
// {"principals": [{"name", "role", "tokens": [...], "certificates": [common names]}]}.
type tokensFile struct {
	Principals []struct {
		Name         string   `json:"name"`
		Role         string   `json:"role"`
		Tokens       []string `json:"tokens"`
		Certificates []string `json:"certificates"`
	} `json:"principals"`
}

// LoadTokens reads a tokens file.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokens %s: %w", path, err)
	}
	var f tokensFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("load tokens %s: %w", path, err)
	}
	t := &Tokens{byDigest: map[[32]byte]Principal{}, byCert: map[string]Principal{}}
	for i, p := range f.Principals {
		role, ok := roleNames[p.Role]
		switch {
		case p.Name == "" || strings.HasPrefix(p.Name, lifecycle.SystemPrefix):
			return nil, fmt.Errorf("load tokens %s: principals[%d]: name %q is empty or reserved", path, i, p.Name)
		case !ok:
			return nil, fmt.Errorf("load tokens %s: principals[%d] (%s): role %q: use viewer, operator or admin", path, i, p.Name, p.Role)
		case len(p.Tokens) == 0 && len(p.Certificates) == 0:
			return nil, fmt.Errorf("load tokens %s: principals[%d] (%s) has neither tokens nor certificates", path, i, p.Name)
		}
		for _, cn := range p.Certificates {
			if other, dup := t.byCert[cn]; dup || cn == "" {
				return nil, fmt.Errorf("load tokens %s: certificate name %q of %s is empty or also one of %s", path, cn, p.Name, other.Name)
			}
			t.byCert[cn] = Principal{Name: p.Name, Role: role}
		}
		for _, tok := range p.Tokens {
			if len(tok) < 16 {
				return nil, fmt.Errorf("load tokens %s: principals[%d] (%s): tokens must be at least 16 characters", path, i, p.Name)
			}
			d := sha256.Sum256([]byte(tok))
			if other, dup := t.byDigest[d]; dup {
				return nil, fmt.Errorf("load tokens %s: a token of %s is also a token of %s", path, p.Name, other.Name)
			}
			t.byDigest[d] = Principal{Name: p.Name, Role: role}
		}
	}
	if len(t.byDigest)+len(t.byCert) == 0 {
		return nil, fmt.Errorf("load tokens %s: no principals", path)
	}
	return t, nil
}

// authorizer authenticates bearer tokens and checks roles; the principal becomes the
// initiator of what the request does.
type authorizer struct{ tokens *Tokens }

func (a authorizer) check(ctx context.Context, procedure string, header interface{ Get(string) string }, msg any) (context.Context, error) {
	if a.tokens == nil {
		return lifecycle.WithInitiator(ctx, Anonymous), nil
	}
	p, err := a.principal(ctx, header)
	if err != nil {
		return nil, err
	}
	need := needs[procedure]
	if tr, ok := msg.(*v1.TransitionRequest); ok && tr.GetForce() {
		need = Admin
	}
	if need == 0 || p.Role < need {
		what := procedure[strings.LastIndex(procedure, "/")+1:]
		if need == Admin && what == "TransitionState" {
			what = "force a transition"
		}
		return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("%s is %s; %s needs %s", p.Name, p.Role, what, need))
	}
	return lifecycle.WithInitiator(ctx, p.Name), nil
}

// principal authenticates by verified client certificate, else by bearer token.
func (a authorizer) principal(ctx context.Context, header interface{ Get(string) string }) (Principal, error) {
	if cn, ok := ctx.Value(certKey{}).(string); ok {
		if p, ok := a.tokens.byCert[cn]; ok {
			return p, nil
		}
		if header.Get("Authorization") == "" {
			return Principal{}, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("client certificate %q is not a known principal", cn))
		}
	}
	tok, ok := strings.CutPrefix(header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return Principal{}, connect.NewError(connect.CodeUnauthenticated, errors.New("missing credentials: send Authorization: Bearer <token> or a client certificate"))
	}
	p, ok := a.tokens.byDigest[sha256.Sum256([]byte(tok))]
	if !ok {
		return Principal{}, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown token"))
	}
	return p, nil
}

type certKey struct{}

// withClientCert passes the common name of a verified client certificate to the
// authorizer (connect does not expose the TLS state).
func withClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := r.TLS
		if s, ok := r.Context().Value(tlsStateKey{}).(tls.ConnectionState); ok && st == nil {
			st = &s // TLS terminated before the Server's demultiplexer
		}
		if cn, ok := commonName(st); ok {
			r = r.WithContext(context.WithValue(r.Context(), certKey{}, cn))
		}
		next.ServeHTTP(w, r)
	})
}

// commonName is the common name of a verified client certificate.
func commonName(st *tls.ConnectionState) (string, bool) {
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return "", false
	}
	return st.VerifiedChains[0][0].Subject.CommonName, true
}

func (a authorizer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, err := a.check(ctx, req.Spec().Procedure, req.Header(), req.Any())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a authorizer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a authorizer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := a.check(ctx, conn.Spec().Procedure, conn.RequestHeader(), nil)
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
