package plugin_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/statemachine"
	"github.com/hms-lifecycle/lifecycle/store/memory"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
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

// marked lists the pids of the processes of a plugin's last activation, by the marker its
// activate event records, with their names.
func marked(t testing.TB, m *plugin.Manager, ref plugin.Ref) map[int]string {
	t.Helper()
	page, err := m.History(ctx, plugin.HistoryRequest{Ref: ref, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	marker := ""
	for _, ev := range page.Events {
		if ev.Operation == plugin.OpActivate {
			marker = ev.Metadata["activation"]
		}
	}
	if marker == "" {
		t.Fatalf("no activation marker recorded for %s", ref)
	}
	return markedBy(marker)
}

func markedBy(marker string) map[int]string {
	out := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		env, _ := os.ReadFile("/proc/" + d.Name() + "/environ")
		comm, _ := os.ReadFile("/proc/" + d.Name() + "/comm")
		if bytes.Contains(env, []byte("\x00"+plugin.EnvActivation+"="+marker+"\x00")) && alive(pid) {
			out[pid] = strings.TrimSpace(string(comm))
		}
	}
	return out
}

// waitFor polls cond until it holds, for up to 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

// within runs f and fails the test if it has not returned after a minute (it hung).
func within(t testing.TB, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s hangs", what)
	}
}

// TestDaemonizingPlugin: a plugin whose child leaves its process group (setsid) and holds
// its output pipe is still stopped as a whole, by deactivation and by Close, which answer.
func TestDaemonizingPlugin(t *testing.T) {
	repo := t.TempDir()
	rt := map[string]any{"command": "/bin/sh", "args": []any{"-c", "setsid sleep 300 & wait"}, "stopGracePeriodMs": 5000}
	writePackage(t, repo, "d", manifestOf("P-daemon", "1.0.0", rt))
	writePackage(t, repo, "e", manifestOf("P-daemon2", "1.0.0", rt))
	m, err := plugin.New(ctx, memory.New(), &plugin.Options{Repository: repo, AutoActivate: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	procs := map[string]map[int]string{}
	for _, id := range []string{"P-daemon", "P-daemon2"} {
		p := wantState(t, get(t, m, id, "1.0.0"), nil, plugin.StateActive)
		waitFor(t, id+"'s sleep to start", func() bool {
			procs[id] = marked(t, m, p.Ref)
			return slices.Contains(slices.Collect(maps.Values(procs[id])), "sleep")
		})
		for pid := range procs[id] {
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		}
	}

	ref := plugin.Ref{ID: "P-daemon", Version: "1.0.0"}
	within(t, "deactivation", func() {
		p, err := m.Deactivate(ctx, ref, "test")
		wantState(t, p, err, plugin.StateInactive)
	})
	for pid := range procs["P-daemon"] {
		waitGone(t, pid)
	}
	if last := lastEvent(t, m, ref); last.Reason != "stopped by SIGTERM" {
		t.Fatalf("deactivation recorded %q", last.Reason)
	}

	within(t, "Close", func() { m.Close() })
	for pid := range procs["P-daemon2"] {
		waitGone(t, pid)
	}
}

// TestCrashLeavesNoGrandchildren: when a plugin manager is killed, the parent-death signal
// ends the plugin's process but not its children; the next manager finds them by the
// activation's marker, stops them and says so.
func TestCrashLeavesNoGrandchildren(t *testing.T) {
	repo, dir := t.TempDir(), t.TempDir()
	writePackage(t, repo, "sh", manifestOf("P-sh", "1.0.0", map[string]any{"command": "/bin/sh", "args": []any{"-c", "sleep 300; echo done"}}))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+repo, "PLUGIN_CRASH_STORE="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	sh, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	if err != nil {
		t.Fatalf("child said %q", line)
	}
	// The plugin's child, by its parent.
	sleep := 0
	waitFor(t, "the plugin's sleep to start", func() bool {
		ents, _ := os.ReadDir("/proc")
		for _, d := range ents {
			stat, _ := os.ReadFile("/proc/" + d.Name() + "/stat")
			if f := strings.Fields(string(stat)); len(f) > 3 && f[1] == "(sleep)" && f[3] == strconv.Itoa(sh) {
				sleep, _ = strconv.Atoi(f[0])
			}
		}
		return sleep != 0
	})
	t.Cleanup(func() { syscall.Kill(sleep, syscall.SIGKILL) })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitGone(t, sh) // the parent-death signal
	if !alive(sleep) {
		t.Fatal("the plugin's child did not outlive the manager: nothing to test")
	}

	s, err := sqlite.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := plugin.New(ctx, s, &plugin.Options{Repository: repo, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	waitGone(t, sleep)
	got := get(t, m, "P-sh", "1.0.0")
	want := fmt.Sprintf("the plugin manager restarted; it stopped what the previous one left running: %d (sleep)", sleep)
	if got.State != plugin.StateFailed || got.LastError != want {
		t.Fatalf("after the crash: %s, %q, want %q", plugin.StateName(got.State), got.LastError, want)
	}
	if ev := lastEvent(t, m, got.Ref); ev.Metadata["leftovers"] != strconv.Itoa(sleep) {
		t.Fatalf("event %+v", ev)
	}
}
