package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
)

// ReportLatency reports, for benchmarks that time each operation, the throughput over
// elapsed and the p50 and p99 latencies.
func ReportLatency(b *testing.B, latencies []time.Duration, elapsed time.Duration) {
	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchTransitions registers one agent per caller and has each caller move its agent
// between ACTIVE and PAUSED, b.N transitions in all, spreading the callers over the
// managers (replicas sharing one store), then reports throughput and latency.
func BenchTransitions(b *testing.B, managers []*lifecycle.Manager, callers int) {
	ctx := context.Background()
	for i := range callers {
		if _, _, err := managers[0].RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("agent-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range callers {
		n := b.N / callers
		if c < b.N%callers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := managers[c%len(managers)]
			req := lifecycle.TransitionRequest{AgentID: fmt.Sprintf("agent-%d", c)}
			targets := [2]lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}
			lat[c] = make([]time.Duration, 0, n)
			for i := range n {
				req.Target = targets[i&1]
				t0 := time.Now()
				if res, err := m.Transition(ctx, req); err != nil || !res.Success {
					b.Error(res.Message, err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	ReportLatency(b, slices.Concat(lat...), elapsed)
}
