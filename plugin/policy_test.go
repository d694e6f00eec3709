package plugin_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin"
)

// fakeClock is an injected clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// eventually waits for cond, checking often, up to 20s (busy machines).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not the case after 20s: %s", what)
		}
	}
}

// policyEvents are the events of plugin id initiated by the policies.
func policyEvents(t testing.TB, m *plugin.Manager, id string) []plugin.Event {
	t.Helper()
	page, err := m.History(ctx, plugin.HistoryRequest{Ref: plugin.Ref{ID: id}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []plugin.Event
	for _, ev := range page.Events {
		if ev.InitiatedBy == plugin.InitiatorPolicy {
			out = append(out, ev)
		}
	}
	return out
}

func mustLoad(t testing.TB, m *plugin.Manager, refs ...plugin.Ref) {
	t.Helper()
	for _, r := range refs {
		if _, err := m.Load(ctx, r, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPluginFailover: when the active version fails at runtime, failover activates the
// highest Inactive version satisfying its constraint — never a deprecated or failed one,
// never one outside the constraint — so resolve keeps answering; the failed version stays
// Failed, and the decision is an event with its inputs.
func TestPluginFailover(t *testing.T) {
	repo := t.TempDir()
	v := func(version string) plugin.Ref { return plugin.Ref{ID: "AOS-F", Version: version} }
	for _, version := range []string{"1.0.0", "1.1.0", "1.2.0", "1.4.0", "2.0.0"} {
		writePackage(t, repo, "f-"+version, manifestOf("AOS-F", version, run(nil)))
	}
	writePackage(t, repo, "f-1.3.0", manifestOf("AOS-F", "1.3.0", run(map[string]any{"TESTPLUGIN_MODE": "exit"})))
	m, _ := newManager(t, &plugin.Options{Repository: repo, Failover: true, FailoverConstraint: "^1"})
	mustLoad(t, m, v("1.0.0"), v("1.1.0"), v("1.2.0"), v("1.3.0"), v("1.4.0"), v("2.0.0"))
	if _, err := m.Deprecate(ctx, v("1.2.0"), "AOS-F@^1.4", "superseded"); err != nil {
		t.Fatal(err)
	}
	p, err := m.Activate(ctx, v("1.3.0"), "") // exits at once: Failed
	wantState(t, p, err, plugin.StateFailed)
	active, err := m.Activate(ctx, v("1.4.0"), "")
	wantState(t, active, err, plugin.StateActive)
	w, err := m.Watch(ctx, plugin.WatchRequest{Ref: plugin.Ref{ID: "AOS-F"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// 1.4.0 crashes: 2.0.0 is outside ^1, 1.3.0 Failed, 1.2.0 Deprecated: 1.1.0 it is.
	pid := pidOf(t, m, active)
	crash(t, active)
	if ev := next(t, w); ev.Version != "1.4.0" || ev.Operation != "on_runtime_error" {
		t.Fatalf("event %+v, want 1.4.0's runtime failure", ev)
	}
	ev := next(t, w)
	if ev.Version != "1.1.0" || ev.Operation != "activate" || ev.InitiatedBy != plugin.InitiatorPolicy ||
		ev.Metadata["policy"] != "failover" || ev.Metadata["failed_version"] != "1.4.0" ||
		ev.Metadata["failed_generation"] == "" || ev.Metadata["constraint"] != "^1" ||
		ev.Metadata["candidates"] != "1.3.0 Failed, 1.2.0 Deprecated, 1.1.0 Inactive, 1.0.0 Inactive" ||
		ev.Metadata["rate"] != "3/10m0s" || ev.Metadata["failovers_in_window"] != "1" ||
		!strings.Contains(ev.Metadata["failure"], "exit status 3") || !strings.Contains(ev.Reason, "failover: AOS-F 1.4.0 failed") {
		t.Fatalf("failover event %+v", ev)
	}
	if ev := next(t, w); ev.Version != "1.1.0" || ev.To != plugin.StateActive {
		t.Fatalf("event %+v, want 1.1.0 Active", ev)
	}
	waitGone(t, pid)
	if r, err := m.Resolve(ctx, "AOS-F", "^1"); err != nil || r.Version != "1.1.0" || r.Endpoint == "" {
		t.Fatalf("resolve after the failover: %+v %v", r, err)
	}
	failed := get(t, m, "AOS-F", "1.4.0")
	if failed.State != plugin.StateFailed || failed.Policy.FailoverTarget != "1.1.0" || failed.Policy.FailoverNote != "" {
		t.Fatalf("the failed version: %s %+v", plugin.StateName(failed.State), failed.Policy)
	}
	for _, version := range []string{"1.2.0", "1.3.0", "2.0.0"} {
		if p := get(t, m, "AOS-F", version); p.Generation != 0 && version != "1.3.0" || p.State == plugin.StateActive {
			t.Fatalf("%s was activated: %+v", version, p)
		}
	}

	// 1.1.0 fails its health checks: 1.0.0.
	second := get(t, m, "AOS-F", "1.1.0")
	failHealth(t, second)
	next(t, w) // 1.1.0's runtime failure
	if ev := next(t, w); ev.Version != "1.0.0" || ev.Metadata["policy"] != "failover" || ev.Metadata["failed_version"] != "1.1.0" ||
		ev.Metadata["failovers_in_window"] != "2" || !strings.Contains(ev.Metadata["failure"], "checks in a row") {
		t.Fatalf("second failover %+v", ev)
	}
	next(t, w)
	// 1.0.0 crashes: nothing left to fail over to; noted, not activated.
	last := get(t, m, "AOS-F", "1.0.0")
	crash(t, last)
	next(t, w)
	eventually(t, "a note that there is no version to fail over to", func() bool {
		return strings.Contains(get(t, m, "AOS-F", "1.0.0").Policy.FailoverNote, "no failover: no Inactive version of AOS-F satisfies \"^1\"")
	})
	if got := m.PolicyStats().Failovers; got["activated"] != 2 || got["no_candidate"] != 1 {
		t.Fatalf("failover counts %v", got)
	}
	_, err = m.Resolve(ctx, "AOS-F", "^1")
	wantCode(t, err, lifecycle.CodeFailedPrecondition, "1.4.0 Failed", "1.1.0 Failed", "1.0.0 Failed")
	// Failed versions stay Failed until an administrator resets them.
	for _, version := range []string{"1.0.0", "1.1.0", "1.3.0", "1.4.0"} {
		if p := get(t, m, "AOS-F", version); p.State != plugin.StateFailed {
			t.Fatalf("%s is %s", version, plugin.StateName(p.State))
		}
	}
	if evs := policyEvents(t, m, "AOS-F"); len(evs) != 2 {
		t.Fatalf("policy events %+v", evs)
	}
}

// TestPluginFailoverNotNeeded: with another version satisfying the constraint active,
// resolve still answers: no failover.
func TestPluginFailoverNotNeeded(t *testing.T) {
	repo := t.TempDir()
	writePackage(t, repo, "a", manifestOf("AOS-N", "1.0.0", nil))
	writePackage(t, repo, "b", manifestOf("AOS-N", "1.1.0", run(nil)))
	writePackage(t, repo, "c", manifestOf("AOS-N", "1.2.0", nil))
	m, _ := newManager(t, &plugin.Options{Repository: repo, Failover: true})
	refs := []plugin.Ref{{ID: "AOS-N", Version: "1.0.0"}, {ID: "AOS-N", Version: "1.1.0"}, {ID: "AOS-N", Version: "1.2.0"}}
	mustLoad(t, m, refs...)
	for _, r := range refs[:2] {
		if _, err := m.Activate(ctx, r, ""); err != nil {
			t.Fatal(err)
		}
	}
	crash(t, get(t, m, "AOS-N", "1.1.0"))
	eventually(t, "the failover decision", func() bool { return get(t, m, "AOS-N", "1.1.0").Policy.FailoverNote != "" })
	if p := get(t, m, "AOS-N", "1.1.0"); p.State != plugin.StateFailed || p.Policy.FailoverNote != "no failover needed: AOS-N 1.0.0 is active" {
		t.Fatalf("1.1.0: %+v", p.Policy)
	}
	if p := get(t, m, "AOS-N", "1.2.0"); p.State != plugin.StateInactive {
		t.Fatalf("1.2.0 was activated: %s", plugin.StateName(p.State))
	}
}

// TestPluginFailoverRateLimit: versions that each fail soon after becoming healthy fail
// over to one another in a loop; the rate limit stops it, and holds until its window
// (on the injected clock) has passed.
func TestPluginFailoverRateLimit(t *testing.T) {
	repo := t.TempDir()
	versions := []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"}
	var refs []plugin.Ref
	for _, version := range versions {
		writePackage(t, repo, "r-"+version, manifestOf("AOS-Flap", version, run(map[string]any{"TESTPLUGIN_EXIT_AFTER_HEALTHY_MS": "30"})))
		refs = append(refs, plugin.Ref{ID: "AOS-Flap", Version: version})
	}
	clock := newFakeClock()
	m, _ := newManager(t, &plugin.Options{Repository: repo, Failover: true, FailoverRate: plugin.Rate{N: 3, Per: 10 * time.Minute}, Now: clock.Now})
	mustLoad(t, m, refs...)
	limited := func(version string) func() bool {
		return func() bool {
			return strings.HasPrefix(get(t, m, "AOS-Flap", version).Policy.FailoverNote, "no failover: the rate limit of 3 per 10m0s for AOS-Flap is reached")
		}
	}
	// 1.4.0 fails; 1.3.0, 1.2.0, 1.1.0 are failed over to, and fail in turn; 1.1.0's
	// failure is beyond the limit: 1.0.0 is left alone.
	if _, err := m.Activate(ctx, refs[4], "start"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rate limit to stop the failovers", limited("1.1.0"))
	evs := policyEvents(t, m, "AOS-Flap")
	if len(evs) != 3 {
		t.Fatalf("%d failovers, want 3: %+v", len(evs), evs)
	}
	for i, ev := range evs {
		if want := versions[3-i]; ev.Version != want || ev.Metadata["failed_version"] != versions[4-i] ||
			ev.Metadata["failovers_in_window"] != string(rune('1'+i)) || ev.Metadata["rate"] != "3/10m0s" {
			t.Fatalf("failover %d: %+v, want %s", i, ev, want)
		}
	}
	if p := get(t, m, "AOS-Flap", "1.0.0"); p.State != plugin.StateInactive {
		t.Fatalf("1.0.0 is %s beyond the rate limit", plugin.StateName(p.State))
	}
	// The loop goes on (an administrator resets and starts it again): still within the
	// window, no failover at all.
	reset := func() {
		for _, r := range refs {
			if get(t, m, r.ID, r.Version).State != plugin.StateFailed {
				continue
			}
			if _, err := m.Reset(ctx, r, "again"); err != nil {
				t.Fatal(err)
			}
		}
	}
	reset()
	if _, err := m.Activate(ctx, refs[4], "again"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "1.4.0's failure to be held by the rate limit", limited("1.4.0"))
	if evs := policyEvents(t, m, "AOS-Flap"); len(evs) != 3 {
		t.Fatalf("%d failovers within the window, want 3", len(evs))
	}
	if got := m.PolicyStats().Failovers; got["activated"] != 3 || got["rate_limited"] != 2 {
		t.Fatalf("failover counts %v", got)
	}
	// Once the window has passed, failover acts again, as limited as before.
	clock.Advance(10 * time.Minute)
	reset()
	if _, err := m.Activate(ctx, refs[4], "once more"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "three more failovers, then the rate limit again", func() bool {
		return len(policyEvents(t, m, "AOS-Flap")) >= 6 && limited("1.1.0")() && get(t, m, "AOS-Flap", "1.1.0").State == plugin.StateFailed
	})
	if evs := policyEvents(t, m, "AOS-Flap"); len(evs) != 6 || evs[3].Metadata["failovers_in_window"] != "1" || evs[5].Version != "1.1.0" {
		t.Fatalf("%d failovers after the window, want 6: %+v", len(evs), evs)
	}
	if p := get(t, m, "AOS-Flap", "1.0.0"); p.State != plugin.StateInactive || p.Generation != 0 {
		t.Fatalf("1.0.0 was activated beyond the rate limit: %+v", p)
	}
}

// crash makes a running test plugin exit.
func crash(t testing.TB, p plugin.Plugin) {
	t.Helper()
	if p.Endpoint == "" {
		t.Fatalf("%s has no endpoint", p.Ref)
	}
	res, err := httpGet("http://" + p.Endpoint + "/crash")
	if err == nil {
		res.Body.Close()
	}
}

// failHealth makes a running test plugin fail its health checks.
func failHealth(t testing.TB, p plugin.Plugin) {
	t.Helper()
	res, err := httpGet("http://" + p.Endpoint + "/fail")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}

func httpGet(url string) (*http.Response, error) { return http.Get(url) }
