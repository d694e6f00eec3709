package plugin_test

import (
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/statemachine"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// TestSecondManagerOnTheSameStore: a second plugin manager opened on the data of a running
// one (a second serve) leaves the running one's plugins alone, and when another process does
// record a transition of a plugin anyway, the running manager's operations still work:
// reset is judged on the stored record, not on a stale copy, and stops the process this
// manager still ran for it.
func TestSecondManagerOnTheSameStore(t *testing.T) {
	repo := t.TempDir()
	writePackage(t, repo, "a", manifestOf("P-a", "1.0.0", run(nil)))
	// One store that both managers write, like two servers on one database. (Two SQLite
	// stores on one directory would also disagree on the next sequence.)
	s := memory.New()
	defer s.Close()
	m1, err := plugin.New(ctx, s, &plugin.Options{Repository: repo, AutoActivate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	p := wantState(t, get(t, m1, "P-a", "1.0.0"), nil, plugin.StateActive)
	pid := pidOf(t, m1, p)

	// A second manager on the same data: the first one's plugin is not its to judge.
	m2, err := plugin.New(ctx, s, &plugin.Options{Repository: repo})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, get(t, m2, "P-a", "1.0.0"), nil, plugin.StateActive)
	m2.Close()
	wantState(t, get(t, m1, "P-a", "1.0.0"), nil, plugin.StateActive)
	if !alive(pid) {
		t.Fatal("a second manager stopped the first one's plugin")
	}

	// Another process records the plugin Failed behind the first manager's back (as a
	// second serve did before it checked who ran the plugin).
	other, err := lifecycle.New(ctx, s, &lifecycle.Options{
		Machine: statemachine.MustCompile(statemachine.PluginDefinition()), GenericStates: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := other.GetState(ctx, "P-a:1.0.0", false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := other.Transition(ctx, lifecycle.TransitionRequest{AgentID: "P-a:1.0.0", Target: lifecycle.State(plugin.StateFailed),
		ExpectedRevision: st.Revision, Reason: "written by another process", Metadata: map[string]string{"operation": plugin.OpOnRuntimeError}})
	other.Close()
	if err != nil || !res.Success {
		t.Fatalf("the other process's transition: %+v %v", res, err)
	}
	wantState(t, get(t, m1, "P-a", "1.0.0"), nil, plugin.StateFailed)
	// Reset works at once, and the process the first manager still ran is stopped.
	reset, err := m1.Reset(ctx, p.Ref, "after the other process")
	wantState(t, reset, err, plugin.StateInactive)
	waitGone(t, pid)
	again, err := m1.Activate(ctx, p.Ref, "again")
	got := wantState(t, again, err, plugin.StateActive)
	if got.Generation <= p.Generation {
		t.Fatalf("generation %d after %d", got.Generation, p.Generation)
	}
}
