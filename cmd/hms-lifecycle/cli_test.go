package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cli runs the built command against a server and returns its output and exit code.
func cli(t *testing.T, server string, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"--server", server}, args...)...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestCLI(t *testing.T) {
	s := startServer(t, "--store", "memory")
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"server", "health"}, exitOK, "is serving"},
		{[]string{"agents", "register", "agent-001", "--label", "pool=blue"}, exitOK, "registered agent-001: initialized (sequence 1)"},
		{[]string{"agents", "register", "agent-001"}, exitConflict, "already exists"},
		{[]string{"agents", "register", "bad id"}, exitUsage, "agent_id"},
		{[]string{"agents", "transition", "agent-001", "active", "--reason", "start"}, exitOK, "agent-001: initialized → active (normal, revision 2, sequence 2)"},
		{[]string{"agents", "transition", "agent-001", "initialized"}, exitRefused, "refused (invalid_transition): agent agent-001 cannot go from ACTIVE to INITIALIZED"},
		{[]string{"agents", "transition", "agent-001", "upgrading", "--force"}, exitOK, "(forced, revision 3"},
		{[]string{"agents", "transition", "agent-001", "sideways"}, exitUsage, `"sideways" is not a lifecycle state`},
		{[]string{"agents", "transition", "ghost", "active"}, exitNotFound, "agent ghost not found"},
		{[]string{"agents", "get", "agent-001"}, exitOK, "upgrading"},
		{[]string{"--protocol", "grpc", "--encoding", "cbor", "agents", "get", "agent-001"}, exitOK, "upgrading"},
		{[]string{"--encoding", "xml", "agents", "get", "agent-001"}, exitUsage, "encoding xml"},
		{[]string{"agents", "list", "--label", "pool=blue"}, exitOK, "agent-001"},
		{[]string{"agents", "history", "agent-001"}, exitOK, "#3"},
		{[]string{"agents", "history", "--type", "forced"}, exitOK, "upgrading"},
		{[]string{"agents", "get"}, exitUsage, "accepts 1 arg"},
		{[]string{"agents", "fly"}, exitUsage, ""},
		{[]string{"hooks", "register", "audit", "--callback", "audit", "--state", "error"}, exitOK, "registered hook audit"},
		{[]string{"hooks", "register", "audit", "--callback", "audit"}, exitRefused, `a hook named "audit" already exists`},
		{[]string{"hooks", "list"}, exitOK, "audit"},
		{[]string{"hooks", "unregister", "hook-nope"}, exitNotFound, `no hook is named "hook-nope" or has that id`},
		{[]string{"--output", "yaml", "agents", "list"}, exitUsage, "--output"},
		{[]string{"bench", "--clients", "4", "--duration", "1s"}, exitOK, "4 clients"},
		{[]string{"--protocol", "grpc", "bench", "--clients", "2", "--duration", "1s"}, exitOK, "2 clients"},
		{[]string{"bench", "--clients", "0"}, exitUsage, "--clients 0"},
	}
	for _, st := range steps {
		out, code := cli(t, s.url, st.args...)
		if code != st.code || !strings.Contains(out, st.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d containing %q", st.args, code, out, st.code, st.want)
		}
	}
	// The bench runs removed the agents they made.
	if out, code := cli(t, s.url, "agents", "list"); code != exitOK || strings.Contains(out, "bench-") {
		t.Errorf("agents list after bench: exit %d, %q; want no bench agents left", code, out)
	}
	out, code := cli(t, s.url, "--output", "json", "agents", "get", "agent-001")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got["state"] != "LIFECYCLE_STATE_UPGRADING" || got["revision"] != "3" {
		t.Errorf("json output: %v %v %q", code, err, out)
	}
	if out, code := cli(t, "http://127.0.0.1:1", "server", "health"); code != exitUnavailable || !strings.Contains(out, "cannot reach") {
		t.Errorf("health of nothing: exit %d, %q", code, out)
	}
}

// TestCLIWatchResumes: `agents watch` prints live, survives a server restart and prints
// what happened meanwhile, once.
func TestCLIWatchResumes(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--data-dir", dir)
	url := s.url
	cli(t, url, "agents", "register", "w")
	watch := dieWithTest(exec.Command(bin, "--server", url, "agents", "watch", "w", "--from", "1"))
	stdout, _ := watch.StdoutPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Kill(); watch.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(seq string) {
		t.Helper()
		select {
		case l := <-lines:
			if !strings.HasPrefix(l, seq+" ") {
				t.Fatalf("watch printed %q, want event %s", l, seq)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watch printed nothing for event %s", seq)
		}
	}
	expect("#1")
	cli(t, url, "agents", "transition", "w", "active")
	expect("#2")

	// Restart the server on the same address and data; the watcher reconnects.
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	addr := strings.TrimPrefix(url, "http://")
	startServer(t, "--data-dir", dir, "--listen", addr) // same address: the watcher reconnects to it
	cli(t, url, "agents", "transition", "w", "paused")
	cli(t, url, "agents", "transition", "w", "active")
	expect("#3")
	expect("#4")
}

func TestCLIWithTokens(t *testing.T) {
	path := t.TempDir() + "/tokens.json"
	if err := os.WriteFile(path, []byte(`{"principals": [{"name": "ada", "role": "admin", "tokens": ["admin-token-0123456789"]},
		{"name": "vera", "role": "viewer", "tokens": ["viewer-token-0123456789"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--store", "memory", "--auth-tokens", path)
	if out, code := cli(t, s.url, "agents", "register", "a"); code != exitError || !strings.Contains(out, "missing credentials") {
		t.Errorf("without a token: exit %d, %q", code, out)
	}
	if out, code := cli(t, s.url, "--token", "viewer-token-0123456789", "agents", "register", "a"); code != exitError || !strings.Contains(out, "vera is viewer; RegisterAgent needs operator") {
		t.Errorf("as a viewer: exit %d, %q", code, out)
	}
	if out, code := cli(t, s.url, "--token", "admin-token-0123456789", "agents", "register", "a"); code != exitOK {
		t.Errorf("as an admin: exit %d, %q", code, out)
	}
	out, _ := cli(t, s.url, "--token", "viewer-token-0123456789", "agents", "history", "a")
	if !strings.Contains(out, "ada") {
		t.Errorf("history does not show the principal as initiator: %q", out)
	}
}

func TestCLIWebhook(t *testing.T) {
	got := make(chan string, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- string(body)
		w.Write([]byte(`{"veto": true, "reason": "frozen"}`))
	}))
	defer receiver.Close()
	s := startServer(t, "--store", "memory")
	cli(t, s.url, "agents", "register", "a")
	if out, code := cli(t, s.url, "hooks", "register", "freeze", "--url", receiver.URL, "--blocking", "--state", "active"); code != exitOK {
		t.Fatalf("register webhook: %d %s", code, out)
	}
	out, code := cli(t, s.url, "agents", "transition", "a", "active")
	if code != exitRefused || !strings.Contains(out, "frozen") {
		t.Fatalf("transition with a vetoing webhook: %d %s", code, out)
	}
	if body := <-got; !strings.Contains(body, `"hookName":"freeze"`) || !strings.Contains(body, `"newState":"LIFECYCLE_STATE_ACTIVE"`) {
		t.Errorf("webhook body: %s", body)
	}
	if out, code := cli(t, s.url, "hooks", "register", "internal", "--url", "http://10.9.9.9/x"); code != exitUsage || !strings.Contains(out, "not in the webhook allowlist") {
		t.Errorf("webhook outside the allowlist: %d %s", code, out)
	}
}

// TestCLISupervision: a server-wide default policy from serve's flags, an agent's own
// policy from the CLI, automatic recovery and liveness seen by a watcher and by `get`.
func TestCLISupervision(t *testing.T) {
	s := startServer(t, "--store", "memory", "--backoff-initial", "50ms", "--backoff-max", "50ms")
	for _, st := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"agents", "register", "sup-1"}, exitOK, "registered sup-1"},
		{[]string{"agents", "register", "sup-2", "--heartbeat-timeout", "300ms", "--restart", "never"}, exitOK, "registered sup-2"},
		{[]string{"agents", "register", "sup-3", "--restart", "sometimes"}, exitUsage, `--restart "sometimes": use on-error or never`},
		{[]string{"agents", "policy", "sup-1", "--max-recoveries", "101"}, exitUsage, "policy.max_recoveries is 101"},
		{[]string{"agents", "policy", "sup-1"}, exitUsage, "give policy flags"},
		{[]string{"agents", "policy", "ghost", "--default"}, exitNotFound, "agent ghost not found"},
		{[]string{"agents", "get", "sup-1"}, exitOK, "on error, at most 5 per 10m0s, backoff 50ms to 50ms"},
		{[]string{"agents", "get", "sup-2"}, exitOK, "heartbeat within 300ms (last: none yet)"},
		{[]string{"agents", "heartbeat", "sup-2", "ghost"}, exitNotFound, "unknown or terminated agents: ghost"},
		{[]string{"agents", "transition", "sup-1", "active"}, exitOK, "initialized → active"},
		{[]string{"agents", "transition", "sup-2", "active"}, exitOK, "initialized → active"},
	} {
		out, code := cli(t, s.url, st.args...)
		if code != st.code || !strings.Contains(out, st.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d containing %q", st.args, code, out, st.code, st.want)
		}
	}
	watch := dieWithTest(exec.Command(bin, "--server", s.url, "agents", "watch", "--type", "automatic", "--type", "error-triggered", "--from", "1"))
	stdout, _ := watch.StdoutPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Kill(); watch.Wait() }()
	lines := bufio.NewScanner(stdout)
	expect := func(want ...string) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("watch ended: %v", lines.Err())
		}
		for _, w := range want {
			if !strings.Contains(lines.Text(), w) {
				t.Fatalf("watch printed %q, want %q", lines.Text(), want)
			}
		}
	}
	// sup-2 sends no heartbeat: liveness fails it after 300ms (it has restart never).
	expect("sup-2", "active → error", "error_triggered", "system:liveness", "no heartbeat for 300ms")
	// sup-1 fails; the supervisor recovers it after the 50ms backoff.
	if out, code := cli(t, s.url, "agents", "transition", "sup-1", "error", "--reason", "crash"); code != exitOK {
		t.Fatal(out)
	}
	expect("sup-1", "active → error", "error_triggered", "crash")
	expect("sup-1", "error → recovering", "automatic", "system:supervisor", "attempt 1")
	if out, _ := cli(t, s.url, "agents", "get", "sup-1"); !strings.Contains(out, "1 in the last 10m0s") {
		t.Errorf("get after a recovery:\n%s", out)
	}
}

// TestCLIDelete: only a terminated agent can be deleted; its history stays, its id is
// never used again.
func TestCLIDelete(t *testing.T) {
	s := startServer(t, "--store", "memory")
	for _, st := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"agents", "register", "old-1"}, exitOK, "registered old-1"},
		{[]string{"agents", "delete", "old-1"}, exitConflict, "only an agent in a terminal state can be deleted"},
		{[]string{"agents", "delete", "ghost"}, exitNotFound, "agent ghost not found"},
		{[]string{"agents", "delete"}, exitUsage, "accepts 1 arg"},
		{[]string{"agents", "transition", "old-1", "terminated"}, exitOK, "initialized → terminated"},
		{[]string{"agents", "delete", "old-1", "--reason", "decommissioned"}, exitOK, "deleted old-1 (sequence 3)"},
		{[]string{"agents", "get", "old-1"}, exitNotFound, "agent old-1"},
		{[]string{"agents", "history", "old-1"}, exitOK, "decommissioned"},
		{[]string{"agents", "register", "old-1"}, exitConflict, "never used again"},
		{[]string{"agents", "list"}, exitOK, ""},
	} {
		out, code := cli(t, s.url, st.args...)
		if code != st.code || !strings.Contains(out, st.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d containing %q", st.args, code, out, st.code, st.want)
		}
		if st.args[1] == "list" && strings.Contains(out, "old-1") {
			t.Errorf("agents list shows the deleted agent: %q", out)
		}
	}
}
