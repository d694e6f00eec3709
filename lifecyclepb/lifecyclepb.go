// Package lifecyclepb maps the lifecycle domain types to the hms.agent.lifecycle.v1
// protobuf messages and back: the one place where transports (server, client, C ABI)
// convert.
package lifecyclepb

import (
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
)

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTimestamp(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func millis(d time.Duration) int32 { return int32(d / time.Millisecond) }

func duration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

// Event maps an event.
func Event(ev *lifecycle.Event) *v1.LifecycleEvent {
	if ev.Bookmark {
		return &v1.LifecycleEvent{Sequence: ev.Sequence, Bookmark: true}
	}
	return &v1.LifecycleEvent{
		EventId: ev.ID.String(), AgentId: ev.AgentID, PreviousState: ev.From, NewState: ev.To,
		TransitionType: ev.Type, Timestamp: timestamp(ev.Time), InitiatedBy: ev.InitiatedBy, Reason: ev.Reason,
		Metadata: ev.Metadata, Sequence: ev.Sequence, ErrorInfo: ErrorInfo(ev.Error), HookOutcomes: HookOutcomes(ev.Hooks),
		Revision: ev.Revision,
	}
}

// FromEvent maps an event back. A malformed event_id becomes the zero UUID.
func FromEvent(pb *v1.LifecycleEvent) lifecycle.Event {
	id, _ := uuid.Parse(pb.GetEventId())
	return lifecycle.Event{
		Sequence: pb.GetSequence(), ID: id, AgentID: pb.GetAgentId(), From: pb.GetPreviousState(), To: pb.GetNewState(),
		Type: pb.GetTransitionType(), Bookmark: pb.GetBookmark(), Time: fromTimestamp(pb.GetTimestamp()),
		InitiatedBy: pb.GetInitiatedBy(), Reason: pb.GetReason(), Metadata: pb.GetMetadata(), Revision: pb.GetRevision(),
		Error: FromErrorInfo(pb.GetErrorInfo()), Hooks: FromHookOutcomes(pb.GetHookOutcomes()),
	}
}

// ErrorInfo maps error details; nil stays nil.
func ErrorInfo(e *lifecycle.ErrorInfo) *v1.ErrorInfo {
	if e == nil {
		return nil
	}
	return &v1.ErrorInfo{Code: e.Code, Message: e.Message, Timestamp: timestamp(e.Time), IsRecoverable: e.Recoverable,
		RecoveryActions: e.RecoveryActions}
}

// FromErrorInfo maps error details back; nil stays nil.
func FromErrorInfo(pb *v1.ErrorInfo) *lifecycle.ErrorInfo {
	if pb == nil {
		return nil
	}
	return &lifecycle.ErrorInfo{Code: pb.GetCode(), Message: pb.GetMessage(), Time: fromTimestamp(pb.GetTimestamp()),
		Recoverable: pb.GetIsRecoverable(), RecoveryActions: pb.GetRecoveryActions()}
}

// HookOutcomes maps hook outcomes.
func HookOutcomes(hs []lifecycle.HookOutcome) []*v1.HookOutcome {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*v1.HookOutcome, len(hs))
	for i, h := range hs {
		out[i] = HookOutcome(h)
	}
	return out
}

// HookOutcome maps one hook outcome.
func HookOutcome(h lifecycle.HookOutcome) *v1.HookOutcome {
	return &v1.HookOutcome{HookId: h.HookID, HookName: h.HookName, Result: h.Result, Message: h.Message,
		LatencyUs: h.Latency.Microseconds(), Enforced: h.Enforced}
}

// FromHookOutcomes maps hook outcomes back.
func FromHookOutcomes(pbs []*v1.HookOutcome) []lifecycle.HookOutcome {
	if len(pbs) == 0 {
		return nil
	}
	out := make([]lifecycle.HookOutcome, len(pbs))
	for i, pb := range pbs {
		out[i] = lifecycle.HookOutcome{HookID: pb.GetHookId(), HookName: pb.GetHookName(), Result: pb.GetResult(),
			Message: pb.GetMessage(), Latency: time.Duration(pb.GetLatencyUs()) * time.Microsecond, Enforced: pb.GetEnforced()}
	}
	return out
}

// AgentState maps an agent's state.
func AgentState(st *lifecycle.AgentState) *v1.GetStateResponse {
	return &v1.GetStateResponse{
		State: st.State, TimeInStateMs: st.TimeInState.Milliseconds(), PreviousState: st.PreviousState,
		Metadata: st.Metadata, IsTransitioning: st.Transitioning, LastTransition: timestamp(st.EnteredAt),
		ErrorInfo: ErrorInfo(st.Error), AgentId: st.ID, Revision: st.Revision, Labels: st.Labels,
		CreatedAt: timestamp(st.CreatedAt), AllowedNextStates: st.AllowedNext, LastSequence: st.LastSequence,
		Supervision: Supervision(st.Supervision),
	}
}

// FromAgentState maps an agent's state back.
func FromAgentState(pb *v1.GetStateResponse) lifecycle.AgentState {
	return lifecycle.AgentState{
		Agent: lifecycle.Agent{
			ID: pb.GetAgentId(), State: pb.GetState(), PreviousState: pb.GetPreviousState(), Revision: pb.GetRevision(),
			Metadata: pb.GetMetadata(), Labels: pb.GetLabels(), CreatedAt: fromTimestamp(pb.GetCreatedAt()),
			EnteredAt: fromTimestamp(pb.GetLastTransition()), Error: FromErrorInfo(pb.GetErrorInfo()),
			LastSequence: pb.GetLastSequence(),
		},
		TimeInState: time.Duration(pb.GetTimeInStateMs()) * time.Millisecond, Transitioning: pb.GetIsTransitioning(),
		AllowedNext: pb.GetAllowedNextStates(), Supervision: FromSupervision(pb.GetSupervision()),
	}
}

func ms(d time.Duration) uint32 { return uint32(d / time.Millisecond) }

func fromMs(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }

// SupervisionPolicy maps a supervision policy; nil stays nil.
func SupervisionPolicy(p *lifecycle.SupervisionPolicy) *v1.SupervisionPolicy {
	if p == nil {
		return nil
	}
	return &v1.SupervisionPolicy{
		Restart: p.Restart, MaxRecoveries: uint32(p.MaxRecoveries), PeriodMs: ms(p.Period),
		BackoffInitialMs: ms(p.BackoffInitial), BackoffMaxMs: ms(p.BackoffMax), StablePeriodMs: ms(p.StablePeriod),
		OnGiveUp: p.OnGiveUp, HeartbeatTimeoutMs: ms(p.HeartbeatTimeout), ShuttingDownLimitMs: ms(p.ShuttingDownLimit),
		RecoveringLimitMs: ms(p.RecoveringLimit), UpgradingLimitMs: ms(p.UpgradingLimit),
	}
}

// FromSupervisionPolicy maps a supervision policy back; nil stays nil.
func FromSupervisionPolicy(pb *v1.SupervisionPolicy) *lifecycle.SupervisionPolicy {
	if pb == nil {
		return nil
	}
	return &lifecycle.SupervisionPolicy{
		Restart: pb.GetRestart(), MaxRecoveries: int(pb.GetMaxRecoveries()), Period: fromMs(pb.GetPeriodMs()),
		BackoffInitial: fromMs(pb.GetBackoffInitialMs()), BackoffMax: fromMs(pb.GetBackoffMaxMs()),
		StablePeriod: fromMs(pb.GetStablePeriodMs()), OnGiveUp: pb.GetOnGiveUp(),
		HeartbeatTimeout: fromMs(pb.GetHeartbeatTimeoutMs()), ShuttingDownLimit: fromMs(pb.GetShuttingDownLimitMs()),
		RecoveringLimit: fromMs(pb.GetRecoveringLimitMs()), UpgradingLimit: fromMs(pb.GetUpgradingLimitMs()),
	}
}

// Supervision maps an agent's supervision status; nil stays nil.
func Supervision(s *lifecycle.Supervision) *v1.SupervisionStatus {
	if s == nil {
		return nil
	}
	pb := &v1.SupervisionStatus{Policy: SupervisionPolicy(&s.Policy), DefaultPolicy: s.Default,
		RecoveriesInWindow: uint32(s.RecoveriesInWindow), LastHeartbeat: timestamp(s.LastHeartbeat)}
	if s.Next.Action != lifecycle.ActionNone {
		pb.NextAction = &v1.ScheduledAction{Action: s.Next.Action, TargetState: s.Next.Target, At: timestamp(s.Next.At), Reason: s.Next.Reason}
	}
	return pb
}

// FromSupervision maps an agent's supervision status back; nil stays nil.
func FromSupervision(pb *v1.SupervisionStatus) *lifecycle.Supervision {
	if pb == nil {
		return nil
	}
	s := &lifecycle.Supervision{Default: pb.GetDefaultPolicy(), RecoveriesInWindow: int(pb.GetRecoveriesInWindow()),
		LastHeartbeat: fromTimestamp(pb.GetLastHeartbeat())}
	if p := FromSupervisionPolicy(pb.GetPolicy()); p != nil {
		s.Policy = *p
	}
	if n := pb.GetNextAction(); n != nil {
		s.Next = lifecycle.ScheduledAction{Action: n.GetAction(), Target: n.GetTargetState(), At: fromTimestamp(n.GetAt()), Reason: n.GetReason()}
	}
	return s
}

// FromTransitionRequest maps a transition request.
func FromTransitionRequest(pb *v1.TransitionRequest) lifecycle.TransitionRequest {
	return lifecycle.TransitionRequest{
		AgentID: pb.GetAgentId(), Target: pb.GetTargetState(), Force: pb.GetForce(), Reason: pb.GetReason(),
		Timeout: duration(pb.GetTimeoutMs()), Metadata: pb.GetMetadata(), ExpectedState: pb.GetExpectedState(),
		ExpectedRevision: pb.GetExpectedRevision(), Error: FromErrorInfo(pb.GetErrorInfo()),
	}
}

// TransitionRequest maps a transition request to the wire.
func TransitionRequest(r *lifecycle.TransitionRequest) *v1.TransitionRequest {
	return &v1.TransitionRequest{
		AgentId: r.AgentID, TargetState: r.Target, Force: r.Force, Reason: r.Reason, TimeoutMs: millis(r.Timeout),
		Metadata: r.Metadata, ExpectedState: r.ExpectedState, ExpectedRevision: r.ExpectedRevision, ErrorInfo: ErrorInfo(r.Error),
	}
}

// TransitionResult maps a transition's answer.
func TransitionResult(r *lifecycle.TransitionResult) *v1.TransitionResponse {
	pb := &v1.TransitionResponse{
		Success: r.Success, PreviousState: r.Previous, CurrentState: r.Current, ErrorMessage: r.Message,
		RefusalReason: r.Refusal, AllowedNextStates: r.AllowedNext, HookOutcomes: HookOutcomes(r.Hooks), Revision: r.Revision,
	}
	if r.Success {
		pb.Event = Event(&r.Event)
	}
	return pb
}

// FromTransitionResult maps a transition's answer back.
func FromTransitionResult(pb *v1.TransitionResponse) lifecycle.TransitionResult {
	r := lifecycle.TransitionResult{
		Success: pb.GetSuccess(), Previous: pb.GetPreviousState(), Current: pb.GetCurrentState(), Message: pb.GetErrorMessage(),
		Refusal: pb.GetRefusalReason(), AllowedNext: pb.GetAllowedNextStates(), Hooks: FromHookOutcomes(pb.GetHookOutcomes()),
		Revision: pb.GetRevision(),
	}
	if pb.GetEvent() != nil {
		r.Event = FromEvent(pb.GetEvent())
	}
	return r
}

// FromHistoryRequest maps a history request.
func FromHistoryRequest(pb *v1.GetHistoryRequest) lifecycle.HistoryRequest {
	return lifecycle.HistoryRequest{AgentID: pb.GetAgentId(), Limit: int(pb.GetLimit()), Type: pb.GetTransitionType(),
		Start: fromTimestamp(pb.GetStartTime()), End: fromTimestamp(pb.GetEndTime()), PageToken: pb.GetPageToken()}
}

// HistoryRequest maps a history request to the wire.
func HistoryRequest(r *lifecycle.HistoryRequest) *v1.GetHistoryRequest {
	return &v1.GetHistoryRequest{AgentId: r.AgentID, Limit: int32(r.Limit), TransitionType: r.Type,
		StartTime: timestamp(r.Start), EndTime: timestamp(r.End), PageToken: r.PageToken}
}

// HistoryPage maps a page of history.
func HistoryPage(p *lifecycle.HistoryPage) *v1.GetHistoryResponse {
	pb := &v1.GetHistoryResponse{NextPageToken: p.NextPageToken, Events: make([]*v1.LifecycleEvent, len(p.Events))}
	for i := range p.Events {
		pb.Events[i] = Event(&p.Events[i])
	}
	return pb
}

// FromHistoryPage maps a page of history back.
func FromHistoryPage(pb *v1.GetHistoryResponse) lifecycle.HistoryPage {
	p := lifecycle.HistoryPage{NextPageToken: pb.GetNextPageToken(), Events: make([]lifecycle.Event, len(pb.GetEvents()))}
	for i, ev := range pb.GetEvents() {
		p.Events[i] = FromEvent(ev)
	}
	return p
}

// FromWatchRequest maps a watch request.
func FromWatchRequest(pb *v1.WatchEventsRequest) lifecycle.WatchRequest {
	return lifecycle.WatchRequest{AgentID: pb.GetAgentId(), States: pb.GetStates(), Types: pb.GetTransitionTypes(),
		FromSequence: pb.GetFromSequence(), BookmarkInterval: duration(pb.GetBookmarkIntervalMs())}
}

// WatchRequest maps a watch request to the wire.
func WatchRequest(r *lifecycle.WatchRequest) *v1.WatchEventsRequest {
	return &v1.WatchEventsRequest{AgentId: r.AgentID, States: r.States, TransitionTypes: r.Types,
		FromSequence: r.FromSequence, BookmarkIntervalMs: millis(r.BookmarkInterval)}
}

// FromHookSpec maps a hook registration.
func FromHookSpec(pb *v1.RegisterHookRequest) lifecycle.HookSpec {
	return lifecycle.HookSpec{Name: pb.GetHookName(), TriggerStates: pb.GetTriggerStates(), TriggerTypes: pb.GetTriggerTransitions(),
		Blocking: pb.GetIsBlocking(), Timeout: duration(pb.GetTimeoutMs()), Config: pb.GetConfig(), AgentIDs: pb.GetAgentIds()}
}

// HookSpec maps a hook registration to the wire.
func HookSpec(s *lifecycle.HookSpec) *v1.RegisterHookRequest {
	return &v1.RegisterHookRequest{HookName: s.Name, TriggerStates: s.TriggerStates, TriggerTransitions: s.TriggerTypes,
		IsBlocking: s.Blocking, TimeoutMs: millis(s.Timeout), Config: s.Config, AgentIds: s.AgentIDs}
}

// HookStatus maps a hook with its statistics.
func HookStatus(h *lifecycle.HookStatus) *v1.Hook {
	pb := &v1.Hook{HookId: h.ID, Spec: HookSpec(&h.Spec), CreatedAt: timestamp(h.CreatedAt), Invocations: h.Invocations,
		Allowed: h.Allowed, Vetoed: h.Vetoed, Failed: h.Failed, TimedOut: h.TimedOut, DeliveredSequence: h.Cursor,
		WorkerConnected: h.WorkerConnected}
	if h.Last != nil {
		pb.LastOutcome = HookOutcome(*h.Last)
	}
	return pb
}

// FromHookStatus maps a hook with its statistics back.
func FromHookStatus(pb *v1.Hook) lifecycle.HookStatus {
	h := lifecycle.HookStatus{
		Hook: lifecycle.Hook{ID: pb.GetHookId(), Spec: FromHookSpec(pb.GetSpec()), CreatedAt: fromTimestamp(pb.GetCreatedAt()),
			Cursor: pb.GetDeliveredSequence()},
		Invocations: pb.GetInvocations(), Allowed: pb.GetAllowed(), Vetoed: pb.GetVetoed(), Failed: pb.GetFailed(), TimedOut: pb.GetTimedOut(),
		WorkerConnected: pb.GetWorkerConnected(),
	}
	if pb.GetLastOutcome() != nil {
		last := FromHookOutcomes([]*v1.HookOutcome{pb.GetLastOutcome()})[0]
		h.Last = &last
	}
	return h
}

// FromListAgentsRequest maps a list request.
func FromListAgentsRequest(pb *v1.ListAgentsRequest) lifecycle.ListAgentsRequest {
	return lifecycle.ListAgentsRequest{States: pb.GetStates(), Labels: pb.GetLabelSelector(), PageSize: int(pb.GetPageSize()),
		PageToken: pb.GetPageToken()}
}

// ListAgentsRequest maps a list request to the wire.
func ListAgentsRequest(r *lifecycle.ListAgentsRequest) *v1.ListAgentsRequest {
	return &v1.ListAgentsRequest{States: r.States, LabelSelector: r.Labels, PageSize: int32(r.PageSize), PageToken: r.PageToken}
}

// AgentPage maps a page of agents.
func AgentPage(p *lifecycle.AgentPage) *v1.ListAgentsResponse {
	pb := &v1.ListAgentsResponse{NextPageToken: p.NextPageToken, Agents: make([]*v1.GetStateResponse, len(p.Agents))}
	for i := range p.Agents {
		pb.Agents[i] = AgentState(&p.Agents[i])
	}
	return pb
}

// FromAgentPage maps a page of agents back.
func FromAgentPage(pb *v1.ListAgentsResponse) lifecycle.AgentPage {
	p := lifecycle.AgentPage{NextPageToken: pb.GetNextPageToken(), Agents: make([]lifecycle.AgentState, len(pb.GetAgents()))}
	for i, a := range pb.GetAgents() {
		p.Agents[i] = FromAgentState(a)
	}
	return p
}
