package lifecycle_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
)

// TestStats: what the metrics export — watch cut-offs and lag, non-blocking hook retries
// and backlog, supervision actions — counts what happened.
func TestStats(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	m, _ := newManager(t, &lifecycle.Options{WatchBuffer: 8, HookRetryBackoff: time.Millisecond,
		Callbacks: map[string]lifecycle.HookFunc{"flaky": func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
			if calls.Add(1) <= 2 {
				return lifecycle.HookDecision{}, errors.New("not yet")
			}
			select { // then it holds the next delivery, so that a backlog builds up
			case <-release:
			case <-ctx.Done():
			}
			return lifecycle.HookDecision{}, nil
		}}})
	defer close(release)
	register(t, m, "a-1")
	if _, err := m.RegisterHook(ctx, lifecycle.HookSpec{Name: "flaky", Config: map[string]string{"callback": "flaky"}}); err != nil {
		t.Fatal(err)
	}
	w, err := m.Watch(ctx, lifecycle.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a-1", Target: lifecycle.StateActive})
	if _, err := w.Next(ctx); err != nil { // caught up: falling behind now is a cut-off
		t.Fatal(err)
	}
	for i := range 20 {
		transition(t, m, lifecycle.TransitionRequest{AgentID: "a-1", Target: []lifecycle.State{lifecycle.StatePaused, lifecycle.StateActive}[i%2]})
	}
	deadline := time.Now().Add(10 * time.Second)
	for m.Stats().HookRetries < 2 || m.Stats().HookBacklog["flaky"] < 15 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want 2 hook retries and a backlog", m.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := m.Stats(); s.WatchLag != 20 || s.WatchCutoffs != 0 {
		t.Errorf("before the watcher reads: lag %d, cut-offs %d; want 20, 0", s.WatchLag, s.WatchCutoffs)
	}
	if _, err := w.Next(ctx); lifecycle.ErrorCode(err) != lifecycle.CodeResourceExhausted {
		t.Fatalf("a live watcher 20 events behind a buffer of 8: %v, want RESOURCE_EXHAUSTED", err)
	}
	if s := m.Stats(); s.WatchCutoffs != 1 || s.Commits != nil {
		t.Errorf("after the cut-off: %d cut-offs (want 1); commits %v (the memory store has none)", s.WatchCutoffs, s.Commits)
	}
}

func TestStatsSupervision(t *testing.T) {
	m, clk, _ := supervised(t, fastRecovery)
	register(t, m, "a1")
	move(t, m, "a1", lifecycle.StateActive)
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a1", Target: lifecycle.StateError, Reason: "backend down"})
	clk.Advance(time.Minute)
	supervise(t, m)
	if s := m.Stats().Supervision; s["recover"] != 1 || s["give_up"] != 0 || len(s) != 4 {
		t.Errorf("supervision actions %v; want one recover", s)
	}
}
