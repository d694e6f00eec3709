package postgres_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/postgres"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

// TestCrashChild is the process TestCrash kills; run alone, it does nothing.
func TestCrashChild(t *testing.T) {
	if os.Getenv(storetest.CrashChildEnv) == "" {
		return
	}
	storetest.CrashChild(func() (lifecycle.Store, error) { return postgres.Open(ctx, os.Getenv("HMS_CRASH_DSN"), nil) })
}

func TestCrash(t *testing.T) {
	dsn := newDatabase(t)
	storetest.Crash(t, []string{"HMS_CRASH_DSN=" + dsn}, 5, func(t *testing.T) lifecycle.Store { return open(t, dsn) })
}

// TestCrashChildStartsNoCluster: TestCrash's child, which is killed with SIGKILL and so
// never stops anything, works on the parent's cluster and starts none of its own.
func TestCrashChildStartsNoCluster(t *testing.T) {
	tmp := t.TempDir()
	// Where a cluster of its own would go, open to the postgres user initdb runs as.
	if err := errors.Join(os.Chmod(filepath.Dir(tmp), 0o755), os.Chmod(tmp, 0o777)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), storetest.CrashChildEnv+"=1", "HMS_CRASH_DSN="+newDatabase(t), "TMPDIR="+tmp)
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("child said %q", line)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("the crash child created %s in its temporary directory", e.Name())
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, _ := os.ReadFile(p); strings.Contains(string(b), tmp) {
			t.Errorf("the crash child started %s: %s", p, strings.ReplaceAll(string(b[:min(len(b), 120)]), "\x00", " "))
		}
	}
}
