package postgres_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/postgres"
)

func TestUnreachableAtOpen(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := postgres.Open(cctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", port), nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Fatalf("open of an unreachable database: %v", err)
	}
}

// TestServerOutage stops PostgreSQL under a running manager: calls fail with
// CodeUnavailable and nothing partial is stored; once the server is back, the manager
// carries on with no gap, and its watcher with it.
func TestServerOutage(t *testing.T) {
	r := newReplica(t, newDatabase(t), "a", nil)
	if _, _, err := r.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "x"}); err != nil {
		t.Fatal(err)
	}
	w, _ := r.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	defer w.Close()
	next(t, w)

	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			cluster.StartServer()
		}
	}()
	_, err := r.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StateActive})
	if lifecycle.ErrorCode(err) != lifecycle.CodeUnavailable {
		t.Fatalf("transition while the database is down: %v", err)
	}
	if _, err := r.GetState(ctx, "x", false); lifecycle.ErrorCode(err) != lifecycle.CodeUnavailable {
		t.Fatalf("get state while the database is down: %v", err)
	}

	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	var res lifecycle.TransitionResult
	waitFor(t, func() bool {
		res, err = r.Transition(ctx, lifecycle.TransitionRequest{AgentID: "x", Target: lifecycle.StateActive})
		return err == nil
	})
	if !res.Success || res.Event.Sequence != 2 || res.Revision != 2 {
		t.Fatalf("after the outage: %+v", res)
	}
	if ev := next(t, w); ev.Sequence != 2 {
		t.Fatalf("watcher after the outage got %d", ev.Sequence)
	}
}
