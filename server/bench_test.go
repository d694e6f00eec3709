package server_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/client"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
)

// BenchmarkWireTransition measures a transition over loopback through the server (its
// grpc-go side for gRPC, net/http and connect-go for the Connect protocol) and the Go
// client (connect-go), or a grpc-go client as in BenchmarkBaselineEcho; memory store,
// client and server in one process, sharing the cores.
func BenchmarkWireTransition(b *testing.B) {
	b.Run("grpc-go-client", func(b *testing.B) {
		m, url := serveB(b)
		conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		const agents = 64
		for i := range agents {
			m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("w-%d", i)})
		}
		var next atomic.Int64
		b.SetParallelism(32)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			id := fmt.Sprintf("w-%d", next.Add(1)%agents)
			targets := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}
			i := 0
			for pb.Next() {
				res := new(v1.TransitionResponse)
				if err := conn.Invoke(ctx, lifecyclev1connect.LifecycleManagerTransitionStateProcedure,
					&v1.TransitionRequest{AgentId: id, TargetState: targets[i%2]}, res); err != nil {
					b.Fatal(err)
				}
				if res.GetSuccess() {
					i++
				}
			}
		})
	})
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

// BenchmarkBaselineEcho measures the bare serving stacks with the smallest call there is,
// a gRPC health check, over loopback from 64 goroutines, in the same run as
// BenchmarkWireTransition: grpc-go's own transport (client and server), and connect-go as
// this server configures it (no compression of small messages) with the gRPC protocol
// (h2c) and the Connect protocol (HTTP/1.1, as the client uses it).
func BenchmarkBaselineEcho(b *testing.B) {
	b.Run("grpc-go", func(b *testing.B) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		gs := grpc.NewServer()
		healthpb.RegisterHealthServer(gs, health.NewServer())
		go gs.Serve(ln)
		defer gs.Stop()
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		hc := healthpb.NewHealthClient(conn)
		runEcho(b, func() error { _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); return err })
	})
	for _, proto := range []struct {
		name string
		opt  []connect.ClientOption
	}{{"connect-go-grpc", []connect.ClientOption{connect.WithGRPC()}}, {"connect-go-connect", nil}} {
		b.Run(proto.name, func(b *testing.B) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			mux := http.NewServeMux()
			mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(), connect.WithCompressMinBytes(4096)))
			srv := &http.Server{Handler: mux}
			srv.Protocols = new(http.Protocols)
			srv.Protocols.SetHTTP1(true)
			srv.Protocols.SetUnencryptedHTTP2(true)
			go srv.Serve(ln)
			defer srv.Close()
			t := &http.Transport{MaxIdleConnsPerHost: 256} // Connect: a pool of HTTP/1.1 connections, as the client uses
			if proto.opt != nil {
				t.Protocols = new(http.Protocols)
				t.Protocols.SetUnencryptedHTTP2(true) // gRPC needs HTTP/2
			}
			c := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](&http.Client{Transport: t},
				"http://"+ln.Addr().String()+"/grpc.health.v1.Health/Check", proto.opt...)
			runEcho(b, func() error {
				_, err := c.CallUnary(ctx, connect.NewRequest(&healthpb.HealthCheckRequest{}))
				return err
			})
		})
	}
}

func runEcho(b *testing.B, call func() error) {
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
