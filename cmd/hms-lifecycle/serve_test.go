package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/client"
	"github.com/hms-lifecycle/lifecycle/store/postgres"
	"github.com/hms-lifecycle/lifecycle/store/postgres/pgtest"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

// bin is the hms-lifecycle binary and testPlugin the plugin tests run, built once by TestMain.
var bin, testPlugin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hms-bin-")
	if err != nil {
		panic(err)
	}
	bin, testPlugin = filepath.Join(dir, "hms-lifecycle"), filepath.Join(dir, "testplugin")
	for out, pkg := range map[string]string{bin: ".", testPlugin: "../../plugin/testdata/testplugin"} {
		if msg, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, msg)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running `hms-lifecycle serve`.
type process struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dieWithTest makes cmd's process receive SIGKILL when the test binary dies, so that an
// interrupted or killed run leaves no server or watch behind (reaped children of a
// normal run are stopped by the tests themselves).
func dieWithTest(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

func startServer(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := dieWithTest(exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...))
	stdout, _ := cmd.StdoutPipe()
	s := &process{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if !strings.HasPrefix(line, "listening on ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("server did not start (%v): %q\n%s", err, line, s.stderr)
	}
	s.url = strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return s
}

func (s *process) client(t *testing.T) *client.Client {
	c, err := client.New(s.url, &client.Options{Protocol: client.GRPC})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var ctx = context.Background()

func TestServeGracefulShutdownAndRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--data-dir", dir)
	c := s.client(t)
	if _, _, err := c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
	if res, err := c.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateActive}); err != nil || !res.Success {
		t.Fatal(res, err)
	}
	w, err := c.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := w.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	_, err = w.Next(ctx)
	if e, ok := err.(*lifecycle.Error); !ok || e.Code != lifecycle.CodeUnavailable || e.ResumeSequence != 3 {
		t.Errorf("watch at shutdown ended with %v, want UNAVAILABLE resuming at 3", err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("server exit after SIGTERM: %v\n%s", err, s.stderr)
	}
	for _, want := range []string{"shutting down", "stopped", "no credentials are configured"} {
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, s.stderr)
		}
	}
	s = startServer(t, "--data-dir", dir)
	if st, err := s.client(t).GetState(ctx, "a", false); err != nil || st.State != lifecycle.StateActive || st.Revision != 2 {
		t.Fatalf("after restart: %+v, %v", st, err)
	}
}

func TestServeRefusesRemoteWithoutCredentials(t *testing.T) {
	out, err := exec.Command(bin, "serve", "--listen", "0.0.0.0:0", "--store", "memory").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a loopback address and no credentials are configured") {
		t.Fatalf("serve on 0.0.0.0: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "serve", "--store", "mysql://x").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `--store "mysql://x": use sqlite, memory or a postgres:// URL`) {
		t.Fatalf("serve with an unknown store: %v\n%s", err, out)
	}
}

func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--data-dir", dir)
	c := s.client(t)
	for i := range 10 {
		c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("agent-%d", i)})
	}
	snap := filepath.Join(t.TempDir(), "snap") // a directory laid out like a data directory
	out, err := exec.Command(bin, "backup", "--data-dir", dir, "--out", snap).CombinedOutput()
	if err != nil {
		t.Fatalf("backup while serving: %v\n%s", err, out)
	}
	b, err := sqlite.Open(ctx, snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, newest, _ := b.Sequences(ctx); newest != 10 {
		t.Errorf("snapshot holds %d events, want 10", newest)
	}
}

// crashServer drives transitions through the server from 16 clients, kills the server
// with SIGKILL at random moments, restarts it, and finally checks acknowledged transitions
// against the store.
func crashServer(t *testing.T, cycles int, args []string, open func(t *testing.T) lifecycle.Store) {
	var mu sync.Mutex
	var acks []storetest.Ack
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for cycle := range cycles {
		s := startServer(t, args...)
		c := s.client(t)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("crash-%02d", i)
				c.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id})
				for {
					select {
					case <-stop:
						return
					default:
					}
					st, err := c.GetState(ctx, id, false)
					if err != nil {
						continue // the server is going away
					}
					to := lifecycle.StateActive
					if st.State == lifecycle.StateActive {
						to = lifecycle.StatePaused
					}
					res, err := c.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: to, ExpectedRevision: st.Revision})
					if err != nil || !res.Success {
						continue // unknown outcome or a conflict: not acknowledged
					}
					mu.Lock()
					acks = append(acks, storetest.Ack{Agent: id, Revision: res.Revision, Sequence: res.Event.Sequence, State: res.Current})
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(200+rng.IntN(400)) * time.Millisecond)
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
		close(stop)
		wg.Wait()
		t.Logf("cycle %d: %d acknowledged so far", cycle, len(acks))
	}
	if len(acks) == 0 {
		t.Fatal("no transition acknowledged")
	}
	storetest.CheckAcknowledged(t, open(t), acks)
}

func TestCrashServerSQLite(t *testing.T) {
	dir := t.TempDir()
	crashServer(t, 4, []string{"--data-dir", dir}, func(t *testing.T) lifecycle.Store {
		s, err := sqlite.Open(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestCrashServerPostgres(t *testing.T) {
	cluster, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	dsn, err := cluster.CreateDatabase(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	crashServer(t, 4, []string{"--store", dsn}, func(t *testing.T) lifecycle.Store {
		s, err := postgres.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestReplicaCrashPostgres runs two server processes on one database: a watcher on b sees
// what a commits, in sequence order, and keeps watching when a is killed.
func TestReplicaCrashPostgres(t *testing.T) {
	cluster, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	dsn, err := cluster.CreateDatabase(ctx, "replicas")
	if err != nil {
		t.Fatal(err)
	}
	a, b := startServer(t, "--store", dsn), startServer(t, "--store", dsn)
	ca, cb := a.client(t), b.client(t)
	w, err := cb.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 4 {
		if _, _, err := ca.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("agent-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() { // a keeps transitioning until it is killed
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				to := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}[j%2]
				if _, err := ca.Transition(ctx, lifecycle.TransitionRequest{AgentID: fmt.Sprintf("agent-%d", i), Target: to}); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	close(stop)
	wg.Wait()
	// b carries on; its watcher sees every event, a's and then b's, with no gap.
	for i := range 4 {
		st, err := cb.GetState(ctx, fmt.Sprintf("agent-%d", i), false)
		if err != nil {
			t.Fatal(err)
		}
		to := lifecycle.StateActive
		if st.State == lifecycle.StateActive {
			to = lifecycle.StatePaused
		}
		if res, err := cb.Transition(ctx, lifecycle.TransitionRequest{AgentID: st.ID, Target: to}); err != nil || !res.Success {
			t.Fatal(res, err)
		}
	}
	s, err := postgres.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, newest, _ := s.Sequences(ctx)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for want := uint64(1); want <= newest; want++ {
		ev, err := w.Next(cctx)
		if err != nil || ev.Sequence != want {
			t.Fatalf("watcher on b: got %d (%v), want %d of %d", ev.Sequence, err, want, newest)
		}
	}
	t.Logf("watcher on b saw all %d events across a's crash", newest)
}

func TestServeConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hms.json")
	os.WriteFile(cfg, []byte(`{"store": "sqlite", "data-dir": "`+dir+`/from-config", "log-format": "json", "webhook-allow": ["127.0.0.0/8"]}`), 0o600)
	s := startServer(t, "--config", cfg, "--log-format", "text")
	if _, _, err := s.client(t).RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-config", sqlite.FileName)); err != nil {
		t.Errorf("data-dir from the config file not used: %v", err)
	}
	if strings.Contains(s.stderr.String(), `"msg"`) {
		t.Errorf("the command line's --log-format text did not win over the file: %s", s.stderr)
	}
	os.WriteFile(cfg, []byte(`{"colour": "red"}`), 0o600)
	out, err := exec.Command(bin, "serve", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown setting "colour"`) {
		t.Errorf("unknown setting: %v %s", err, out)
	}
}

// TestServeConsole: serve serves the web console at /ui/ (and / redirects to it) unless
// --ui=false, or the config file's "ui": false, turns it off.
func TestServeConsole(t *testing.T) {
	get := func(url string) (int, string) { // the status, and the body or the redirect's target
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if loc := res.Header.Get("Location"); loc != "" {
			return res.StatusCode, loc
		}
		return res.StatusCode, string(body)
	}
	on := startServer(t, "--store", "memory")
	if code, body := get(on.url + "/ui/"); code != http.StatusOK || !strings.Contains(body, `<div id="app">`) {
		t.Errorf("GET /ui/: %d %.200s", code, body)
	}
	if code, loc := get(on.url + "/"); code != http.StatusFound || loc != "/ui/" {
		t.Errorf("GET /: %d %q, want a redirect to /ui/", code, loc)
	}
	off := startServer(t, "--store", "memory", "--ui=false")
	if code, _ := get(off.url + "/ui/"); code != http.StatusNotFound {
		t.Errorf("--ui=false: GET /ui/: %d, want 404", code)
	}
	cfg := filepath.Join(t.TempDir(), "hms.json")
	os.WriteFile(cfg, []byte(`{"store": "memory", "ui": false}`), 0o600)
	byConfig := startServer(t, "--config", cfg)
	if code, _ := get(byConfig.url + "/ui/"); code != http.StatusNotFound {
		t.Errorf(`config "ui": false: GET /ui/: %d, want 404`, code)
	}
	// The API is served either way.
	if _, _, err := off.client(t).RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
}
