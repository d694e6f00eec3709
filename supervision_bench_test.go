package lifecycle_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// supervisedFleet is the scale of the supervision benchmarks: agents with heartbeats every
// 10s and a 30s liveness timeout.
const (
	supervisedFleet   = 100_000
	heartbeatInterval = 10 * time.Second
	heartbeatBatch    = 1000 // agents per Heartbeat call (an SDK batches its process's agents)
)

var livenessPolicy = &lifecycle.SupervisionPolicy{HeartbeatTimeout: 30 * time.Second}

// activeFleet registers n agents on m and makes them ACTIVE.
func activeFleet(b *testing.B, m *lifecycle.Manager, n int) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("agent-%06d", i)
		register(b, m, ids[i])
		if res := transition(b, m, lifecycle.TransitionRequest{AgentID: ids[i], Target: lifecycle.StateActive}); !res.Success {
			b.Fatal(res.Message)
		}
	}
	return ids
}

// BenchmarkHeartbeat: the server-side cost of one agent's heartbeat, received in batches,
// with 100,000 agents under a liveness policy.
func BenchmarkHeartbeat(b *testing.B) {
	clk := newClock()
	m, _ := newManager(b, &lifecycle.Options{Now: clk.Now, SuperviseTick: -1, Supervision: livenessPolicy})
	ids := activeFleet(b, m, supervisedFleet)
	if err := m.Supervise(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		j := i * heartbeatBatch % len(ids)
		if unknown, err := m.Heartbeat(ctx, ids[j:j+heartbeatBatch]); err != nil || len(unknown) > 0 {
			b.Fatal(unknown, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*heartbeatBatch), "ns/heartbeat")
}

// BenchmarkLivenessSecond: one simulated second of liveness tracking for 100,000 agents
// sending a heartbeat every 10s (10,000 heartbeats) plus the supervisor's pass over the
// deadlines that came due (each agent's, once per 30s timeout). ns/op is the CPU time per
// second of wall time; cpu-% is that as a share of one core.
func BenchmarkLivenessSecond(b *testing.B) {
	clk := newClock()
	m, store := newManager(b, &lifecycle.Options{Now: clk.Now, SuperviseTick: -1, Supervision: livenessPolicy})
	ids := activeFleet(b, m, supervisedFleet)
	perSecond := supervisedFleet / int(heartbeatInterval/time.Second)
	next := 0
	second := func() {
		for range perSecond / heartbeatBatch {
			if _, err := m.Heartbeat(ctx, ids[next:next+heartbeatBatch]); err != nil {
				b.Fatal(err)
			}
			next = (next + heartbeatBatch) % len(ids)
		}
		clk.Advance(time.Second)
		if err := m.Supervise(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for range 45 { // past the first deadlines: steady state
		second()
	}
	_, before, _ := store.Sequences(ctx)
	b.ResetTimer()
	for b.Loop() {
		second()
	}
	b.StopTimer()
	if _, after, _ := store.Sequences(ctx); after != before {
		b.Fatalf("%d agents failed liveness although they sent heartbeats", after-before)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e7, "cpu-%")
}

// BenchmarkLivenessMemory: heap bytes the supervisor keeps per agent under a liveness
// policy: a Manager that tracks 100,000 agents against one that tracks none, over the same
// store.
func BenchmarkLivenessMemory(b *testing.B) {
	store := memory.New()
	defer store.Close()
	m0, err := lifecycle.New(ctx, store, &lifecycle.Options{SuperviseTick: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer m0.Close()
	activeFleet(b, m0, supervisedFleet)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for b.Loop() {
		h0 := heap()
		plain, err := lifecycle.New(ctx, store, &lifecycle.Options{SuperviseTick: -1})
		if err != nil {
			b.Fatal(err)
		}
		h1 := heap()
		tracking, err := lifecycle.New(ctx, store, &lifecycle.Options{SuperviseTick: -1, Supervision: livenessPolicy})
		if err != nil {
			b.Fatal(err)
		}
		h2 := heap()
		b.ReportMetric(float64(int64(h2-h1)-int64(h1-h0))/supervisedFleet, "B/agent")
		runtime.KeepAlive(plain)
		plain.Close()
		tracking.Close()
	}
}
