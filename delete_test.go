package lifecycle_test

import (
	"strings"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
)

func TestDeleteAgent(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a-1")
	w, err := m.Watch(ctx, lifecycle.WatchRequest{AgentID: "a-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	_, err = m.DeleteAgent(ctx, lifecycle.DeleteRequest{AgentID: "a-1"})
	if lifecycle.ErrorCode(err) != lifecycle.CodeFailedPrecondition || !strings.Contains(err.Error(), "TERMINATED") {
		t.Fatalf("deleting an INITIALIZED agent: %v; want FAILED_PRECONDITION naming TERMINATED", err)
	}
	for _, bad := range []lifecycle.DeleteRequest{{AgentID: ""}, {AgentID: "a-1", Reason: "\xff"}} {
		if _, err := m.DeleteAgent(ctx, bad); lifecycle.ErrorCode(err) != lifecycle.CodeInvalidArgument {
			t.Errorf("DeleteAgent(%+v): %v, want INVALID_ARGUMENT", bad, err)
		}
	}
	if _, err := m.DeleteAgent(ctx, lifecycle.DeleteRequest{AgentID: "nobody"}); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("deleting an unknown agent: %v, want NOT_FOUND", err)
	}
	move(t, m, "a-1", lifecycle.StateTerminated)
	ev, err := m.DeleteAgent(lifecycle.WithInitiator(ctx, "alice"), lifecycle.DeleteRequest{AgentID: "a-1", Reason: "decommissioned"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.From != lifecycle.StateTerminated || ev.To != lifecycle.StateUnspecified || ev.InitiatedBy != "alice" ||
		ev.Reason != "decommissioned" || ev.Revision != 3 || ev.Sequence != 3 {
		t.Errorf("deletion event %+v", ev)
	}

	// A watcher sees the deletion after the transition.
	for _, want := range []lifecycle.State{lifecycle.StateTerminated, lifecycle.StateUnspecified} {
		got, err := w.Next(ctx)
		if err != nil || got.To != want {
			t.Fatalf("watched %v, %v; want an event into %s", got, err, lifecycle.StateName(want))
		}
	}
	// The record is gone; nothing acts on it any more.
	if _, err := m.GetState(ctx, "a-1", false); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("GetState of a deleted agent: %v, want NOT_FOUND", err)
	}
	if _, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a-1", Target: lifecycle.StateActive, Force: true}); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("Transition of a deleted agent: %v, want NOT_FOUND", err)
	}
	if _, err := m.DeleteAgent(ctx, lifecycle.DeleteRequest{AgentID: "a-1"}); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("deleting twice: %v, want NOT_FOUND", err)
	}
	if page, err := m.ListAgents(ctx, lifecycle.ListAgentsRequest{}); err != nil || len(page.Agents) != 0 {
		t.Errorf("ListAgents after the deletion: %+v, %v; want none", page, err)
	}
	// The id is never used again.
	if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a-1"}); lifecycle.ErrorCode(err) != lifecycle.CodeAlreadyExists ||
		!strings.Contains(err.Error(), "deleted") {
		t.Errorf("registering a deleted agent's id: %v, want ALREADY_EXISTS saying it was deleted", err)
	}
	// Its history stays, the deletion included.
	page, err := m.History(ctx, lifecycle.HistoryRequest{AgentID: "a-1", Limit: 10})
	if err != nil || len(page.Events) != 3 || page.Events[2].Reason != "decommissioned" {
		t.Fatalf("history of a deleted agent: %+v, %v; want its 3 events", page.Events, err)
	}
	if _, err := m.History(ctx, lifecycle.HistoryRequest{AgentID: "nobody", Limit: 10}); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("history of an unknown agent: %v, want NOT_FOUND", err)
	}
}
