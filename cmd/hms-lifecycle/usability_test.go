package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
)

type step struct {
	args []string
	code int
	want string
}

func (st step) check(t *testing.T, out string, code int) {
	t.Helper()
	if code != st.code || !strings.Contains(out, st.want) {
		t.Errorf("%v: exit %d, output %q; want exit %d containing %q", st.args, code, out, st.code, st.want)
	}
}

// TestCLIWithoutServer: help, completion, version, and the usage errors of commands that
// need no server (exit 2, the documented code).
func TestCLIWithoutServer(t *testing.T) {
	for _, st := range []step{
		{[]string{"help", "agents"}, exitOK, "hms-lifecycle agents [command]"},
		{[]string{"completion", "bash"}, exitOK, "bash completion"},
		{[]string{"version"}, exitOK, "hms-lifecycle " + version()},
		{[]string{"--version"}, exitOK, "hms-lifecycle " + version()},
		{[]string{"serve", "--listen", "garbage"}, exitUsage, `--listen "garbage": want HOST:PORT`},
		{[]string{"serve", "--listen", "127.0.0.1:http-ish"}, exitUsage, "is not a port number"},
		{[]string{"serve", "--store", "nonsense"}, exitUsage, `--store "nonsense"`},
		{[]string{"serve", "--log-format", "xml"}, exitUsage, `--log-format "xml"`},
		{[]string{"serve", "--listen", "0.0.0.0:7460"}, exitUsage, "not a loopback address"},
		{[]string{"serve", "--server", "http://x"}, exitUsage, "unknown flag: --server"},
		{[]string{"backup"}, exitUsage, `required flag(s) "out" not set`},
		{[]string{"restore"}, exitUsage, `required flag(s) "from" not set`},
		{[]string{"agents", "list", "--limit", "-5"}, exitUsage, "--limit -5: give a positive number"},
		{[]string{"agents", "history", "--limit", "0"}, exitUsage, "--limit 0"},
		{[]string{"agents", "history", "--tail", "-1"}, exitUsage, "--tail -1"},
		{[]string{"agents", "history", "--tail", "3", "--limit", "3"}, exitUsage, "not both"},
		{[]string{"plugins", "history", "--limit", "-1"}, exitUsage, "--limit -1"},
		{[]string{"server", "wait", "--timeout", "0s"}, exitUsage, "--timeout 0s"},
	} {
		out, code := command(t, st.args...)
		st.check(t, out, code)
	}
	help, _ := command(t, "serve", "--help")
	for _, client := range []string{"--server", "--token", "--output", "--protocol"} {
		if strings.Contains(help, client) {
			t.Errorf("serve --help lists the client flag %s", client)
		}
	}
	help, _ = command(t, "agents", "transition", "--help")
	if !strings.Contains(help, "initialized, active, paused, suspended, shutting_down, terminated, maintenance, error, upgrading, recovering") {
		t.Errorf("transition --help does not list the states:\n%s", help)
	}
	if help, _ = command(t, "agents", "list", "--help"); !strings.Contains(help, "--server") {
		t.Errorf("agents list --help lacks the client flags:\n%s", help)
	}
}

// TestCLIAgainstServer: version over the API, exit codes, hooks by name, metadata,
// history's header, tail and order.
func TestCLIAgainstServer(t *testing.T) {
	s := startServer(t, "--store", "memory")
	cli(t, s.url, "agents", "register", "u-1", "--meta", "owner=ops", "--meta", "zone=b", "--label", "pool=blue")
	for _, target := range []string{"active", "paused", "active", "paused"} {
		cli(t, s.url, "agents", "transition", "u-1", target, "--reason", "to "+target)
	}
	for _, st := range []step{
		{[]string{"server", "version"}, exitOK, version()},
		{[]string{"agents", "heartbeat", "nope-1"}, exitNotFound, "unknown or terminated agents: nope-1"},
		{[]string{"agents", "get", "u-1"}, exitOK, "owner=ops\nmetadata       zone=b"},
		{[]string{"agents", "history", "u-1"}, exitOK, "SEQ  TIME"},
		{[]string{"hooks", "register", "audit", "--callback", "audit", "--state", "error"}, exitOK, "registered hook audit"},
		{[]string{"hooks", "unregister", "audit"}, exitOK, "unregistered hook audit (hook-"},
		{[]string{"hooks", "unregister", "audit"}, exitNotFound, `no hook is named "audit"`},
	} {
		out, code := cli(t, s.url, st.args...)
		st.check(t, out, code)
	}
	sequences := func(args ...string) []string {
		t.Helper()
		out, code := cli(t, s.url, append([]string{"agents", "history", "u-1"}, args...)...)
		if code != exitOK {
			t.Fatalf("history %v: exit %d %s", args, code, out)
		}
		var seqs []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			seqs = append(seqs, strings.Fields(l)[0])
		}
		return seqs
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "#1 #2 #3 #4 #5"},
		{[]string{"--limit", "2"}, "#1 #2"},
		{[]string{"--tail", "2"}, "#4 #5"},
		{[]string{"--newest-first"}, "#5 #4 #3 #2 #1"},
		{[]string{"--newest-first", "--limit", "2"}, "#5 #4"},
	} {
		if got := strings.Join(sequences(c.args...), " "); got != c.want {
			t.Errorf("history %v: %s, want %s", c.args, got, c.want)
		}
	}
}

// TestServerWait: `server wait` returns once a server starting later serves, and gives
// up with exit 5 when none does.
func TestServerWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out, code := command(t, "server", "wait", "--server", "http://"+addr, "--timeout", "600ms")
	if code != exitUnavailable || !strings.Contains(out, "is not serving after 600ms") {
		t.Errorf("wait for nothing: exit %d, %q", code, out)
	}
	wait := exec.Command(bin, "server", "wait", "--server", "http://"+addr, "--timeout", "30s")
	var wout strings.Builder
	wait.Stdout, wait.Stderr = &wout, &wout
	if err := wait.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	startServer(t, "--store", "memory", "--listen", addr)
	if err := wait.Wait(); err != nil || !strings.Contains(wout.String(), "is serving") {
		t.Errorf("wait for a server starting later: %v, %q", err, wout.String())
	}
}

// TestCLIWatchBacksOff: while the server is away, watch says so once, retries with
// backoff instead of ten times a second, and says when it is back.
func TestCLIWatchBacksOff(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--data-dir", dir)
	cli(t, s.url, "agents", "register", "w")
	watch := dieWithTest(exec.Command(bin, "agents", "watch", "--server", s.url, "--from", "1"))
	stdout, _ := watch.StdoutPipe()
	stderr, _ := watch.StderrPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Kill(); watch.Wait() }()
	errLines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			errLines <- sc.Text()
		}
	}()
	out := bufio.NewReader(stdout)
	if l, err := out.ReadString('\n'); err != nil || !strings.HasPrefix(l, "#1 ") {
		t.Fatalf("watch printed %q, %v", l, err)
	}
	go io.Copy(io.Discard, out)
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	time.Sleep(2500 * time.Millisecond) // ~25 attempts at 100ms; 5 with backoff
	startServer(t, "--data-dir", dir, "--listen", strings.TrimPrefix(s.url, "http://"))
	var said []string
	deadline := time.After(15 * time.Second)
	for len(said) == 0 || !strings.Contains(said[len(said)-1], "resumed") {
		select {
		case l := <-errLines:
			said = append(said, l)
		case <-deadline:
			t.Fatalf("watch never said it resumed: %q", said)
		}
	}
	if len(said) != 2 || !strings.Contains(said[0], "watch interrupted") || !strings.Contains(said[1], "watch resumed from sequence 2") {
		t.Errorf("watch said %q; want one interruption and one resumption", said)
	}
}

// TestCLIHookWithoutWorker: registering a callback hook no worker serves warns, and
// hooks list shows whether a worker is connected.
func TestCLIHookWithoutWorker(t *testing.T) {
	s := startServer(t, "--store", "memory")
	out, code := cli(t, s.url, "hooks", "register", "gate", "--callback", "gatekeeper", "--blocking")
	if code != exitOK || !strings.Contains(out, `warning: nothing serves callback "gatekeeper" yet`) ||
		!strings.Contains(out, "the transition is refused") {
		t.Errorf("register without a worker: exit %d, %q", code, out)
	}
	if out, _ := cli(t, s.url, "hooks", "list"); !strings.Contains(out, "callback gatekeeper (NO WORKER") {
		t.Errorf("hooks list without a worker:\n%s", out)
	}
	c := s.client(t)
	defer c.Close()
	if err := c.HandleCallback("gatekeeper", func(context.Context, lifecycle.HookCall) (lifecycle.HookDecision, error) {
		return lifecycle.HookDecision{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := cli(t, s.url, "hooks", "list")
		if strings.Contains(out, "callback gatekeeper (worker connected)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hooks list with a worker:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, code := cli(t, s.url, "hooks", "register", "gate-2", "--callback", "gatekeeper"); code != exitOK || strings.Contains(out, "warning") {
		t.Errorf("register with a worker: exit %d, %q", code, out)
	}
	if out, _ := cli(t, s.url, "-o", "json", "hooks", "list"); !strings.Contains(strings.Join(strings.Fields(out), " "), `"workerConnected": true`) {
		t.Errorf("hooks list -o json:\n%s", out)
	}
}

// TestNextSteps: at a terminal, serve says what to try next, with --server only when the
// server is not at the default address.
func TestNextSteps(t *testing.T) {
	var b strings.Builder
	writeNextSteps(&b, "http://"+DefaultListen, DefaultListen, "hms-lifecycle")
	if !strings.Contains(b.String(), "  hms-lifecycle agents register agent-001\n") || !strings.Contains(b.String(), "curl -s http://127.0.0.1:7460/metrics") {
		t.Errorf("default address:\n%s", b.String())
	}
	b.Reset()
	writeNextSteps(&b, "http://127.0.0.1:9999", "127.0.0.1:9999", "./.bin/hms-lifecycle")
	if !strings.Contains(b.String(), "  ./.bin/hms-lifecycle --server http://127.0.0.1:9999 agents watch\n") {
		t.Errorf("another address:\n%s", b.String())
	}
}
