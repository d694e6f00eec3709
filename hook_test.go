package lifecycle_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

func hook(t *testing.T, m *lifecycle.Manager, spec lifecycle.HookSpec) string {
	t.Helper()
	res, err := m.RegisterHook(ctx, spec)
	if err != nil || !res.Success {
		t.Fatalf("RegisterHook(%s): %+v, %v", spec.Name, res, err)
	}
	return res.HookID
}

func cb(name string, extra ...string) map[string]string {
	c := map[string]string{"type": "callback", "callback": name}
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i]] = extra[i+1]
	}
	return c
}

func TestBlockingHookVetoAndFailurePolicies(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a")
	var mu sync.Mutex
	var calls []lifecycle.HookCall
	m.HandleCallback("veto-pause", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		if c.Event.To == lifecycle.StatePaused {
			return lifecycle.HookDecision{Veto: true, Reason: "change freeze until Monday"}, nil
		}
		return lifecycle.HookDecision{}, nil
	})
	m.HandleCallback("broken", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
		return lifecycle.HookDecision{}, errors.New("database is down")
	})
	m.HandleCallback("panics", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
		panic("boom")
	})
	hook(t, m, lifecycle.HookSpec{Name: "1-freeze", Blocking: true, Timeout: time.Second, Config: cb("veto-pause")})

	res := transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive, Reason: "start"})
	if !res.Success || len(res.Hooks) != 1 || res.Hooks[0].Result != lifecycle.HookAllowed || res.Event.Hooks[0].HookName != "1-freeze" {
		t.Fatalf("allowed: %+v", res)
	}
	c := calls[0]
	if !c.Blocking || c.Event.Sequence != 0 || c.Event.Reason != "start" || c.Event.From != lifecycle.StateInitialized ||
		c.IdempotencyKey != res.Event.ID.String() || c.Deadline.IsZero() || c.Attempt != 1 {
		t.Errorf("hook call: %+v", c)
	}
	res = transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StatePaused})
	if res.Success || res.Refusal != lifecycle.RefusalHookVetoed || res.Current != lifecycle.StateActive ||
		!strings.Contains(res.Message, "change freeze until Monday") || !res.Hooks[0].Enforced {
		t.Fatalf("veto: %+v", res)
	}
	if st, _ := m.GetState(ctx, "a", false); st.State != lifecycle.StateActive || st.Revision != 2 {
		t.Fatalf("vetoed transition changed the agent: %+v", st)
	}
	// Not vetoable: into ERROR, and forced edges. The veto is recorded, not enforced.
	res = transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StatePaused, ExpectedState: lifecycle.StateActive})
	if res.Success {
		t.Fatal("veto ignored")
	}
	move(t, m, "a", lifecycle.StateUpgrading)
	res = transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StatePaused, Force: true})
	if !res.Success || res.Event.Type != lifecycle.TypeForced || res.Hooks[0].Result != lifecycle.HookVetoed || res.Hooks[0].Enforced {
		t.Fatalf("forced transition with a veto: %+v", res)
	}

	hook(t, m, lifecycle.HookSpec{Name: "2-broken", Blocking: true, Timeout: time.Second, Config: cb("broken")})
	res = transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive})
	if res.Success || res.Refusal != lifecycle.RefusalHookFailed || !strings.Contains(res.Message, "database is down") ||
		len(res.Hooks) != 2 || res.Hooks[1].Result != lifecycle.HookFailed {
		t.Fatalf("failing hook, policy fail: %+v", res)
	}
	res = transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateError})
	if !res.Success || res.Hooks[1].Enforced {
		t.Fatalf("into ERROR with a failing hook: %+v", res)
	}
	hooks, _ := m.ListHooks(ctx)
	for _, h := range hooks {
		if h.Spec.Name == "2-broken" {
			m.UnregisterHook(ctx, h.ID)
		}
	}
	hook(t, m, lifecycle.HookSpec{Name: "2-ignored", Blocking: true, Timeout: time.Second, Config: cb("broken", "failure_policy", "ignore")})
	hook(t, m, lifecycle.HookSpec{Name: "3-panics", Blocking: true, Timeout: time.Second, Config: cb("panics", "failure_policy", "ignore")})
	hook(t, m, lifecycle.HookSpec{Name: "4-missing", Blocking: true, Timeout: time.Second, Config: cb("nobody", "failure_policy", "ignore")})
	res = transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateRecovering})
	if !res.Success || len(res.Hooks) != 4 {
		t.Fatalf("ignored failures: %+v", res)
	}
	for i, want := range []string{"", "database is down", "panicked: boom", `no callback named "nobody"`} {
		if o := res.Hooks[i]; !strings.Contains(o.Message, want) || o.Enforced || i > 0 && o.Result != lifecycle.HookFailed {
			t.Errorf("outcome %d: %+v", i, o)
		}
	}
	hooks, _ = m.ListHooks(ctx)
	if hooks[0].Spec.Name != "1-freeze" || hooks[0].Invocations != 8 || hooks[0].Vetoed != 3 || hooks[0].Allowed != 5 || hooks[0].Last == nil {
		t.Errorf("hook statistics: %+v", hooks[0])
	}
}

func TestBlockingHookTimeoutFailsOnlyItsOwnTransition(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "slow")
	register(t, m, "other")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	m.HandleCallback("sleepy", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
		<-release // ignores its context on purpose
		return lifecycle.HookDecision{}, nil
	})
	hook(t, m, lifecycle.HookSpec{Name: "sleepy", Blocking: true, Timeout: 100 * time.Millisecond,
		AgentIDs: []string{"slow"}, Config: cb("sleepy")})
	done := make(chan lifecycle.TransitionResult)
	go func() {
		r, _ := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "slow", Target: lifecycle.StateActive})
		done <- r
	}()
	for range 20 {
		if r := transition(t, m, lifecycle.TransitionRequest{AgentID: "other", Target: lifecycle.StateActive}); !r.Success {
			t.Fatalf("other agent blocked: %+v", r)
		}
		transition(t, m, lifecycle.TransitionRequest{AgentID: "other", Target: lifecycle.StatePaused})
	}
	select {
	case r := <-done:
		t.Fatalf("slow transition finished before the other agent's 40: %+v", r)
	default:
	}
	r := <-done
	if r.Success || r.Refusal != lifecycle.RefusalHookFailed || r.Hooks[0].Result != lifecycle.HookTimedOut ||
		r.Hooks[0].Latency < 100*time.Millisecond || r.Hooks[0].Latency > 900*time.Millisecond {
		t.Fatalf("timed-out hook: %+v", r)
	}
	// The transition's own deadline bounds its hooks too.
	r = transition(t, m, lifecycle.TransitionRequest{AgentID: "slow", Target: lifecycle.StateActive, Timeout: 20 * time.Millisecond})
	if r.Success || r.Hooks[0].Result != lifecycle.HookTimedOut || r.Hooks[0].Latency > 90*time.Millisecond {
		t.Fatalf("hook bounded by the transition deadline: %+v", r.Hooks)
	}
}

func TestHookFilters(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a")
	register(t, m, "b")
	var mu sync.Mutex
	seen := map[string][]string{}
	for _, name := range []string{"errors", "maint", "only-b"} {
		m.HandleCallback(name, func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
			mu.Lock()
			defer mu.Unlock()
			seen[name] = append(seen[name], c.Event.AgentID+":"+lifecycle.StateName(c.Event.To))
			return lifecycle.HookDecision{}, nil
		})
	}
	hook(t, m, lifecycle.HookSpec{Name: "errors", Blocking: true, Timeout: time.Second, Config: cb("errors"),
		TriggerStates: []lifecycle.State{lifecycle.StateError}})
	hook(t, m, lifecycle.HookSpec{Name: "maint", Blocking: true, Timeout: time.Second, Config: cb("maint"),
		TriggerTypes: []lifecycle.TransitionType{lifecycle.TypeMaintenance}})
	hook(t, m, lifecycle.HookSpec{Name: "only-b", Blocking: true, Timeout: time.Second, Config: cb("only-b"), AgentIDs: []string{"b"}})
	for _, id := range []string{"a", "b"} {
		for _, to := range []lifecycle.State{lifecycle.StateActive, lifecycle.StateMaintenance, lifecycle.StateActive, lifecycle.StateError} {
			transition(t, m, lifecycle.TransitionRequest{AgentID: id, Target: to})
		}
	}
	want := map[string]string{
		"errors": "[a:ERROR b:ERROR]",
		"maint":  "[a:MAINTENANCE a:ACTIVE b:MAINTENANCE b:ACTIVE]",
		"only-b": "[b:ACTIVE b:MAINTENANCE b:ACTIVE b:ERROR]",
	}
	for name, w := range want {
		if g := strings.Join(seen[name], " "); "["+g+"]" != w {
			t.Errorf("%s saw %s, want %s", name, g, w)
		}
	}
}

func TestRegisterHookValidation(t *testing.T) {
	m, _ := newManager(t, nil)
	bad := []struct {
		spec lifecycle.HookSpec
		want string
	}{
		{lifecycle.HookSpec{Config: cb("x")}, "hook_name is empty"},
		{lifecycle.HookSpec{Name: "h"}, "config[callback] is empty"},
		{lifecycle.HookSpec{Name: "h", Config: map[string]string{"type": "webhook"}}, `"webhook" is not a hook type`},
		{lifecycle.HookSpec{Name: "h", Config: cb("x", "failure_policy", "retry")}, "failure_policy"},
		{lifecycle.HookSpec{Name: "h", Config: cb("x", "max_attempts", "0")}, "max_attempts"},
		{lifecycle.HookSpec{Name: "h", Config: cb("x", "color", "red")}, `unknown key "color"`},
		{lifecycle.HookSpec{Name: "h", Config: cb("x"), Timeout: -time.Second}, "timeout_ms is negative"},
		{lifecycle.HookSpec{Name: "h", Config: cb("x"), Timeout: time.Hour}, "timeout_ms is 1h0m0s"},
		{lifecycle.HookSpec{Name: "h", Config: cb("x"), TriggerStates: []lifecycle.State{99}}, "trigger_states"},
		{lifecycle.HookSpec{Name: "h", Config: cb("x"), TriggerTypes: []lifecycle.TransitionType{0}}, "trigger_transitions"},
		{lifecycle.HookSpec{Name: "h", Config: cb("x"), AgentIDs: []string{"bad id"}}, "agent_ids"},
	}
	for _, tt := range bad {
		_, err := m.RegisterHook(ctx, tt.spec)
		wantCode(t, err, lifecycle.CodeInvalidArgument, tt.want)
	}
	hook(t, m, lifecycle.HookSpec{Name: "h", Blocking: true, Timeout: 20 * time.Second, Config: cb("x")})
	res, err := m.RegisterHook(ctx, lifecycle.HookSpec{Name: "h", Config: cb("x")})
	if err != nil || res.Success || !strings.Contains(res.Message, `a hook named "h" already exists`) {
		t.Errorf("duplicate name: %+v, %v", res, err)
	}
	res, err = m.RegisterHook(ctx, lifecycle.HookSpec{Name: "h2", Blocking: true, Timeout: 15 * time.Second, Config: cb("x")})
	if err != nil || res.Success || !strings.Contains(res.Message, "add up to 35s") {
		t.Errorf("timeout budget: %+v, %v", res, err)
	}
	wantCode(t, m.UnregisterHook(ctx, "hook-nope"), lifecycle.CodeNotFound, "hook-nope")
	if hooks, _ := m.ListHooks(ctx); len(hooks) != 1 || hooks[0].Spec.Timeout != 20*time.Second {
		t.Errorf("ListHooks: %+v", hooks)
	}
}

func TestPostHookRetriesWithoutDelayingTheCaller(t *testing.T) {
	m, _ := newManager(t, &lifecycle.Options{HookRetryBackoff: time.Millisecond})
	register(t, m, "a")
	var mu sync.Mutex
	var calls []lifecycle.HookCall
	delivered := make(chan lifecycle.HookCall, 10)
	gate := make(chan struct{})
	m.HandleCallback("flaky", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
		<-gate
		mu.Lock()
		calls = append(calls, c)
		n := len(calls)
		mu.Unlock()
		if n <= 2 {
			return lifecycle.HookDecision{}, errors.New("receiver restarting")
		}
		delivered <- c
		return lifecycle.HookDecision{}, nil
	})
	id := hook(t, m, lifecycle.HookSpec{Name: "notify", Timeout: time.Second, Config: cb("flaky")})
	// The caller returns while the hook is still blocked.
	res := transition(t, m, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive})
	if !res.Success {
		t.Fatal(res)
	}
	close(gate)
	got := <-delivered
	if got.Attempt != 3 || got.Event.Sequence != res.Event.Sequence || got.Blocking || got.IdempotencyKey != res.Event.ID.String() {
		t.Fatalf("delivery: %+v", got)
	}
	for i, c := range calls {
		if c.IdempotencyKey != got.IdempotencyKey || c.Attempt != i+1 {
			t.Errorf("attempt %d: key %s attempt %d", i, c.IdempotencyKey, c.Attempt)
		}
	}
	waitFor(t, func() bool {
		hooks, _ := m.ListHooks(ctx)
		return hooks[0].Cursor == res.Event.Sequence && hooks[0].ID == id && hooks[0].Failed == 2 && hooks[0].Allowed == 1
	})
}

func TestPostHookResumesFromItsCursorAfterRestart(t *testing.T) {
	s := memory.New()
	defer s.Close()
	m1, err := lifecycle.New(ctx, s, &lifecycle.Options{HookRetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	register(t, m1, "a")
	got1 := make(chan uint64, 100)
	m1.HandleCallback("rec", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
		if c.Event.Sequence > 3 { // the receiver stops answering
			<-ctx.Done()
			return lifecycle.HookDecision{}, ctx.Err()
		}
		got1 <- c.Event.Sequence
		return lifecycle.HookDecision{}, nil
	})
	hook(t, m1, lifecycle.HookSpec{Name: "rec", Timeout: 10 * time.Second, Config: cb("rec", "max_attempts", "100")})
	churn(t, m1, []string{"a"}, 4) // sequences 2..5
	if a, b := <-got1, <-got1; a != 2 || b != 3 {
		t.Fatalf("first manager delivered %d, %d", a, b)
	}
	m1.Close()

	got2 := make(chan uint64, 100)
	m2, err := lifecycle.New(ctx, s, &lifecycle.Options{Callbacks: map[string]lifecycle.HookFunc{
		"rec": func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
			got2 <- c.Event.Sequence
			return lifecycle.HookDecision{}, nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	churn(t, m2, []string{"a"}, 2) // sequences 6, 7
	want := uint64(4)
	if first := <-got2; first == 3 {
		// Delivery is at least once: the event in flight at shutdown may come again.
	} else if first != 4 {
		t.Fatalf("after restart got %d first, want 4 (or 3 again)", first)
	} else {
		want = 5
	}
	for ; want <= 7; want++ {
		if got := <-got2; got != want {
			t.Fatalf("after restart got %d, want %d", got, want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

// TestUnservedCallbackHook: a callback hook nothing serves yet is registered with a
// warning, and ListHooks says whether its callback is served.
func TestUnservedCallbackHook(t *testing.T) {
	m, _ := newManager(t, nil)
	res, err := m.RegisterHook(ctx, lifecycle.HookSpec{Name: "gate", Blocking: true, Config: map[string]string{"callback": "gate"}})
	if err != nil || !res.Success || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], `nothing serves callback "gate"`) ||
		!strings.Contains(res.Warnings[0], "the transition is refused") {
		t.Fatalf("RegisterHook = %+v, %v; want a warning", res, err)
	}
	served := func() bool {
		hooks, err := m.ListHooks(ctx)
		if err != nil || len(hooks) != 1 {
			t.Fatal(hooks, err)
		}
		return hooks[0].WorkerConnected
	}
	if served() {
		t.Error("WorkerConnected before anything serves the callback")
	}
	m.HandleCallback("gate", func(context.Context, lifecycle.HookCall) (lifecycle.HookDecision, error) {
		return lifecycle.HookDecision{}, nil
	})
	if !served() {
		t.Error("not WorkerConnected once HandleCallback serves it")
	}
	res, _ = m.RegisterHook(ctx, lifecycle.HookSpec{Name: "gate-2", Config: map[string]string{"callback": "gate"}})
	if len(res.Warnings) != 0 {
		t.Errorf("warnings for a served callback: %v", res.Warnings)
	}
}
