package lifecycle_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/looplab/fsm"
	"github.com/qmuntal/stateless"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// BenchmarkTransition measures one recorded, watched transition on the memory store: the
// full pipeline (validation, per-agent serialization, table check, event with a UUIDv7,
// commit, publish) with one watcher draining events, no hooks.
func BenchmarkTransition(b *testing.B) {
	m, _ := newManager(b, nil)
	register(b, m, "agent-001")
	w, _ := m.Watch(ctx, lifecycle.WatchRequest{})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		n := 0
		for {
			if _, err := w.Next(wctx); err != nil {
				done <- n
				return
			}
			n++
		}
	}()
	targets := [2]lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}
	req := lifecycle.TransitionRequest{AgentID: "agent-001", Reason: "benchmark"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req.Target = targets[i&1]
		res, err := m.Transition(ctx, req)
		if err != nil || !res.Success {
			b.Fatal(res.Message, err)
		}
	}
	b.StopTimer()
	stop()
	<-done
	w.Close()
}

// BenchmarkTransitionParallel runs transitions of distinct agents from GOMAXPROCS
// goroutines, with one watcher attached.
func BenchmarkTransitionParallel(b *testing.B) {
	m, s := newManager(b, nil)
	const agents = 1024
	for i := range agents {
		register(b, m, fmt.Sprintf("agent-%04d", i))
	}
	// The watcher must see every event at every -cpu, or the runs do different work. With
	// one processor it would run only when the transition goroutine is preempted (every
	// 10 ms, some 30,000 events) and be cut off, a ring behind; so the transition
	// goroutines yield now and then, as callers that ever wait do. Were it cut off anyway,
	// it resumes like a client would, and the cut-offs are reported.
	wctx, stop := context.WithCancel(ctx)
	type watched struct{ cutoffs, from uint64 }
	done := make(chan watched)
	_, head, _ := s.Sequences(ctx)
	go func() {
		// Counts in locals: a shared counter would be one more line written per event.
		var cutoffs uint64
		from := head + 1
		for {
			w, err := m.Watch(wctx, lifecycle.WatchRequest{FromSequence: from})
			if err == nil {
				for err == nil {
					var ev lifecycle.Event
					if ev, err = w.Next(wctx); err == nil {
						from = ev.Sequence + 1
					}
				}
				w.Close()
			}
			if wctx.Err() != nil {
				done <- watched{cutoffs, from}
				return
			}
			if lifecycle.ErrorCode(err) != lifecycle.CodeResourceExhausted {
				b.Error(err)
			}
			cutoffs++
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	runParallel(b, func(g int, claim func() int) {
		id := fmt.Sprintf("agent-%04d", g)
		targets := [2]lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}
		st, _ := m.GetState(ctx, id, false)
		i := 0
		if st.State == lifecycle.StateActive {
			i = 1
		}
		req := lifecycle.TransitionRequest{AgentID: id, Reason: "benchmark"}
		for n := claim(); n > 0; n = claim() {
			for end := i + n; i < end; i++ {
				if i%256 == 0 {
					runtime.Gosched()
				}
				req.Target = targets[i&1]
				if res, err := m.Transition(ctx, req); err != nil || !res.Success {
					b.Error(res.Message, err)
					return
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	stop()
	w := <-done
	b.ReportMetric(float64(w.cutoffs), "cutoffs")
	b.ReportMetric(float64(w.from-head-1)/float64(b.N), "watched/op") // it resumes where it was cut off
}

// cpuTime is the CPU time the process has used, in nanoseconds: with ns/op it tells
// whether a benchmark that scales badly spends more CPU per operation or leaves processors
// idle.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkParallelCeiling runs work that shares nothing (hashing 256 bytes, about as
// long as a transition) from GOMAXPROCS goroutines: its ns/op at -cpu 1 over -cpu N is
// the most any parallel benchmark can scale on this machine as loaded at the time, the
// yardstick for BenchmarkTransitionParallel's scaling on a shared machine.
func BenchmarkParallelCeiling(b *testing.B) {
	runParallel(b, func(_ int, claim func() int) {
		var buf [256]byte
		var sum [32]byte
		for n := claim(); n > 0; n = claim() {
			for range n {
				sum = sha256.Sum256(buf[:])
				buf[0] = sum[0]
			}
		}
	})
}

// runParallel runs body(g, claim) on GOMAXPROCS goroutines g, which claim b.N iterations
// between them a batch at a time (claim returns 0 once none are left), as b.RunParallel
// does, so that they end together whatever else shares the processors. Not b.RunParallel
// itself: its goroutines' iteration counters (testing.PB) are 32-byte objects that are
// often allocated side by side, in one cache line, which each of them writes on every
// iteration. That line, passed from core to core, cost up to 120 ns per transition on two
// cores: more than anything the benchmark measures.
func runParallel(b *testing.B, body func(g int, claim func() int)) {
	const batch = 1024
	var claimed struct {
		_ [64]byte
		n atomic.Int64
		_ [56]byte
	}
	claim := func() int {
		end := claimed.n.Add(batch)
		return int(max(0, min(end, int64(b.N))-(end-batch)))
	}
	var wg sync.WaitGroup
	for g := range runtime.GOMAXPROCS(0) {
		wg.Go(func() { body(g, claim) })
	}
	wg.Wait()
}

// BenchmarkBareLooplabFSM is a bare github.com/looplab/fsm transition, for comparison.
func BenchmarkBareLooplabFSM(b *testing.B) {
	f := fsm.NewFSM("active", fsm.Events{
		{Name: "pause", Src: []string{"active"}, Dst: "paused"},
		{Name: "resume", Src: []string{"paused"}, Dst: "active"},
	}, nil)
	events := [2]string{"pause", "resume"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := f.Event(ctx, events[i&1]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareStateless is a bare github.com/qmuntal/stateless transition, for comparison.
func BenchmarkBareStateless(b *testing.B) {
	sm := stateless.NewStateMachine("active")
	sm.Configure("active").Permit("pause", "paused")
	sm.Configure("paused").Permit("resume", "active")
	events := [2]string{"pause", "resume"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := sm.Fire(events[i&1]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemory reports the heap cost on the memory store of a registered agent (its
// record, index entry and registration event), of its first transition (which adds the
// manager's per-agent slot with its cached record, and an event), and of one more retained
// event. Run it with -benchtime=1x; it registers 1,000,000 agents.
func BenchmarkMemory(b *testing.B) {
	const agents = 1_000_000
	for b.Loop() {
		s := memory.NewWithOptions(&memory.Options{MaxEvents: 3*agents + 4096}) // retain every event
		m, err := lifecycle.New(ctx, s, nil)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, agents)
		for i := range ids {
			ids[i] = fmt.Sprintf("agent-%07d", i)
		}
		base := heap()
		for _, id := range ids {
			if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id}); err != nil {
				b.Fatal(err)
			}
		}
		registered := heap()
		for _, id := range ids {
			if res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateActive}); err != nil || !res.Success {
				b.Fatal(res.Message, err)
			}
		}
		transitioned := heap()
		for _, id := range ids {
			if res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StatePaused}); err != nil || !res.Success {
				b.Fatal(res.Message, err)
			}
		}
		moreEvents := heap()
		b.ReportMetric(float64(registered-base)/agents, "B/agent")
		b.ReportMetric(float64(transitioned-registered)/agents, "B/first-transition")
		b.ReportMetric(float64(moreEvents-transitioned)/agents, "B/event")
		runtime.KeepAlive(ids)
		m.Close()
		s.Close()
	}
}

func heap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkGetStateBusyAgent is GetState of an agent that made 10,000 transitions within its
// supervision policy's window: the recoveries in the window are counted from its AUTOMATIC
// events only, so its other events cost nothing to read.
func BenchmarkGetStateBusyAgent(b *testing.B) {
	ctx := context.Background()
	m, err := lifecycle.New(ctx, memory.New(), &lifecycle.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "busy"})
	for i := range 10000 {
		m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "busy", Target: [2]lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}[i%2]})
	}
	for b.Loop() {
		if _, err := m.GetState(ctx, "busy", true); err != nil {
			b.Fatal(err)
		}
	}
}
