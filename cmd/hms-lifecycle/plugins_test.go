package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func writeManifest(t *testing.T, dir string, m map[string]any) string {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	b, _ := json.Marshal(m)
	path := filepath.Join(dir, "plugin-manifest.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func pluginManifest(version string, runtime bool) map[string]any {
	m := map[string]any{"manifestVersion": "1.0", "hmaVersion": "1.3", "id": "AOS-Echo", "version": version,
		"name": "Echo", "type": "L3-Capability", "implementedPorts": []string{"PluginExecutionPort"}}
	if runtime {
		m["runtime"] = map[string]any{"command": testPlugin, "stopGracePeriodMs": 1000, "health": map[string]any{"http": map[string]any{}}}
	}
	return m
}

// TestCLIPlugins: every plugin operation through the command, against a server running
// real plugin processes from a watched repository.
func TestCLIPlugins(t *testing.T) {
	repo := t.TempDir()
	writeManifest(t, filepath.Join(repo, "echo-1.0.0"), pluginManifest("1.0.0", true))
	writeManifest(t, filepath.Join(repo, "echo-1.1.0"), pluginManifest("1.1.0", true))
	bad := pluginManifest("2.0.0", false)
	bad["type"] = "L5"
	badPath := writeManifest(t, filepath.Join(t.TempDir(), "bad"), bad)
	s := startServer(t, "--store", "memory", "--plugin-repo", repo, "--plugin-activate-on-demand")

	watch := dieWithTest(exec.Command(bin, "--server", s.url, "plugins", "watch", "AOS-Echo", "--from", "1"))
	stdout, _ := watch.StdoutPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Kill(); watch.Wait() }()

	for _, st := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"plugins", "validate", filepath.Dir(badPath)}, exitRefused, "/type: value must be one of 'L2-Orchestrator', 'L3-Capability'"},
		{[]string{"plugins", "validate", filepath.Join(repo, "echo-1.0.0", "plugin-manifest.json")}, exitOK, "is valid: AOS-Echo 1.0.0 (L3-Capability)"},
		{[]string{"plugins", "list"}, exitOK, "AOS-Echo  1.1.0    registered"},
		{[]string{"plugins", "list", "--state", "sideways"}, exitUsage, `"sideways" is not a plugin state`},
		{[]string{"plugins", "get", "AOS-Echo", "1.0.0"}, exitOK, "operations  deprecate, load"},
		{[]string{"plugins", "get", "AOS-Echo", "9.0.0"}, exitNotFound, "plugin AOS-Echo 9.0.0 not found"},
		{[]string{"plugins", "activate", "AOS-Echo", "1.0.0"}, exitConflict, "is Registered: activate is not allowed; allowed operations: deprecate, load"},
		{[]string{"plugins", "load", "AOS-Echo", "1.0.0"}, exitOK, "inactive"},
		{[]string{"plugins", "load", "AOS-Echo", "1.1.0"}, exitOK, "inactive"},
		{[]string{"plugins", "activate", "AOS-Echo", "1.0.0", "--reason", "first"}, exitOK, "endpoint    127.0.0.1:"},
		{[]string{"plugins", "resolve", "AOS-Echo", "^1"}, exitOK, "AOS-Echo 1.0.0  127.0.0.1:"},
		{[]string{"plugins", "activate", "AOS-Echo", "1.1.0"}, exitOK, "state       active"},
		{[]string{"plugins", "resolve", "AOS-Echo", "^1"}, exitOK, "AOS-Echo 1.1.0"},
		{[]string{"plugins", "deactivate", "AOS-Echo", "1.0.0"}, exitOK, "inactive"},
		{[]string{"plugins", "deprecate", "AOS-Echo", "1.0.0", "--replacement", "AOS-Echo@^1.1"}, exitOK, "replaced by  AOS-Echo@^1.1"},
		{[]string{"plugins", "resolve", "AOS-Echo", "~1.0"}, exitConflict, "1.0.0 Deprecated"},
		{[]string{"plugins", "resolve", "AOS-Echo", "bad constraint"}, exitUsage, "is not a semantic version constraint"},
		{[]string{"plugins", "history", "AOS-Echo", "1.0.0"}, exitOK, "deprecate"},
		{[]string{"plugins", "scan"}, exitOK, "nothing new"},
		{[]string{"plugins", "reset", "AOS-Echo", "1.1.0"}, exitConflict, "is Active: reset is not allowed; allowed operations: deactivate"},
		{[]string{"plugins", "deactivate", "AOS-Echo", "1.1.0"}, exitOK, "inactive"},
		// On demand: no active version, resolve activates the best inactive one.
		{[]string{"plugins", "resolve", "AOS-Echo"}, exitOK, "AOS-Echo 1.1.0  127.0.0.1:"},
	} {
		out, code := cli(t, s.url, st.args...)
		if code != st.code || !strings.Contains(out, st.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d containing %q", st.args, code, out, st.code, st.want)
		}
	}
	lines := bufio.NewScanner(stdout)
	var ops []string
	for len(ops) < 8 && lines.Scan() {
		if f := strings.Fields(lines.Text()); len(f) > 4 && f[2] == "AOS-Echo" && f[3] == "1.0.0" {
			ops = append(ops, f[4])
		}
	}
	if got := strings.Join(ops, " "); got != "discover validate load activate on_success deactivate on_success deprecate" {
		t.Errorf("watched the operations of 1.0.0: %s", got)
	}
	out, _ := cli(t, s.url, "-o", "json", "plugins", "get", "AOS-Echo", "1.1.0")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || got["plugin"].(map[string]any)["state"] != "PLUGIN_STATE_ACTIVE" {
		t.Errorf("json output: %v %s", err, out)
	}

	// Stopping the server stops the plugin it runs.
	out, _ = cli(t, s.url, "-o", "json", "plugins", "history", "AOS-Echo", "1.1.0")
	var hist struct {
		Events []struct{ Metadata map[string]string }
	}
	json.Unmarshal([]byte(out), &hist)
	pid := 0
	for _, ev := range hist.Events {
		if p := ev.Metadata["pid"]; p != "" {
			pid, _ = strconv.Atoi(p)
		}
	}
	if pid == 0 || syscall.Kill(pid, 0) != nil {
		t.Fatalf("no running plugin process found (%d) in %s", pid, out)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("plugin process %d outlived the server", pid)
	}
}
