// Package pgtest starts a throw-away PostgreSQL cluster for tests: initdb in a temporary
// directory (as the postgres user when running as root, since initdb refuses root),
// pg_ctl start on a free loopback port, and removal of it all on Stop.
//
// Nothing outlives the process that started a cluster: with each cluster runs a reaper, a
// small shell in its own session that waits for the end of a pipe only the creator holds
// (closed by Stop, or by the kernel when the creator exits, fails, is interrupted or is
// killed with SIGKILL), then stops the server immediately and removes the folder. A cluster
// whose reaper was killed too is removed by the next Start (a stale sweep).
//
// Cluster folders are named DirPrefix, then the run marker (the RunEnv variable, set by the
// Makefile for a whole test run) and a dash when there is one; the server's command line,
// its processes' titles (cluster_name) and the reaper's command line carry that name, so
// scripts/check-leftovers.sh finds whatever a run left behind.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// DirPrefix begins the name of every cluster folder (in os.TempDir, so TMPDIR).
	DirPrefix = "hms-pgtest-"
	// RunEnv is the variable marking a test run (HMS_TEST_RUN=<id>): its value goes into
	// the cluster folders' names, and every process started under it inherits it.
	RunEnv = "HMS_TEST_RUN"
)

// Cluster is a running throw-away cluster.
type Cluster struct {
	Dir  string
	Port int
	bin  string
	as   *user.User // nil: run as the current user

	reaper  *exec.Cmd // stops the server and removes Dir once release is closed
	release *os.File  // the pipe's write end: only this process holds it
}

// live keeps every started cluster reachable, so that the garbage collector never closes
// a release pipe (which would fire its reaper) while the creator runs.
var live sync.Map

// reaperScript runs as `sh -c reaperScript hms-pgtest-reaper DIR`: it waits for the end
// of its standard input, then stops the server of DIR/data (SIGQUIT: an immediate
// shutdown; SIGKILL after 10 s), making sure the pid in postmaster.pid is that server's,
// and removes DIR.
const reaperScript = `read -r _ || :
dir=$1
pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null) || pid=
case $pid in ''|*[!0-9]*) pid= ;; esac
if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/data"; then
	kill -QUIT "$pid" 2>/dev/null
	i=0
	while [ -e "/proc/$pid" ] && ! grep -q ') Z ' "/proc/$pid/stat" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then kill -KILL "$pid" 2>/dev/null; break; fi
		sleep 0.1
	done
fi
rm -rf "$dir"
`

// Start creates and starts a cluster. It fails (never skips) when PostgreSQL is missing,
// saying how to install it.
func Start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		if c.as, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root, initdb needs the postgres user: %w", err)
		}
	}
	sweepStale()
	if c.Dir, err = os.MkdirTemp("", Prefix()); err != nil {
		return nil, err
	}
	if err := c.startReaper(); err != nil {
		os.RemoveAll(c.Dir)
		return nil, err
	}
	live.Store(c, struct{}{})
	if err := os.WriteFile(filepath.Join(c.Dir, "creator"), []byte(processID(os.Getpid())), 0o644); err != nil {
		c.Stop()
		return nil, err
	}
	if c.as != nil {
		uid, _ := strconv.Atoi(c.as.Uid)
		gid, _ := strconv.Atoi(c.as.Gid)
		if err := os.Chown(c.Dir, uid, gid); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.run("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.startServer(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Prefix is the beginning of this process's cluster folder names: DirPrefix, then the run
// marker and a dash when RunEnv is set.
func Prefix() string {
	run := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(os.Getenv(RunEnv), "_")
	if len(run) > 32 {
		run = run[:32]
	}
	if run == "" {
		return DirPrefix
	}
	return DirPrefix + run + "-"
}

// startReaper starts the shell that cleans up after this cluster once the release pipe
// ends. It runs in its own session, so a Ctrl-C to the test's process group reaches it
// only through its creator's death, and as the caller (root may signal the server and
// remove the folder wherever TMPDIR is).
func (c *Cluster) startReaper() error {
	r, w, err := os.Pipe() // close-on-exec: no other child inherits the write end
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "hms-pgtest-reaper", c.Dir)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start the cluster's reaper: %w", err)
	}
	c.reaper, c.release = cmd, w
	return nil
}

func (c *Cluster) startServer() error {
	var err error
	if c.Port, err = freePort(); err != nil {
		return err
	}
	return c.StartServer()
}

// Restart stops the server immediately (as a crash would) and starts it again on a new port.
func (c *Cluster) Restart() error {
	if err := c.run("pg_ctl", "stop", "-m", "immediate", "-D", c.data()); err != nil {
		return err
	}
	return c.startServer()
}

// StopServer stops the server, keeping its files, to test an unreachable database.
func (c *Cluster) StopServer() error { return c.run("pg_ctl", "stop", "-m", "fast", "-D", c.data()) }

// StartServer starts a stopped server again on the same port.
func (c *Cluster) StartServer() error {
	// TCP only (no Unix socket, whose path length is limited): a deep TMPDIR is fine.
	opts := fmt.Sprintf("-p %d -k '' -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=128MB -c cluster_name=%s",
		c.Port, filepath.Base(c.Dir))
	return c.run("pg_ctl", "start", "-w", "-t", "60", "-D", c.data(), "-l", filepath.Join(c.Dir, "server.log"), "-o", opts)
}

// Stop stops the server and removes the cluster, then lets its reaper go and waits for
// it. Stopping a stopped cluster does nothing.
func (c *Cluster) Stop() error {
	if c.release == nil {
		return nil
	}
	var err error
	if _, statErr := os.Stat(filepath.Join(c.data(), "postmaster.pid")); statErr == nil {
		err = c.run("pg_ctl", "stop", "-m", "immediate", "-D", c.data())
	}
	err = errors.Join(err, os.RemoveAll(c.Dir))
	c.release.Close()
	if werr := c.reaper.Wait(); werr != nil {
		err = errors.Join(err, fmt.Errorf("the cluster's reaper: %w", werr))
	}
	c.release = nil
	live.Delete(c)
	return err
}

// DSN is the connection string of database db.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// CreateDatabase creates a new, empty database and returns its DSN.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return c.DSN(name), nil
}

func (c *Cluster) data() string { return filepath.Join(c.Dir, "data") }

func (c *Cluster) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	if c.as != nil {
		uid, _ := strconv.Atoi(c.as.Uid)
		gid, _ := strconv.Atoi(c.as.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(os.Environ(), "HOME="+c.Dir)
	}
	// Dies with its creator (the server pg_ctl starts does not: the reaper stops it).
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.Dir = c.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		return fmt.Errorf("%s %s: %w\n%s\n%s", name, strings.Join(args, " "), err, out, log)
	}
	return nil
}

func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real), nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		return "", errors.New("PostgreSQL is not installed: run `make test` (it installs it) or scripts/ensure-postgres.sh")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitReady waits until the server accepts connections.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for {
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// processID identifies a process across pid reuse: its pid and its start time (in clock
// ticks since boot, from /proc/PID/stat); "" if it is not running.
func processID(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return ""
	}
	// After "pid (comm) " come state (field 3) … starttime (field 22).
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 || f[0] == "Z" {
		return ""
	}
	return fmt.Sprintf("%d %s", pid, f[19])
}

// sweepStale removes the clusters whose creator is gone and whose reaper did not remove
// them (it was killed too, or the machine stopped): a cluster folder whose recorded
// creator is no longer running, or an old one that records none.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), DirPrefix+"*"))
	for _, dir := range dirs {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			continue
		}
		creator, err := os.ReadFile(filepath.Join(dir, "creator"))
		if err != nil {
			// Being created (the creator writes the file first thing), or left by a
			// version that recorded no creator.
			if info, err := os.Stat(dir); err != nil || time.Since(info.ModTime()) < 10*time.Minute {
				continue
			}
		} else if pid, err := strconv.Atoi(strings.Fields(string(creator) + " x")[0]); err == nil && processID(pid) == strings.TrimSpace(string(creator)) {
			continue // its creator runs
		}
		reap(dir)
	}
}

// reap stops the server of a cluster folder, if one runs, and removes the folder.
func reap(dir string) {
	pidFile, _ := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0])); err == nil && pid > 0 {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmdline), filepath.Join(dir, "data")) && syscall.Kill(pid, syscall.SIGQUIT) == nil {
			for i := 0; processID(pid) != ""; i++ {
				if i == 100 {
					syscall.Kill(pid, syscall.SIGKILL)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	os.RemoveAll(dir)
}
