package ffi_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/ffi"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/store/memory"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// The Go side of the C ABI's figures (make bench-capi): the direct Go call on the Manager,
// the same through the library's Go layer (decode, dispatch, encode: everything hms_call
// does but the cgo crossing), and over gRPC on loopback (grpc-go client and server). The C
// program capi/bench/bench.c measures hms_call itself in the same make target.

const (
	getState   = "hms.agent.lifecycle.v1.LifecycleManager/GetState"
	transition = "hms.agent.lifecycle.v1.LifecycleManager/TransitionState"
)

func BenchmarkGetState(b *testing.B) {
	ctx := context.Background()
	b.Run("go", func(b *testing.B) {
		m, err := lifecycle.New(ctx, memory.New(), &lifecycle.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "agent-001"})
		timed(b, func() {
			if _, err := m.GetState(ctx, "agent-001", false); err != nil {
				b.Fatal(err)
			}
		})
	})
	req, _ := proto.Marshal(&v1.GetStateRequest{AgentId: "agent-001"})
	b.Run("ffi", func(b *testing.B) {
		lib, h := openBench(b)
		timed(b, func() {
			if _, err := lib.Call(h, getState, wire.Protobuf, req, nil); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("grpc", func(b *testing.B) {
		conn := grpcBench(b)
		var res v1.GetStateResponse
		for b.Loop() {
			if err := conn.Invoke(ctx, "/"+getState, &v1.GetStateRequest{AgentId: "agent-001"}, &res); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTransitionState(b *testing.B) {
	ctx := context.Background()
	targets := [2]lifecycle.State{lifecycle.StatePaused, lifecycle.StateActive}
	b.Run("go", func(b *testing.B) {
		m, err := lifecycle.New(ctx, memory.New(), &lifecycle.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "agent-001"})
		m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "agent-001", Target: lifecycle.StateActive})
		i := 0
		timed(b, func() {
			if res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "agent-001", Target: targets[i%2]}); err != nil || !res.Success {
				b.Fatal(err, res.Message)
			}
			i++
		})
	})
	var reqs [2][]byte
	for i, t := range targets {
		reqs[i], _ = proto.Marshal(&v1.TransitionRequest{AgentId: "agent-001", TargetState: t})
	}
	b.Run("ffi", func(b *testing.B) {
		lib, h := openBench(b)
		lib.Call(h, transition, wire.Protobuf, must(proto.Marshal(&v1.TransitionRequest{AgentId: "agent-001", TargetState: lifecycle.StateActive})), nil)
		i := 0
		timed(b, func() {
			if _, err := lib.Call(h, transition, wire.Protobuf, reqs[i%2], nil); err != nil {
				b.Fatal(err)
			}
			i++
		})
	})
	b.Run("grpc", func(b *testing.B) {
		conn := grpcBench(b)
		var res v1.TransitionResponse
		conn.Invoke(ctx, "/"+transition, &v1.TransitionRequest{AgentId: "agent-001", TargetState: lifecycle.StateActive}, &res)
		i := 0
		for b.Loop() {
			if err := conn.Invoke(ctx, "/"+transition, &v1.TransitionRequest{AgentId: "agent-001", TargetState: targets[i%2]}, &res); err != nil || !res.Success {
				b.Fatal(err, res.GetErrorMessage())
			}
			i++
		}
	})
}

// BenchmarkWatchDrain drains stored events through the library in batches of 1,000, in
// rounds of 100,000 (the memory store keeps the newest 2^20): events/s is 1e9 / (ns/op).
// Each event carries a reason and a metadata entry, as the bindings' watch benchmarks do.
func BenchmarkWatchDrain(b *testing.B) {
	lib, h := openBench(b)
	targets := [2]lifecycle.State{lifecycle.StatePaused, lifecycle.StateActive}
	lib.Call(h, transition, wire.Protobuf, must(proto.Marshal(&v1.TransitionRequest{AgentId: "agent-001", TargetState: lifecycle.StateActive})), nil)
	var reqs [2][]byte
	for i, t := range targets {
		reqs[i] = must(proto.Marshal(&v1.TransitionRequest{AgentId: "agent-001", TargetState: t,
			Reason: "benchmark", Metadata: map[string]string{"i": fmt.Sprint(i)}}))
	}
	from := uint64(3) // after the registration and the first transition
	b.ResetTimer()
	for done := 0; done < b.N; {
		round := min(b.N-done, 100000)
		b.StopTimer()
		for i := range round {
			lib.Call(h, transition, wire.Protobuf, reqs[i%2], nil)
		}
		s, err := lib.Watch(h, "hms.agent.lifecycle.v1.LifecycleManager/WatchEvents", wire.Protobuf, must(proto.Marshal(&v1.WatchEventsRequest{FromSequence: from})))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for n := 0; n < round; {
			batch, err := lib.Next(s, -1, 1000)
			if err != nil {
				b.Fatal(err)
			}
			for len(batch) > 0 {
				l := binary.LittleEndian.Uint32(batch)
				batch = batch[4+l:]
				n++
			}
		}
		b.StopTimer()
		lib.CloseStream(s)
		b.StartTimer()
		done += round
		from += uint64(round)
	}
}

func openBench(b *testing.B) (*ffi.Library, uint64) {
	lib := ffi.New()
	h, err := lib.Open(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lib.Close(h) })
	if _, err := lib.Call(h, "hms.agent.lifecycle.v1.LifecycleManager/RegisterAgent", wire.JSON, []byte(`{"agentId":"agent-001"}`), nil); err != nil {
		b.Fatal(err)
	}
	return lib, h
}

func grpcBench(b *testing.B) *grpc.ClientConn {
	url := startServer(b, "")
	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	var res v1.RegisterAgentResponse
	if err := conn.Invoke(context.Background(), "/hms.agent.lifecycle.v1.LifecycleManager/RegisterAgent", &v1.RegisterAgentRequest{AgentId: "agent-001"}, &res); err != nil {
		b.Fatal(fmt.Errorf("register over gRPC: %w", err))
	}
	return conn
}

// timed runs op b.N times and reports its median latency too (p50-ns), the figure the
// issue's overhead target is about.
func timed(b *testing.B, op func()) {
	lat := make([]time.Duration, 0, 1<<20)
	for b.Loop() {
		t := time.Now()
		op()
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
