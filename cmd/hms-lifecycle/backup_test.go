package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
)

// command runs the built command and returns its output and exit code.
func command(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), exitOK
}

func expect(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	if out, got := command(t, args...); got != code || !strings.Contains(out, want) {
		t.Fatalf("%v: exit %d, output %q; want exit %d containing %q", args, got, out, code, want)
	}
}

func isEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("%s: %v %v, want it empty", dir, entries, err)
	}
}

// TestBackupRestoreServe: a backup taken while serving holds the agents and the plugin
// registry; restored into a new directory, or over the old one with --force, it serves
// them; restore never runs under a server.
func TestBackupRestoreServe(t *testing.T) {
	dir, repo, backups := t.TempDir(), t.TempDir(), t.TempDir()
	writeManifest(t, filepath.Join(repo, "echo-1.0.0"), pluginManifest("1.0.0", true))
	s := startServer(t, "--data-dir", dir, "--plugin-repo", repo)
	c := s.client(t)
	for i := range 10 {
		if _, _, err := c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("agent-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := c.Transition(ctx, lifecycle.TransitionRequest{AgentID: "agent-0", Target: lifecycle.StateActive}); err != nil || !res.Success {
		t.Fatal(res, err)
	}
	if out, code := cli(t, s.url, "plugins", "load", "AOS-Echo", "1.0.0"); code != exitOK {
		t.Fatalf("load: %s", out)
	}

	b := filepath.Join(backups, "b")
	expect(t, exitOK, "backed up "+dir+" to "+b+": plugins/lifecycle.db, lifecycle.db", "backup", "--data-dir", dir, "--out", b)
	if _, _, err := c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "late"}); err != nil {
		t.Fatal(err)
	}
	expect(t, exitUsage, "--out "+b+" exists", "backup", "--data-dir", dir, "--out", b)
	expect(t, exitConflict, "data directory "+dir+" is in use by process", "restore", "--from", b, "--data-dir", dir, "--force")
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()

	restored := filepath.Join(t.TempDir(), "restored")
	expect(t, exitOK, "restored "+b+" into "+restored, "restore", "--from", b, "--data-dir", restored)
	expect(t, exitConflict, "data directory "+dir+" is not empty (lifecycle.db", "restore", "--from", b, "--data-dir", dir)
	expect(t, exitOK, "restored", "restore", "--from", b, "--data-dir", dir, "--force")

	for _, d := range []string{restored, dir} {
		s := startServer(t, "--data-dir", d) // no repository: the plugin comes from the registry
		c := s.client(t)
		if st, err := c.GetState(ctx, "agent-0", false); err != nil || st.State != lifecycle.StateActive || st.Revision != 2 {
			t.Errorf("%s: agent-0 %+v, %v", d, st, err)
		}
		if page, err := c.ListAgents(ctx, lifecycle.ListAgentsRequest{}); err != nil || len(page.Agents) != 10 {
			t.Errorf("%s: %d agents (%v), want the 10 backed up", d, len(page.Agents), err)
		}
		if out, code := cli(t, s.url, "plugins", "get", "AOS-Echo", "1.0.0"); code != exitOK || !strings.Contains(out, "state       inactive") {
			t.Errorf("%s: the plugin: exit %d: %s", d, code, out)
		}
	}
}

// TestBackupRefusesMissingDatabase: a mistyped --data-dir (or --from) is a usage error
// and creates nothing — backup used to create an empty database there and succeed.
func TestBackupRefusesMissingDatabase(t *testing.T) {
	parent, backups := t.TempDir(), t.TempDir()
	typo, empty := filepath.Join(parent, "typo"), filepath.Join(parent, "empty")
	os.Mkdir(empty, 0o755)
	for _, d := range []string{typo, empty} {
		expect(t, exitUsage, "--data-dir "+d+" holds no database (lifecycle.db): nothing to back up",
			"backup", "--data-dir", d, "--out", filepath.Join(backups, "b"))
	}
	isEmpty(t, empty)
	isEmpty(t, backups)
	if _, err := os.Stat(typo); err == nil {
		t.Errorf("backup created %s", typo)
	}
	target := filepath.Join(parent, "target")
	expect(t, exitUsage, "--from "+typo+" holds no database (lifecycle.db): not a backup", "restore", "--from", typo, "--data-dir", target)
	if _, err := os.Stat(target); err == nil {
		t.Errorf("restore created %s", target)
	}
}
