package webhook_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
)

// Secrets are write-only: ListHooks shows the signing secret, headers and credentials in
// the URL as set, never their values, and failures recorded in outcomes do not carry them.
func TestSecretsAreWriteOnly(t *testing.T) {
	m := newManager(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusTeapot)
	}))
	defer srv.Close()
	withUser := strings.Replace(srv.URL, "http://", "http://robot:hunter2-password@", 1)
	withToken := strings.Replace(srv.URL, "http://", "http://ghp_tokenAsUser@", 1)
	for name, u := range map[string]string{"pw": withUser, "tok": withToken} {
		res, err := m.RegisterHook(ctx, lifecycle.HookSpec{Name: name, Blocking: true, Timeout: 2 * time.Second, TriggerStates: []lifecycle.State{lifecycle.StateActive},
			Config: map[string]string{"type": "webhook", "url": u, "secret": secret, "header.Authorization": "Bearer sk-live-123",
				"failure_policy": "ignore"}})
		if err != nil || !res.Success {
			t.Fatalf("register: %+v %v", res, err)
		}
	}
	if _, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive}); err != nil {
		t.Fatal(err)
	}
	hooks, err := m.ListHooks(ctx)
	if err != nil || len(hooks) != 2 {
		t.Fatalf("%v %v", hooks, err)
	}
	for _, h := range hooks {
		c := h.Spec.Config
		if c["secret"] != lifecycle.SecretSet || c["header.Authorization"] != lifecycle.SecretSet || c["type"] != "webhook" || c["failure_policy"] != "ignore" {
			t.Errorf("%s: config %v", h.Spec.Name, c)
		}
		if !strings.Contains(c["url"], "xxxxx@") || !strings.HasSuffix(c["url"], strings.TrimPrefix(srv.URL, "http://")) {
			t.Errorf("%s: url %q", h.Spec.Name, c["url"])
		}
		shown := fmtHook(h)
		for _, s := range []string{secret, "sk-live-123", "hunter2", "ghp_tokenAsUser"} {
			if strings.Contains(shown, s) {
				t.Errorf("%s shows %q: %s", h.Spec.Name, s, shown)
			}
		}
		if h.Last == nil || !strings.Contains(h.Last.Message, "418") {
			t.Errorf("%s: last outcome %+v", h.Spec.Name, h.Last)
		}
	}
	// The shown value is not a secret: registering it back is refused.
	_, err = m.RegisterHook(ctx, lifecycle.HookSpec{Name: "copy", Config: hooks[0].Spec.Config})
	if lifecycle.ErrorCode(err) != lifecycle.CodeInvalidArgument || !strings.Contains(err.Error(), "give the secret itself") {
		t.Errorf("registering a shown config: %v", err)
	}
}

func fmtHook(h lifecycle.HookStatus) string {
	var b strings.Builder
	for k, v := range h.Spec.Config {
		b.WriteString(k + "=" + v + " ")
	}
	if h.Last != nil {
		b.WriteString(h.Last.Message)
	}
	return b.String()
}
