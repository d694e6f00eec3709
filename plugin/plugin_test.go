package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

var ctx = context.Background()

// testPlugin is the test plugin program (testdata/testplugin), built once by TestMain.
var testPlugin string

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	dir, err := os.MkdirTemp("", "testplugin")
	if err != nil {
		panic(err)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	if out, err := exec.Command("go", "build", "-o", testPlugin, "./testdata/testplugin").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// manifestOf is a valid manifest of id and version; runtime, if not nil, is its runtime
// block.
func manifestOf(id, version string, runtime map[string]any) map[string]any {
	m := map[string]any{"manifestVersion": "1.0", "hmaVersion": "1.3", "id": id, "version": version,
		"name": id + " " + version, "type": "L3-Capability", "implementedPorts": []any{"PluginExecutionPort"},
		"consumedCorePorts": []any{"EventBusPort"}}
	if runtime != nil {
		m["runtime"] = runtime
	}
	return m
}

// run is a runtime block running the test plugin, with its environment.
func run(env map[string]any) map[string]any {
	r := map[string]any{"command": testPlugin, "startTimeoutMs": 5000, "stopGracePeriodMs": 300,
		"health": map[string]any{"http": map[string]any{"path": "/healthz"}, "intervalMs": 50, "failureThreshold": 2}}
	if env != nil {
		r["env"] = env
	}
	return r
}

func writePackage(t testing.TB, repo, folder string, man map[string]any) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(repo, folder), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(man, "", "  ")
	if err := os.WriteFile(filepath.Join(repo, folder, "plugin-manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func newManager(t testing.TB, opts *plugin.Options) (*plugin.Manager, *memory.Store) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := memory.New()
	m, err := plugin.New(ctx, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

func get(t testing.TB, m *plugin.Manager, id, version string) plugin.Plugin {
	t.Helper()
	p, err := m.Get(ctx, plugin.Ref{ID: id, Version: version})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantState(t testing.TB, p plugin.Plugin, err error, want plugin.State) plugin.Plugin {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", p.Ref, err)
	}
	if p.State != want {
		t.Fatalf("%s is %s, want %s (last error: %s)", p.Ref, plugin.StateName(p.State), plugin.StateName(want), p.LastError)
	}
	return p
}

func wantCode(t testing.TB, err error, code lifecycle.Code, mentions ...string) {
	t.Helper()
	if got := lifecycle.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %v, want %v", err, got, code)
	}
	for _, s := range mentions {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

// alive reports whether a process exists (a zombie counts as gone).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(stat), ") Z ")
}

// pidOf is the process of a plugin's current activation, from its Active event.
func pidOf(t testing.TB, m *plugin.Manager, p plugin.Plugin) int {
	t.Helper()
	page, err := m.History(ctx, plugin.HistoryRequest{Ref: p.Ref, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i := len(page.Events) - 1; i >= 0; i-- {
		if pid := page.Events[i].Metadata["pid"]; pid != "" {
			n, _ := strconv.Atoi(pid)
			return n
		}
	}
	t.Fatalf("no pid recorded for %s", p.Ref)
	return 0
}

func waitGone(t testing.TB, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	t.Fatalf("process %d is still running: an orphan", pid)
}

// next waits for a plugin's next event.
func next(t testing.TB, w plugin.EventStream) plugin.Event {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ev, err := w.Next(cctx)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	return ev
}

func TestDiscoverValidateRegister(t *testing.T) {
	repo := t.TempDir()
	writePackage(t, repo, "wardley-1.2.0", manifestOf("AOS-WardleyMapPlugin", "1.2.0", nil))
	bad := manifestOf("AOS-Broken", "1.0.0", nil)
	bad["type"] = "L9-Unknown"
	delete(bad, "name")
	writePackage(t, repo, "broken", bad)
	m, _ := newManager(t, &plugin.Options{Repository: repo})

	p := get(t, m, "AOS-WardleyMapPlugin", "1.2.0")
	if p.State != plugin.StateRegistered || p.Manifest == nil || p.Manifest.Name != "AOS-WardleyMapPlugin 1.2.0" || p.Path != "wardley-1.2.0" {
		t.Fatalf("valid package: %+v", p)
	}
	b := get(t, m, "AOS-Broken", "1.0.0")
	if b.State != plugin.StateDiscovered || len(b.Errors) != 2 || b.Errors[0].Pointer != "/name" || b.Errors[1].Pointer != "/type" {
		t.Fatalf("invalid package: state %s, errors %+v", plugin.StateName(b.State), b.Errors)
	}
	// Operations the state does not allow name the state and the allowed ones.
	_, err := m.Activate(ctx, b.Ref, "")
	wantCode(t, err, lifecycle.CodeFailedPrecondition, "plugin AOS-Broken 1.0.0 is Discovered: activate is not allowed; allowed operations: validate")
	_, err = m.Validate(ctx, b.Ref, "")
	wantCode(t, err, lifecycle.CodeFailedPrecondition, "stays Discovered", "/name: required, missing")

	// Fixed, it validates.
	writePackage(t, repo, "broken", manifestOf("AOS-Broken", "1.0.0", nil))
	p, err = m.Validate(ctx, b.Ref, "fixed")
	wantState(t, p, err, plugin.StateRegistered)
	if len(p.Errors) != 0 {
		t.Fatalf("errors after fixing: %+v", p.Errors)
	}
	page, err := m.History(ctx, plugin.HistoryRequest{Ref: b.Ref})
	if err != nil || len(page.Events) != 2 || page.Events[0].Operation != "discover" || page.Events[1].Operation != "validate" ||
		page.Events[1].Metadata["digest"] != p.Manifest.Digest || page.Events[0].InitiatedBy != plugin.InitiatorDiscovery {
		t.Fatalf("history %+v %v", page.Events, err)
	}
}

func TestOperationsInEveryState(t *testing.T) {
	allowed := map[plugin.State][]string{
		plugin.StateDiscovered: {"validate"}, plugin.StateRegistered: {"deprecate", "load"},
		plugin.StateInactive: {"activate", "deprecate"}, plugin.StateActivating: nil, plugin.StateActive: {"deactivate"},
		plugin.StateDeactivating: nil, plugin.StateFailed: {"reset"}, plugin.StateDeprecated: nil,
	}
	repo := t.TempDir()
	m, _ := newManager(t, &plugin.Options{Repository: repo})
	ops := map[string]func(plugin.Ref) (plugin.Plugin, error){
		"validate":   func(r plugin.Ref) (plugin.Plugin, error) { return m.Validate(ctx, r, "") },
		"load":       func(r plugin.Ref) (plugin.Plugin, error) { return m.Load(ctx, r, "") },
		"activate":   func(r plugin.Ref) (plugin.Plugin, error) { return m.Activate(ctx, r, "") },
		"deactivate": func(r plugin.Ref) (plugin.Plugin, error) { return m.Deactivate(ctx, r, "") },
		"reset":      func(r plugin.Ref) (plugin.Plugin, error) { return m.Reset(ctx, r, "") },
		"deprecate":  func(r plugin.Ref) (plugin.Plugin, error) { return m.Deprecate(ctx, r, "", "") },
	}
	// One package per stable state, reached through the operations.
	reach := map[plugin.State]func(r plugin.Ref){
		plugin.StateDiscovered: func(plugin.Ref) {},
		plugin.StateRegistered: func(r plugin.Ref) { ops["validate"](r) },
		plugin.StateInactive:   func(r plugin.Ref) { ops["validate"](r); ops["load"](r) },
		plugin.StateActive:     func(r plugin.Ref) { ops["validate"](r); ops["load"](r); ops["activate"](r) },
		plugin.StateFailed: func(r plugin.Ref) {
			ops["validate"](r)
			ops["load"](r)
			ops["activate"](r) // the plugin exits at once
		},
		plugin.StateDeprecated: func(r plugin.Ref) { ops["validate"](r); ops["deprecate"](r) },
	}
	for state, to := range reach {
		for op := range ops {
			id := fmt.Sprintf("P-%s-%s", plugin.StateName(state), op)
			man := manifestOf(id, "1.0.0", nil)
			if state == plugin.StateFailed || op == "activate" && state == plugin.StateInactive {
				man = manifestOf(id, "1.0.0", run(map[string]any{"TESTPLUGIN_MODE": "exit"}))
			}
			if state == plugin.StateDiscovered {
				delete(man, "hmaVersion") // invalid: stays Discovered
			}
			writePackage(t, repo, id, man)
			if _, err := m.Scan(ctx); err != nil {
				t.Fatal(err)
			}
			ref := plugin.Ref{ID: id, Version: "1.0.0"}
			to(ref) // the scan validated it already: the validate there is refused, harmlessly
			if got := get(t, m, id, "1.0.0"); got.State != state {
				t.Fatalf("%s: reached %s, want %s", id, plugin.StateName(got.State), plugin.StateName(state))
			}
			_, err := ops[op](ref)
			isAllowed := false
			for _, a := range allowed[state] {
				isAllowed = isAllowed || a == op
			}
			if isAllowed && err != nil && !(op == "validate" && state == plugin.StateDiscovered) {
				t.Errorf("%s in %s: %v", op, plugin.StateName(state), err)
			}
			if !isAllowed {
				list := strings.Join(allowed[state], ", ")
				if list == "" {
					list = "none"
				}
				want := fmt.Sprintf("is %s: %s is not allowed; allowed operations: %s", plugin.StateName(state), op, list)
				if lifecycle.ErrorCode(err) != lifecycle.CodeFailedPrecondition || !strings.Contains(err.Error(), want) {
					t.Errorf("%s in %s: %v, want FAILED_PRECONDITION %q", op, plugin.StateName(state), err, want)
				}
			}
		}
	}
	for state, ops := range allowed {
		if got := plugin.AllowedOperations(state); strings.Join(got, ",") != strings.Join(ops, ",") {
			t.Errorf("allowed operations in %s: %v, want %v", plugin.StateName(state), got, ops)
		}
	}
}
