package storetest

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
)

// CrashChildEnv marks the re-executed test binary as the crash test's child.
const CrashChildEnv = "HMS_CRASH_CHILD"

const crashAgents = 16

// CrashChild is the child side of Crash: call it from a test named TestCrashChild that
// returns at once unless os.Getenv(CrashChildEnv) is set. It drives transitions of 16
// agents from as many goroutines, printing "ack AGENT REVISION SEQUENCE STATE" after each
// one the manager confirms, until it is killed.
func CrashChild(open func() (lifecycle.Store, error)) {
	ctx := context.Background()
	s, err := open()
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	m, err := lifecycle.New(ctx, s, nil)
	if err != nil {
		fmt.Println("manager:", err)
		os.Exit(3)
	}
	var out sync.Mutex
	fmt.Println("ready")
	for i := range crashAgents {
		go func() {
			id := fmt.Sprintf("crash-%02d", i)
			if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id}); err != nil && lifecycle.ErrorCode(err) != lifecycle.CodeAlreadyExists {
				fmt.Println("register:", err)
				os.Exit(3)
			}
			for {
				st, err := m.GetState(ctx, id, false)
				if err != nil {
					fmt.Println("get state:", err)
					os.Exit(3)
				}
				to := lifecycle.StateActive
				if st.State == lifecycle.StateActive {
					to = lifecycle.StatePaused
				}
				res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: to, ExpectedRevision: st.Revision})
				if err != nil || !res.Success {
					fmt.Println("transition:", res.Message, err)
					os.Exit(3)
				}
				out.Lock()
				fmt.Printf("ack %s %d %d %d\n", id, res.Revision, res.Event.Sequence, res.Current)
				out.Unlock()
			}
		}()
	}
	select {}
}

// Ack is a transition a client saw acknowledged.
type Ack struct {
	Agent    string
	Revision int64
	Sequence uint64
	State    lifecycle.State
}

// Crash runs the child (this test binary, re-executed with CrashChildEnv and env) for
// several cycles, killing it with SIGKILL at a random moment in each, then checks with
// open that every acknowledged transition is in history exactly once, that each agent's
// state equals the replay of its history, and that sequences are gap-free.
func Crash(t *testing.T, env []string, cycles int, open func(t *testing.T) lifecycle.Store) {
	var acks []Ack
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for cycle := range cycles {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(append(os.Environ(), CrashChildEnv+"=1"), env...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || lines.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cycle %d: child did not start: %q", cycle, lines.Text())
		}
		killAfter := time.Duration(100+rng.IntN(400)) * time.Millisecond
		timer := time.AfterFunc(killAfter, func() { cmd.Process.Signal(syscall.SIGKILL) })
		n := 0
		for lines.Scan() {
			var a Ack
			var state int32
			if _, err := fmt.Sscanf(lines.Text(), "ack %s %d %d %d", &a.Agent, &a.Revision, &a.Sequence, &state); err != nil {
				timer.Stop()
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("cycle %d: child said %q", cycle, lines.Text())
			}
			a.State = lifecycle.State(state)
			acks = append(acks, a)
			n++
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("cycle %d: child ended with %v, not by SIGKILL", cycle, err)
		}
		t.Logf("cycle %d: killed after %v and %d acknowledged transitions", cycle, killAfter, n)
		if n == 0 {
			t.Fatalf("cycle %d: no transition acknowledged", cycle)
		}
	}

	CheckAcknowledged(t, open(t), acks)
}

// CheckAcknowledged checks, after crashes, that every acknowledged transition is in
// history exactly once, that sequences are gap-free, and that each agent's state equals
// the replay of its history.
func CheckAcknowledged(t *testing.T, s lifecycle.Store, acks []Ack) {
	t.Helper()
	// A killed client's last commit may still be finishing in a database server: wait
	// until the newest sequence stays put, so history and agents are read at rest.
	for settled, prev := false, uint64(0); !settled; {
		_, newest, err := s.Sequences(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		settled, prev = newest == prev, newest
		if !settled {
			time.Sleep(200 * time.Millisecond)
		}
	}
	var history []lifecycle.Event
	for from := uint64(1); ; {
		evs, err := s.ReadEvents(context.Background(), lifecycle.EventFilter{FromSequence: from, Limit: 5000})
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, evs...)
		if len(evs) < 5000 {
			break
		}
		from = evs[len(evs)-1].Sequence + 1
	}
	last := map[string]lifecycle.Event{}
	for i, ev := range history {
		if ev.Sequence != uint64(i+1) {
			t.Fatalf("history position %d has sequence %d: sequences must be gap-free", i, ev.Sequence)
		}
		if prev, ok := last[ev.AgentID]; ok && (ev.From != prev.To || ev.Revision != prev.Revision+1) {
			t.Fatalf("event %d of %s does not follow event %d", ev.Sequence, ev.AgentID, prev.Sequence)
		}
		last[ev.AgentID] = ev
	}
	seen := map[uint64]bool{}
	for _, a := range acks {
		if a.Sequence == 0 || a.Sequence > uint64(len(history)) {
			t.Fatalf("acknowledged transition %+v is not in history (%d events)", a, len(history))
		}
		if ev := history[a.Sequence-1]; ev.AgentID != a.Agent || ev.Revision != a.Revision || ev.To != a.State {
			t.Fatalf("acknowledged %+v, history has %s rev %d → %s at that sequence", a, ev.AgentID, ev.Revision, ev.To)
		}
		if seen[a.Sequence] {
			t.Fatalf("sequence %d acknowledged twice", a.Sequence)
		}
		seen[a.Sequence] = true
	}
	for id, ev := range last {
		a, err := s.GetAgent(context.Background(), id)
		if err != nil || a.State != ev.To || a.Revision != ev.Revision || a.LastSequence != ev.Sequence {
			t.Errorf("agent %s is %+v, the replay of its history ends at %s rev %d seq %d (%v)", id, a, ev.To, ev.Revision, ev.Sequence, err)
		}
	}
	t.Logf("%d acknowledged transitions; history of %d events over %d agents checked", len(acks), len(history), len(last))
}
