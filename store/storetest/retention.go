package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hms-lifecycle/lifecycle"
)

// Pruner is a durable store with a retention policy.
type Pruner interface {
	lifecycle.Store
	Prune(ctx context.Context, now time.Time) (int64, error)
}

// RunRetention checks pruning by per-agent count and by age. open returns an empty store
// with the given retention.
func RunRetention(t *testing.T, open func(t *testing.T, r lifecycle.Retention) Pruner) {
	t.Run("MaxPerAgent", func(t *testing.T) {
		s := open(t, lifecycle.Retention{MaxPerAgent: 3, Every: time.Hour})
		register(t, s, "b")                                                // 1
		register(t, s, "a")                                                // 2
		commit(t, s, "b", lifecycle.StateActive, lifecycle.TypeNormal, t0) // 3
		for i := range 9 {                                                 // 4..12
			to := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}[i%2]
			commit(t, s, "a", to, lifecycle.TypeNormal, t0)
		}
		n, err := s.Prune(ctx, t0)
		if err != nil || n != 7 {
			t.Fatalf("Prune = %d, %v; want 7 (a keeps its newest 3 of 10)", n, err)
		}
		checkRetained(t, s, 10, 12, []uint64{1, 3, 10, 11, 12})
		if n, _ := s.Prune(ctx, t0); n != 0 {
			t.Errorf("second Prune deleted %d", n)
		}
	})
	t.Run("MaxAge", func(t *testing.T) {
		s := open(t, lifecycle.Retention{MaxAge: time.Hour, Every: time.Hour})
		register(t, s, "x")                                                                   // 1 at t0
		commit(t, s, "x", lifecycle.StateActive, lifecycle.TypeNormal, t0.Add(time.Minute))   // 2
		commit(t, s, "x", lifecycle.StatePaused, lifecycle.TypeNormal, t0.Add(2*time.Minute)) // 3
		commit(t, s, "x", lifecycle.StateActive, lifecycle.TypeNormal, t0.Add(3*time.Hour))   // 4
		commit(t, s, "x", lifecycle.StatePaused, lifecycle.TypeNormal, t0.Add(4*time.Hour))   // 5
		ev := event("y", 1, 0, lifecycle.StateInitialized, lifecycle.TypeNormal, t0.Add(time.Minute))
		if _, err := s.CreateAgent(ctx, agent("y", 1, lifecycle.StateInitialized, t0), ev); err != nil { // 6, old but y's last
			t.Fatal(err)
		}
		n, err := s.Prune(ctx, t0.Add(4*time.Hour+30*time.Minute))
		if err != nil || n != 4 {
			t.Fatalf("Prune = %d, %v; want 4 (events 1-4, older than 1h; y's old event is its last and stays)", n, err)
		}
		checkRetained(t, s, 5, 6, []uint64{5, 6})
	})
}

func checkRetained(t *testing.T, s lifecycle.Store, oldest, newest uint64, all []uint64) {
	t.Helper()
	if o, n, err := s.Sequences(ctx); err != nil || o != oldest || n != newest {
		t.Errorf("Sequences = %d, %d, %v; want %d, %d", o, n, err, oldest, newest)
	}
	_, err := s.ReadEvents(ctx, lifecycle.EventFilter{FromSequence: oldest - 1})
	if e, ok := err.(*lifecycle.Error); !ok || e.Code != lifecycle.CodeOutOfRange || e.ResumeSequence != oldest ||
		!strings.Contains(e.Message, fmt.Sprint(oldest)) {
		t.Errorf("reading from before the oldest retained event: %v", err)
	}
	evs, err := s.ReadEvents(ctx, lifecycle.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, ev := range evs {
		got = append(got, ev.Sequence)
	}
	if d := cmp.Diff(all, got); d != "" {
		t.Errorf("retained events (-want +got):\n%s", d)
	}
	evs, err = s.ReadEvents(ctx, lifecycle.EventFilter{FromSequence: oldest})
	if err != nil || len(evs) == 0 || evs[0].Sequence != oldest {
		t.Errorf("reading from the oldest retained event: %d events, %v", len(evs), err)
	}
}
