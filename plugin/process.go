//go:build !wasip1

package plugin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
)

// spawner starts plugin processes from one OS thread that lives as long as the Manager:
// a child's parent-death signal (Linux's PR_SET_PDEATHSIG) fires when the thread that
// started it exits, not the process, so the thread must not come and go.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

// canRun is nil: this build runs plugin processes (see process_wasip1.go for one that
// cannot).
func canRun(Ref) error { return nil }

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the process
		defer close(s.done)
		for r := range s.reqs {
			r.err <- r.cmd.Start()
		}
	}()
	return s
}

func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}

// process is one running activation of a plugin.
type process struct {
	cmd          *exec.Cmd
	generation   uint64
	endpoint     string // 127.0.0.1:port
	port         int
	health       *manifest.Health
	marker       string        // EnvActivation of its processes
	healthFailed bool          // watch gave up on its health check (else it exited)
	exited       chan struct{} // closed when the process has exited and been reaped
	exitErr      error
	out          *lineRing
	// reaped is set before the process is reaped: from then on its pid, the group's id,
	// may name another group.
	mu     sync.Mutex
	reaped bool
	// grpcOnce makes the one connection the gRPC health checks share.
	grpcOnce sync.Once
	grpcConn *grpc.ClientConn
	grpcErr  error
}

// start runs the plugin in dir (its package) as its own process group, on a free
// loopback port that it gets in HMS_PLUGIN_PORT and as "{port}" in its arguments, with
// marker in EnvActivation.
func (s *spawner) start(dir string, man *manifest.Manifest, generation uint64, marker string) (*process, error) {
	rt := man.Runtime
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("pick a port: %w", err)
	}
	command := rt.Command
	if strings.Contains(command, "/") && !filepath.IsAbs(command) {
		command = filepath.Join(dir, command)
	}
	args := make([]string, len(rt.Args))
	for i, a := range rt.Args {
		args[i] = strings.ReplaceAll(a, "{port}", strconv.Itoa(port))
	}
	cmd := exec.Command(command, args...)
	cmd.Dir = dir
	if rt.WorkingDir != "" {
		cmd.Dir = filepath.Join(dir, rt.WorkingDir)
	}
	cmd.Env = append(os.Environ(), EnvPort+"="+strconv.Itoa(port), EnvID+"="+man.ID, EnvVersion+"="+man.Version,
		EnvGeneration+"="+strconv.FormatUint(generation, 10))
	for k, v := range rt.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	mark := marker
	if outer := os.Getenv(EnvActivation); outer != "" {
		mark = outer + "," + marker // an enclosing manager still finds its own
	}
	cmd.Env = append(cmd.Env, EnvActivation+"="+mark) // last: the one exec keeps
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &process{cmd: cmd, generation: generation, port: port, endpoint: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		health: rt.Health, marker: marker, exited: make(chan struct{}), out: &lineRing{max: outputLines}}
	// The output goes to a pipe the process holds itself, not through a copying goroutine
	// of os/exec: Wait then returns when the process exits, even while a descendant that
	// left it still holds the pipe (it is stopped with the rest of the activation).
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", rt.Command, err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd, errc}
	err = <-errc
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s: %w", rt.Command, err)
	}
	go func() {
		p.out.read(pr)
		pr.Close()
	}()
	go func() {
		// Learn of the exit without reaping, so that the group is never signalled after
		// its id could have been reused.
		var info unix.Siginfo
		for unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
		}
		p.mu.Lock()
		p.reaped = true
		p.mu.Unlock()
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// waitHealthy waits up to the start timeout for the first passing health check (or, with
// none, for the process to stay up a moment); it fails as soon as the process exits.
func (p *process) waitHealthy(ctx context.Context, rt *manifest.Runtime) error {
	timeout := rt.StartTimeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var last error // the last check's answer, not cut short by the timeout
	for {
		if p.health == nil {
			select {
			case <-p.exited:
				return p.exitError()
			case <-time.After(100 * time.Millisecond):
				return nil
			}
		}
		err := p.check(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-p.exited:
			return p.exitError()
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("not healthy within the start timeout of %v (last check: %v)", timeout, last)
			}
			return ctx.Err()
		case <-time.After(pollDelay(time.Since(start))):
		}
	}
}

// pollDelay: during a start, check every millisecond for the first 100ms (most plugins are
// up by then: activation latency), every 10ms up to a second, then every 50ms.
func pollDelay(since time.Duration) time.Duration {
	switch {
	case since < 100*time.Millisecond:
		return time.Millisecond
	case since < time.Second:
		return 10 * time.Millisecond
	}
	return 50 * time.Millisecond
}

func (p *process) exitError() error {
	if p.exitErr == nil {
		return errors.New("the process exited (status 0)")
	}
	return fmt.Errorf("the process exited: %v", p.exitErr)
}

// check runs the health check once.
func (p *process) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if p.health.GRPC != nil {
		p.grpcOnce.Do(func() {
			p.grpcConn, p.grpcErr = grpc.NewClient(p.endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
		})
		if p.grpcErr != nil {
			return p.grpcErr
		}
		res, err := healthpb.NewHealthClient(p.grpcConn).Check(ctx, &healthpb.HealthCheckRequest{Service: p.health.GRPC.Service})
		if err != nil {
			return fmt.Errorf("gRPC health check: %w", err)
		}
		if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("gRPC health check: %s", res.GetStatus())
		}
		return nil
	}
	path := manifest.DefaultHealthPath
	if p.health.HTTP != nil && p.health.HTTP.Path != "" {
		path = p.health.HTTP.Path
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.endpoint+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health check GET %s: %w", path, err)
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("health check GET %s: %s", path, res.Status)
	}
	return nil
}

// watch returns why the running process failed: it exited, or failed its health check
// FailureThreshold times in a row. It returns "" when ctx ends first.
func (p *process) watch(ctx context.Context) string {
	if p.health == nil {
		select {
		case <-p.exited:
			return p.exitError().Error()
		case <-ctx.Done():
			return ""
		}
	}
	t := time.NewTicker(p.health.Interval())
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-p.exited:
			return p.exitError().Error()
		case <-ctx.Done():
			return ""
		case <-t.C:
		}
		if err := p.check(ctx); err != nil {
			if failures++; failures >= p.health.Failures() {
				p.healthFailed = true
				return fmt.Sprintf("%v (%d checks in a row)", err, failures)
			}
		} else {
			failures = 0
		}
	}
}

// stop ends the activation, its process group and every process carrying its marker:
// SIGTERM, up to grace for all of them to be gone, then SIGKILL. It says which it took,
// and names the processes that had left the group or outlived the plugin's own.
func (p *process) stop(grace time.Duration) string {
	if p.grpcConn != nil {
		defer p.grpcConn.Close()
	}
	var result string
	select {
	case <-p.exited:
		result = "the process had exited"
	default:
		if grace <= 0 {
			result = "killed"
			break
		}
		p.signalGroup(syscall.SIGTERM)
		for _, q := range markedProcesses(p.marker) {
			q.signal(p.marker, syscall.SIGTERM)
		}
		if p.waitEnded(grace) {
			return "stopped by SIGTERM"
		}
		result = fmt.Sprintf("killed: still running %v after SIGTERM", grace)
	}
	p.signalGroup(syscall.SIGKILL)
	found, left := killMarked(p.marker, 10*time.Second)
	<-p.exited
	var others []procInfo // beside the plugin's own process
	for _, q := range found {
		if q.pid != p.pid() {
			others = append(others, q)
		}
	}
	if len(others) > 0 {
		result += "; also killed " + procList(others)
	}
	if len(left) > 0 {
		result += "; still running after SIGKILL: " + procList(left)
	}
	return result
}

// signalGroup signals the process group while its leader is not reaped (its id is then
// still the group's).
func (p *process) signalGroup(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		syscall.Kill(-p.pid(), sig)
	}
}

// waitEnded waits up to d for the process to have exited and no marked process to be
// left; it reports whether they have.
func (p *process) waitEnded(d time.Duration) bool {
	deadline := time.After(d)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		select {
		case <-p.exited:
			if len(markedProcesses(p.marker)) == 0 {
				return true
			}
		default:
		}
		select {
		case <-deadline:
			return false
		case <-time.After(delay):
		}
	}
}

// tail is the process's last output lines, for an error message.
func (p *process) tail() string {
	<-p.out.done(100 * time.Millisecond)
	lines := p.out.lines()
	if len(lines) == 0 {
		return ""
	}
	return "; last output: " + strings.Join(lines, " | ")
}

// lineRing keeps the last max lines of a process's output.
type lineRing struct {
	max    int
	mu     sync.Mutex
	buf    []string
	closed chan struct{}
	once   sync.Once
}

func (r *lineRing) read(rd io.Reader) {
	defer r.finish()
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		r.mu.Lock()
		if r.buf = append(r.buf, sc.Text()); len(r.buf) > r.max {
			r.buf = r.buf[1:]
		}
		r.mu.Unlock()
	}
	io.Copy(io.Discard, rd) // a line too long: keep draining
}

func (r *lineRing) init() { r.once.Do(func() { r.closed = make(chan struct{}) }) }

func (r *lineRing) finish() {
	r.init()
	close(r.closed)
}

// done is closed when the output has ended, or after d.
func (r *lineRing) done(d time.Duration) <-chan struct{} {
	r.init()
	c := make(chan struct{})
	go func() {
		select {
		case <-r.closed:
		case <-time.After(d):
		}
		close(c)
	}()
	return c
}

func (r *lineRing) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.buf...)
}
