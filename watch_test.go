package lifecycle_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

func next(t *testing.T, w lifecycle.EventStream) lifecycle.Event {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev, err := w.Next(cctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

// churn makes n transitions spread over the agents, cycling ACTIVE ↔ PAUSED.
func churn(t *testing.T, m *lifecycle.Manager, agents []string, n int) {
	t.Helper()
	for i := range n {
		id := agents[i%len(agents)]
		st, _ := m.GetState(ctx, id, false)
		to := lifecycle.StateActive
		if st.State == lifecycle.StateActive {
			to = lifecycle.StatePaused
		}
		transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: to})
	}
}

func TestWatchResumeHasNoGapAndNoDuplicate(t *testing.T) {
	// A small ring, so that resumes are served from the ring and from the store.
	m, _ := newManager(t, &lifecycle.Options{WatchBuffer: 16})
	agents := []string{"a", "b", "c"}
	for _, id := range agents {
		register(t, m, id)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var seen []uint64
	w, err := m.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		churn(t, m, agents, rng.IntN(40))
		// Read a random number of the events available, then disconnect.
		for range rng.IntN(30) {
			if len(seen) > 0 && seen[len(seen)-1] == lastSequence(t, m) {
				break
			}
			seen = append(seen, next(t, w).Sequence)
		}
		resume := w.(*lifecycle.Watcher).Resume()
		w.Close()
		if round%2 == 0 {
			churn(t, m, agents, rng.IntN(40)) // transitions continue while disconnected
		}
		if w, err = m.Watch(ctx, lifecycle.WatchRequest{FromSequence: resume}); err != nil {
			t.Fatal(err)
		}
	}
	for last := lastSequence(t, m); len(seen) == 0 || seen[len(seen)-1] < last; {
		seen = append(seen, next(t, w).Sequence)
	}
	w.Close()
	for i, seq := range seen {
		if seq != uint64(i+1) {
			t.Fatalf("event %d has sequence %d: gap or duplicate after a resume", i, seq)
		}
	}
}

func lastSequence(t *testing.T, m *lifecycle.Manager) uint64 {
	t.Helper()
	var last uint64
	req := lifecycle.HistoryRequest{Limit: 1000}
	for {
		page, err := m.History(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(page.Events); n > 0 {
			last = page.Events[n-1].Sequence
		}
		if page.NextPageToken == "" {
			return last
		}
		req.PageToken = page.NextPageToken
	}
}

func TestWatchFilters(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a")
	register(t, m, "b")
	byAgent, _ := m.Watch(ctx, lifecycle.WatchRequest{AgentID: "a"})
	byState, _ := m.Watch(ctx, lifecycle.WatchRequest{States: []lifecycle.State{lifecycle.StateError, lifecycle.StateTerminated}})
	byType, _ := m.Watch(ctx, lifecycle.WatchRequest{Types: []lifecycle.TransitionType{lifecycle.TypeForced}})
	defer byAgent.Close()
	defer byState.Close()
	defer byType.Close()
	for _, id := range []string{"b", "a"} {
		transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateActive})
		transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateError})
		transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateUpgrading, Force: true})
		transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateTerminated, Force: true})
	}
	got := func(w lifecycle.EventStream, n int) string {
		var out string
		for range n {
			ev := next(t, w)
			out += fmt.Sprintf("%s:%s ", ev.AgentID, lifecycle.StateName(ev.To))
		}
		return out
	}
	if g := got(byAgent, 4); g != "a:ACTIVE a:ERROR a:UPGRADING a:TERMINATED " {
		t.Errorf("agent filter: %s", g)
	}
	if g := got(byState, 4); g != "b:ERROR b:TERMINATED a:ERROR a:TERMINATED " {
		t.Errorf("state filter: %s", g)
	}
	if g := got(byType, 4); g != "b:UPGRADING b:TERMINATED a:UPGRADING a:TERMINATED " {
		t.Errorf("type filter: %s", g)
	}
	// Resume with a filter replays from the store with the same filter.
	w, _ := m.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1, AgentID: "b", Types: []lifecycle.TransitionType{lifecycle.TypeForced}})
	defer w.Close()
	if g := got(w, 2); g != "b:UPGRADING b:TERMINATED " {
		t.Errorf("filtered replay: %s", g)
	}
}

func TestStalledWatcherIsCutOffAndResumes(t *testing.T) {
	m, _ := newManager(t, &lifecycle.Options{WatchBuffer: 64})
	register(t, m, "a")
	stalled, _ := m.Watch(ctx, lifecycle.WatchRequest{})
	churn(t, m, []string{"a"}, 1)
	if ev := next(t, stalled); ev.Sequence != 2 { // live now
		t.Fatalf("first event %+v", ev)
	}
	start := time.Now()
	churn(t, m, []string{"a"}, 500) // never read: must not slow transitions down
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("500 transitions with a stalled watcher took %v", d)
	}
	_, err := stalled.Next(ctx)
	wantCode(t, err, lifecycle.CodeResourceExhausted, "watch again from sequence")
	resume := err.(*lifecycle.Error).ResumeSequence
	if resume != 3 {
		t.Fatalf("resume point %d, want the event after the last one delivered", resume)
	}
	w, _ := m.Watch(ctx, lifecycle.WatchRequest{FromSequence: resume})
	defer w.Close()
	for want := resume; want <= lastSequence(t, m); want++ {
		if ev := next(t, w); ev.Sequence != want {
			t.Fatalf("after resume got %d, want %d", ev.Sequence, want)
		}
	}
}

func TestTransitionBeforeWatchIsUnseen(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a")
	w, _ := m.Watch(ctx, lifecycle.WatchRequest{})
	defer w.Close()
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive})
	if ev := next(t, w); ev.Sequence != 2 || ev.To != lifecycle.StateActive {
		t.Fatalf("first event %+v, want the ACTIVE transition only", ev)
	}
}

func TestWatchBookmarks(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a")
	register(t, m, "b")
	w, _ := m.Watch(ctx, lifecycle.WatchRequest{AgentID: "b", BookmarkInterval: 10 * time.Millisecond})
	defer w.Close()
	churn(t, m, []string{"a"}, 5) // hidden by the filter
	ev := next(t, w)
	if !ev.Bookmark || ev.Sequence != 7 {
		t.Fatalf("want a bookmark at sequence 7, got %+v", ev)
	}
	transition(t, m, lifecycle.TransitionRequest{AgentID: "b", Target: lifecycle.StateActive})
	if ev := next(t, w); ev.Bookmark || ev.Sequence != 8 {
		t.Fatalf("want b's event 8, got %+v", ev)
	}
	// Nothing hidden since: no bookmark, the watch just waits.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if ev, err := w.Next(cctx); err == nil {
		t.Fatalf("unexpected %+v", ev)
	}
}

func TestCloseEndsWatchesResumably(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a")
	w, _ := m.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	next(t, w)
	errc := make(chan error)
	go func() { _, err := w.Next(ctx); errc <- err }()
	m.Close()
	err := <-errc
	wantCode(t, err, lifecycle.CodeUnavailable, "watch again from sequence 2")
	if _, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive}); lifecycle.ErrorCode(err) != lifecycle.CodeUnavailable {
		t.Errorf("transition after Close: %v", err)
	}
}

func TestCloseWatcherUnblocksNext(t *testing.T) {
	m, _ := newManager(t, nil)
	w, _ := m.Watch(ctx, lifecycle.WatchRequest{})
	errc := make(chan error)
	go func() { _, err := w.Next(ctx); errc <- err }()
	time.Sleep(10 * time.Millisecond)
	w.Close()
	wantCode(t, <-errc, lifecycle.CodeCanceled)
}

// pausingStore holds the committer of one agent's transitions between its commit and its
// publish, as a descheduled goroutine would be.
type pausingStore struct {
	*memory.Store
	agent     string
	committed chan struct{}
	release   chan struct{}
}

func (s *pausingStore) CommitTransition(ctx context.Context, ev lifecycle.Event, rev int64) (uint64, error) {
	seq, err := s.Store.CommitTransition(ctx, ev, rev)
	if ev.AgentID == s.agent {
		close(s.committed)
		<-s.release
	}
	return seq, err
}

// A committer paused after its commit while others publish more than the watch buffer
// holds must not stop the watchers at its event, nor cut off a live one that waits for it:
// they get every event, in order, at once.
func TestWatchersPassACommitterThatFellBehind(t *testing.T) {
	s := &pausingStore{Store: memory.New(), agent: "slow", committed: make(chan struct{}), release: make(chan struct{})}
	m, err := lifecycle.New(ctx, s, &lifecycle.Options{WatchBuffer: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	register(t, m, "slow")
	register(t, m, "fast")
	fresh, _ := m.Watch(ctx, lifecycle.WatchRequest{}) // reads nothing until the end
	defer fresh.Close()
	live, _ := m.Watch(ctx, lifecycle.WatchRequest{})
	defer live.Close()
	got, failed := make(chan uint64, 1000), make(chan error, 1)
	go func() {
		for {
			ev, err := live.Next(ctx)
			if err != nil {
				failed <- err
				return
			}
			got <- ev.Sequence
		}
	}()
	expect := func(from, to uint64) {
		t.Helper()
		for want := from; want <= to; want++ {
			select {
			case seq := <-got:
				if seq != want {
					t.Fatalf("live watcher got event %d, want %d", seq, want)
				}
			case err := <-failed:
				t.Fatalf("live watcher, waiting for event %d: %v", want, err)
			case <-time.After(10 * time.Second):
				t.Fatalf("live watcher: no event %d", want)
			}
		}
	}
	churn(t, m, []string{"fast"}, 1)
	expect(3, 3) // live now: lapped for a lag of its own, it would be cut off
	slow := make(chan error, 1)
	go func() {
		_, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "slow", Target: lifecycle.StateActive})
		slow <- err
	}()
	<-s.committed
	churn(t, m, []string{"fast"}, 16) // 5 to 20: the ring laps the paused event 4 once
	expect(4, 20)
	live.Close() // beyond here it could fall behind for real
	churn(t, m, []string{"fast"}, 100)
	last := lastSequence(t, m)
	for want := uint64(3); want <= last; want++ {
		if ev := next(t, fresh); ev.Sequence != want {
			t.Fatalf("got event %d, want %d", ev.Sequence, want)
		}
	}
	close(s.release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	churn(t, m, []string{"fast"}, 1)
	if ev := next(t, fresh); ev.Sequence != last+1 {
		t.Fatalf("after the paused committer published, got event %d, want %d", ev.Sequence, last+1)
	}
}
