package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/postgres"
)

// replica is one Manager with its own store (its own pool and listener) on a shared database.
type replica struct {
	*lifecycle.Manager
	store *postgres.Store
}

func newReplica(t *testing.T, dsn, name string, opts *lifecycle.Options) *replica {
	t.Helper()
	s, err := postgres.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts == nil {
		opts = &lifecycle.Options{}
	}
	opts.Owner = name
	m, err := lifecycle.New(ctx, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{m, s}
	t.Cleanup(r.close)
	return r
}

func (r *replica) close() { r.Manager.Close(); r.store.Close() }

func next(t *testing.T, w lifecycle.EventStream) lifecycle.Event {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ev, err := w.Next(cctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

func TestWatcherSeesOtherReplicaInSequenceOrder(t *testing.T) {
	dsn := newDatabase(t)
	a, b := newReplica(t, dsn, "a", nil), newReplica(t, dsn, "b", nil)
	w, err := b.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const agents = 8
	var wg sync.WaitGroup
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			via := []*replica{a, b}[i%2]
			id := fmt.Sprintf("agent-%d", i)
			if _, _, err := via.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id}); err != nil {
				t.Error(err)
				return
			}
			for j := range 20 {
				via := []*replica{a, b}[(i+j)%2]
				to := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}[j%2]
				if res, err := via.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: to}); err != nil || !res.Success {
					t.Error(res.Message, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for want := uint64(1); want <= agents*21; want++ {
		if ev := next(t, w); ev.Sequence != want {
			t.Fatalf("watcher on b got sequence %d, want %d", ev.Sequence, want)
		}
	}
}

func TestConflictingTransitionsAcrossReplicas(t *testing.T) {
	dsn := newDatabase(t)
	replicas := []*replica{newReplica(t, dsn, "a", nil), newReplica(t, dsn, "b", nil)}
	if _, _, err := replicas[0].RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "contested"}); err != nil {
		t.Fatal(err)
	}
	states := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused, lifecycle.StateSuspended,
		lifecycle.StateRecovering, lifecycle.StateError, lifecycle.StateMaintenance}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 40 {
				r := replicas[g%2]
				if _, err := r.Transition(ctx, lifecycle.TransitionRequest{AgentID: "contested", Target: states[rng.IntN(len(states))]}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	page, err := replicas[1].History(ctx, lifecycle.HistoryRequest{AgentID: "contested", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	evs := page.Events
	if len(evs) < 10 {
		t.Fatalf("only %d events: the replicas hardly transitioned", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].From != evs[i-1].To || evs[i].Revision != evs[i-1].Revision+1 || evs[i].Sequence <= evs[i-1].Sequence {
			t.Fatalf("event %d (%s→%s rev %d) does not follow event %d (→%s rev %d)", evs[i].Sequence,
				evs[i].From, evs[i].To, evs[i].Revision, evs[i-1].Sequence, evs[i-1].To, evs[i-1].Revision)
		}
		if evs[i].Type == lifecycle.TypeForced {
			t.Fatalf("unforced transition recorded as forced: %+v", evs[i])
		}
	}
	for _, r := range replicas {
		st, _ := r.GetState(ctx, "contested", false)
		if last := evs[len(evs)-1]; st.State != last.To || st.Revision != last.Revision {
			t.Errorf("state %s rev %d, last event %s rev %d", st.State, st.Revision, last.To, last.Revision)
		}
	}
}

func TestWatcherSurvivesTheOtherReplica(t *testing.T) {
	dsn := newDatabase(t)
	a, b := newReplica(t, dsn, "a", nil), newReplica(t, dsn, "b", nil)
	if _, _, err := a.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "x"}); err != nil {
		t.Fatal(err)
	}
	w, _ := b.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	defer w.Close()
	a.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StateActive})
	next(t, w)
	next(t, w)
	a.store.Close() // a loses its database mid-flight, as a crashed process would
	if _, err := a.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StatePaused}); lifecycle.ErrorCode(err) != lifecycle.CodeUnavailable {
		t.Errorf("transition through a replica without its store: %v", err)
	}
	if res, err := b.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StatePaused}); err != nil || !res.Success {
		t.Fatal(res, err)
	}
	if ev := next(t, w); ev.Sequence != 3 || ev.To != lifecycle.StatePaused {
		t.Fatalf("after a's loss the watcher on b got %+v", ev)
	}
}

func TestHooksAcrossReplicas(t *testing.T) {
	dsn := newDatabase(t)
	opts := func() *lifecycle.Options { return &lifecycle.Options{HookLease: 600 * time.Millisecond} }
	a, b := newReplica(t, dsn, "a", opts()), newReplica(t, dsn, "b", opts())
	var mu sync.Mutex
	delivered := map[uint64][]string{}
	for _, r := range []*replica{a, b} {
		r.HandleCallback("audit", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
			mu.Lock()
			delivered[c.Event.Sequence] = append(delivered[c.Event.Sequence], c.HookName)
			mu.Unlock()
			return lifecycle.HookDecision{}, nil
		})
		r.HandleCallback("no-pause", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
			return lifecycle.HookDecision{Veto: c.Event.To == lifecycle.StatePaused, Reason: "no pausing"}, nil
		})
	}
	reg := func(spec lifecycle.HookSpec) {
		if res, err := a.RegisterHook(ctx, spec); err != nil || !res.Success {
			t.Fatal(res, err)
		}
	}
	reg(lifecycle.HookSpec{Name: "audit", Config: map[string]string{"callback": "audit"}})
	reg(lifecycle.HookSpec{Name: "no-pause", Blocking: true, Config: map[string]string{"callback": "no-pause"}})

	// A blocking hook registered through a applies to transitions through b.
	waitFor(t, func() bool { hooks, _ := b.ListHooks(ctx); return len(hooks) == 2 })
	b.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "x"})
	b.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StateActive})
	if res, _ := b.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StatePaused}); res.Refusal != lifecycle.RefusalHookVetoed {
		t.Fatalf("hook registered through a, transition through b: %+v", res)
	}

	// Every event is delivered once in all, by whichever replica holds the lease.
	churn := func(r *replica, n int) {
		for i := range n {
			to := []lifecycle.State{lifecycle.StateMaintenance, lifecycle.StateActive}[i%2]
			if res, err := r.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: to}); err != nil || !res.Success {
				t.Fatal(res, err)
			}
		}
	}
	churn(a, 10)
	churn(b, 10)
	_, newest, _ := b.store.Sequences(ctx)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(delivered[newest]) > 0 })

	// The holder leaves; the other takes over from the stored cursor.
	hooks, _ := b.ListHooks(ctx)
	var holder, other *replica = a, b
	for _, h := range hooks {
		if h.Spec.Name == "audit" && h.LeaseOwner == "b" {
			holder, other = b, a
		}
	}
	holder.close()
	churn(other, 10)
	_, newest, _ = other.store.Sequences(ctx)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(delivered[newest]) > 0 })
	mu.Lock()
	defer mu.Unlock()
	for seq := range newest + 1 {
		if n := len(delivered[seq]); n > 1 {
			t.Errorf("event %d delivered %d times", seq, n)
		}
	}
	if len(delivered) < 30 {
		t.Errorf("%d events delivered, want at least 30", len(delivered))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 10s")
}

// TestHooksJudgeTheCurrentRecord: a blocking hook on replica a must see the agent as
// replica b left it, not as a last cached it.
func TestHooksJudgeTheCurrentRecord(t *testing.T) {
	dsn := newDatabase(t)
	a, b := newReplica(t, dsn, "a", nil), newReplica(t, dsn, "b", nil)
	for _, r := range []*replica{a, b} {
		r.HandleCallback("not-from-active", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
			return lifecycle.HookDecision{Veto: c.Event.From == lifecycle.StateActive, Reason: "never straight from ACTIVE"}, nil
		})
	}
	a.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "x"})
	a.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StateActive}) // a caches ACTIVE
	b.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StatePaused})
	if res, err := a.RegisterHook(ctx, lifecycle.HookSpec{Name: "not-from-active", Blocking: true,
		TriggerStates: []lifecycle.State{lifecycle.StateShuttingDown}, Config: map[string]string{"callback": "not-from-active"}}); err != nil || !res.Success {
		t.Fatal(res, err)
	}
	res, err := a.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StateShuttingDown})
	if err != nil || !res.Success || res.Previous != lifecycle.StatePaused {
		t.Fatalf("transition judged on a stale record: %+v, %v", res, err)
	}
}

// caughtUp waits until r has published every event up to seq.
func caughtUp(t *testing.T, r *replica, seq uint64) {
	t.Helper()
	w, err := r.Watch(ctx, lifecycle.WatchRequest{FromSequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if ev := next(t, w); ev.Sequence != seq {
		t.Fatalf("caught up to %d, want %d", ev.Sequence, seq)
	}
}

// Two replicas supervise the same agents: every automatic action happens exactly once, a
// heartbeat received by either replica counts, and the survivor takes over when one stops.
func TestSupervisionAcrossReplicasActsOnce(t *testing.T) {
	dsn := newDatabase(t)
	clk := &manualClock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	policy := &lifecycle.SupervisionPolicy{HeartbeatTimeout: 30 * time.Second, BackoffInitial: time.Second, BackoffMax: time.Second,
		RecoveringLimit: time.Minute}
	// A long lease keeps a, which supervises first, the leader while the clock jumps.
	opts := func() *lifecycle.Options {
		return &lifecycle.Options{Now: clk.Now, SuperviseTick: -1, Supervision: policy, HookLease: time.Hour}
	}
	a, b := newReplica(t, dsn, "a", opts()), newReplica(t, dsn, "b", opts())
	replicas := []*replica{a, b}
	const agents = 20
	ids := make([]string, agents)
	for i := range ids {
		ids[i] = fmt.Sprintf("agent-%02d", i)
		via := replicas[i%2]
		if _, _, err := via.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: ids[i]}); err != nil {
			t.Fatal(err)
		}
		if res, err := via.Transition(ctx, lifecycle.TransitionRequest{AgentID: ids[i], Target: lifecycle.StateActive}); err != nil || !res.Success {
			t.Fatal(res.Message, err)
		}
	}
	_, newest, _ := a.store.Sequences(ctx)
	// superviseBoth runs both replicas' supervisors at once, once both have seen every event.
	superviseBoth := func(rs ...*replica) {
		t.Helper()
		_, newest, err := rs[0].store.Sequences(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, r := range rs {
			caughtUp(t, r, newest)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.Supervise(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	caughtUp(t, a, newest)
	caughtUp(t, b, newest)
	superviseBoth(a)

	// The first half send heartbeats to b only; b records them in the store, where a, the
	// leader, finds them.
	clk.Advance(20 * time.Second)
	if unknown, err := b.Heartbeat(ctx, ids[:agents/2]); err != nil || len(unknown) > 0 {
		t.Fatal(unknown, err)
	}
	superviseBoth(a, b)
	clk.Advance(15 * time.Second) // 35s after ACTIVE: the second half missed their deadline
	superviseBoth(a, b)
	clk.Advance(time.Second) // the backoff
	superviseBoth(a, b)

	count := func(id string) map[string]int {
		page, err := b.History(ctx, lifecycle.HistoryRequest{AgentID: id, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, ev := range page.Events {
			if strings.HasPrefix(ev.InitiatedBy, lifecycle.SystemPrefix) {
				n[ev.InitiatedBy+" "+lifecycle.StateName(ev.To)]++
			}
		}
		return n
	}
	for i, id := range ids {
		got := count(id)
		want := map[string]int{}
		if i >= agents/2 {
			want = map[string]int{"system:liveness ERROR": 1, "system:supervisor RECOVERING": 1}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: automatic events %v, want %v", id, got, want)
		}
	}

	// The leader stops, handing its lease back; the other performs what comes due next
	// (RECOVERING's time limit).
	a.close()
	clk.Advance(time.Minute)
	superviseBoth(b)
	for _, id := range ids[agents/2:] {
		if got := count(id)["system:timeout ERROR"]; got != 1 {
			t.Errorf("%s: %d time-limit events after failover, want 1", id, got)
		}
	}
}

type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
