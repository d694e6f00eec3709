package plugin_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin"
)

func TestVersionsSideBySide(t *testing.T) {
	repo := t.TempDir()
	writePackage(t, repo, "map-1.0.0", manifestOf("AOS-Map", "1.0.0", run(nil)))
	writePackage(t, repo, "map-1.1.0", manifestOf("AOS-Map", "1.1.0", run(nil)))
	writePackage(t, repo, "map-2.0.0", manifestOf("AOS-Map", "2.0.0", nil))
	m, _ := newManager(t, &plugin.Options{Repository: repo})
	v := func(version string) plugin.Ref { return plugin.Ref{ID: "AOS-Map", Version: version} }
	for _, version := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		if _, err := m.Load(ctx, v(version), ""); err != nil {
			t.Fatal(err)
		}
	}
	resolve := func(constraint string) (plugin.Plugin, error) { return m.Resolve(ctx, "AOS-Map", constraint) }

	_, err := resolve("^1")
	wantCode(t, err, lifecycle.CodeFailedPrecondition, `no active version of plugin AOS-Map satisfies "^1" (versions: 1.1.0 Inactive, 1.0.0 Inactive)`)
	_, err = resolve("^3")
	wantCode(t, err, lifecycle.CodeNotFound, `no version of plugin AOS-Map satisfies "^3"`)
	_, err = resolve("not a constraint")
	wantCode(t, err, lifecycle.CodeInvalidArgument, `constraint "not a constraint" is not a semantic version constraint`)

	old, err := m.Activate(ctx, v("1.0.0"), "")
	wantState(t, old, err, plugin.StateActive)
	if p, err := resolve("^1"); err != nil || p.Version != "1.0.0" || p.Endpoint != old.Endpoint || p.LastUsed.IsZero() {
		t.Fatalf("resolve with 1.0.0 active: %+v %v", p, err)
	}
	// The newer version comes up: traffic moves to it.
	newer, err := m.Activate(ctx, v("1.1.0"), "rollout")
	wantState(t, newer, err, plugin.StateActive)
	if p, err := resolve("^1"); err != nil || p.Version != "1.1.0" || p.Endpoint != newer.Endpoint || p.Generation != newer.Generation {
		t.Fatalf("resolve with both active: %+v %v", p, err)
	}
	if p, err := resolve("~1.0"); err != nil || p.Version != "1.0.0" {
		t.Fatalf("resolve ~1.0: %+v %v", p, err)
	}
	// The old one retires: no new activation of it, and the constraint that only it met
	// now finds nothing active.
	if _, err := m.Deactivate(ctx, v("1.0.0"), "rollout done"); err != nil {
		t.Fatal(err)
	}
	dep, err := m.Deprecate(ctx, v("1.0.0"), "AOS-Map@^1.1", "superseded")
	wantState(t, dep, err, plugin.StateDeprecated)
	if dep.ReplacedBy != "AOS-Map@^1.1" {
		t.Fatalf("replaced by %q", dep.ReplacedBy)
	}
	_, err = m.Activate(ctx, v("1.0.0"), "")
	wantCode(t, err, lifecycle.CodeFailedPrecondition, "is Deprecated: activate is not allowed; allowed operations: none")
	if p, err := resolve(""); err != nil || p.Version != "1.1.0" {
		t.Fatalf("resolve any: %+v %v (2.0.0 is inactive, 1.1.0 active)", p, err)
	}
	_, err = resolve("~1.0")
	wantCode(t, err, lifecycle.CodeFailedPrecondition, "1.0.0 Deprecated")

	// List filters.
	page, err := m.List(ctx, plugin.ListRequest{ID: "AOS-Map", States: []plugin.State{plugin.StateActive, plugin.StateInactive}})
	if err != nil || len(page.Plugins) != 2 || page.Plugins[0].Version != "1.1.0" || page.Plugins[1].Version != "2.0.0" {
		t.Fatalf("list: %+v %v", page.Plugins, err)
	}
	page, _ = m.List(ctx, plugin.ListRequest{Port: "EventBusPort", PageSize: 2})
	if len(page.Plugins) != 2 || page.NextPageToken == "" {
		t.Fatalf("list by port, page 1: %+v", page)
	}
	token := page.NextPageToken
	page, _ = m.List(ctx, plugin.ListRequest{Port: "EventBusPort", PageSize: 2, PageToken: token})
	if len(page.Plugins) != 1 || page.Plugins[0].Version != "2.0.0" || page.NextPageToken != "" {
		t.Fatalf("list by port, page 2: %+v", page)
	}
	// A page token is the server's, for the filters it was issued with: anything else is
	// INVALID_ARGUMENT naming the field, as for ListAgents.
	for _, bad := range []string{"AOS-Map:1.1.0", "not base64!", "bDEuMC5BT1MtTWFw"} {
		_, err := m.List(ctx, plugin.ListRequest{Port: "EventBusPort", PageSize: 2, PageToken: bad})
		wantCode(t, err, lifecycle.CodeInvalidArgument, "page_token is malformed")
	}
	_, err = m.List(ctx, plugin.ListRequest{Port: "PluginExecutionPort", PageSize: 2, PageToken: token})
	wantCode(t, err, lifecycle.CodeInvalidArgument, "page_token was issued for other filters")
	if page, _ := m.List(ctx, plugin.ListRequest{Type: "L2-Orchestrator"}); len(page.Plugins) != 0 {
		t.Fatalf("list by type: %+v", page)
	}
}

func TestActivateOnDemandAndIdle(t *testing.T) {
	repo := t.TempDir()
	writePackage(t, repo, "a", manifestOf("AOS-Lazy", "1.0.0", run(nil)))
	m, _ := newManager(t, &plugin.Options{Repository: repo, ActivateOnDemand: true, IdleTimeout: 400 * time.Millisecond})
	ref := plugin.Ref{ID: "AOS-Lazy", Version: "1.0.0"}
	if _, err := m.Load(ctx, ref, ""); err != nil {
		t.Fatal(err)
	}
	w, err := m.Watch(ctx, plugin.WatchRequest{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p, err := m.Resolve(ctx, "AOS-Lazy", "^1")
	wantState(t, p, err, plugin.StateActive)
	if ev := next(t, w); ev.Operation != "activate" || ev.InitiatedBy != plugin.InitiatorPolicy ||
		ev.Metadata["policy"] != "activate-on-demand" || ev.Metadata["constraint"] != "^1" {
		t.Fatalf("on-demand activation event %+v", ev)
	}
	next(t, w) // on_success
	pid := pidOf(t, m, p)
	// Nobody resolves it again: it is deactivated, the decision recorded with its inputs.
	ev := next(t, w)
	if ev.Operation != "deactivate" || ev.InitiatedBy != plugin.InitiatorPolicy || ev.Metadata["policy"] != "idle-deactivation" ||
		ev.Metadata["idle_timeout"] != "400ms" || ev.Metadata["last_used"] == "" || ev.Metadata["last_used"] == "never" {
		t.Fatalf("idle deactivation event %+v", ev)
	}
	if ev := next(t, w); ev.To != plugin.StateInactive {
		t.Fatalf("after idle deactivation: %+v", ev)
	}
	waitGone(t, pid)
}

func TestDiscoveryWhileRunning(t *testing.T) {
	repo := t.TempDir()
	m, _ := newManager(t, &plugin.Options{Repository: repo, Rescan: time.Hour}) // notifications only
	w, err := m.Watch(ctx, plugin.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Added: Discovered, then validated.
	writePackage(t, repo, "a", manifestOf("AOS-New", "1.0.0", nil))
	for _, want := range []string{"discover", "validate"} {
		if ev := next(t, w); ev.Operation != want || ev.ID != "AOS-New" {
			t.Fatalf("event %+v, want %s of AOS-New", ev, want)
		}
	}
	// An invalid one stays Discovered; fixing the file validates it.
	bad := manifestOf("AOS-Fix", "1.0.0", nil)
	bad["version"] = 100
	writePackage(t, repo, "b", bad)
	bad["version"] = "1.0.0"
	bad["type"] = "L7"
	writePackage(t, repo, "b", bad)
	if ev := next(t, w); ev.Operation != "discover" || ev.ID != "AOS-Fix" {
		t.Fatalf("event %+v", ev)
	}
	// The scan records the validation's errors after the discovery event is out.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p, err := m.Get(ctx, plugin.Ref{ID: "AOS-Fix", Version: "1.0.0"})
		if err == nil && p.State == plugin.StateDiscovered && len(p.Errors) == 1 && p.Errors[0].Pointer == "/type" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("invalid: %+v, %v", p, err)
		}
	}
	writePackage(t, repo, "b", manifestOf("AOS-Fix", "1.0.0", nil))
	if ev := next(t, w); ev.Operation != "validate" || ev.ID != "AOS-Fix" || ev.Reason != "manifest fixed" {
		t.Fatalf("event %+v", ev)
	}
	// Removed: reported and marked, not dropped.
	if err := os.RemoveAll(filepath.Join(repo, "a")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !get(t, m, "AOS-New", "1.0.0").PackageMissing {
		if time.Now().After(deadline) {
			t.Fatal("a removed package is not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, err = m.Load(ctx, plugin.Ref{ID: "AOS-New", Version: "1.0.0"}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Activate(ctx, plugin.Ref{ID: "AOS-New", Version: "1.0.0"}, "")
	wantCode(t, err, lifecycle.CodeFailedPrecondition, "its package is no longer in the repository")
}

func TestRejectedPackages(t *testing.T) {
	repo, outside := t.TempDir(), t.TempDir()
	writePackage(t, repo, "a", manifestOf("AOS-Dup", "1.0.0", nil))
	other := manifestOf("AOS-Dup", "1.0.0", nil)
	other["description"] = "different content"
	writePackage(t, repo, "b", other)
	writePackage(t, outside, "evil", manifestOf("AOS-Evil", "1.0.0", nil))
	os.Symlink(filepath.Join(outside, "evil"), filepath.Join(repo, "evil"))
	os.MkdirAll(filepath.Join(repo, "sneaky"), 0o755)
	os.Symlink(filepath.Join(outside, "evil", "plugin-manifest.json"), filepath.Join(repo, "sneaky", "plugin-manifest.json"))
	os.MkdirAll(filepath.Join(repo, "empty"), 0o755)
	writePackage(t, repo, "noid", map[string]any{"manifestVersion": "1.0", "name": "x"})
	os.MkdirAll(filepath.Join(repo, "garbage"), 0o755)
	os.WriteFile(filepath.Join(repo, "garbage", "plugin-manifest.json"), []byte("{not json"), 0o644)
	huge := manifestOf("AOS-Huge", "1.0.0", nil)
	huge["description"] = strings.Repeat("x", 70000)
	writePackage(t, repo, "huge", huge)
	m, _ := newManager(t, &plugin.Options{Repository: repo})
	rep, err := m.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rep.Rejected {
		var msgs []string
		for _, f := range r.Errors {
			msgs = append(msgs, f.String())
		}
		got[r.Path] = strings.Join(msgs, "; ")
	}
	want := map[string]string{
		"b":       "/version: plugin AOS-Dup 1.0.0 is already registered from a with different content: a version is registered once",
		"evil":    "/: a symlink escaping the repository",
		"sneaky":  "/: plugin-manifest.json is a symlink escaping the repository",
		"empty":   "/: no plugin-manifest.json",
		"noid":    "/hmaVersion: required, missing",
		"garbage": "/: not valid JSON",
		"huge":    "/: the manifest is larger than 65536 bytes",
	}
	for path, w := range want {
		if !strings.Contains(got[path], w) {
			t.Errorf("%s: rejected with %q, want %q", path, got[path], w)
		}
	}
	if p := get(t, m, "AOS-Dup", "1.0.0"); p.Path != "a" || p.State != plugin.StateRegistered {
		t.Errorf("the first package keeps the version: %+v", p)
	}
	if _, err := m.Get(ctx, plugin.Ref{ID: "AOS-Evil", Version: "1.0.0"}); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("a package outside the repository was registered: %v", err)
	}
}
