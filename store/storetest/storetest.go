// Package storetest is the conformance suite every lifecycle.Store passes. A store's tests
// call Run with a function that opens a new, empty store.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/hms-lifecycle/lifecycle"
)

// Open returns a new, empty store; the test cleans it up.
type Open func(t *testing.T) lifecycle.Store

// Run runs the whole suite. Times are compared at microsecond precision, the least a store
// must keep.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, lifecycle.Store)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"CommitCompareAndSwap", testCommitCompareAndSwap},
		{"ReadEventsFilters", testReadEventsFilters},
		{"ListAgents", testListAgents},
		{"ConcurrentCommits", testConcurrentCommits},
		{"Hooks", testHooks},
		{"Policies", testPolicies},
		{"DeleteAgent", testDeleteAgent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

var (
	ctx  = context.Background()
	t0   = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	opts = cmp.Options{cmpopts.EquateEmpty()}
)

func agent(id string, rev int64, st lifecycle.State, at time.Time) lifecycle.Agent {
	return lifecycle.Agent{ID: id, State: st, Revision: rev, CreatedAt: t0, EnteredAt: at}
}

func event(id string, rev int64, from, to lifecycle.State, typ lifecycle.TransitionType, at time.Time) lifecycle.Event {
	return lifecycle.Event{
		ID: uuid.Must(uuid.NewV7()), AgentID: id, From: from, To: to, Type: typ, Time: at,
		InitiatedBy: "tester", Reason: fmt.Sprintf("%s to %s", id, lifecycle.StateName(to)), Revision: rev,
	}
}

// register creates an agent in INITIALIZED and returns its registration event.
func register(t *testing.T, s lifecycle.Store, id string) lifecycle.Event {
	t.Helper()
	a := agent(id, 1, lifecycle.StateInitialized, t0)
	ev := event(id, 1, lifecycle.StateUnspecified, lifecycle.StateInitialized, lifecycle.TypeNormal, t0)
	seq, err := s.CreateAgent(ctx, a, ev)
	if err != nil {
		t.Fatalf("CreateAgent(%s): %v", id, err)
	}
	ev.Sequence = seq
	return ev
}

// commit moves an agent on from the state it is in and returns the event.
func commit(t *testing.T, s lifecycle.Store, id string, to lifecycle.State, typ lifecycle.TransitionType, at time.Time) lifecycle.Event {
	t.Helper()
	a, err := s.GetAgent(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ev := event(id, a.Revision+1, a.State, to, typ, at)
	seq, err := s.CommitTransition(ctx, ev, a.Revision)
	if err != nil {
		t.Fatalf("CommitTransition(%s → %s): %v", id, lifecycle.StateName(to), err)
	}
	ev.Sequence = seq
	return ev
}

func wantCode(t *testing.T, err error, code lifecycle.Code) {
	t.Helper()
	if got := lifecycle.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %v, want %v", err, got, code)
	}
}

func testCreateAndGet(t *testing.T, s lifecycle.Store) {
	if o, n, err := s.Sequences(ctx); err != nil || o != 0 || n != 0 {
		t.Fatalf("Sequences of an empty store = %d, %d, %v; want 0, 0", o, n, err)
	}
	a := agent("a-1", 1, lifecycle.StateInitialized, t0)
	a.Metadata = map[string]string{"team": "search", "empty": ""}
	a.Labels = map[string]string{"zone": "eu-1"}
	ev := event("a-1", 1, lifecycle.StateUnspecified, lifecycle.StateInitialized, lifecycle.TypeNormal, t0)
	ev.Metadata = map[string]string{"k": "v"}
	seq, err := s.CreateAgent(ctx, a, ev)
	if err != nil || seq != 1 {
		t.Fatalf("CreateAgent = %d, %v; want sequence 1", seq, err)
	}
	got, err := s.GetAgent(ctx, "a-1")
	if err != nil {
		t.Fatal(err)
	}
	a.LastSequence = 1
	if d := cmp.Diff(a, got, opts); d != "" {
		t.Errorf("GetAgent (-want +got):\n%s", d)
	}
	_, err = s.CreateAgent(ctx, a, event("a-1", 1, 0, lifecycle.StateInitialized, lifecycle.TypeNormal, t0))
	wantCode(t, err, lifecycle.CodeAlreadyExists)
	_, err = s.GetAgent(ctx, "nobody")
	wantCode(t, err, lifecycle.CodeNotFound)
	if o, n, _ := s.Sequences(ctx); o != 1 || n != 1 {
		t.Errorf("a refused CreateAgent stored something: sequences %d..%d", o, n)
	}
	evs, err := s.ReadEvents(ctx, lifecycle.EventFilter{})
	ev.Sequence = 1
	if err != nil || len(evs) != 1 {
		t.Fatalf("ReadEvents = %d events, %v", len(evs), err)
	}
	if d := cmp.Diff(ev, evs[0], opts); d != "" {
		t.Errorf("stored registration event (-want +got):\n%s", d)
	}
}

func testCommitCompareAndSwap(t *testing.T, s lifecycle.Store) {
	register(t, s, "a-1")
	at := t0.Add(time.Second)
	ev := event("a-1", 2, lifecycle.StateInitialized, lifecycle.StateError, lifecycle.TypeErrorTriggered, at)
	ev.Error = &lifecycle.ErrorInfo{Code: 7, Message: "disk full", Time: at, Recoverable: true, RecoveryActions: []string{"RECOVERING"}}
	ev.Hooks = []lifecycle.HookOutcome{{HookID: "h1", HookName: "audit", Result: lifecycle.HookAllowed, Latency: 1500 * time.Microsecond}}
	next := agent("a-1", 2, lifecycle.StateError, at)
	next.PreviousState, next.Error = lifecycle.StateInitialized, ev.Error

	// A stale revision changes nothing.
	_, err := s.CommitTransition(ctx, ev, 5)
	wantCode(t, err, lifecycle.CodeAborted)
	if a, _ := s.GetAgent(ctx, "a-1"); a.Revision != 1 || a.State != lifecycle.StateInitialized {
		t.Fatalf("aborted commit changed the agent: %+v", a)
	}
	if _, n, _ := s.Sequences(ctx); n != 1 {
		t.Fatalf("aborted commit stored an event: newest sequence %d", n)
	}
	_, err = s.CommitTransition(ctx, event("ghost", 2, 1, 2, 1, at), 1)
	wantCode(t, err, lifecycle.CodeNotFound)

	seq, err := s.CommitTransition(ctx, ev, 1)
	if err != nil || seq != 2 {
		t.Fatalf("CommitTransition = %d, %v; want sequence 2", seq, err)
	}
	got, _ := s.GetAgent(ctx, "a-1")
	next.LastSequence = 2
	if d := cmp.Diff(next, got, opts); d != "" {
		t.Errorf("agent after commit (-want +got):\n%s", d)
	}
	evs, _ := s.ReadEvents(ctx, lifecycle.EventFilter{FromSequence: 2})
	ev.Sequence = 2
	if len(evs) != 1 {
		t.Fatalf("ReadEvents from 2 = %d events", len(evs))
	}
	if d := cmp.Diff(ev, evs[0], opts); d != "" {
		t.Errorf("stored event (-want +got):\n%s", d)
	}
	// The same revision cannot be committed twice.
	_, err = s.CommitTransition(ctx, ev, 1)
	wantCode(t, err, lifecycle.CodeAborted)
}

func testReadEventsFilters(t *testing.T, s lifecycle.Store) {
	var all []lifecycle.Event
	for _, id := range []string{"a", "b"} {
		all = append(all, register(t, s, id))
	}
	steps := []struct {
		id  string
		to  lifecycle.State
		typ lifecycle.TransitionType
	}{
		{"a", lifecycle.StateActive, lifecycle.TypeNormal},
		{"b", lifecycle.StateActive, lifecycle.TypeNormal},
		{"a", lifecycle.StateMaintenance, lifecycle.TypeMaintenance},
		{"b", lifecycle.StateError, lifecycle.TypeErrorTriggered},
		{"a", lifecycle.StateActive, lifecycle.TypeMaintenance},
		{"b", lifecycle.StateRecovering, lifecycle.TypeNormal},
	}
	for i, st := range steps {
		all = append(all, commit(t, s, st.id, st.to, st.typ, t0.Add(time.Duration(i+1)*time.Minute)))
	}
	seqs := func(evs []lifecycle.Event) []uint64 {
		var out []uint64
		for _, e := range evs {
			out = append(out, e.Sequence)
		}
		return out
	}
	tests := []struct {
		name string
		f    lifecycle.EventFilter
		want []uint64
	}{
		{"all", lifecycle.EventFilter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"from", lifecycle.EventFilter{FromSequence: 6}, []uint64{6, 7, 8}},
		{"limit", lifecycle.EventFilter{FromSequence: 2, Limit: 3}, []uint64{2, 3, 4}},
		{"agent", lifecycle.EventFilter{AgentID: "a"}, []uint64{1, 3, 5, 7}},
		{"agent from", lifecycle.EventFilter{AgentID: "a", FromSequence: 4}, []uint64{5, 7}},
		{"agent limit", lifecycle.EventFilter{AgentID: "b", Limit: 2}, []uint64{2, 4}},
		{"type", lifecycle.EventFilter{Type: lifecycle.TypeMaintenance}, []uint64{5, 7}},
		{"agent type", lifecycle.EventFilter{AgentID: "b", Type: lifecycle.TypeNormal}, []uint64{2, 4, 8}},
		{"time range", lifecycle.EventFilter{Start: t0.Add(2 * time.Minute), End: t0.Add(4 * time.Minute)}, []uint64{4, 5}},
		{"agent time type", lifecycle.EventFilter{AgentID: "a", Type: lifecycle.TypeMaintenance, Start: t0.Add(4 * time.Minute)}, []uint64{7}},
		{"unknown agent", lifecycle.EventFilter{AgentID: "zzz"}, nil},
		{"past the end", lifecycle.EventFilter{FromSequence: 99}, nil},
	}
	for _, tt := range tests {
		evs, err := s.ReadEvents(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if d := cmp.Diff(tt.want, seqs(evs), opts); d != "" {
			t.Errorf("%s: sequences (-want +got):\n%s", tt.name, d)
		}
	}
	evs, _ := s.ReadEvents(ctx, lifecycle.EventFilter{})
	if d := cmp.Diff(all, evs, opts); d != "" {
		t.Errorf("events round trip (-want +got):\n%s", d)
	}
}

func testListAgents(t *testing.T, s lifecycle.Store) {
	for i, id := range []string{"c", "a", "e", "b", "d"} {
		a := agent(id, 1, lifecycle.StateInitialized, t0)
		a.Labels = map[string]string{"parity": []string{"even", "odd"}[i%2], "all": "yes"}
		if _, err := s.CreateAgent(ctx, a, event(id, 1, 0, lifecycle.StateInitialized, lifecycle.TypeNormal, t0)); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, s, "b", lifecycle.StateActive, lifecycle.TypeNormal, t0)
	commit(t, s, "d", lifecycle.StateActive, lifecycle.TypeNormal, t0)
	ids := func(f lifecycle.AgentFilter) []string {
		as, err := s.ListAgents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	tests := []struct {
		f    lifecycle.AgentFilter
		want []string
	}{
		{lifecycle.AgentFilter{Limit: 10}, []string{"a", "b", "c", "d", "e"}},
		{lifecycle.AgentFilter{Limit: 2}, []string{"a", "b"}},
		{lifecycle.AgentFilter{AfterID: "b", Limit: 2}, []string{"c", "d"}},
		{lifecycle.AgentFilter{States: []lifecycle.State{lifecycle.StateActive}, Limit: 10}, []string{"b", "d"}},
		{lifecycle.AgentFilter{Labels: map[string]string{"parity": "even"}, Limit: 10}, []string{"c", "d", "e"}},
		{lifecycle.AgentFilter{Labels: map[string]string{"parity": "even", "all": "yes"}, States: []lifecycle.State{lifecycle.StateActive}, Limit: 10}, []string{"d"}},
		{lifecycle.AgentFilter{Labels: map[string]string{"parity": "odd"}, States: []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}, Limit: 10}, []string{"b"}},
		{lifecycle.AgentFilter{Labels: map[string]string{"parity": "odd"}, States: []lifecycle.State{lifecycle.StateInitialized}, Limit: 10}, []string{"a"}},
		{lifecycle.AgentFilter{Labels: map[string]string{"missing": ""}, Limit: 10}, nil},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, ids(tt.f), opts); d != "" {
			t.Errorf("ListAgents(%+v) (-want +got):\n%s", tt.f, d)
		}
	}
}

// testConcurrentCommits checks the invariants under contention: sequences are gap-free and
// in commit order, compare-and-swap lets exactly one writer win per revision, and every
// agent's state equals its last event.
func testConcurrentCommits(t *testing.T, s lifecycle.Store) {
	const agents, writers, rounds = 4, 8, 40
	for i := range agents {
		register(t, s, fmt.Sprintf("c-%d", i))
	}
	cycle := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string]int{}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				id := fmt.Sprintf("c-%d", (w+r)%agents)
				a, err := s.GetAgent(ctx, id)
				if err != nil {
					t.Error(err)
					return
				}
				to := cycle[a.Revision%2]
				ev := event(id, a.Revision+1, a.State, to, lifecycle.TypeNormal, t0)
				_, err = s.CommitTransition(ctx, ev, a.Revision)
				switch lifecycle.ErrorCode(err) {
				case lifecycle.CodeUnknown:
					mu.Lock()
					won[id]++
					mu.Unlock()
				case lifecycle.CodeAborted:
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs, err := s.ReadEvents(ctx, lifecycle.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	lastOf := map[string]lifecycle.Event{}
	for i, ev := range evs {
		if ev.Sequence != uint64(i+1) {
			t.Fatalf("event %d has sequence %d: sequences must be gap-free from 1", i, ev.Sequence)
		}
		if prev, ok := lastOf[ev.AgentID]; ok && (ev.From != prev.To || ev.Revision != prev.Revision+1) {
			t.Fatalf("event %d of %s goes %s→%s at revision %d after %s at revision %d: commit order broken",
				ev.Sequence, ev.AgentID, ev.From, ev.To, ev.Revision, prev.To, prev.Revision)
		}
		lastOf[ev.AgentID] = ev
	}
	for id, last := range lastOf {
		a, _ := s.GetAgent(ctx, id)
		if a.State != last.To || a.Revision != last.Revision || a.LastSequence != last.Sequence {
			t.Errorf("agent %s is %s rev %d seq %d, its last event says %s rev %d seq %d",
				id, a.State, a.Revision, a.LastSequence, last.To, last.Revision, last.Sequence)
		}
		if int(a.Revision) != won[id]+1 {
			t.Errorf("agent %s: %d commits won but revision is %d", id, won[id], a.Revision)
		}
	}
	if _, n, _ := s.Sequences(ctx); n != uint64(len(evs)) {
		t.Errorf("newest sequence %d, %d events", n, len(evs))
	}
}

func testHooks(t *testing.T, s lifecycle.Store) {
	h := lifecycle.Hook{
		ID: "hook-1", CreatedAt: t0, Cursor: 0,
		Spec: lifecycle.HookSpec{
			Name: "zeta", TriggerStates: []lifecycle.State{lifecycle.StateError},
			TriggerTypes: []lifecycle.TransitionType{lifecycle.TypeForced}, Blocking: true,
			Timeout: 2 * time.Second, Config: map[string]string{"type": "callback", "callback": "z"},
			AgentIDs: []string{"a", "b"},
		},
	}
	if err := s.CreateHook(ctx, h); err != nil {
		t.Fatal(err)
	}
	h2 := lifecycle.Hook{ID: "hook-2", CreatedAt: t0, Spec: lifecycle.HookSpec{Name: "alpha", Timeout: time.Second}}
	if err := s.CreateHook(ctx, h2); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CreateHook(ctx, lifecycle.Hook{ID: "hook-3", Spec: lifecycle.HookSpec{Name: "alpha"}}), lifecycle.CodeAlreadyExists)
	wantCode(t, s.CreateHook(ctx, lifecycle.Hook{ID: "hook-1", Spec: lifecycle.HookSpec{Name: "other"}}), lifecycle.CodeAlreadyExists)
	if err := s.SetHookCursor(ctx, "hook-2", 42); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.SetHookCursor(ctx, "nope", 1), lifecycle.CodeNotFound)
	got, err := s.ListHooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h2.Cursor = 42
	if d := cmp.Diff([]lifecycle.Hook{h2, h}, got, opts); d != "" { // no lease yet
		t.Errorf("ListHooks (-want +got):\n%s", d)
	}
	testHookLease(t, s)
	if err := s.DeleteHook(ctx, "hook-1"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteHook(ctx, "hook-1"), lifecycle.CodeNotFound)
	if got, _ := s.ListHooks(ctx); len(got) != 1 || got[0].ID != "hook-2" {
		t.Errorf("after delete: %+v", got)
	}
}

// testHookLease checks that one owner at a time holds a hook's delivery lease.
func testHookLease(t *testing.T, s lifecycle.Store) {
	t.Helper()
	steps := []struct {
		owner     string
		at        time.Duration
		wantHeld  bool
		wantOwner string
	}{
		{"replica-a", 0, true, "replica-a"},
		{"replica-b", 5 * time.Second, false, "replica-a"}, // a's lease runs to 10s
		{"replica-a", 6 * time.Second, true, "replica-a"},  // renewed to 16s
		{"replica-b", 12 * time.Second, false, "replica-a"},
		{"replica-b", 16 * time.Second, true, "replica-b"}, // expired: taken over
		{"replica-a", 17 * time.Second, false, "replica-b"},
	}
	for _, st := range steps {
		now := t0.Add(st.at)
		h, held, err := s.LeaseHook(ctx, "hook-2", st.owner, now, now.Add(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if held != st.wantHeld || h.LeaseOwner != st.wantOwner || h.Cursor != 42 || h.Spec.Name != "alpha" {
			t.Errorf("LeaseHook(%s at +%v) = held %v, owner %q, cursor %d; want held %v, owner %q",
				st.owner, st.at, held, h.LeaseOwner, h.Cursor, st.wantHeld, st.wantOwner)
		}
	}
	if _, _, err := s.LeaseHook(ctx, "nope", "replica-a", t0, t0); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("LeaseHook of an unknown hook: %v", err)
	}
	// The lease is visible in ListHooks.
	hooks, _ := s.ListHooks(ctx)
	if hooks[0].LeaseOwner != "replica-b" || !hooks[0].LeaseUntil.Equal(t0.Add(26*time.Second)) {
		t.Errorf("ListHooks lease: %q until %v", hooks[0].LeaseOwner, hooks[0].LeaseUntil)
	}
}

func testPolicies(t *testing.T, s lifecycle.Store) {
	p := &lifecycle.SupervisionPolicy{Restart: lifecycle.RestartOnError, MaxRecoveries: 3, Period: time.Minute,
		HeartbeatTimeout: 30 * time.Second, OnGiveUp: lifecycle.GiveUpTerminate}
	a := agent("a-1", 1, lifecycle.StateInitialized, t0)
	a.Policy = p
	if _, err := s.CreateAgent(ctx, a, event("a-1", 1, 0, lifecycle.StateInitialized, lifecycle.TypeNormal, t0)); err != nil {
		t.Fatal(err)
	}
	register(t, s, "a-2")
	check := func(id string, want *lifecycle.SupervisionPolicy) {
		t.Helper()
		got, err := s.GetAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got.Policy); d != "" {
			t.Errorf("policy of %s (-want +got):\n%s", id, d)
		}
		list, err := s.ListAgents(ctx, lifecycle.AgentFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			if l.ID == id && !cmp.Equal(want, l.Policy) {
				t.Errorf("ListAgents: policy of %s %+v, want %+v", id, l.Policy, want)
			}
		}
	}
	check("a-1", p)
	check("a-2", nil)
	if err := s.SetPolicy(ctx, "a-2", p); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPolicy(ctx, "a-1", nil); err != nil {
		t.Fatal(err)
	}
	check("a-1", nil)
	check("a-2", p)
	wantCode(t, s.SetPolicy(ctx, "nobody", p), lifecycle.CodeNotFound)
	// A policy is not an event: the revision and the history stay as they were.
	commit(t, s, "a-2", lifecycle.StateActive, lifecycle.TypeNormal, t0.Add(time.Second))
	if got, _ := s.GetAgent(ctx, "a-2"); got.Revision != 2 || !cmp.Equal(p, got.Policy) {
		t.Errorf("after a transition: revision %d, policy %+v", got.Revision, got.Policy)
	}
	if _, n, _ := s.Sequences(ctx); n != 3 {
		t.Errorf("newest sequence %d, want 3", n)
	}
}

// RunShared runs the checks of what a SharedStore adds: heartbeats and leases.
func RunShared(t *testing.T, open func(t *testing.T) lifecycle.SharedStore) {
	t.Run("Heartbeats", func(t *testing.T) {
		s := open(t)
		register(t, s, "a-1")
		register(t, s, "a-2")
		if err := s.RecordHeartbeats(ctx, map[string]time.Time{"a-1": t0.Add(2 * time.Second), "ghost": t0}); err != nil {
			t.Fatal(err)
		}
		// An older heartbeat (from a slower replica) does not move the time back.
		if err := s.RecordHeartbeats(ctx, map[string]time.Time{"a-1": t0.Add(time.Second), "a-2": t0.Add(3 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]time.Time{"a-1": t0.Add(2 * time.Second), "a-2": t0.Add(3 * time.Second)} {
			if a, err := s.GetAgent(ctx, id); err != nil || !a.HeartbeatAt.Equal(want) || a.Revision != 1 {
				t.Errorf("%s: heartbeat %v revision %d (%v), want %v at revision 1", id, a.HeartbeatAt, a.Revision, err, want)
			}
		}
	})
	t.Run("Lease", func(t *testing.T) {
		s := open(t)
		for _, st := range []struct {
			owner string
			at    time.Duration
			want  bool
		}{
			{"replica-a", 0, true},
			{"replica-b", 5 * time.Second, false}, // a's lease runs to 10s
			{"replica-a", 6 * time.Second, true},  // renewed to 16s
			{"replica-b", 12 * time.Second, false},
			{"replica-b", 16 * time.Second, true}, // expired: taken over
			{"replica-a", 17 * time.Second, false},
		} {
			now := t0.Add(st.at)
			held, err := s.Lease(ctx, "supervisor", st.owner, now, now.Add(10*time.Second))
			if err != nil || held != st.want {
				t.Errorf("Lease(%s at +%v) = %v, %v; want %v", st.owner, st.at, held, err, st.want)
			}
		}
		// Another name is another lease; handing back (until = now) frees it at once.
		if held, _ := s.Lease(ctx, "other", "replica-a", t0, t0.Add(time.Hour)); !held {
			t.Error("a second lease name was not free")
		}
		now := t0.Add(18 * time.Second)
		if held, _ := s.Lease(ctx, "supervisor", "replica-b", now, now); !held {
			t.Error("hand back refused")
		}
		if held, _ := s.Lease(ctx, "supervisor", "replica-a", now, now.Add(time.Second)); !held {
			t.Error("a handed-back lease was not free")
		}
	})
}

func testDeleteAgent(t *testing.T, s lifecycle.Store) {
	register(t, s, "a-1")
	register(t, s, "a-2")
	commit(t, s, "a-1", lifecycle.StateTerminated, lifecycle.TypeNormal, t0.Add(time.Second))
	a, err := s.GetAgent(ctx, "a-1")
	if err != nil {
		t.Fatal(err)
	}
	del := event("a-1", a.Revision+1, lifecycle.StateTerminated, lifecycle.StateUnspecified, lifecycle.TypeNormal, t0.Add(2*time.Second))
	_, err = s.DeleteAgent(ctx, del, a.Revision-1)
	wantCode(t, err, lifecycle.CodeAborted)
	_, err = s.DeleteAgent(ctx, event("nobody", 2, lifecycle.StateTerminated, 0, lifecycle.TypeNormal, t0), 1)
	wantCode(t, err, lifecycle.CodeNotFound)
	if _, n, _ := s.Sequences(ctx); n != 3 {
		t.Fatalf("refused deletions stored something: newest sequence %d, want 3", n)
	}
	seq, err := s.DeleteAgent(ctx, del, a.Revision)
	if err != nil || seq != 4 {
		t.Fatalf("DeleteAgent = %d, %v; want sequence 4", seq, err)
	}
	del.Sequence = seq

	// The record is gone: not found, not listed, no transition, not deleted twice.
	_, err = s.GetAgent(ctx, "a-1")
	wantCode(t, err, lifecycle.CodeNotFound)
	if err := s.SetPolicy(ctx, "a-1", nil); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("SetPolicy of a deleted agent: %v, want NOT_FOUND", err)
	}
	_, err = s.CommitTransition(ctx, event("a-1", del.Revision+1, 0, lifecycle.StateActive, lifecycle.TypeNormal, t0), del.Revision)
	wantCode(t, err, lifecycle.CodeNotFound)
	_, err = s.DeleteAgent(ctx, event("a-1", del.Revision+1, 0, 0, lifecycle.TypeNormal, t0), del.Revision)
	wantCode(t, err, lifecycle.CodeNotFound)
	list, err := s.ListAgents(ctx, lifecycle.AgentFilter{})
	if err != nil || len(list) != 1 || list[0].ID != "a-2" {
		t.Fatalf("ListAgents after the deletion = %v, %v; want only a-2", list, err)
	}
	// The id is never used again.
	_, err = s.CreateAgent(ctx, agent("a-1", 1, lifecycle.StateInitialized, t0), event("a-1", 1, 0, lifecycle.StateInitialized, lifecycle.TypeNormal, t0))
	wantCode(t, err, lifecycle.CodeAlreadyExists)
	// The history stays, deletion event included.
	evs, err := s.ReadEvents(ctx, lifecycle.EventFilter{AgentID: "a-1"})
	if err != nil || len(evs) != 3 {
		t.Fatalf("history of the deleted agent: %d events, %v; want 3", len(evs), err)
	}
	if d := cmp.Diff(del, evs[2], opts); d != "" {
		t.Errorf("stored deletion event (-want +got):\n%s", d)
	}
	if _, n, _ := s.Sequences(ctx); n != 4 {
		t.Errorf("newest sequence %d after the deletion and refused calls, want 4", n)
	}
}
