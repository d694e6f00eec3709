package plugin_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin"
)

// fakePressure is an injected pressure source the test sets, and that says when it was
// read.
type fakePressure struct {
	mu    sync.Mutex
	cpu   float64
	reads int
}

func (f *fakePressure) set(cpu float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cpu, f.reads = cpu, 0
}

// readsSinceSet is how often it was read since the last set.
func (f *fakePressure) readsSinceSet() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakePressure) ReadPressure() (plugin.Pressure, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return plugin.Pressure{CPU: f.cpu, Memory: 1, Source: "test"}, nil
}

// TestPluginOnDemandUnderPressure: above the threshold, on-demand activation is refused
// with RESOURCE_EXHAUSTED naming the reading, and nothing is activated; once the pressure
// falls, resolve activates again, recording the reading it decided on.
func TestPluginOnDemandUnderPressure(t *testing.T) {
	repo := t.TempDir()
	writePackage(t, repo, "a", manifestOf("AOS-P", "1.0.0", run(nil)))
	src := &fakePressure{cpu: 95}
	m, _ := newManager(t, &plugin.Options{Repository: repo, ActivateOnDemand: true, PressureThreshold: 80, Pressure: src})
	ref := plugin.Ref{ID: "AOS-P", Version: "1.0.0"}
	mustLoad(t, m, ref)

	_, err := m.Resolve(ctx, "AOS-P", "^1")
	wantCode(t, err, lifecycle.CodeResourceExhausted, "the host is under pressure: cpu 95.0%, memory 1.0% (test avg10), above the threshold of 80%",
		"plugin AOS-P 1.0.0 is not activated on demand")
	p := get(t, m, "AOS-P", "1.0.0")
	if p.State != plugin.StateInactive || p.Policy.Pressure.CPU != 95 || p.Policy.PressureThreshold != 80 {
		t.Fatalf("after the refusal: %s %+v", plugin.StateName(p.State), p.Policy)
	}
	if evs := policyEvents(t, m, "AOS-P"); len(evs) != 0 {
		t.Fatalf("a refused activation recorded %+v", evs)
	}
	if s := m.PolicyStats(); s.PressureRefusals != 1 || s.Pressure.CPU != 95 || s.Threshold != 80 {
		t.Fatalf("stats %+v", s)
	}

	src.set(20)
	p, err = m.Resolve(ctx, "AOS-P", "^1")
	wantState(t, p, err, plugin.StateActive)
	evs := policyEvents(t, m, "AOS-P")
	if len(evs) != 1 || evs[0].Operation != "activate" || evs[0].Metadata["policy"] != "activate-on-demand" ||
		evs[0].Metadata["pressure"] != "cpu 20.0%, memory 1.0% (test avg10)" || evs[0].Metadata["pressure_cpu"] != "20.00" ||
		evs[0].Metadata["pressure_threshold"] != "80" || evs[0].Metadata["pressure_source"] != "test" {
		t.Fatalf("on-demand activation events %+v", evs)
	}
	// Active already: resolve answers whatever the pressure.
	src.set(99)
	if p, err := m.Resolve(ctx, "AOS-P", ""); err != nil || p.Version != "1.0.0" {
		t.Fatalf("resolve of an active plugin under pressure: %+v %v", p, err)
	}
}

// TestPluginOnDemandWaitsForPressure: with PressureWait, on-demand activation waits for
// the pressure to fall rather than being refused.
func TestPluginOnDemandWaitsForPressure(t *testing.T) {
	repo := t.TempDir()
	writePackage(t, repo, "a", manifestOf("AOS-W", "1.0.0", nil))
	src := &fakePressure{cpu: 95}
	m, _ := newManager(t, &plugin.Options{Repository: repo, ActivateOnDemand: true, PressureThreshold: 80,
		PressureWait: time.Hour, PressureInterval: 5 * time.Millisecond, Pressure: src})
	mustLoad(t, m, plugin.Ref{ID: "AOS-W", Version: "1.0.0"})
	src.set(95)
	type result struct {
		p   plugin.Plugin
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := m.Resolve(ctx, "AOS-W", "")
		done <- result{p, err}
	}()
	eventually(t, "the pressure to be read while resolve waits", func() bool { return src.readsSinceSet() >= 5 })
	select {
	case r := <-done:
		t.Fatalf("resolve did not wait under pressure: %+v %v", r.p, r.err)
	default:
	}
	if p := get(t, m, "AOS-W", "1.0.0"); p.State != plugin.StateInactive {
		t.Fatalf("activated under pressure: %s", plugin.StateName(p.State))
	}
	src.set(50)
	select {
	case r := <-done:
		wantState(t, r.p, r.err, plugin.StateActive)
	case <-time.After(20 * time.Second):
		t.Fatal("resolve still waits after the pressure fell")
	}
	if evs := policyEvents(t, m, "AOS-W"); len(evs) != 1 || evs[0].Metadata["pressure_cpu"] != "50.00" {
		t.Fatalf("events %+v", evs)
	}
}

// TestPluginIdleUnderPressure: under pressure idle plugins are deactivated after the
// shorter timeout, least recently resolved first, until the pressure falls; then the rest
// stay, and nothing is activated that was not asked for.
func TestPluginIdleUnderPressure(t *testing.T) {
	repo := t.TempDir()
	ids := []string{"P-A", "P-B", "P-C", "P-D"}
	for _, id := range ids {
		writePackage(t, repo, id, manifestOf(id, "1.0.0", nil))
	}
	clock := newFakeClock()
	var mgr *plugin.Manager
	var mgrMu sync.Mutex
	// The pressure follows the load: 30% per active plugin among the first three.
	src := plugin.PressureFunc(func() (plugin.Pressure, error) {
		mgrMu.Lock()
		m := mgr
		mgrMu.Unlock()
		n := 0
		for _, id := range ids[:3] {
			if m != nil {
				if p, err := m.Get(ctx, plugin.Ref{ID: id, Version: "1.0.0"}); err == nil && p.State == plugin.StateActive {
					n++
				}
			}
		}
		return plugin.Pressure{CPU: float64(30 * n), Source: "test"}, nil
	})
	m, _ := newManager(t, &plugin.Options{Repository: repo, ActivateOnDemand: true, IdleTimeout: time.Hour,
		PressureThreshold: 50, PressureIdleTimeout: 5 * time.Minute, Pressure: src, Now: clock.Now})
	mgrMu.Lock()
	mgr = m
	mgrMu.Unlock()
	for _, id := range ids {
		ref := plugin.Ref{ID: id, Version: "1.0.0"}
		mustLoad(t, m, ref)
		if id == "P-D" {
			continue // stays Inactive
		}
		if _, err := m.Activate(ctx, ref, ""); err != nil {
			t.Fatal(err)
		}
	}
	// Resolved in the order C, A, B: C is the least recently resolved.
	for _, id := range []string{"P-C", "P-A", "P-B"} {
		clock.Advance(time.Minute)
		if _, err := m.Resolve(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(3 * time.Minute) // C idle 5m, A 4m, B 3m
	m.DeactivateIdleNow(ctx)       // C (at 90%); A and B are not idle for long enough
	if c, a, b := get(t, m, "P-C", "1.0.0"), get(t, m, "P-A", "1.0.0"), get(t, m, "P-B", "1.0.0"); c.State != plugin.StateInactive ||
		a.State != plugin.StateActive || b.State != plugin.StateActive {
		t.Fatalf("after 3 minutes: C %s, A %s, B %s", plugin.StateName(c.State), plugin.StateName(a.State), plugin.StateName(b.State))
	}
	clock.Advance(2 * time.Minute) // A 6m, B 5m: both beyond 5m
	m.DeactivateIdleNow(ctx)

	// C (90%), then A (60%); then 30%: below the threshold, B stays.
	var deact []plugin.Event
	page, err := m.History(ctx, plugin.HistoryRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range page.Events {
		if ev.Operation == "deactivate" {
			deact = append(deact, ev)
		}
	}
	if len(deact) != 2 || deact[0].ID != "P-C" || deact[1].ID != "P-A" {
		t.Fatalf("deactivations %+v, want P-C then P-A", deact)
	}
	for i, want := range []string{"cpu 90.0%, memory 0.0% (test avg10)", "cpu 60.0%, memory 0.0% (test avg10)"} {
		ev := deact[i]
		if ev.InitiatedBy != plugin.InitiatorPolicy || ev.Metadata["policy"] != "idle-deactivation-under-pressure" ||
			ev.Metadata["idle_timeout"] != "5m0s" || ev.Metadata["pressure"] != want || ev.Metadata["pressure_threshold"] != "50" ||
			ev.Metadata["last_used"] == "never" || !strings.HasPrefix(ev.Reason, "idle under pressure: not resolved for 5m0s") {
			t.Fatalf("deactivation %d: %+v", i, ev)
		}
	}
	if p := get(t, m, "P-C", "1.0.0"); p.State != plugin.StateInactive ||
		!strings.HasPrefix(p.Policy.Deactivation, "system:plugin-policy: idle under pressure") {
		t.Fatalf("P-C: %s %+v", plugin.StateName(p.State), p.Policy)
	}
	b := get(t, m, "P-B", "1.0.0")
	if b.State != plugin.StateActive || b.Policy.Pressure.CPU != 30 || b.Policy.Deactivation != "" {
		t.Fatalf("P-B: %s %+v", plugin.StateName(b.State), b.Policy)
	}
	// The pressure fell: nothing comes back that nobody asked for.
	for _, ev := range page.Events {
		if ev.Operation == "activate" && ev.InitiatedBy == plugin.InitiatorPolicy {
			t.Fatalf("activated by a policy: %+v", ev)
		}
	}
	if got := m.PolicyStats().Deactivations; got["idle-deactivation-under-pressure"] != 2 || got["idle-deactivation"] != 0 {
		t.Fatalf("deactivation counts %v", got)
	}
	// Without pressure, the normal timeout: B goes after an hour.
	clock.Advance(time.Hour)
	m.DeactivateIdleNow(ctx)
	if p := get(t, m, "P-B", "1.0.0"); p.State != plugin.StateInactive ||
		!strings.Contains(p.Policy.Deactivation, "idle: not resolved for 1h0m0s") {
		t.Fatalf("P-B after an hour: %s %+v", plugin.StateName(p.State), p.Policy)
	}
	// Asked for, it is activated again.
	if p, err := m.Resolve(ctx, "P-A", ""); err != nil || p.State != plugin.StateActive || p.Policy.Deactivation != "" {
		t.Fatalf("resolve P-A: %+v %v", p, err)
	}
}
