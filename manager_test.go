package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/statemachine"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

// clock is a settable clock for tests that must not sleep.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newManager(t testing.TB, opts *lifecycle.Options) (*lifecycle.Manager, *memory.Store) {
	t.Helper()
	s := memory.New()
	m, err := lifecycle.New(ctx, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

func register(t testing.TB, m *lifecycle.Manager, id string) {
	t.Helper()
	if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id}); err != nil {
		t.Fatal(err)
	}
}

func transition(t testing.TB, m *lifecycle.Manager, req lifecycle.TransitionRequest) lifecycle.TransitionResult {
	t.Helper()
	res, err := m.Transition(ctx, req)
	if err != nil {
		t.Fatalf("Transition(%s → %s): %v", req.AgentID, lifecycle.StateName(req.Target), err)
	}
	return res
}

// move takes an agent to a state (forcing if needed) and fails the test if it cannot.
func move(t testing.TB, m *lifecycle.Manager, id string, to lifecycle.State) {
	t.Helper()
	if res := transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: to, Force: true}); !res.Success {
		t.Fatalf("move %s to %s: %s", id, lifecycle.StateName(to), res.Message)
	}
}

func wantCode(t testing.TB, err error, code lifecycle.Code, mentions ...string) {
	t.Helper()
	if got := lifecycle.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %v, want %v", err, got, code)
	}
	for _, s := range mentions {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

var allStates = []lifecycle.State{
	lifecycle.StateInitialized, lifecycle.StateActive, lifecycle.StatePaused, lifecycle.StateSuspended,
	lifecycle.StateShuttingDown, lifecycle.StateTerminated, lifecycle.StateMaintenance, lifecycle.StateError,
	lifecycle.StateUpgrading, lifecycle.StateRecovering,
}

// table is section 4.1 of the specification, written out again here on purpose.
var table = map[lifecycle.State][]lifecycle.State{
	lifecycle.StateInitialized:  {lifecycle.StateActive, lifecycle.StateError, lifecycle.StateTerminated},
	lifecycle.StateActive:       {lifecycle.StatePaused, lifecycle.StateSuspended, lifecycle.StateShuttingDown, lifecycle.StateError, lifecycle.StateMaintenance},
	lifecycle.StatePaused:       {lifecycle.StateActive, lifecycle.StateSuspended, lifecycle.StateShuttingDown, lifecycle.StateError},
	lifecycle.StateSuspended:    {lifecycle.StateRecovering, lifecycle.StateTerminated, lifecycle.StateError},
	lifecycle.StateShuttingDown: {lifecycle.StateTerminated, lifecycle.StateError},
	lifecycle.StateTerminated:   {},
	lifecycle.StateMaintenance:  {lifecycle.StateActive, lifecycle.StateError, lifecycle.StateShuttingDown},
	lifecycle.StateError:        {lifecycle.StateRecovering, lifecycle.StateTerminated},
	lifecycle.StateUpgrading:    {lifecycle.StateActive, lifecycle.StateError},
	lifecycle.StateRecovering:   {lifecycle.StateActive, lifecycle.StateError, lifecycle.StateTerminated},
}

func allowed(from, to lifecycle.State) bool {
	for _, s := range table[from] {
		if s == to {
			return true
		}
	}
	return false
}

func naturalType(from, to lifecycle.State) lifecycle.TransitionType {
	switch {
	case to == lifecycle.StateError:
		return lifecycle.TypeErrorTriggered
	case to == lifecycle.StateMaintenance || from == lifecycle.StateMaintenance:
		return lifecycle.TypeMaintenance
	}
	return lifecycle.TypeNormal
}

// TestTransitionTable tries every one of the 10×10 state pairs, unforced and forced.
func TestTransitionTable(t *testing.T) {
	m, _ := newManager(t, nil)
	n := 0
	for _, from := range allStates {
		for _, to := range allStates {
			name := lifecycle.StateName(from) + "→" + lifecycle.StateName(to)
			t.Run(name, func(t *testing.T) {
				n++
				id := fmt.Sprintf("agent-%d", n)
				register(t, m, id)
				if from != lifecycle.StateInitialized {
					move(t, m, id, from)
				}
				res := transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: to, Reason: "table test"})
				switch {
				case allowed(from, to):
					if !res.Success || res.Current != to || res.Previous != from || res.Event.Type != naturalType(from, to) {
						t.Fatalf("allowed edge: %+v", res)
					}
					if res.Event.InitiatedBy != lifecycle.DefaultInitiator || res.Event.Reason != "table test" || res.Event.Sequence == 0 {
						t.Errorf("event %+v", res.Event)
					}
				default:
					wantReason := lifecycle.RefusalInvalidTransition
					if from == lifecycle.StateTerminated {
						wantReason = lifecycle.RefusalTerminal
					}
					if res.Success || res.Current != from || res.Refusal != wantReason {
						t.Fatalf("forbidden edge: %+v", res)
					}
					for _, s := range []string{id, lifecycle.StateName(from)} {
						if !strings.Contains(res.Message, s) {
							t.Errorf("message %q does not name %q", res.Message, s)
						}
					}
					if wantReason == lifecycle.RefusalInvalidTransition {
						for _, next := range table[from] {
							if !strings.Contains(res.Message, lifecycle.StateName(next)) {
								t.Errorf("message %q does not list allowed state %s", res.Message, lifecycle.StateName(next))
							}
						}
						if !strings.Contains(res.Message, lifecycle.StateName(to)) {
							t.Errorf("message %q does not name the target", res.Message)
						}
					}
					if st, _ := m.GetState(ctx, id, false); st.State != from {
						t.Fatalf("refused transition changed the state to %s", lifecycle.StateName(st.State))
					}
				}

				// Forced, from a fresh agent in the same state.
				n++
				id = fmt.Sprintf("agent-%d", n)
				register(t, m, id)
				if from != lifecycle.StateInitialized {
					move(t, m, id, from)
				}
				res = transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: to, Force: true})
				switch {
				case from == lifecycle.StateTerminated:
					if res.Success || res.Refusal != lifecycle.RefusalTerminal {
						t.Fatalf("forced out of TERMINATED: %+v", res)
					}
				case allowed(from, to):
					if !res.Success || res.Event.Type != naturalType(from, to) {
						t.Fatalf("forced but allowed edge: %+v", res)
					}
				default:
					if !res.Success || res.Current != to || res.Event.Type != lifecycle.TypeForced {
						t.Fatalf("forced edge: %+v", res)
					}
				}
			})
		}
	}
}

func TestAutomaticTransitionsBySystem(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a")
	sys := lifecycle.WithInitiator(ctx, "system:recovery")
	res, err := m.Transition(sys, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive})
	if err != nil || res.Event.Type != lifecycle.TypeAutomatic || res.Event.InitiatedBy != "system:recovery" {
		t.Fatalf("system transition: %+v, %v", res.Event, err)
	}
	// A stronger type wins over AUTOMATIC.
	res, _ = m.Transition(sys, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateError})
	if res.Event.Type != lifecycle.TypeErrorTriggered {
		t.Fatalf("system transition into ERROR is %s", res.Event.Type)
	}
	user := lifecycle.WithInitiator(ctx, "alice")
	res, _ = m.Transition(user, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateRecovering})
	if res.Event.InitiatedBy != "alice" || res.Event.Type != lifecycle.TypeNormal {
		t.Fatalf("user transition: %+v", res.Event)
	}
}

func TestBadInputIsRejectedAndNothingStored(t *testing.T) {
	m, s := newManager(t, nil)
	register(t, m, "a")
	_, before, _ := s.Sequences(ctx)
	long := strings.Repeat("x", 2000)
	bigMeta := map[string]string{}
	for i := range 65 {
		bigMeta[fmt.Sprint(i)] = "v"
	}
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"empty id", func() error { _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{}); return err }, "agent_id is empty"},
		{"bad id", func() error {
			_, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a b"})
			return err
		}, "agent_id"},
		{"long id", func() error {
			_, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: long})
			return err
		}, "at most 128"},
		{"too much metadata", func() error {
			_, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "b", Metadata: bigMeta})
			return err
		}, "metadata has 65 entries"},
		{"big label", func() error {
			_, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "b", Labels: map[string]string{"k": strings.Repeat("v", 5000)}})
			return err
		}, "labels[k]"},
		{"unspecified target", func() error {
			_, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a"})
			return err
		}, "target_state: 0"},
		{"out of range target", func() error {
			_, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: 42})
			return err
		}, "target_state: 42"},
		{"bad expected state", func() error {
			_, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive, ExpectedState: -1})
			return err
		}, "expected_state"},
		{"long reason", func() error {
			_, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive, Reason: long})
			return err
		}, "reason is 2000 bytes"},
		{"negative timeout", func() error {
			_, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive, Timeout: -time.Second})
			return err
		}, "timeout_ms is negative"},
		{"invalid utf8", func() error {
			_, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive, Reason: "\xff"})
			return err
		}, "reason is not valid UTF-8"},
		{"negative limit", func() error {
			_, err := m.History(ctx, lifecycle.HistoryRequest{AgentID: "a", Limit: -1})
			return err
		}, "limit is negative"},
		{"huge limit", func() error { _, err := m.History(ctx, lifecycle.HistoryRequest{Limit: 5000}); return err }, "limit is 5000"},
		{"bad type filter", func() error { _, err := m.History(ctx, lifecycle.HistoryRequest{Type: 9}); return err }, "transition_type"},
		{"end before start", func() error {
			now := time.Now()
			_, err := m.History(ctx, lifecycle.HistoryRequest{Start: now, End: now.Add(-time.Hour)})
			return err
		}, "end_time"},
		{"bad page token", func() error { _, err := m.History(ctx, lifecycle.HistoryRequest{PageToken: "%%%"}); return err }, "page_token"},
		{"negative page size", func() error { _, err := m.ListAgents(ctx, lifecycle.ListAgentsRequest{PageSize: -5}); return err }, "page_size"},
		{"bad watch state", func() error {
			_, err := m.Watch(ctx, lifecycle.WatchRequest{States: []lifecycle.State{0}})
			return err
		}, "states"},
		{"bad bookmark interval", func() error {
			_, err := m.Watch(ctx, lifecycle.WatchRequest{BookmarkInterval: time.Nanosecond})
			return err
		}, "bookmark_interval_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), lifecycle.CodeInvalidArgument, tt.field) })
	}
	if _, after, _ := s.Sequences(ctx); after != before {
		t.Errorf("bad input stored events: newest sequence %d → %d", before, after)
	}
	if _, err := m.GetState(ctx, "b", false); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("a rejected registration left agent b behind: %v", err)
	}

	_, err := m.GetState(ctx, "ghost", false)
	wantCode(t, err, lifecycle.CodeNotFound, "ghost")
	_, err = m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "ghost", Target: lifecycle.StateActive})
	wantCode(t, err, lifecycle.CodeNotFound, "ghost")
	_, err = m.History(ctx, lifecycle.HistoryRequest{AgentID: "ghost"})
	wantCode(t, err, lifecycle.CodeNotFound, "ghost")
	_, _, err = m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a"})
	wantCode(t, err, lifecycle.CodeAlreadyExists, "a")
}

func TestGetState(t *testing.T) {
	clk := newClock()
	m, _ := newManager(t, &lifecycle.Options{Now: clk.Now})
	st, ev, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{
		AgentID: "a", Metadata: map[string]string{"owner": "team-x"}, Labels: map[string]string{"zone": "eu"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != lifecycle.StateInitialized || st.Revision != 1 || ev.From != lifecycle.StateUnspecified || ev.To != lifecycle.StateInitialized {
		t.Fatalf("registration: %+v %+v", st, ev)
	}
	clk.Advance(1500 * time.Millisecond)
	st, _ = m.GetState(ctx, "a", false)
	if st.TimeInState != 1500*time.Millisecond || st.Metadata != nil || st.Labels != nil {
		t.Errorf("without details: time in state %v, metadata %v, labels %v", st.TimeInState, st.Metadata, st.Labels)
	}
	st, _ = m.GetState(ctx, "a", true)
	if st.Metadata["owner"] != "team-x" || st.Labels["zone"] != "eu" {
		t.Errorf("with details: %+v", st)
	}
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive})
	clk.Advance(time.Second)
	res := transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateError,
		Error: &lifecycle.ErrorInfo{Code: 503, Message: "backend unreachable"}})
	st, _ = m.GetState(ctx, "a", false)
	if st.State != lifecycle.StateError || st.PreviousState != lifecycle.StateActive || st.Revision != 3 ||
		!st.EnteredAt.Equal(clk.Now()) || st.LastSequence != res.Event.Sequence {
		t.Errorf("after ERROR: %+v", st)
	}
	if e := st.Error; e == nil || e.Code != 503 || e.Message != "backend unreachable" || !e.Time.Equal(clk.Now()) ||
		strings.Join(e.RecoveryActions, ",") != "RECOVERING,TERMINATED" {
		t.Errorf("error info: %+v", st.Error)
	}
	if fmt.Sprint(st.AllowedNext) != fmt.Sprint(table[lifecycle.StateError]) {
		t.Errorf("allowed next %v", st.AllowedNext)
	}
	// Leaving ERROR clears the error.
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateRecovering})
	if st, _ = m.GetState(ctx, "a", false); st.Error != nil {
		t.Errorf("error info kept after leaving ERROR: %+v", st.Error)
	}
	// Without details the error message defaults to the reason, and it is recoverable.
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateError, Reason: "health check failed"})
	if st, _ = m.GetState(ctx, "a", false); st.Error == nil || st.Error.Message != "health check failed" || !st.Error.Recoverable {
		t.Errorf("default error info: %+v", st.Error)
	}
}

func TestPreconditions(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a")
	res := transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive, ExpectedState: lifecycle.StatePaused})
	if res.Success || res.Refusal != lifecycle.RefusalPreconditionFailed || !strings.Contains(res.Message, "not the expected PAUSED") {
		t.Fatalf("expected_state mismatch: %+v", res)
	}
	res = transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive, ExpectedRevision: 7})
	if res.Success || res.Refusal != lifecycle.RefusalPreconditionFailed || !strings.Contains(res.Message, "revision 1") {
		t.Fatalf("expected_revision mismatch: %+v", res)
	}
	res = transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive,
		ExpectedState: lifecycle.StateInitialized, ExpectedRevision: 1})
	if !res.Success || res.Revision != 2 {
		t.Fatalf("matching preconditions: %+v", res)
	}
	// A transition to the current state is refused, not a silent no-op.
	res = transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive})
	if res.Success || res.Refusal != lifecycle.RefusalInvalidTransition {
		t.Fatalf("ACTIVE → ACTIVE: %+v", res)
	}
}

func TestCustomTable(t *testing.T) {
	def := statemachine.AgentDefinition()
	def.Name = "with-upgrades"
	def.Transitions = append(def.Transitions, statemachine.Edge{From: "ACTIVE", To: "UPGRADING"})
	mach, err := statemachine.Compile(def)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := newManager(t, &lifecycle.Options{Machine: mach})
	register(t, m, "a")
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive})
	if res := transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateUpgrading}); !res.Success || res.Event.Type != lifecycle.TypeNormal {
		t.Fatalf("custom edge ACTIVE → UPGRADING: %+v", res)
	}
	bad := statemachine.Definition{Name: "bad", States: []string{"INITIALIZED", "RUNNING"}, Initial: "INITIALIZED"}
	mach, err = statemachine.Compile(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lifecycle.New(ctx, memory.New(), &lifecycle.Options{Machine: mach}); err == nil || !strings.Contains(err.Error(), `"RUNNING" is not an agent state`) {
		t.Errorf("New with a non-agent state: %v", err)
	}
}

func TestHistoryPagingAndFilters(t *testing.T) {
	clk := newClock()
	m, _ := newManager(t, &lifecycle.Options{Now: clk.Now})
	register(t, m, "a")
	register(t, m, "b")
	for range 5 {
		for _, id := range []string{"a", "b"} {
			clk.Advance(time.Minute)
			transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateActive})
			clk.Advance(time.Minute)
			transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateMaintenance})
		}
		for _, id := range []string{"a", "b"} {
			move(t, m, id, lifecycle.StateInitialized) // forced: back to the start
		}
	}
	// Page through agent a's history three events at a time.
	var all []lifecycle.Event
	req := lifecycle.HistoryRequest{AgentID: "a", Limit: 3}
	for pages := 0; ; pages++ {
		page, err := m.History(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Events...)
		if page.NextPageToken == "" {
			break
		}
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		req.PageToken = page.NextPageToken
	}
	if len(all) != 16 {
		t.Fatalf("agent a has %d events, want 16", len(all))
	}
	for i, ev := range all {
		if ev.AgentID != "a" || i > 0 && ev.Sequence <= all[i-1].Sequence {
			t.Fatalf("event %d: %+v not in order or not agent a", i, ev)
		}
	}
	// Reusing a token with other filters is refused.
	_, err := m.History(ctx, lifecycle.HistoryRequest{AgentID: "b", Limit: 3, PageToken: req.PageToken})
	wantCode(t, err, lifecycle.CodeInvalidArgument, "other filters")

	page, err := m.History(ctx, lifecycle.HistoryRequest{Type: lifecycle.TypeMaintenance, Limit: 100})
	if err != nil || len(page.Events) != 10 {
		t.Fatalf("type filter: %d events, %v", len(page.Events), err)
	}
	start := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC).Add(2 * time.Minute)
	page, _ = m.History(ctx, lifecycle.HistoryRequest{AgentID: "b", Start: start, End: start.Add(3 * time.Minute)})
	for _, ev := range page.Events {
		if ev.Time.Before(start) || !ev.Time.Before(start.Add(3*time.Minute)) || ev.AgentID != "b" {
			t.Errorf("time filter let through %+v", ev)
		}
	}
	if len(page.Events) != 3 { // b: ACTIVE at +3m, MAINTENANCE and the forced reset at +4m
		t.Errorf("time filter: %d events, want 3", len(page.Events))
	}
}

func TestListAgents(t *testing.T) {
	m, _ := newManager(t, nil)
	for i := range 25 {
		if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{
			AgentID: fmt.Sprintf("agent-%02d", i), Labels: map[string]string{"pool": fmt.Sprint(i % 2)},
		}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			transition(t, m, lifecycle.TransitionRequest{AgentID: fmt.Sprintf("agent-%02d", i), Target: lifecycle.StateActive})
		}
	}
	var got []string
	req := lifecycle.ListAgentsRequest{PageSize: 2, States: []lifecycle.State{lifecycle.StateActive}, Labels: map[string]string{"pool": "0"}}
	for {
		page, err := m.ListAgents(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Agents {
			got = append(got, a.ID)
		}
		if page.NextPageToken == "" {
			break
		}
		req.PageToken = page.NextPageToken
	}
	if want := "[agent-00 agent-06 agent-12 agent-18 agent-24]"; fmt.Sprint(got) != want {
		t.Errorf("ListAgents = %v, want %s", got, want)
	}
}

func TestBusyAgentTimesOutWithoutBlockingOthers(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "slow")
	register(t, m, "fast")
	entered, release := make(chan struct{}), make(chan struct{})
	m.HandleCallback("gate", func(ctx context.Context, call lifecycle.HookCall) (lifecycle.HookDecision, error) {
		if call.Event.AgentID == "slow" {
			close(entered)
			<-release
		}
		return lifecycle.HookDecision{}, nil
	})
	res, err := m.RegisterHook(ctx, lifecycle.HookSpec{Name: "gate", Blocking: true, Timeout: 10 * time.Second,
		Config: map[string]string{"callback": "gate"}})
	if err != nil || !res.Success {
		t.Fatal(res, err)
	}
	done := make(chan lifecycle.TransitionResult)
	go func() {
		r, _ := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "slow", Target: lifecycle.StateActive})
		done <- r
	}()
	<-entered
	if st, _ := m.GetState(ctx, "slow", false); !st.Transitioning {
		t.Error("is_transitioning is false while a blocking hook runs")
	}
	// A second transition of the same agent waits for its timeout, then is refused.
	r := transition(t, m, lifecycle.TransitionRequest{AgentID: "slow", Target: lifecycle.StateError, Timeout: 20 * time.Millisecond})
	if r.Success || r.Refusal != lifecycle.RefusalTimedOut || !strings.Contains(r.Message, "busy") {
		t.Errorf("second transition of a busy agent: %+v", r)
	}
	// Another agent is not blocked.
	if r := transition(t, m, lifecycle.TransitionRequest{AgentID: "fast", Target: lifecycle.StateActive}); !r.Success {
		t.Errorf("other agent: %+v", r)
	}
	close(release)
	if r := <-done; !r.Success {
		t.Errorf("first transition: %+v", r)
	}
	if st, _ := m.GetState(ctx, "slow", false); st.Transitioning || st.State != lifecycle.StateActive {
		t.Errorf("after: %+v", st)
	}
	// A canceled context is an error, not a refusal.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	entered2 := make(chan struct{})
	m.HandleCallback("gate", func(ctx context.Context, call lifecycle.HookCall) (lifecycle.HookDecision, error) {
		close(entered2)
		<-ctx.Done()
		return lifecycle.HookDecision{}, ctx.Err()
	})
	go m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "slow", Target: lifecycle.StatePaused, Timeout: 50 * time.Millisecond})
	<-entered2
	_, err = m.Transition(cctx, lifecycle.TransitionRequest{AgentID: "slow", Target: lifecycle.StateError})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("canceled wait: %v", err)
	}
}
