package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
	"github.com/hms-lifecycle/lifecycle/server"
)

// benchCommand is the load generator: N clients move their own agents between ACTIVE and
// PAUSED over the wire for a bounded time, printing progress every second, then throughput
// and latency percentiles. Its agents (ids bench-<run>-<n>) are terminated and deleted at
// the end.
func benchCommand(g *globals) *cobra.Command {
	var clients int
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Drive transitions against a server from N concurrent clients and report throughput and latency",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if clients < 1 || clients > 4096 {
				return usageError{fmt.Errorf("--clients %d: use 1 to 4096", clients)}
			}
			if duration <= 0 || duration > time.Hour {
				return usageError{fmt.Errorf("--duration %v: use up to 1h", duration)}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var target benchTarget = c
			if g.protocol == "grpc" {
				// gRPC load comes from grpc-go's client, the fastest there is: the figures
				// are the server's, not the client library's.
				gc, err := g.grpcClient()
				if err != nil {
					return err
				}
				defer gc.conn.Close()
				target = gc
			}
			return bench(cmd.Context(), target, clients, duration, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().IntVar(&clients, "clients", 16, "concurrent clients, each with its own agent")
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long to drive load")
	return cmd
}

// benchTarget is what the load generator needs of a client.
type benchTarget interface {
	RegisterAgent(ctx context.Context, req lifecycle.RegisterRequest) (lifecycle.AgentState, lifecycle.Event, error)
	Transition(ctx context.Context, req lifecycle.TransitionRequest) (lifecycle.TransitionResult, error)
	DeleteAgent(ctx context.Context, req lifecycle.DeleteRequest) (lifecycle.Event, error)
}

// grpcBench is a benchTarget over grpc-go.
type grpcBench struct {
	conn *grpc.ClientConn
}

func (g *globals) grpcClient() (*grpcBench, error) {
	u, err := url.Parse(g.server)
	if err != nil || u.Host == "" {
		return nil, usageError{fmt.Errorf("--server %q: want http://host:port or https://host:port", g.server)}
	}
	creds := insecure.NewCredentials()
	if u.Scheme == "https" {
		tc, err := g.tls.client()
		if err != nil {
			return nil, err
		}
		if tc == nil {
			tc = &tls.Config{}
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if g.encoding != "" && g.encoding != "proto" {
		opts = append(opts, grpc.WithDefaultCallOptions(grpc.CallContentSubtype(g.encoding)))
	}
	if g.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerCreds{g.token, u.Scheme == "https"}))
	}
	conn, err := grpc.NewClient(u.Host, opts...)
	if err != nil {
		return nil, usageError{err}
	}
	return &grpcBench{conn: conn}, nil
}

type bearerCreds struct {
	token  string
	secure bool
}

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerCreds) RequireTransportSecurity() bool { return b.secure }

func (c *grpcBench) RegisterAgent(ctx context.Context, req lifecycle.RegisterRequest) (lifecycle.AgentState, lifecycle.Event, error) {
	res := new(v1.RegisterAgentResponse)
	err := c.conn.Invoke(ctx, lifecyclev1connect.LifecycleManagerRegisterAgentProcedure,
		&v1.RegisterAgentRequest{AgentId: req.AgentID, Labels: req.Labels}, res)
	if err != nil {
		return lifecycle.AgentState{}, lifecycle.Event{}, grpcDomainError(err)
	}
	return lifecyclepb.FromAgentState(res.GetAgent()), lifecyclepb.FromEvent(res.GetEvent()), nil
}

func (c *grpcBench) Transition(ctx context.Context, req lifecycle.TransitionRequest) (lifecycle.TransitionResult, error) {
	res := new(v1.TransitionResponse)
	if err := c.conn.Invoke(ctx, lifecyclev1connect.LifecycleManagerTransitionStateProcedure, lifecyclepb.TransitionRequest(&req), res); err != nil {
		return lifecycle.TransitionResult{}, grpcDomainError(err)
	}
	return lifecyclepb.FromTransitionResult(res), nil
}

func (c *grpcBench) DeleteAgent(ctx context.Context, req lifecycle.DeleteRequest) (lifecycle.Event, error) {
	res := new(v1.DeleteAgentResponse)
	err := c.conn.Invoke(ctx, lifecyclev1connect.LifecycleManagerDeleteAgentProcedure,
		&v1.DeleteAgentRequest{AgentId: req.AgentID, Reason: req.Reason}, res)
	if err != nil {
		return lifecycle.Event{}, grpcDomainError(err)
	}
	return lifecyclepb.FromEvent(res.GetEvent()), nil
}

func grpcDomainError(err error) error {
	st, _ := status.FromError(err)
	return &lifecycle.Error{Code: server.DomainCode(connect.Code(st.Code())), Message: st.Message()}
}

func bench(ctx context.Context, svc benchTarget, clients int, duration time.Duration, out, progress io.Writer) error {
	run := time.Now().UnixNano()
	ids := make([]string, 0, clients)
	defer func() { removeBenchAgents(context.WithoutCancel(ctx), svc, ids, progress) }()
	for i := range clients {
		id := fmt.Sprintf("bench-%x-%d", run, i)
		if _, _, err := svc.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id, Labels: map[string]string{"bench": "true"}}); err != nil {
			return fmt.Errorf("register bench agents: %w", err)
		}
		ids = append(ids, id)
	}
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	var done, failed atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := lifecycle.TransitionRequest{AgentID: ids[i], Reason: "bench"}
			for n := 0; ctx.Err() == nil; n++ {
				req.Target = []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}[n%2]
				t0 := time.Now()
				res, err := svc.Transition(ctx, req)
				if code := lifecycle.ErrorCode(err); ctx.Err() != nil || code == lifecycle.CodeDeadlineExceeded || code == lifecycle.CodeCanceled {
					return // the run is over (the server may see the deadline a moment first)
				}
				if err != nil || !res.Success {
					failed.Add(1)
					n-- // try the same target again
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
				done.Add(1)
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	var last int64
	for running := true; running; {
		select {
		case <-tick.C:
			n := done.Load()
			fmt.Fprintf(progress, "%4.0fs  %9d transitions  %7d/s  %d failed\n", time.Since(start).Seconds(), n, n-last, failed.Load())
			last = n
		case <-stopped:
			running = false
		}
	}
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return fmt.Errorf("no transition succeeded (%d failed)", failed.Load())
	}
	pct := func(p float64) time.Duration { return all[int(float64(len(all)-1)*p)] }
	fmt.Fprintf(out, "%d clients, %v: %d transitions, %.0f/s; latency p50 %v, p99 %v, p99.9 %v; %d failed\n",
		clients, elapsed.Round(time.Millisecond), len(all), float64(len(all))/elapsed.Seconds(),
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(0.999).Round(time.Microsecond), failed.Load())
	return nil
}

// removeBenchAgents terminates and deletes the agents a bench run registered, and says
// which it could not remove (deleting needs the admin role).
func removeBenchAgents(ctx context.Context, svc benchTarget, ids []string, progress io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var left []string
	var why error
	for _, id := range ids {
		// Forced: straight to TERMINATED from wherever the run left it.
		res, err := svc.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateTerminated, Force: true, Reason: "bench done"})
		if err == nil && !res.Success {
			err = errors.New(res.Message)
		}
		if err == nil {
			_, err = svc.DeleteAgent(ctx, lifecycle.DeleteRequest{AgentID: id, Reason: "bench done"})
		}
		if err != nil {
			left, why = append(left, id), err
		}
	}
	if len(left) > 0 {
		fmt.Fprintf(progress, "could not remove %d bench agents (%s…): %v\n", len(left), left[0], why)
	}
}
