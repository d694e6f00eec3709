package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
)

// TestWorkMetrics: the store's group commits, watch cut-offs and lag, non-blocking hook
// delivery and supervision actions are metrics of an embedded Manager's server.
func TestWorkMetrics(t *testing.T) {
	s, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, url := serveStore(t, s)
	if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RegisterHook(ctx, lifecycle.HookSpec{Name: "audit", Config: map[string]string{"callback": "nobody"}}); err != nil {
		t.Fatal(err)
	}
	if res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a-1", Target: lifecycle.StateActive}); err != nil || !res.Success {
		t.Fatal(res.Message, err)
	}
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := string(b)
	for _, want := range []string{"hms_store_commits_total 2", "hms_store_commit_batch_size_count 2", "hms_store_commit_batch_size_sum 2",
		"hms_store_commit_duration_seconds_count 2", "hms_watch_cutoffs_total 0", "hms_watch_lag_events ",
		`hms_hook_backlog_events{hook="audit"} `, "hms_hook_retries_total ", "hms_hook_give_ups_total 0",
		`hms_supervision_actions_total{action="recover"} 0`, `hms_supervision_actions_total{action="give_up"} 0`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
