package server_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/client"
)

// BenchmarkWireTransition measures a transition over loopback through the server and the
// Go client, memory store, client and server in one process (sharing the cores).
func BenchmarkWireTransition(b *testing.B) {
	for _, p := range []struct {
		name string
		opts client.Options
	}{{"grpc", client.Options{Protocol: client.GRPC}}, {"connect", client.Options{Protocol: client.Connect}}} {
		b.Run(p.name, func(b *testing.B) {
			m, url := serveB(b)
			c, _ := client.New(url, &p.opts)
			const agents = 64
			for i := range agents {
				m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("w-%d", i)})
			}
			var next atomic.Int64
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprintf("w-%d", next.Add(1)%agents)
				targets := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}
				i := 0
				for pb.Next() {
					res, err := c.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: targets[i%2]})
					if err != nil {
						b.Fatal(err)
					}
					if res.Success {
						i++
					}
				}
			})
		})
	}
}
