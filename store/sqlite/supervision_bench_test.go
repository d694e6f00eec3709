package sqlite_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
)

// BenchmarkLivenessDeadlineDelay: 100,000 ACTIVE agents on SQLite (synchronous=FULL) send
// heartbeats every second with a 3s timeout (the 10s/30s of a real fleet, ten times
// faster: ten times the heartbeat load); 1,000 of them go silent, in four cohorts a
// second apart. It reports the delay from each silent agent's deadline (its last
// heartbeat, as sent, plus the timeout) to the time of its liveness transition in history:
// p50, p99 and max. Run it with -benchtime=1x.
func BenchmarkLivenessDeadlineDelay(b *testing.B) {
	const (
		agents   = 100_000
		every    = 100 // one agent in a hundred goes silent
		cohorts  = 4
		interval = time.Second
		timeout  = 3 * time.Second
		batch    = 1000
	)
	ctx := context.Background()
	for b.Loop() {
		s, err := sqlite.Open(ctx, b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, agents)
		for i := range ids {
			ids[i] = fmt.Sprintf("agent-%06d", i)
		}
		// Register the fleet, then restart with the liveness policy: the restart's grace
		// (one timeout from start) covers the time the fleet took to register.
		setup, err := lifecycle.New(ctx, s, &lifecycle.Options{SuperviseTick: -1})
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < agents; i += 64 {
					if _, _, err := setup.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: ids[i]}); err != nil {
						b.Error(err)
						return
					}
					if res, err := setup.Transition(ctx, lifecycle.TransitionRequest{AgentID: ids[i], Target: lifecycle.StateActive}); err != nil || !res.Success {
						b.Error(res.Message, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		setup.Close()
		m, err := lifecycle.New(ctx, s, &lifecycle.Options{Supervision: &lifecycle.SupervisionPolicy{
			Restart: lifecycle.RestartNever, HeartbeatTimeout: timeout}})
		if err != nil {
			b.Fatal(err)
		}
		w, err := m.Watch(ctx, lifecycle.WatchRequest{Types: []lifecycle.TransitionType{lifecycle.TypeErrorTriggered}})
		if err != nil {
			b.Fatal(err)
		}

		var mu sync.Mutex
		lastBeat := map[string]time.Time{}
		hctx, stop := context.WithCancel(ctx)
		beats := make(chan struct{})
		go func() {
			defer close(beats)
			for round := 0; hctx.Err() == nil; round++ {
				for j := 0; j < agents; j += batch {
					var send []string
					for i := j; i < j+batch; i++ {
						if i%every != 0 || (i/every)%cohorts >= round {
							send = append(send, ids[i]) // victims of cohort c beat in rounds 0..c only
						}
					}
					now := time.Now()
					if _, err := m.Heartbeat(hctx, send); err != nil {
						return
					}
					mu.Lock()
					for _, id := range send {
						lastBeat[id] = now
					}
					mu.Unlock()
				}
				select {
				case <-hctx.Done():
				case <-time.After(interval):
				}
			}
		}()

		var delays []time.Duration
		deadline, cancel := context.WithTimeout(ctx, time.Minute)
		for len(delays) < agents/every {
			ev, err := w.Next(deadline)
			if err != nil {
				b.Fatalf("after %d liveness transitions: %v", len(delays), err)
			}
			var n int
			fmt.Sscanf(ev.AgentID, "agent-%d", &n)
			if n%every != 0 {
				b.Fatalf("%s failed liveness although it sent heartbeats", ev.AgentID)
			}
			mu.Lock()
			delays = append(delays, ev.Time.Sub(lastBeat[ev.AgentID].Add(timeout)))
			mu.Unlock()
		}
		cancel()
		stop()
		<-beats
		w.Close()
		m.Close()
		s.Close()
		slices.Sort(delays)
		for _, q := range []struct {
			name string
			p    float64
		}{{"p50-ms", 0.5}, {"p99-ms", 0.99}, {"max-ms", 1}} {
			b.ReportMetric(float64(delays[int(float64(len(delays)-1)*q.p)].Microseconds())/1000, q.name)
		}
	}
}
