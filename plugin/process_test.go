package plugin_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/store/memory"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
)

func TestRunningPlugins(t *testing.T) {
	repo := t.TempDir()
	writePackage(t, repo, "ok", manifestOf("P-ok", "1.0.0", run(nil)))
	writePackage(t, repo, "stubborn", manifestOf("P-stubborn", "1.0.0", run(map[string]any{"TESTPLUGIN_IGNORE_TERM": "1"})))
	writePackage(t, repo, "exits", manifestOf("P-exits", "1.0.0", run(map[string]any{"TESTPLUGIN_MODE": "exit"})))
	never := run(map[string]any{"TESTPLUGIN_MODE": "never-healthy"})
	never["startTimeoutMs"] = 1500 // enough to be listening under load: the last answer is then 503
	writePackage(t, repo, "never", manifestOf("P-never", "1.0.0", never))
	writePackage(t, repo, "nocmd", manifestOf("P-nocmd", "1.0.0", map[string]any{"command": "no-such-plugin-binary"}))
	m, _ := newManager(t, &plugin.Options{Repository: repo})
	activate := func(id string) plugin.Plugin {
		t.Helper()
		ref := plugin.Ref{ID: id, Version: "1.0.0"}
		if _, err := m.Load(ctx, ref, ""); err != nil {
			t.Fatal(err)
		}
		p, err := m.Activate(ctx, ref, "test")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	w, err := m.Watch(ctx, plugin.WatchRequest{Ref: plugin.Ref{ID: "P-ok"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Activation: Activating, then Active once healthy, with an endpoint and a generation.
	p := activate("P-ok")
	if p.State != plugin.StateActive || p.Endpoint == "" || p.Generation == 0 {
		t.Fatalf("activated: %+v", p)
	}
	for _, want := range []string{"load", "activate", "on_success"} {
		if ev := next(t, w); ev.Operation != want {
			t.Fatalf("event %+v, want %s", ev, want)
		}
	}
	res, err := http.Get("http://" + p.Endpoint + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("the plugin does not answer at its endpoint: %v %v", res, err)
	}
	res.Body.Close()
	pid := pidOf(t, m, p)

	// A crash at runtime: Failed (on_runtime_error) with the exit status and last output.
	http.Get("http://" + p.Endpoint + "/crash")
	ev := next(t, w)
	if ev.Operation != "on_runtime_error" || ev.To != plugin.StateFailed || ev.InitiatedBy != plugin.InitiatorRuntime ||
		!strings.Contains(ev.Reason, "exit status 3") || !strings.Contains(ev.Reason, "told to crash") {
		t.Fatalf("crash event %+v", ev)
	}
	waitGone(t, pid)
	// The registry takes the event in just after watchers see it.
	got := get(t, m, "P-ok", "1.0.0")
	for deadline := time.Now().Add(5 * time.Second); got.LastError == "" && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		got = get(t, m, "P-ok", "1.0.0")
	}
	if got.LastError != ev.Reason || got.Endpoint != "" {
		t.Fatalf("after the crash: last error %q, endpoint %q", got.LastError, got.Endpoint)
	}

	// Reset, activate again: a new generation. A failing health check fails it too.
	if _, err := m.Reset(ctx, p.Ref, ""); err != nil {
		t.Fatal(err)
	}
	next(t, w)
	p2, err := m.Activate(ctx, p.Ref, "again")
	wantState(t, p2, err, plugin.StateActive)
	if p2.Generation <= p.Generation {
		t.Fatalf("generation %d after %d", p2.Generation, p.Generation)
	}
	next(t, w)
	next(t, w)
	pid = pidOf(t, m, p2)
	http.Get("http://" + p2.Endpoint + "/fail")
	if ev := next(t, w); ev.Operation != "on_runtime_error" || !strings.Contains(ev.Reason, "503 Service Unavailable (2 checks in a row)") {
		t.Fatalf("health failure event %+v", ev)
	}
	waitGone(t, pid)

	// Graceful stop: SIGTERM.
	m.Reset(ctx, p.Ref, "")
	p3, err := m.Activate(ctx, p.Ref, "")
	wantState(t, p3, err, plugin.StateActive)
	pid = pidOf(t, m, p3)
	p3, err = m.Deactivate(ctx, p.Ref, "done")
	wantState(t, p3, err, plugin.StateInactive)
	page, _ := m.History(ctx, plugin.HistoryRequest{Ref: p.Ref, Limit: 1000})
	if last := page.Events[len(page.Events)-1]; last.Reason != "stopped by SIGTERM" {
		t.Fatalf("graceful stop recorded %q", last.Reason)
	}
	waitGone(t, pid)

	// A plugin that ignores SIGTERM is killed after the grace period.
	s := activate("P-stubborn")
	pid = pidOf(t, m, s)
	s, err = m.Deactivate(ctx, s.Ref, "")
	wantState(t, s, err, plugin.StateInactive)
	page, _ = m.History(ctx, plugin.HistoryRequest{Ref: s.Ref, Limit: 1000})
	if last := page.Events[len(page.Events)-1]; last.Reason != "killed: still running 300ms after SIGTERM" {
		t.Fatalf("forced stop recorded %q", last.Reason)
	}
	waitGone(t, pid)

	// Bad plugins fail activation with their reason; the manager keeps serving.
	for id, want := range map[string]string{
		"P-exits": "activation failed: the process exited: exit status 1; last output: testplugin P-exits 1.0.0 generation",
		"P-never": "activation failed: not healthy within the start timeout of 1.5s (last check: health check GET /healthz: 503 Service Unavailable)",
		"P-nocmd": `activation failed: start no-such-plugin-binary: exec: "no-such-plugin-binary": executable file not found in $PATH`,
	} {
		f := activate(id)
		if f.State != plugin.StateFailed || !strings.Contains(f.LastError, want) {
			t.Errorf("%s: %s, %q; want Failed with %q", id, plugin.StateName(f.State), f.LastError, want)
		}
	}
	if f := get(t, m, "P-exits", "1.0.0"); !strings.Contains(f.LastError, "fatal: configuration missing") {
		t.Errorf("P-exits: the last output is missing from %q", f.LastError)
	}
}

func TestGRPCHealthCheck(t *testing.T) {
	repo := t.TempDir()
	rt := run(map[string]any{"TESTPLUGIN_GRPC": "1"})
	rt["health"] = map[string]any{"grpc": map[string]any{"service": "testplugin"}, "intervalMs": 50}
	writePackage(t, repo, "g", manifestOf("P-grpc", "1.0.0", rt))
	wrong := run(map[string]any{"TESTPLUGIN_GRPC": "1"})
	wrong["health"] = map[string]any{"grpc": map[string]any{"service": "other"}}
	wrong["startTimeoutMs"] = 1500 // time to start under load: the last answer is then NotFound
	writePackage(t, repo, "w", manifestOf("P-grpc-wrong", "1.0.0", wrong))
	m, _ := newManager(t, &plugin.Options{Repository: repo, AutoActivate: true})
	if p := get(t, m, "P-grpc", "1.0.0"); p.State != plugin.StateActive {
		t.Fatalf("gRPC health: %s %s", plugin.StateName(p.State), p.LastError)
	}
	if p := get(t, m, "P-grpc-wrong", "1.0.0"); p.State != plugin.StateFailed || !strings.Contains(p.LastError, "gRPC health check: rpc error: code = NotFound") {
		t.Fatalf("gRPC health of an unknown service: %s %q", plugin.StateName(p.State), p.LastError)
	}
}

func TestCloseStopsPlugins(t *testing.T) {
	repo := t.TempDir()
	writePackage(t, repo, "a", manifestOf("P-a", "1.0.0", run(nil)))
	s := memory.New()
	defer s.Close()
	m, err := plugin.New(ctx, s, &plugin.Options{Repository: repo, AutoActivate: true})
	if err != nil {
		t.Fatal(err)
	}
	p := get(t, m, "P-a", "1.0.0")
	pid := pidOf(t, m, p)
	if ev := lastEvent(t, m, p.Ref); ev.InitiatedBy != plugin.InitiatorRuntime {
		t.Fatalf("last event %+v", ev)
	}
	page, _ := m.History(ctx, plugin.HistoryRequest{Ref: p.Ref, Limit: 100})
	if ev := page.Events[3]; ev.Operation != "activate" || ev.InitiatedBy != plugin.InitiatorPolicy || ev.Metadata["policy"] != "auto-activate" {
		t.Fatalf("auto-activation event %+v", ev)
	}
	m.Close()
	waitGone(t, pid)
	// The registry remembers it was stopped.
	m2, err := plugin.New(ctx, s, &plugin.Options{Repository: repo})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := get(t, m2, "P-a", "1.0.0"); got.State != plugin.StateInactive {
		t.Fatalf("after a clean stop and restart: %s", plugin.StateName(got.State))
	}
}

func lastEvent(t *testing.T, m *plugin.Manager, ref plugin.Ref) plugin.Event {
	t.Helper()
	page, err := m.History(ctx, plugin.HistoryRequest{Ref: ref, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events[len(page.Events)-1]
}

const crashChildEnv = "PLUGIN_CRASH_CHILD"

// crashChild is a plugin manager in its own process, over SQLite in $PLUGIN_CRASH_STORE
// (TestCrash kills it): it activates the plugins of the repository in $PLUGIN_CRASH_CHILD
// and prints their pids.
func crashChild() {
	s, err := sqlite.Open(ctx, os.Getenv("PLUGIN_CRASH_STORE"), nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	m, err := plugin.New(ctx, s, &plugin.Options{Repository: os.Getenv(crashChildEnv), AutoActivate: true})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	page, _ := m.History(ctx, plugin.HistoryRequest{Limit: 1000})
	for _, ev := range page.Events {
		if pid := ev.Metadata["pid"]; pid != "" {
			fmt.Println("pid", pid)
		}
	}
	select {}
}

// TestCrash: a plugin manager killed with SIGKILL takes its plugins with it (no orphan,
// even one that ignores SIGTERM), and the next one records them as Failed.
func TestCrash(t *testing.T) {
	repo, dir := t.TempDir(), t.TempDir()
	writePackage(t, repo, "a", manifestOf("P-a", "1.0.0", run(map[string]any{"TESTPLUGIN_IGNORE_TERM": "1"})))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+repo, "PLUGIN_CRASH_STORE="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q", line)
	}
	if !alive(pid) {
		t.Fatalf("plugin %d is not running", pid)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitGone(t, pid)

	s, err := sqlite.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := plugin.New(ctx, s, &plugin.Options{Repository: repo})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got := get(t, m, "P-a", "1.0.0")
	if got.State != plugin.StateFailed || got.LastError != "the plugin manager restarted: the plugin's process ended with it" {
		t.Fatalf("after the crash: %s, %q", plugin.StateName(got.State), got.LastError)
	}
}
