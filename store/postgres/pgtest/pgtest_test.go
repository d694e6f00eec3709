package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// creatorEnv makes the re-executed test binary TestCreatorChild: "kill" (it starts a
// cluster and waits to be killed), "exit" (it starts one and exits without Stop).
const creatorEnv = "HMS_PGTEST_CREATOR"

// TestCreatorChild is the process the reaper tests end; run alone, it does nothing. It
// prints "cluster DIR POSTMASTER_PID REAPER_PID".
func TestCreatorChild(t *testing.T) {
	mode := os.Getenv(creatorEnv)
	if mode == "" {
		return
	}
	c, err := Start()
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(3)
	}
	fmt.Printf("cluster %s %d %d\n", c.Dir, postmasterPID(c.Dir), c.reaper.Process.Pid)
	if mode == "exit" {
		os.Exit(0) // as a failed test run ends, Stop never called
	}
	select {}
}

// creator runs TestCreatorChild in mode and returns it with what it printed.
func creator(t *testing.T, mode string) (cmd *exec.Cmd, dir string, postmaster, reaper int) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^TestCreatorChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), creatorEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if _, err := fmt.Sscanf(line, "cluster %s %d %d", &dir, &postmaster, &reaper); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q", line)
	}
	if postmaster <= 0 || processID(postmaster) == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the child's server (%d) is not running", postmaster)
	}
	return cmd, dir, postmaster, reaper
}

// gone waits up to 20 s until none of the processes runs and dir is removed.
func gone(t *testing.T, dir string, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left []string
		for _, pid := range pids {
			if processID(pid) != "" {
				left = append(left, fmt.Sprintf("process %d", pid))
			}
		}
		if _, err := os.Stat(dir); err == nil {
			left = append(left, dir)
		}
		left = append(left, processesMentioning(dir)...)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still there after 20 s: %s", strings.Join(left, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReaperStopsClusterOnSIGKILL: a cluster whose creator is killed with SIGKILL (no
// cleanup code of its own runs) is stopped and removed by its reaper, which then ends.
func TestReaperStopsClusterOnSIGKILL(t *testing.T) {
	cmd, dir, postmaster, reaper := creator(t, "kill")
	if !strings.HasPrefix(filepath.Base(dir), Prefix()) {
		t.Errorf("cluster folder %s does not begin with %s", dir, Prefix())
	}
	if len(processesMentioning(dir)) < 3 { // reaper, postmaster, its children (cluster_name)
		t.Errorf("the cluster's processes do not carry its name: %v", processesMentioning(dir))
	}
	time.Sleep(300 * time.Millisecond) // the reaper must not act while its creator runs
	if processID(postmaster) == "" {
		t.Fatal("the server stopped while its creator was running")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	gone(t, dir, postmaster, reaper)
}

// TestReaperOnExitWithoutStop: a creator that exits without calling Stop (a failed test
// binary, os.Exit, a panic) leaves nothing either.
func TestReaperOnExitWithoutStop(t *testing.T) {
	cmd, dir, postmaster, reaper := creator(t, "exit")
	cmd.Wait()
	gone(t, dir, postmaster, reaper)
}

// TestStopStopsReaper: Stop removes the cluster and its reaper ends with it.
func TestStopStopsReaper(t *testing.T) {
	c, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabaseAndPing(); err != nil {
		c.Stop()
		t.Fatal(err)
	}
	postmaster, reaper := postmasterPID(c.Dir), c.reaper.Process.Pid
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if c.reaper.ProcessState == nil || !c.reaper.ProcessState.Exited() {
		t.Fatal("Stop returned before the reaper ended")
	}
	gone(t, c.Dir, postmaster, reaper)
	if err := c.Stop(); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
}

// TestSweepStale: a cluster whose creator and reaper were both killed is removed by the
// next Start.
func TestSweepStale(t *testing.T) {
	cmd, dir, postmaster, reaper := creator(t, "kill")
	syscall.Kill(reaper, syscall.SIGKILL)
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	time.Sleep(300 * time.Millisecond)
	if processID(postmaster) == "" {
		t.Fatal("the server stopped without its reaper: nothing left to sweep")
	}
	c, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	gone(t, dir, postmaster)
}

// CreateDatabaseAndPing checks the cluster answers.
func (c *Cluster) CreateDatabaseAndPing() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		return err
	}
	_, err := c.CreateDatabase(ctx, "ping")
	return err
}

func postmasterPID(dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

// processesMentioning lists the running processes whose command line (or title) has the
// name of dir.
func processesMentioning(dir string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), filepath.Base(dir)) {
			continue
		}
		pid := strings.Split(p, "/")[2]
		if stat, _ := os.ReadFile("/proc/" + pid + "/stat"); strings.Contains(string(stat), ") Z ") {
			continue
		}
		found = append(found, fmt.Sprintf("%s (%s)", pid, strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")))
	}
	return found
}
