package lifecyclepb

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/hms-lifecycle/lifecycle"
)

var (
	t0   = time.Date(2026, 11, 22, 9, 30, 0, 123456789, time.UTC)
	errI = &lifecycle.ErrorInfo{Code: 503, Message: "down", Time: t0, Recoverable: true, RecoveryActions: []string{"RECOVERING"}}
	hook = lifecycle.HookOutcome{HookID: "h", HookName: "audit", Result: lifecycle.HookVetoed, Message: "no", Latency: 1500 * time.Microsecond, Enforced: true}
	ev   = lifecycle.Event{Sequence: 7, ID: uuid.Must(uuid.NewV7()), AgentID: "a", From: lifecycle.StateActive, To: lifecycle.StateError,
		Type: lifecycle.TypeErrorTriggered, Time: t0, InitiatedBy: "alice", Reason: "r", Metadata: map[string]string{"k": "v"},
		Revision: 3, Error: errI, Hooks: []lifecycle.HookOutcome{hook}}
	opts = cmp.Options{cmpopts.EquateEmpty()}
)

func TestRoundTrips(t *testing.T) {
	st := lifecycle.AgentState{
		Agent: lifecycle.Agent{ID: "a", State: lifecycle.StateError, PreviousState: lifecycle.StateActive, Revision: 3,
			Metadata: map[string]string{"m": "1"}, Labels: map[string]string{"l": "2"}, CreatedAt: t0, EnteredAt: t0.Add(time.Second),
			Error: errI, LastSequence: 7},
		TimeInState: 1500 * time.Millisecond, Transitioning: true, AllowedNext: []lifecycle.State{lifecycle.StateRecovering},
		Supervision: &lifecycle.Supervision{
			Policy: lifecycle.SupervisionPolicy{Restart: lifecycle.RestartOnError, MaxRecoveries: 3, Period: time.Minute,
				BackoffInitial: time.Second, BackoffMax: 4 * time.Second, StablePeriod: 2 * time.Minute, OnGiveUp: lifecycle.GiveUpTerminate,
				HeartbeatTimeout: 30 * time.Second, ShuttingDownLimit: time.Hour, RecoveringLimit: 5 * time.Minute, UpgradingLimit: 6 * time.Minute},
			Default: true, RecoveriesInWindow: 2, LastHeartbeat: t0,
			Next: lifecycle.ScheduledAction{Action: lifecycle.ActionRecover, Target: lifecycle.StateRecovering, At: t0.Add(time.Minute), Reason: "r"},
		},
	}
	if got := FromEvent(Event(&ev)); !cmp.Equal(ev, got, opts) {
		t.Errorf("event: %s", cmp.Diff(ev, got, opts))
	}
	if got := FromAgentState(AgentState(&st)); !cmp.Equal(st, got, opts) {
		t.Errorf("agent state: %s", cmp.Diff(st, got, opts))
	}
	req := lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateError, Force: true, Reason: "r", Timeout: 2 * time.Second,
		Metadata: map[string]string{"k": "v"}, ExpectedState: lifecycle.StateActive, ExpectedRevision: 3, Error: errI}
	if got := FromTransitionRequest(TransitionRequest(&req)); !cmp.Equal(req, got, opts) {
		t.Errorf("transition request: %s", cmp.Diff(req, got, opts))
	}
	res := lifecycle.TransitionResult{Success: true, Previous: lifecycle.StateActive, Current: lifecycle.StateError, Event: ev,
		Revision: 3, AllowedNext: []lifecycle.State{lifecycle.StateRecovering}, Hooks: []lifecycle.HookOutcome{hook}}
	if got := FromTransitionResult(TransitionResult(&res)); !cmp.Equal(res, got, opts) {
		t.Errorf("transition result: %s", cmp.Diff(res, got, opts))
	}
	hreq := lifecycle.HistoryRequest{AgentID: "a", Limit: 10, Type: lifecycle.TypeForced, Start: t0, End: t0.Add(time.Hour), PageToken: "x"}
	if got := FromHistoryRequest(HistoryRequest(&hreq)); !cmp.Equal(hreq, got, opts) {
		t.Errorf("history request: %s", cmp.Diff(hreq, got, opts))
	}
	page := lifecycle.HistoryPage{Events: []lifecycle.Event{ev}, NextPageToken: "n"}
	if got := FromHistoryPage(HistoryPage(&page)); !cmp.Equal(page, got, opts) {
		t.Errorf("history page: %s", cmp.Diff(page, got, opts))
	}
	w := lifecycle.WatchRequest{AgentID: "a", States: []lifecycle.State{lifecycle.StateError}, Types: []lifecycle.TransitionType{lifecycle.TypeForced},
		FromSequence: 9, BookmarkInterval: time.Second}
	if got := FromWatchRequest(WatchRequest(&w)); !cmp.Equal(w, got, opts) {
		t.Errorf("watch request: %s", cmp.Diff(w, got, opts))
	}
	hs := lifecycle.HookStatus{Hook: lifecycle.Hook{ID: "h", CreatedAt: t0, Cursor: 4, Spec: lifecycle.HookSpec{Name: "audit",
		TriggerStates: []lifecycle.State{lifecycle.StateError}, TriggerTypes: []lifecycle.TransitionType{lifecycle.TypeNormal},
		Blocking: true, Timeout: time.Second, Config: map[string]string{"callback": "c"}, AgentIDs: []string{"a"}}},
		Invocations: 5, Allowed: 1, Vetoed: 2, Failed: 1, TimedOut: 1, Last: &hook, WorkerConnected: true}
	if got := FromHookStatus(HookStatus(&hs)); !cmp.Equal(hs, got, opts) {
		t.Errorf("hook status: %s", cmp.Diff(hs, got, opts))
	}
	lreq := lifecycle.ListAgentsRequest{States: []lifecycle.State{lifecycle.StateActive}, Labels: map[string]string{"l": "2"}, PageSize: 5, PageToken: "t"}
	if got := FromListAgentsRequest(ListAgentsRequest(&lreq)); !cmp.Equal(lreq, got, opts) {
		t.Errorf("list request: %s", cmp.Diff(lreq, got, opts))
	}
	bm := lifecycle.Event{Sequence: 42, Bookmark: true}
	if got := FromEvent(Event(&bm)); !cmp.Equal(bm, got, opts) {
		t.Errorf("bookmark: %s", cmp.Diff(bm, got, opts))
	}
}
