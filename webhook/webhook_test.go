package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/pbcbor"
	"github.com/hms-lifecycle/lifecycle/store/memory"
	"github.com/hms-lifecycle/lifecycle/webhook"
)

var ctx = context.Background()

const secret = "a-shared-secret-0123456789"

func newManager(t *testing.T) *lifecycle.Manager {
	t.Helper()
	s := memory.New()
	m, err := lifecycle.New(ctx, s, &lifecycle.Options{Targets: map[string]lifecycle.TargetType{"webhook": webhook.New(nil)},
		HookRetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a"})
	return m
}

// receiver records what it is sent and answers with reply(request, attempt).
type receiver struct {
	mu    sync.Mutex
	calls []*http.Request
	reply func(w http.ResponseWriter, req *v1.WebhookRequest, n int)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.calls = append(rc.calls, r)
	n := len(rc.calls)
	rc.mu.Unlock()
	var req v1.WebhookRequest
	var err error
	switch r.Header.Get("Content-Type") {
	case "application/json":
		err = protojson.Unmarshal(body, &req)
	case "application/proto":
		err = proto.Unmarshal(body, &req)
	case "application/cbor":
		err = pbcbor.Unmarshal(body, &req)
	}
	if err != nil {
		http.Error(w, "bad body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.reply(w, &req, n)
}

func register(t *testing.T, m *lifecycle.Manager, spec lifecycle.HookSpec) {
	t.Helper()
	res, err := m.RegisterHook(ctx, spec)
	if err != nil || !res.Success {
		t.Fatalf("RegisterHook: %+v, %v", res, err)
	}
}

func TestBlockingWebhookInEveryEncoding(t *testing.T) {
	for _, enc := range []string{"json", "proto", "cbor"} {
		t.Run(enc, func(t *testing.T) {
			m := newManager(t)
			rc := &receiver{reply: func(w http.ResponseWriter, req *v1.WebhookRequest, _ int) {
				if req.GetEvent().GetNewState() == v1.LifecycleState_LIFECYCLE_STATE_PAUSED {
					b, _ := map[string]func(proto.Message) ([]byte, error){"json": protojson.Marshal, "proto": proto.Marshal, "cbor": pbcbor.Marshal}[enc](
						&v1.WebhookResponse{Veto: true, Reason: "not now"})
					w.Write(b)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			register(t, m, lifecycle.HookSpec{Name: "gate", Blocking: true, Timeout: 2 * time.Second, Config: map[string]string{
				"type": "webhook", "url": srv.URL + "/hook", "encoding": enc, "secret": secret, "header.X-Team": "infra"}})
			res, _ := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive, Reason: "go"})
			if !res.Success || res.Hooks[0].Result != lifecycle.HookAllowed {
				t.Fatalf("allowed: %+v", res)
			}
			res, _ = m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StatePaused})
			if res.Success || res.Refusal != lifecycle.RefusalHookVetoed || !strings.Contains(res.Message, "not now") {
				t.Fatalf("veto: %+v", res)
			}
			first := rc.calls[0]
			if first.Header.Get("X-Team") != "infra" || first.Header.Get(webhook.HookIDHeader) == "" || first.Header.Get(webhook.IdempotencyKeyHeader) == "" {
				t.Errorf("headers: %v", first.Header)
			}
		})
	}
}

func TestWebhookFailures(t *testing.T) {
	m := newManager(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusServiceUnavailable)
	}))
	defer broken.Close()
	redirect := httptest.NewServer(http.RedirectHandler("http://10.0.0.1/", http.StatusFound))
	defer redirect.Close()

	register(t, m, lifecycle.HookSpec{Name: "slow", Blocking: true, Timeout: 100 * time.Millisecond,
		TriggerStates: []lifecycle.State{lifecycle.StateActive}, Config: map[string]string{"type": "webhook", "url": slow.URL}})
	res, _ := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive})
	if res.Success || res.Refusal != lifecycle.RefusalHookFailed || res.Hooks[0].Result != lifecycle.HookTimedOut {
		t.Fatalf("slow webhook, policy fail: %+v", res)
	}
	register(t, m, lifecycle.HookSpec{Name: "broken", Blocking: true, Timeout: time.Second,
		TriggerStates: []lifecycle.State{lifecycle.StateError}, Config: map[string]string{"type": "webhook", "url": broken.URL}})
	register(t, m, lifecycle.HookSpec{Name: "redirect", Blocking: true, Timeout: time.Second,
		TriggerStates: []lifecycle.State{lifecycle.StateTerminated}, Config: map[string]string{"type": "webhook", "url": redirect.URL, "failure_policy": "ignore"}})
	res, _ = m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateError})
	if !res.Success || res.Hooks[0].Result != lifecycle.HookFailed || !strings.Contains(res.Hooks[0].Message, "503 Service Unavailable: database down") {
		t.Fatalf("503 into ERROR (not vetoable): %+v", res.Hooks)
	}
	res, _ = m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateTerminated})
	if !res.Success || res.Hooks[0].Result != lifecycle.HookFailed || !strings.Contains(res.Hooks[0].Message, "302") || res.Hooks[0].Enforced {
		t.Fatalf("redirect not followed, policy ignore: %+v", res.Hooks)
	}
}

func TestNonBlockingWebhookRetries(t *testing.T) {
	m := newManager(t)
	done := make(chan *v1.WebhookRequest, 1)
	rc := &receiver{reply: func(w http.ResponseWriter, req *v1.WebhookRequest, n int) {
		if n < 3 {
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
		done <- req
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	register(t, m, lifecycle.HookSpec{Name: "notify", Timeout: time.Second, Config: map[string]string{
		"type": "webhook", "url": srv.URL, "secret": secret, "encoding": "cbor"}})
	res, _ := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive})
	select {
	case req := <-done:
		if req.GetAttempt() != 3 || req.GetBlocking() || req.GetEvent().GetSequence() != res.Event.Sequence || req.GetIdempotencyKey() != res.Event.ID.String() {
			t.Fatalf("delivered: %v", req)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered after retries")
	}
	keys := map[string]bool{}
	for _, c := range rc.calls {
		keys[c.Header.Get(webhook.IdempotencyKeyHeader)] = true
	}
	if len(keys) != 1 {
		t.Errorf("idempotency keys across retries: %v", keys)
	}
}

func TestAllowlistAndConfig(t *testing.T) {
	m := newManager(t)
	tests := []struct {
		config map[string]string
		want   string
	}{
		{map[string]string{"type": "webhook", "url": "http://10.1.2.3/hook"}, "10.1.2.3 is not in the webhook allowlist"},
		{map[string]string{"type": "webhook", "url": "ftp://127.0.0.1/x"}, "want an http:// or https:// URL"},
		{map[string]string{"type": "webhook"}, "config[url] is empty"},
		{map[string]string{"type": "webhook", "url": "http://127.0.0.1:1/", "encoding": "xml"}, `config[encoding]: "xml"`},
		{map[string]string{"type": "webhook", "url": "http://127.0.0.1:1/", "secret": "short"}, "at least 16 characters"},
		{map[string]string{"type": "webhook", "url": "http://127.0.0.1:1/", "colour": "red"}, `unknown key "colour"`},
		{map[string]string{"type": "carrier-pigeon"}, `"carrier-pigeon" is not a hook type; supported: callback, webhook`},
	}
	for _, tt := range tests {
		_, err := m.RegisterHook(ctx, lifecycle.HookSpec{Name: "h", Config: tt.config})
		if lifecycle.ErrorCode(err) != lifecycle.CodeInvalidArgument || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want INVALID_ARGUMENT mentioning %q", tt.config, err, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	now := time.Now()
	body := []byte(`{"hookId":"h"}`)
	sig := webhook.Sign(secret, now, body)
	if err := webhook.Verify(secret, sig, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"tampered body": webhook.Verify(secret, sig, []byte(`{"hookId":"x"}`), now, time.Minute),
		"wrong secret":  webhook.Verify("another-secret-0123456789", sig, body, now, time.Minute),
		"too old":       webhook.Verify(secret, sig, body, now.Add(time.Hour), time.Minute),
		"malformed":     webhook.Verify(secret, "v1=abc", body, now, time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}
