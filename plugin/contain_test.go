package plugin

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/uuid"
)

// TestSignalOnlyTheMarkedProcess: a process is signalled only while it is the one found,
// with the same start time and marker, so a pid reused meanwhile is never signalled.
func TestSignalOnlyTheMarkedProcess(t *testing.T) {
	marker := uuid.NewString()
	cmd := exec.Command("sleep", "300")
	cmd.Env = []string{EnvActivation + "=other," + marker}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	procs := markedProcesses(marker)
	if len(procs) != 1 || procs[0].pid != cmd.Process.Pid || procs[0].name != "sleep" {
		t.Fatalf("found %v, want %d (sleep)", procs, cmd.Process.Pid)
	}
	p := procs[0]
	reused := p
	reused.start++ // as if the pid now named a process started later
	reused.signal(marker, syscall.SIGKILL)
	p.signal(uuid.NewString(), syscall.SIGKILL) // another activation's marker
	if !p.still(marker) {
		t.Fatal("a process that is not the one found was signalled")
	}
	p.signal(marker, syscall.SIGKILL)
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the marked process was not killed: %v", err)
	}
}

func TestProcessIdentity(t *testing.T) {
	self := processIdentity()
	if self == "" || !identityAlive(self) {
		t.Fatalf("this process, %q, is not alive", self)
	}
	i := strings.LastIndexByte(self, '/')
	start, _ := strconv.ParseUint(self[i+1:], 10, 64)
	for _, id := range []string{
		self[:i+1] + strconv.FormatUint(start+1, 10),                                 // the pid, reused
		"00000000-0000-0000-0000-000000000000" + self[strings.IndexByte(self, '/'):], // another boot
		"", "garbage", "a/b/c",
	} {
		if identityAlive(id) {
			t.Errorf("%q is alive", id)
		}
	}
}
