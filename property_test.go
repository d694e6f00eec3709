package lifecycle_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/hms-lifecycle/lifecycle"
)

// TestConcurrentTransitions hammers few agents from many goroutines, with a watcher
// attached, then checks the invariants against history.
func TestConcurrentTransitions(t *testing.T) {
	m, _ := newManager(t, nil)
	const agents, workers, perWorker = 6, 12, 250
	for i := range agents {
		register(t, m, fmt.Sprintf("c-%d", i))
	}
	w, _ := m.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	defer w.Close()
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range perWorker {
				req := lifecycle.TransitionRequest{
					AgentID: fmt.Sprintf("c-%d", rng.IntN(agents)),
					Target:  allStates[rng.IntN(len(allStates))],
					Force:   rng.IntN(10) == 0,
				}
				if req.Target == lifecycle.StateTerminated && rng.IntN(4) > 0 {
					req.Target = lifecycle.StateActive // keep most agents alive
				}
				if _, err := m.Transition(ctx, req); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var events []lifecycle.Event
	for req := (lifecycle.HistoryRequest{Limit: 1000}); ; {
		page, err := m.History(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, page.Events...)
		if req.PageToken = page.NextPageToken; req.PageToken == "" {
			break
		}
	}
	last := map[string]lifecycle.Event{}
	for i, ev := range events {
		if ev.Sequence != uint64(i+1) {
			t.Fatalf("event %d has sequence %d", i, ev.Sequence)
		}
		prev, ok := last[ev.AgentID]
		switch {
		case !ok && ev.To != lifecycle.StateInitialized:
			t.Fatalf("first event of %s: %+v", ev.AgentID, ev)
		case ok && ev.From != prev.To:
			t.Fatalf("event %d of %s starts from %s, but the agent was %s", ev.Sequence, ev.AgentID, ev.From, prev.To)
		case ok && prev.To == lifecycle.StateTerminated:
			t.Fatalf("event %d leaves TERMINATED", ev.Sequence)
		case ok && ev.Type != lifecycle.TypeForced && !allowed(ev.From, ev.To):
			t.Fatalf("event %d: %s → %s is not in the table and not forced", ev.Sequence, ev.From, ev.To)
		case ok && ev.Type == lifecycle.TypeForced && allowed(ev.From, ev.To):
			t.Fatalf("event %d: allowed edge typed FORCED", ev.Sequence)
		}
		last[ev.AgentID] = ev
	}
	for id, ev := range last {
		st, _ := m.GetState(ctx, id, false)
		if st.State != ev.To || st.Revision != ev.Revision || st.LastSequence != ev.Sequence {
			t.Errorf("agent %s: state %s rev %d, last event %s rev %d", id, st.State, st.Revision, ev.To, ev.Revision)
		}
	}
	for i := range events {
		if ev := next(t, w); ev.Sequence != events[i].Sequence || ev.ID != events[i].ID {
			t.Fatalf("watcher saw %d, history has %d", ev.Sequence, events[i].Sequence)
		}
	}
}

// TestModel checks random operation sequences against a model of the table.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m, _ := newManager(t, nil)
		defer m.Close()
		model := map[string]lifecycle.State{}
		revision := map[string]int64{}
		ids := []string{"a", "b", "c"}
		var seq uint64
		rt.Repeat(map[string]func(*rapid.T){
			"register": func(rt *rapid.T) {
				id := rapid.SampledFrom(ids).Draw(rt, "id")
				_, ev, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id})
				if _, exists := model[id]; exists {
					if lifecycle.ErrorCode(err) != lifecycle.CodeAlreadyExists {
						rt.Fatalf("re-register %s: %v", id, err)
					}
					return
				}
				if err != nil {
					rt.Fatal(err)
				}
				seq++
				if ev.Sequence != seq {
					rt.Fatalf("sequence %d, want %d", ev.Sequence, seq)
				}
				model[id], revision[id] = lifecycle.StateInitialized, 1
			},
			"transition": func(rt *rapid.T) {
				id := rapid.SampledFrom(ids).Draw(rt, "id")
				to := rapid.SampledFrom(allStates).Draw(rt, "to")
				force := rapid.Bool().Draw(rt, "force")
				res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: to, Force: force})
				from, exists := model[id]
				if !exists {
					if lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
						rt.Fatalf("unknown agent: %v", err)
					}
					return
				}
				if err != nil {
					rt.Fatal(err)
				}
				var want lifecycle.RefusalReason
				switch {
				case from == lifecycle.StateTerminated:
					want = lifecycle.RefusalTerminal
				case !allowed(from, to) && !force:
					want = lifecycle.RefusalInvalidTransition
				}
				if res.Refusal != want || res.Success != (want == lifecycle.RefusalNone) {
					rt.Fatalf("%s → %s force=%v: got %+v, want refusal %v", from, to, force, res, want)
				}
				if res.Success {
					seq++
					revision[id]++
					model[id] = to
					if res.Event.Sequence != seq || res.Revision != revision[id] || (res.Event.Type == lifecycle.TypeForced) == allowed(from, to) {
						rt.Fatalf("event %+v, want sequence %d revision %d", res.Event, seq, revision[id])
					}
				}
			},
			"": func(rt *rapid.T) { // invariant check after every step
				for id, want := range model {
					st, err := m.GetState(ctx, id, false)
					if err != nil || st.State != want || st.Revision != revision[id] {
						rt.Fatalf("agent %s: %+v %v; model says %s rev %d", id, st, err, want, revision[id])
					}
				}
			},
		})
	})
}
