package datadir_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/datadir"
)

// holderEnv makes the test binary, run as a child, the process holding a lock.
const holderEnv = "HMS_DATADIR_TEST_HOLD"

// TestHelperHoldLock is not a test: run as a child with holderEnv set, it locks the
// directory, says so, and waits to be killed.
func TestHelperHoldLock(t *testing.T) {
	dir := os.Getenv(holderEnv)
	if dir == "" {
		t.Skip("the child process of TestLockReleasedWhenHolderDies")
	}
	if _, err := datadir.Lock(dir); err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(time.Minute) // killed long before
	os.Exit(1)
}

func wantInUse(t *testing.T, err error, contains ...string) {
	t.Helper()
	if lifecycle.ErrorCode(err) != lifecycle.CodeFailedPrecondition {
		t.Fatalf("second Lock: %v, want FAILED_PRECONDITION", err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("second Lock: %q lacks %q", err, c)
		}
	}
}

func TestLockTwiceInOneProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	l, err := datadir.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.Dir() != dir {
		t.Errorf("Dir() = %q", l.Dir())
	}
	_, err = datadir.Lock(dir)
	wantInUse(t, err, "data directory "+dir+" is in use by process "+strconv.Itoa(os.Getpid())+" (this process)")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	l, err = datadir.Lock(dir)
	if err != nil {
		t.Fatalf("Lock after Close: %v", err)
	}
	l.Close()
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	child.Env = append(os.Environ(), holderEnv+"="+dir)
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("child: %q, %v", line, err)
	}

	_, err := datadir.Lock(dir)
	wantInUse(t, err, "is in use by process "+strconv.Itoa(child.Process.Pid)+" ("+os.Args[0]+" -test.run=^TestHelperHoldLock$)")

	child.Process.Kill() // SIGKILL: no chance to unlock
	child.Wait()
	l, err := datadir.Lock(dir)
	if err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	l.Close()
}
