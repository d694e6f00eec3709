package lifecycle_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// supervised returns a Manager whose supervisor acts only when the test calls Supervise,
// on a manual clock.
func supervised(t *testing.T, def *lifecycle.SupervisionPolicy) (*lifecycle.Manager, *clock, *memory.Store) {
	t.Helper()
	clk := newClock()
	m, s := newManager(t, &lifecycle.Options{Now: clk.Now, SuperviseTick: -1, Supervision: def})
	return m, clk, s
}

func supervise(t *testing.T, m *lifecycle.Manager) {
	t.Helper()
	if err := m.Supervise(ctx); err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, m *lifecycle.Manager, id string) lifecycle.AgentState {
	t.Helper()
	st, err := m.GetState(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func lastEvent(t *testing.T, m *lifecycle.Manager, id string) lifecycle.Event {
	t.Helper()
	st := state(t, m, id)
	page, err := m.History(ctx, lifecycle.HistoryRequest{AgentID: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ev := page.Events[len(page.Events)-1]
	if ev.Sequence != st.LastSequence {
		t.Fatalf("last event %d, agent at %d", ev.Sequence, st.LastSequence)
	}
	return ev
}

var fastRecovery = &lifecycle.SupervisionPolicy{
	MaxRecoveries: 3, Period: 10 * time.Minute, BackoffInitial: time.Second, BackoffMax: 8 * time.Second,
	StablePeriod: time.Minute,
}

func TestBackoffSequenceAndJitter(t *testing.T) {
	p := fastRecovery.WithDefaults()
	for seq := uint64(1); seq < 200; seq++ {
		for n, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second} {
			d := p.Backoff("agent-1", seq, n+1)
			if lo := base - time.Duration(lifecycle.BackoffJitter*float64(base)); d < lo || d > base {
				t.Fatalf("seq %d attempt %d: backoff %v outside [%v, %v]", seq, n+1, d, lo, base)
			}
			if again := p.Backoff("agent-1", seq, n+1); again != d {
				t.Fatalf("backoff not reproducible: %v then %v", d, again)
			}
		}
	}
	// The jitter spreads agents that failed together.
	seen := map[time.Duration]bool{}
	for i := range 50 {
		seen[p.Backoff("agent-"+string(rune('a'+i)), 7, 1)] = true
	}
	if len(seen) < 40 {
		t.Fatalf("only %d distinct backoffs among 50 agents", len(seen))
	}
}

func TestAutomaticRecoveryAfterBackoff(t *testing.T) {
	m, clk, _ := supervised(t, fastRecovery)
	register(t, m, "a1")
	move(t, m, "a1", lifecycle.StateActive)
	w, err := m.Watch(ctx, lifecycle.WatchRequest{AgentID: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	res := transition(t, m, lifecycle.TransitionRequest{AgentID: "a1", Target: lifecycle.StateError, Reason: "backend down"})

	st := state(t, m, "a1")
	next := st.Supervision.Next
	backoff := fastRecovery.WithDefaults().Backoff("a1", res.Event.Sequence, 1)
	if next.Action != lifecycle.ActionRecover || next.Target != lifecycle.StateRecovering || !next.At.Equal(clk.Now().Add(backoff)) {
		t.Fatalf("next action %+v, want RECOVER at +%v", next, backoff)
	}
	if !st.Supervision.Default || st.Supervision.Policy.MaxRecoveries != 3 || st.Supervision.RecoveriesInWindow != 0 {
		t.Fatalf("supervision %+v", st.Supervision)
	}

	clk.Advance(backoff - time.Millisecond)
	supervise(t, m)
	if s := state(t, m, "a1").State; s != lifecycle.StateError {
		t.Fatalf("recovered before the backoff: %s", lifecycle.StateName(s))
	}
	clk.Advance(time.Millisecond)
	supervise(t, m)
	ev := lastEvent(t, m, "a1")
	if ev.To != lifecycle.StateRecovering || ev.Type != lifecycle.TypeAutomatic || ev.InitiatedBy != lifecycle.InitiatorSupervisor ||
		!strings.Contains(ev.Reason, "attempt 1") {
		t.Fatalf("automatic recovery event %+v", ev)
	}
	// Watchers see it like any other event.
	for _, want := range []lifecycle.State{lifecycle.StateError, lifecycle.StateRecovering} {
		got, err := w.Next(ctx)
		if err != nil || got.To != want {
			t.Fatalf("watch: %+v %v, want → %s", got, err, lifecycle.StateName(want))
		}
	}
	if n := state(t, m, "a1").Supervision.RecoveriesInWindow; n != 1 {
		t.Fatalf("recoveries in window %d, want 1", n)
	}
}

// fail puts an agent into ERROR and lets the supervisor recover it, returning the backoff
// it waited.
func failAndRecover(t *testing.T, m *lifecycle.Manager, clk *clock, id string) time.Duration {
	t.Helper()
	transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateError, Reason: "crash"})
	next := state(t, m, id).Supervision.Next
	if next.Action != lifecycle.ActionRecover {
		t.Fatalf("next action %+v, want RECOVER", next)
	}
	wait := next.At.Sub(clk.Now())
	clk.Advance(wait)
	supervise(t, m)
	if s := state(t, m, id).State; s != lifecycle.StateRecovering {
		t.Fatalf("not recovered: %s", lifecycle.StateName(s))
	}
	return wait
}

func TestRestartIntensityGivesUp(t *testing.T) {
	for _, tc := range []struct {
		onGiveUp lifecycle.GiveUpAction
		want     lifecycle.State
	}{{lifecycle.GiveUpStay, lifecycle.StateError}, {lifecycle.GiveUpTerminate, lifecycle.StateTerminated}} {
		t.Run(lifecycle.StateName(tc.want), func(t *testing.T) {
			p := *fastRecovery
			p.OnGiveUp = tc.onGiveUp
			m, clk, _ := supervised(t, &p)
			register(t, m, "a1")
			move(t, m, "a1", lifecycle.StateActive)
			for range p.MaxRecoveries {
				failAndRecover(t, m, clk, "a1")
				move(t, m, "a1", lifecycle.StateActive)
			}
			transition(t, m, lifecycle.TransitionRequest{AgentID: "a1", Target: lifecycle.StateError, Reason: "crash again"})
			st := state(t, m, "a1")
			if st.Supervision.Next.Action != lifecycle.ActionGiveUp || st.Supervision.RecoveriesInWindow != 3 {
				t.Fatalf("supervision %+v", st.Supervision)
			}
			supervise(t, m)
			ev := lastEvent(t, m, "a1")
			if ev.From != lifecycle.StateError || ev.To != tc.want || ev.InitiatedBy != lifecycle.InitiatorSupervisor ||
				!strings.Contains(ev.Reason, "recovery gave up: 3 automatic recoveries within 10m0s reached max_recoveries 3") {
				t.Fatalf("give-up event %+v", ev)
			}
			st = state(t, m, "a1")
			if tc.want == lifecycle.StateError && (st.Error == nil || st.Error.Recoverable || st.Error.Message != "crash again") {
				t.Fatalf("after giving up, error %+v: want the original error, unrecoverable", st.Error)
			}
			// Nothing more is scheduled, however long we wait.
			clk.Advance(time.Hour)
			supervise(t, m)
			if st.Supervision.Next.Action != lifecycle.ActionNone || lastEvent(t, m, "a1").Sequence != ev.Sequence {
				t.Fatalf("supervisor acted after giving up: %+v", st.Supervision.Next)
			}
		})
	}
}

func TestBackoffGrowsAndResetsAfterStablePeriod(t *testing.T) {
	m, clk, _ := supervised(t, fastRecovery)
	register(t, m, "a1")
	move(t, m, "a1", lifecycle.StateActive)
	var waits []time.Duration
	for range 3 {
		waits = append(waits, failAndRecover(t, m, clk, "a1"))
		move(t, m, "a1", lifecycle.StateActive)
		clk.Advance(10 * time.Second) // active, but not for the stable period
	}
	for i, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if waits[i] > base || waits[i] < base*8/10 {
			t.Fatalf("attempt %d waited %v, want about %v (waits %v)", i+1, waits[i], base, waits)
		}
	}
	// Stable for a minute: the next failure starts the backoff over. The intensity window
	// still counts the 3 recoveries, so this one gives up instead...
	clk.Advance(time.Minute)
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a1", Target: lifecycle.StateError})
	if a := state(t, m, "a1").Supervision.Next.Action; a != lifecycle.ActionGiveUp {
		t.Fatalf("next action %s, want give up (intensity)", a)
	}
	// ... unless the window has passed too.
	move(t, m, "a1", lifecycle.StateRecovering)
	move(t, m, "a1", lifecycle.StateActive)
	clk.Advance(10 * time.Minute)
	if wait := failAndRecover(t, m, clk, "a1"); wait > time.Second {
		t.Fatalf("after a stable period the backoff is %v, want at most 1s", wait)
	}
}

func TestLivenessHeartbeats(t *testing.T) {
	m, clk, _ := supervised(t, &lifecycle.SupervisionPolicy{Restart: lifecycle.RestartNever, HeartbeatTimeout: 30 * time.Second})
	register(t, m, "a1")
	register(t, m, "a2")
	move(t, m, "a1", lifecycle.StateActive)
	before := state(t, m, "a1").LastSequence

	clk.Advance(20 * time.Second)
	unknown, err := m.Heartbeat(ctx, []string{"a1", "a2", "ghost"})
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) != 1 || unknown[0] != "ghost" {
		t.Fatalf("unknown agents %v, want [ghost]", unknown)
	}
	st := state(t, m, "a1")
	if st.LastSequence != before {
		t.Fatal("a heartbeat recorded an event")
	}
	if n := st.Supervision.Next; n.Action != lifecycle.ActionLiveness || !n.At.Equal(clk.Now().Add(30*time.Second)) {
		t.Fatalf("next action %+v, want LIVENESS 30s after the heartbeat", n)
	}
	clk.Advance(29 * time.Second) // 49s after ACTIVE, 29s after the heartbeat
	supervise(t, m)
	if s := state(t, m, "a1").State; s != lifecycle.StateActive {
		t.Fatalf("failed despite a heartbeat: %s", lifecycle.StateName(s))
	}
	clk.Advance(time.Second)
	supervise(t, m)
	ev := lastEvent(t, m, "a1")
	if ev.To != lifecycle.StateError || ev.Type != lifecycle.TypeErrorTriggered || ev.InitiatedBy != lifecycle.InitiatorLiveness ||
		ev.Error == nil || ev.Error.Message != "no heartbeat for 30s (heartbeat_timeout)" || !ev.Error.Recoverable {
		t.Fatalf("liveness event %+v (error %+v)", ev, ev.Error)
	}
	// a2 is INITIALIZED: liveness applies to ACTIVE agents only.
	if s := state(t, m, "a2").State; s != lifecycle.StateInitialized {
		t.Fatalf("a2 is %s", lifecycle.StateName(s))
	}

	if _, err := m.Heartbeat(ctx, make([]string, lifecycle.MaxHeartbeatBatch+1)); lifecycle.ErrorCode(err) != lifecycle.CodeInvalidArgument {
		t.Fatalf("oversized batch: %v", err)
	}
	wantCode(t, func() error { _, err := m.Heartbeat(ctx, []string{"bad id"}); return err }(), lifecycle.CodeInvalidArgument, "agent_ids")
}

func TestTimeLimitsOnTransitionalStates(t *testing.T) {
	p := &lifecycle.SupervisionPolicy{Restart: lifecycle.RestartNever,
		ShuttingDownLimit: time.Minute, RecoveringLimit: 2 * time.Minute, UpgradingLimit: 3 * time.Minute}
	for _, tc := range []struct {
		state, want lifecycle.State
		typ         lifecycle.TransitionType
		limit       time.Duration
	}{
		{lifecycle.StateShuttingDown, lifecycle.StateTerminated, lifecycle.TypeAutomatic, time.Minute},
		{lifecycle.StateRecovering, lifecycle.StateError, lifecycle.TypeErrorTriggered, 2 * time.Minute},
		{lifecycle.StateUpgrading, lifecycle.StateError, lifecycle.TypeErrorTriggered, 3 * time.Minute},
	} {
		t.Run(lifecycle.StateName(tc.state), func(t *testing.T) {
			m, clk, _ := supervised(t, p)
			register(t, m, "a1")
			move(t, m, "a1", lifecycle.StateActive)
			move(t, m, "a1", tc.state)
			clk.Advance(tc.limit - time.Millisecond)
			supervise(t, m)
			if s := state(t, m, "a1").State; s != tc.state {
				t.Fatalf("moved before the limit: %s", lifecycle.StateName(s))
			}
			clk.Advance(time.Millisecond)
			supervise(t, m)
			ev := lastEvent(t, m, "a1")
			reason := lifecycle.StateName(tc.state) + " exceeded its time limit of " + tc.limit.String()
			if ev.To != tc.want || ev.Type != tc.typ || ev.InitiatedBy != lifecycle.InitiatorTimeLimit || ev.Reason != reason {
				t.Fatalf("event %+v, want → %s (%s) %q", ev, lifecycle.StateName(tc.want), lifecycle.TypeName(tc.typ), reason)
			}
		})
	}
}

func TestScheduleSurvivesRestart(t *testing.T) {
	clk := newClock()
	store := memory.New()
	defer store.Close()
	opts := &lifecycle.Options{Now: clk.Now, SuperviseTick: -1, Supervision: fastRecovery}
	m1, err := lifecycle.New(ctx, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	register(t, m1, "a1")
	move(t, m1, "a1", lifecycle.StateActive)
	failAndRecover(t, m1, clk, "a1")
	move(t, m1, "a1", lifecycle.StateActive)
	transition(t, m1, lifecycle.TransitionRequest{AgentID: "a1", Target: lifecycle.StateError})
	planned := state(t, m1, "a1").Supervision.Next
	clk.Advance(planned.At.Sub(clk.Now()) / 2)
	m1.Close()

	// A new process plans the same action, at the same time, from the stored state.
	m2, err := lifecycle.New(ctx, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := state(t, m2, "a1").Supervision.Next; got != planned {
		t.Fatalf("after restart next action %+v, want %+v", got, planned)
	}
	clk.Advance(planned.At.Sub(clk.Now()))
	supervise(t, m2)
	if ev := lastEvent(t, m2, "a1"); ev.To != lifecycle.StateRecovering || !strings.Contains(ev.Reason, "attempt 2") {
		t.Fatalf("after restart: %+v", ev)
	}
}

func TestUserTransitionCancelsAutomaticOne(t *testing.T) {
	m, clk, _ := supervised(t, fastRecovery)
	register(t, m, "a1")
	move(t, m, "a1", lifecycle.StateActive)
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a1", Target: lifecycle.StateError})
	if a := state(t, m, "a1").Supervision.Next.Action; a != lifecycle.ActionRecover {
		t.Fatalf("next action %s", a)
	}
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a1", Target: lifecycle.StateRecovering, Reason: "by hand"})
	move(t, m, "a1", lifecycle.StateActive)
	seq := state(t, m, "a1").LastSequence
	clk.Advance(time.Hour)
	supervise(t, m)
	st := state(t, m, "a1")
	if st.LastSequence != seq || st.Supervision.Next.Action != lifecycle.ActionNone {
		t.Fatalf("the supervisor acted after a user's transition: %+v", st)
	}
}

func TestHooksSeeAutomaticTransitions(t *testing.T) {
	m, clk, _ := supervised(t, fastRecovery)
	var seen []lifecycle.HookCall
	m.HandleCallback("audit", func(_ context.Context, inv lifecycle.HookCall) (lifecycle.HookDecision, error) {
		seen = append(seen, inv)
		return lifecycle.HookDecision{}, nil
	})
	if res, err := m.RegisterHook(ctx, lifecycle.HookSpec{Name: "audit", Blocking: true,
		TriggerTypes: []lifecycle.TransitionType{lifecycle.TypeAutomatic},
		Config:       map[string]string{"type": "callback", "callback": "audit"}}); err != nil || !res.Success {
		t.Fatal(res, err)
	}
	register(t, m, "a1")
	move(t, m, "a1", lifecycle.StateActive)
	failAndRecover(t, m, clk, "a1")
	if len(seen) != 1 || seen[0].Event.To != lifecycle.StateRecovering || seen[0].Event.InitiatedBy != lifecycle.InitiatorSupervisor {
		t.Fatalf("blocking hook saw %+v", seen)
	}
}

func TestSetPolicy(t *testing.T) {
	m, clk, _ := supervised(t, nil)
	if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a1",
		Policy: &lifecycle.SupervisionPolicy{Restart: lifecycle.RestartNever}}); err != nil {
		t.Fatal(err)
	}
	move(t, m, "a1", lifecycle.StateActive)
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a1", Target: lifecycle.StateError})
	st := state(t, m, "a1")
	if st.Supervision.Default || st.Supervision.Policy.Restart != lifecycle.RestartNever || st.Supervision.Next.Action != lifecycle.ActionNone {
		t.Fatalf("own policy: %+v", st.Supervision)
	}
	// Back to the server's default (on-error): the recovery is scheduled at once.
	sup, err := m.SetPolicy(ctx, "a1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sup.Default || sup.Next.Action != lifecycle.ActionRecover {
		t.Fatalf("after SetPolicy(nil): %+v", sup)
	}
	clk.Advance(lifecycle.DefaultBackoffInitial)
	supervise(t, m)
	if s := state(t, m, "a1").State; s != lifecycle.StateRecovering {
		t.Fatalf("not recovered under the default policy: %s", lifecycle.StateName(s))
	}

	_, err = m.SetPolicy(ctx, "ghost", nil)
	wantCode(t, err, lifecycle.CodeNotFound, "ghost")
	for _, tc := range []struct {
		p    lifecycle.SupervisionPolicy
		want string
	}{
		{lifecycle.SupervisionPolicy{Restart: 7}, "policy.restart: 7 is not a restart policy"},
		{lifecycle.SupervisionPolicy{OnGiveUp: 9}, "policy.on_give_up: 9 is not a give-up action"},
		{lifecycle.SupervisionPolicy{MaxRecoveries: 101}, "policy.max_recoveries is 101, allowed 0 (default) to 100"},
		{lifecycle.SupervisionPolicy{HeartbeatTimeout: -time.Second}, "policy.heartbeat_timeout_ms is -1s"},
		{lifecycle.SupervisionPolicy{UpgradingLimit: 8 * 24 * time.Hour}, "policy.upgrading_limit_ms is 192h0m0s, allowed 0 to 168h0m0s"},
		{lifecycle.SupervisionPolicy{BackoffInitial: 2 * time.Minute}, "policy.backoff_initial_ms (2m0s) is more than backoff_max_ms (1m0s)"},
	} {
		_, err := m.SetPolicy(ctx, "a1", &tc.p)
		wantCode(t, err, lifecycle.CodeInvalidArgument, tc.want)
	}
	_, _, err = m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a2", Policy: &lifecycle.SupervisionPolicy{MaxRecoveries: -1}})
	wantCode(t, err, lifecycle.CodeInvalidArgument, "supervision_policy.max_recoveries")
	if _, err := m.GetState(ctx, "a2", false); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Fatalf("a refused registration stored the agent: %v", err)
	}
}
