//go:build !wasip1

package plugin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Containment of an activation's process tree.
//
// The process group reaches the plugin's ordinary children, but a descendant can leave the
// group (setsid, a daemon) and outlive the plugin, re-parented to init. Every process of an
// activation therefore carries EnvActivation=<marker> in its environment: children inherit
// it, /proc/<pid>/environ shows it (as it was at exec: a process cannot take it back), and
// the marker is recorded in the activate event, so the processes are found wherever they
// went, by this manager when it stops the plugin and by the next one after a crash.
// A process is signalled through a pidfd opened before its marker and start time are
// checked again, so a pid reused meanwhile is never signalled.
//
// Not chosen: making the manager a child subreaper (PR_SET_CHILD_SUBREAPER) is a
// process-wide setting that changes the host program's process tree and obliges it to reap
// orphans, and finds nothing the marker does not; cgroups v2 are not delegated on every
// host. A descendant that execs with an emptied environment and leaves the group escapes.

// procInfo is a process found by its marker; pid and start time identify it.
type procInfo struct {
	pid   int
	start uint64 // clock ticks after boot, /proc/<pid>/stat field 22
	name  string
}

func (p procInfo) String() string { return strconv.Itoa(p.pid) + " (" + p.name + ")" }

// markedProcesses lists the live processes carrying marker.
func markedProcesses(marker string) []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || !hasMarker(pid, marker) {
			continue
		}
		if start, name, ok := procStat(pid); ok {
			out = append(out, procInfo{pid, start, name})
		}
	}
	return out
}

// hasMarker reports whether process pid's environment carries marker.
func hasMarker(pid int, marker string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(EnvActivation+"=")); ok {
			for m := range strings.SplitSeq(string(v), ",") {
				if m == marker {
					return true
				}
			}
		}
	}
	return false
}

// procStat returns a live process's start time and name; not ok for a zombie or none.
func procStat(pid int) (start uint64, name string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// "pid (name) state ppid …": the name may hold spaces and parentheses.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return 0, "", false
	}
	f := strings.Fields(string(b[end+1:])) // f[0] is field 3, the state
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, "", false
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, string(b[open+1 : end]), err == nil
}

// still reports whether p is still the process that was found.
func (p procInfo) still(marker string) bool {
	start, _, ok := procStat(p.pid)
	return ok && start == p.start && hasMarker(p.pid, marker)
}

// signal sends sig to p if it is still the marked process found.
func (p procInfo) signal(marker string, sig syscall.Signal) {
	fd, err := unix.PidfdOpen(p.pid, 0)
	if errors.Is(err, unix.ENOSYS) { // before Linux 5.3: check, then signal
		if p.still(marker) {
			syscall.Kill(p.pid, sig)
		}
		return
	}
	if err != nil {
		return // gone
	}
	defer unix.Close(fd)
	if p.still(marker) { // the pidfd now pins the process checked
		unix.PidfdSendSignal(fd, sig, nil, 0)
	}
}

// killMarked kills every process carrying marker, again as long as new ones appear (a
// fork racing the kill), and waits up to limit for them to be gone. It returns those it
// found and those still there at the end.
func killMarked(marker string, limit time.Duration) (found, left []procInfo) {
	seen := map[int]bool{}
	deadline := time.Now().Add(limit)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		procs := markedProcesses(marker)
		for _, p := range procs {
			if !seen[p.pid] {
				seen[p.pid] = true
				found = append(found, p)
			}
			p.signal(marker, syscall.SIGKILL)
		}
		if len(procs) == 0 || time.Now().After(deadline) {
			return found, procs
		}
		time.Sleep(delay)
	}
}

func procList(ps []procInfo) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// processIdentity names this process across processes and restarts: the machine's boot,
// the pid and the pid's start time. "" if /proc cannot say.
func processIdentity() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	pid := os.Getpid()
	start, _, ok := procStat(pid)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s/%d/%d", strings.TrimSpace(string(boot)), pid, start)
}

// identityAlive reports whether the process named by a processIdentity is running.
func identityAlive(id string) bool {
	boot, rest, ok1 := strings.Cut(id, "/")
	pidText, startText, ok2 := strings.Cut(rest, "/")
	pid, err1 := strconv.Atoi(pidText)
	want, err2 := strconv.ParseUint(startText, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return false
	}
	ourBoot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil || strings.TrimSpace(string(ourBoot)) != boot {
		return false // another boot (or machine): nothing of it runs here
	}
	start, _, ok := procStat(pid)
	return ok && start == want
}
