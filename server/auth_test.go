package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/client"
	"github.com/hms-lifecycle/lifecycle/server"
)

const tokensJSON = `{"principals": [
  {"name": "vera", "role": "viewer", "tokens": ["viewer-token-0123456789"]},
  {"name": "otto", "role": "operator", "tokens": ["operator-token-0123456789"]},
  {"name": "ada", "role": "admin", "tokens": ["admin-token-0123456789", "admin-token-rotated-42"]}
]}`

func serveWithTokens(t *testing.T) (*lifecycle.Manager, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	os.WriteFile(path, []byte(tokensJSON), 0o600)
	tokens, err := server.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	return serveB(t, server.WithTokens(tokens))
}

// TestAuthorizationMatrix calls every RPC as every role, without a token and with a bad
// one, over Connect and gRPC.
func TestAuthorizationMatrix(t *testing.T) {
	m, url := serveWithTokens(t)
	m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "fixture"})
	callers := []struct {
		name, token string
		role        server.Role // 0: not authenticated
	}{
		{"no token", "", 0}, {"bad token", "not-a-token-at-all!!", 0},
		{"viewer", "viewer-token-0123456789", server.Viewer},
		{"operator", "operator-token-0123456789", server.Operator},
		{"admin", "admin-token-rotated-42", server.Admin},
	}
	n := 0
	rpcs := []struct {
		name string
		need server.Role
		call func(c *client.Client) error
	}{
		{"GetState", server.Viewer, func(c *client.Client) error { _, err := c.GetState(ctx, "fixture", false); return err }},
		{"ListAgents", server.Viewer, func(c *client.Client) error { _, err := c.ListAgents(ctx, lifecycle.ListAgentsRequest{}); return err }},
		{"GetTransitionHistory", server.Viewer, func(c *client.Client) error { _, err := c.History(ctx, lifecycle.HistoryRequest{}); return err }},
		{"ListHooks", server.Viewer, func(c *client.Client) error { _, err := c.ListHooks(ctx); return err }},
		{"WatchEvents", server.Viewer, func(c *client.Client) error {
			// A stream's refusal arrives with its first read; an allowed watch just waits.
			w, err := c.Watch(ctx, lifecycle.WatchRequest{})
			if err != nil {
				return err
			}
			defer w.Close()
			wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if _, err = w.Next(wctx); err == context.DeadlineExceeded {
				return nil
			}
			return err
		}},
		{"RegisterAgent", server.Operator, func(c *client.Client) error {
			n++
			_, _, err := c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("new-%d", n)})
			return err
		}},
		{"TransitionState", server.Operator, func(c *client.Client) error {
			_, err := c.Transition(ctx, lifecycle.TransitionRequest{AgentID: "fixture", Target: lifecycle.StateError})
			return err
		}},
		{"Heartbeat", server.Operator, func(c *client.Client) error { _, err := c.Heartbeat(ctx, []string{"fixture"}); return err }},
		{"SetSupervisionPolicy", server.Operator, func(c *client.Client) error { _, err := c.SetPolicy(ctx, "fixture", nil); return err }},
		{"TransitionState forced", server.Admin, func(c *client.Client) error {
			_, err := c.Transition(ctx, lifecycle.TransitionRequest{AgentID: "fixture", Target: lifecycle.StateUpgrading, Force: true})
			return err
		}},
		{"RegisterHook", server.Admin, func(c *client.Client) error {
			n++
			_, err := c.RegisterHook(ctx, lifecycle.HookSpec{Name: fmt.Sprintf("h-%d", n), Config: map[string]string{"callback": "c"}})
			return err
		}},
		{"UnregisterHook", server.Admin, func(c *client.Client) error { return c.UnregisterHook(ctx, "hook-none") }},
		{"DeleteAgent", server.Admin, func(c *client.Client) error {
			_, err := c.DeleteAgent(ctx, lifecycle.DeleteRequest{AgentID: "fixture"}) // not TERMINATED: refused after the check
			return err
		}},
		{"ServeHooks", server.Admin, func(c *client.Client) error {
			err := c.HandleCallback("matrix", func(context.Context, lifecycle.HookCall) (lifecycle.HookDecision, error) {
				return lifecycle.HookDecision{}, nil
			})
			c.HandleCallback("matrix", nil)
			return err
		}},
	}
	for _, proto := range []client.Protocol{client.Connect, client.GRPC} {
		for _, caller := range callers {
			c, _ := client.New(url, &client.Options{Protocol: proto, Token: caller.token})
			for _, rpc := range rpcs {
				err := rpc.call(c)
				code := lifecycle.ErrorCode(err)
				switch {
				case caller.role == 0:
					if code != lifecycle.CodeUnauthenticated {
						t.Errorf("%s %s as %s: %v, want UNAUTHENTICATED", proto, rpc.name, caller.name, err)
					}
				case caller.role < rpc.need:
					if code != lifecycle.CodePermissionDenied || !strings.Contains(err.Error(), "needs "+rpc.need.String()) {
						t.Errorf("%s %s as %s: %v, want PERMISSION_DENIED naming %s", proto, rpc.name, caller.name, err, rpc.need)
					}
				default:
					if code == lifecycle.CodeUnauthenticated || code == lifecycle.CodePermissionDenied {
						t.Errorf("%s %s as %s: %v, want it allowed", proto, rpc.name, caller.name, err)
					}
				}
			}
		}
	}
	// What a principal does is recorded as done by it, never by a name in the request.
	page, _ := m.History(ctx, lifecycle.HistoryRequest{AgentID: "fixture"})
	seen := map[string]bool{}
	for _, ev := range page.Events[1:] {
		seen[ev.InitiatedBy] = true
	}
	if !seen["otto"] || !seen["ada"] || seen["vera"] || seen[server.Anonymous] {
		t.Errorf("initiators recorded: %v", seen)
	}
}

func TestLoadTokensErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ body, want string }{
		{`{"principals": [{"name": "a", "role": "root", "tokens": ["0123456789abcdef"]}]}`, `role "root"`},
		{`{"principals": [{"name": "a", "role": "admin", "tokens": ["short"]}]}`, "at least 16 characters"},
		{`{"principals": [{"name": "system:x", "role": "admin", "tokens": ["0123456789abcdef"]}]}`, "reserved"},
		{`{"principals": [{"name": "a", "role": "admin", "tokens": ["0123456789abcdef"]}, {"name": "b", "role": "viewer", "tokens": ["0123456789abcdef"]}]}`, "also a token of a"},
		{`{"principals": []}`, "no principals"},
		{`{"users": []}`, `unknown field "users"`},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, fmt.Sprintf("t%d.json", i))
		os.WriteFile(path, []byte(tt.body), 0o600)
		if _, err := server.LoadTokens(path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error mentioning %q", tt.body, err, tt.want)
		}
	}
	if _, err := server.LoadTokens(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
}
