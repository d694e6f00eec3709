package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"connectrpc.com/connect"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
)

// Role is what a principal may do; each role includes the ones below it.
type Role int

// The roles.
const (
	Viewer   Role = iota + 1 // get, list, history, watch, list hooks
	Operator                 // + register agents, transition
	Admin                    // + forced transitions, register and unregister hooks
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
	lifecyclev1connect.LifecycleManagerRegisterHookProcedure:         Admin,
	lifecyclev1connect.LifecycleManagerUnregisterHookProcedure:       Admin,
}

// Principal is an authenticated caller.
type Principal struct {
	Name string
	Role Role
}

// Tokens maps bearer tokens to principals. Tokens are kept as SHA-256 digests, so a
// lookup compares digests, not secrets.
type Tokens struct {
	byDigest map[[32]byte]Principal
}

// tokensFile is the file format: {"principals": [{"name", "role", "tokens": [...]}]}.
type tokensFile struct {
	Principals []struct {
		Name   string   `json:"name"`
		Role   string   `json:"role"`
		Tokens []string `json:"tokens"`
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
	t := &Tokens{byDigest: map[[32]byte]Principal{}}
	for i, p := range f.Principals {
		role, ok := roleNames[p.Role]
		switch {
		case p.Name == "" || strings.HasPrefix(p.Name, lifecycle.SystemPrefix):
			return nil, fmt.Errorf("load tokens %s: principals[%d]: name %q is empty or reserved", path, i, p.Name)
		case !ok:
			return nil, fmt.Errorf("load tokens %s: principals[%d] (%s): role %q: use viewer, operator or admin", path, i, p.Name, p.Role)
		case len(p.Tokens) == 0:
			return nil, fmt.Errorf("load tokens %s: principals[%d] (%s) has no tokens", path, i, p.Name)
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
	if len(t.byDigest) == 0 {
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
	auth := header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("missing credentials: send Authorization: Bearer <token>"))
	}
	p, ok := a.tokens.byDigest[sha256.Sum256([]byte(tok))]
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown token"))
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
