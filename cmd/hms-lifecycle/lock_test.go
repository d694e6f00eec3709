package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeLockRefusesSecondServer: a second server on a data directory in use exits at
// once, naming the first one's pid, and records nothing — it used to take over the first
// one's plugins (restart recorded, active plugin FAILED) before failing to listen.
func TestServeLockRefusesSecondServer(t *testing.T) {
	dir, repo := t.TempDir(), t.TempDir()
	writeManifest(t, filepath.Join(repo, "echo-1.0.0"), pluginManifest("1.0.0", true))
	first := startServer(t, "--data-dir", dir, "--plugin-repo", repo)
	for _, args := range [][]string{
		{"agents", "register", "a"},
		{"agents", "transition", "a", "active"},
		{"plugins", "load", "AOS-Echo", "1.0.0"},
		{"plugins", "activate", "AOS-Echo", "1.0.0"},
	} {
		if out, code := cli(t, first.url, args...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, out)
		}
	}
	records := func() string {
		var all []string
		for _, args := range [][]string{{"agents", "history"}, {"plugins", "history"}, {"plugins", "list"}} {
			out, code := cli(t, first.url, append([]string{"-o", "json"}, args...)...)
			if code != exitOK {
				t.Fatalf("%v: exit %d: %s", args, code, out)
			}
			all = append(all, out)
		}
		return strings.Join(all, "\n")
	}
	before := records()
	if !strings.Contains(before, "PLUGIN_STATE_ACTIVE") {
		t.Fatalf("the plugin is not active:\n%s", before)
	}

	// The same address too, as in the report: the lock must win before the listener.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "serve", "--listen", strings.TrimPrefix(first.url, "http://"),
		"--data-dir", dir, "--plugin-repo", repo)
	out, err := second.CombinedOutput()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	want := "data directory " + dir + " is in use by process " + strconv.Itoa(first.cmd.Process.Pid) + " (" + bin + " serve"
	if ctx.Err() != nil || code != exitConflict || !strings.Contains(string(out), want) {
		t.Fatalf("second serve: exit %d (%v), want %d at once with %q:\n%s", code, err, exitConflict, want, out)
	}
	if after := records(); after != before {
		t.Errorf("the second server changed the records:\nbefore %s\nafter %s", before, after)
	}
	if out, code := cli(t, first.url, "plugins", "resolve", "AOS-Echo"); code != exitOK {
		t.Errorf("the first server's plugin no longer resolves: exit %d: %s", code, out)
	}
}

// TestServeLockReleasedAtExit: a stopped server's directory serves again at once, and the
// other stores take no lock.
func TestServeLockReleasedAtExit(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--data-dir", dir)
	s.cmd.Process.Kill()
	s.cmd.Wait()
	startServer(t, "--data-dir", dir)
	startServer(t, "--data-dir", dir, "--store", "memory")
}
