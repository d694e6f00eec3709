package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
)

// TestGRPCGoClient: a grpc-go client (which waits for the server's SETTINGS before its
// first request) is served by the grpc-go side: health without a token, roles from the
// token in its metadata, a watch stream, and an ended watch's resume point in the trailer.
func TestGRPCGoClient(t *testing.T) {
	m, url := serveWithTokens(t)
	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: lifecyclev1connect.LifecycleManagerName}); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", res, err)
	}
	as := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	reg := new(v1.RegisterAgentResponse)
	err = conn.Invoke(as("viewer-token-0123456789"), lifecyclev1connect.LifecycleManagerRegisterAgentProcedure, &v1.RegisterAgentRequest{AgentId: "g1"}, reg)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "vera is viewer; RegisterAgent needs operator") {
		t.Fatalf("viewer registering: %v", err)
	}
	if err := conn.Invoke(ctx, lifecyclev1connect.LifecycleManagerRegisterAgentProcedure, &v1.RegisterAgentRequest{AgentId: "g1"}, reg); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	if err := conn.Invoke(as("operator-token-0123456789"), lifecyclev1connect.LifecycleManagerRegisterAgentProcedure, &v1.RegisterAgentRequest{AgentId: "g1"}, reg); err != nil {
		t.Fatal(err)
	}
	err = conn.Invoke(as("operator-token-0123456789"), lifecyclev1connect.LifecycleManagerGetStateProcedure, &v1.GetStateRequest{AgentId: "bad id"}, new(v1.GetStateResponse))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "agent_id") {
		t.Fatalf("bad id: %v", err)
	}

	wctx, cancel := context.WithTimeout(as("viewer-token-0123456789"), 10*time.Second)
	defer cancel()
	stream, err := conn.NewStream(wctx, &grpc.StreamDesc{ServerStreams: true}, lifecyclev1connect.LifecycleManagerWatchEventsProcedure)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&v1.WatchEventsRequest{AgentId: "g1", FromSequence: 1}); err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	res := new(v1.TransitionResponse)
	if err := conn.Invoke(as("operator-token-0123456789"), lifecyclev1connect.LifecycleManagerTransitionStateProcedure,
		&v1.TransitionRequest{AgentId: "g1", TargetState: lifecycle.StateActive}, res); err != nil || !res.GetSuccess() {
		t.Fatalf("transition: %v %v", res, err)
	}
	for _, want := range []lifecycle.State{lifecycle.StateInitialized, lifecycle.StateActive} {
		ev := new(v1.LifecycleEvent)
		if err := stream.RecvMsg(ev); err != nil || ev.GetNewState() != want {
			t.Fatalf("watched %v %v, want %s", ev, err, want)
		}
	}
	// The manager closing ends the watch, resumably.
	m.Close()
	err = stream.RecvMsg(new(v1.LifecycleEvent))
	if status.Code(err) != codes.Unavailable || stream.Trailer().Get("hms-resume-sequence")[0] != "3" {
		t.Fatalf("ended watch: %v, trailer %v", err, stream.Trailer())
	}
}
