package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/client"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/server"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// pluginRepo is a repository with n versions of AOS-Map (1.0.0, 1.1.0, …), no runtime.
func pluginRepo(t *testing.T, n int) string {
	t.Helper()
	repo := t.TempDir()
	for i := range n {
		dir := filepath.Join(repo, fmt.Sprintf("map-%d", i))
		os.MkdirAll(dir, 0o755)
		b, _ := json.Marshal(map[string]any{"manifestVersion": "1.0", "hmaVersion": "1.3", "id": "AOS-Map",
			"version": fmt.Sprintf("1.%d.0", i), "name": "Map", "type": "L3-Capability", "consumedCorePorts": []string{"EventBusPort"}})
		os.WriteFile(filepath.Join(dir, "plugin-manifest.json"), b, 0o644)
	}
	return repo
}

func servePlugins(t *testing.T, repo string, opts ...server.Option) (*plugin.Manager, string) {
	t.Helper()
	s := memory.New()
	pm, err := plugin.New(ctx, s, &plugin.Options{Repository: repo, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pm.Close(); s.Close() })
	_, url := serveB(t, append(opts, server.WithPlugins(pm))...)
	return pm, url
}

// TestPluginsOverEveryProtocol walks a plugin through its lifecycle over each protocol and
// encoding, and watches it.
func TestPluginsOverEveryProtocol(t *testing.T) {
	for i, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			_, url := servePlugins(t, pluginRepo(t, 2))
			c, err := client.New(url, &proto.opts)
			if err != nil {
				t.Fatal(err)
			}
			svc := c.Plugins()
			ref := plugin.Ref{ID: "AOS-Map", Version: "1.1.0"}
			w, err := svc.Watch(ctx, plugin.WatchRequest{Ref: plugin.Ref{ID: "AOS-Map"}, FromSequence: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			page, err := svc.List(ctx, plugin.ListRequest{Port: "EventBusPort"})
			if err != nil || len(page.Plugins) != 2 || page.Plugins[1].Manifest == nil || page.Plugins[1].Manifest.Name != "Map" {
				t.Fatalf("list: %+v %v", page, err)
			}
			for _, op := range []func(context.Context, plugin.Ref, string) (plugin.Plugin, error){svc.Load, svc.Activate} {
				if _, err := op(ctx, ref, fmt.Sprint("step of ", i)); err != nil {
					t.Fatal(err)
				}
			}
			p, err := svc.Resolve(ctx, "AOS-Map", "^1")
			if err != nil || p.Version != "1.1.0" || p.State != plugin.StateActive || p.Generation == 0 {
				t.Fatalf("resolve: %+v %v", p, err)
			}
			_, err = svc.Activate(ctx, ref, "")
			if lifecycle.ErrorCode(err) != lifecycle.CodeFailedPrecondition || !strings.Contains(err.Error(), "is Active: activate is not allowed; allowed operations: deactivate") {
				t.Fatalf("activate an active plugin: %v", err)
			}
			if _, err := svc.Get(ctx, plugin.Ref{ID: "AOS-Map", Version: "9.9.9"}); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
				t.Fatalf("get unknown: %v", err)
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var ops []string
			for len(ops) < 7 { // discover, validate × 2 versions; load, activate, on_success
				ev, err := w.Next(wctx)
				if err != nil {
					t.Fatalf("watch after %v: %v", ops, err)
				}
				ops = append(ops, ev.Operation)
			}
			if got := strings.Join(ops[4:], ","); got != "load,activate,on_success" {
				t.Fatalf("watched %v", ops)
			}
			hist, err := svc.History(ctx, plugin.HistoryRequest{Ref: ref, Limit: 2})
			if err != nil || len(hist.Events) != 2 || hist.NextPageToken == "" {
				t.Fatalf("history page 1: %+v %v", hist, err)
			}
			hist, err = svc.History(ctx, plugin.HistoryRequest{Ref: ref, Limit: 2, PageToken: hist.NextPageToken})
			if err != nil || len(hist.Events) != 2 || hist.Events[0].Operation != "load" || hist.Events[1].InitiatedBy != server.Anonymous {
				t.Fatalf("history page 2: %+v %v", hist, err)
			}
		})
	}
}

// TestPluginAuthorization: every plugin RPC as every role.
func TestPluginAuthorization(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	os.WriteFile(path, []byte(tokensJSON), 0o600)
	tokens, err := server.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	pm, url := servePlugins(t, pluginRepo(t, 1), server.WithTokens(tokens))
	ref := plugin.Ref{ID: "AOS-Map", Version: "1.0.0"}
	rpcs := []struct {
		name string
		need server.Role
		call func(s plugin.Service) error
	}{
		{"GetPlugin", server.Viewer, func(s plugin.Service) error { _, err := s.Get(ctx, ref); return err }},
		{"ListPlugins", server.Viewer, func(s plugin.Service) error { _, err := s.List(ctx, plugin.ListRequest{}); return err }},
		{"GetPluginHistory", server.Viewer, func(s plugin.Service) error { _, err := s.History(ctx, plugin.HistoryRequest{}); return err }},
		{"ResolvePlugin", server.Viewer, func(s plugin.Service) error { _, err := s.Resolve(ctx, "AOS-Map", ""); return err }},
		{"WatchPluginEvents", server.Viewer, func(s plugin.Service) error {
			w, err := s.Watch(ctx, plugin.WatchRequest{})
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
		{"ScanPlugins", server.Operator, func(s plugin.Service) error { _, err := s.Scan(ctx); return err }},
		{"ValidatePlugin", server.Operator, func(s plugin.Service) error { _, err := s.Validate(ctx, ref, ""); return err }},
		{"LoadPlugin", server.Operator, func(s plugin.Service) error { _, err := s.Load(ctx, ref, ""); return err }},
		{"ActivatePlugin", server.Operator, func(s plugin.Service) error { _, err := s.Activate(ctx, ref, ""); return err }},
		{"DeactivatePlugin", server.Operator, func(s plugin.Service) error { _, err := s.Deactivate(ctx, ref, ""); return err }},
		{"ResetPlugin", server.Operator, func(s plugin.Service) error { _, err := s.Reset(ctx, ref, ""); return err }},
		{"DeprecatePlugin", server.Admin, func(s plugin.Service) error { _, err := s.Deprecate(ctx, ref, "", ""); return err }},
	}
	for _, caller := range []struct {
		token string
		role  server.Role
	}{{"", 0}, {"viewer-token-0123456789", server.Viewer}, {"operator-token-0123456789", server.Operator}, {"admin-token-0123456789", server.Admin}} {
		c, _ := client.New(url, &client.Options{Token: caller.token})
		for _, rpc := range rpcs {
			err := rpc.call(c.Plugins())
			code := lifecycle.ErrorCode(err)
			switch {
			case caller.role == 0 && code != lifecycle.CodeUnauthenticated:
				t.Errorf("%s without a token: %v", rpc.name, err)
			case caller.role != 0 && caller.role < rpc.need && (code != lifecycle.CodePermissionDenied || !strings.Contains(err.Error(), "needs "+rpc.need.String())):
				t.Errorf("%s as %s: %v, want PERMISSION_DENIED", rpc.name, caller.role, err)
			case caller.role >= rpc.need && (code == lifecycle.CodeUnauthenticated || code == lifecycle.CodePermissionDenied):
				t.Errorf("%s as %s: %v, want it allowed", rpc.name, caller.role, err)
			}
		}
	}
	// The operator's load is recorded as the operator's.
	page, _ := pm.History(ctx, plugin.HistoryRequest{Ref: ref})
	seen := map[string]bool{}
	for _, ev := range page.Events {
		seen[ev.InitiatedBy] = true
	}
	if !seen["otto"] || seen["vera"] {
		t.Errorf("initiators: %v", seen)
	}
}
