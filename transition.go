package lifecycle

import (
	"context"
	"fmt"
	"time"
)

// TransitionRequest asks to move an agent to another state.
type TransitionRequest struct {
	AgentID string
	Target  State
	// Force allows an edge the table does not; it never leaves a terminal state.
	Force  bool
	Reason string
	// Timeout bounds the wait for the agent's previous transition and the blocking hooks.
	// Zero means DefaultTransitionTimeout.
	Timeout  time.Duration
	Metadata map[string]string
	// ExpectedState, if set, makes the transition happen only from that state.
	ExpectedState State
	// ExpectedRevision, if not zero, makes it happen only at that revision.
	ExpectedRevision int64
	// Error describes the error of a transition into ERROR. Nil means a recoverable
	// error whose message is the reason.
	Error *ErrorInfo
}

// TransitionResult answers a transition. A refusal by the lifecycle (edge not allowed,
// precondition, veto, hook failure, busy agent, terminal state) is a result with Success
// false, not an error.
type TransitionResult struct {
	Success  bool
	Previous State
	Current  State
	// Event is the recorded event when Success is true.
	Event    Event
	Refusal  RefusalReason
	Message  string
	Revision int64
	// AllowedNext lists the states reachable from Current; shared, read-only.
	AllowedNext []State
	Hooks       []HookOutcome
}

// Transition runs the transition pipeline: validate, wait for the agent's previous
// transition, check the table and preconditions, run the blocking hooks, commit the new
// state with its event atomically, then publish the event to watchers (non-blocking hooks
// take it from there). CodeInvalidArgument for malformed requests, CodeNotFound for an
// unknown agent.
func (m *Manager) Transition(ctx context.Context, req TransitionRequest) (TransitionResult, error) {
	if err := m.checkTransition(&req); err != nil {
		return TransitionResult{}, err
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = DefaultTransitionTimeout
	}
	deadline := m.now().Add(timeout)
	slot, err := m.slot(ctx, req.AgentID)
	if err != nil {
		return TransitionResult{}, err
	}
	if ok, err := slot.acquire(ctx, timeout); err != nil {
		return TransitionResult{}, err
	} else if !ok {
		a, err := m.store.GetAgent(ctx, req.AgentID)
		if err != nil {
			return TransitionResult{}, err
		}
		return m.refuse(&a, req.Target, RefusalTimedOut, nil,
			"agent %s is busy with another transition and stayed busy for %v (timeout_ms)", a.ID, timeout), nil
	}
	defer slot.release()

	a, err := m.store.GetAgent(ctx, req.AgentID)
	if err != nil {
		return TransitionResult{}, err
	}
	switch {
	case m.machine.terminal(a.State):
		return m.refuse(&a, req.Target, RefusalTerminal, nil,
			"agent %s is %s, a terminal state: no transition leaves it, not even a forced one", a.ID, StateName(a.State)), nil
	case req.ExpectedState != StateUnspecified && a.State != req.ExpectedState:
		return m.refuse(&a, req.Target, RefusalPreconditionFailed, nil,
			"agent %s is %s, not the expected %s", a.ID, StateName(a.State), StateName(req.ExpectedState)), nil
	case req.ExpectedRevision != 0 && a.Revision != req.ExpectedRevision:
		return m.refuse(&a, req.Target, RefusalPreconditionFailed, nil,
			"agent %s is at revision %d, not the expected %d", a.ID, a.Revision, req.ExpectedRevision), nil
	}
	allowed := m.machine.allowed(a.State, req.Target)
	if !allowed && (!req.Force || !m.machine.known[req.Target]) {
		return m.refuse(&a, req.Target, RefusalInvalidTransition, nil,
			"agent %s cannot go from %s to %s; allowed next states: %s", a.ID, StateName(a.State), StateName(req.Target), m.machine.nextText[a.State]), nil
	}

	now := m.now()
	initiator := InitiatorFrom(ctx)
	ev := Event{
		ID: newEventID(now), AgentID: a.ID, From: a.State, To: req.Target,
		Type: classify(!allowed, a.State, req.Target, initiator),
		Time: now, InitiatedBy: initiator, Reason: req.Reason, Metadata: cloneMap(req.Metadata),
		Revision: a.Revision + 1,
	}
	if req.Target == StateError {
		ev.Error = m.errorInfo(&req, now)
	}
	if hs := m.hooks.Load(); hs != nil && len(hs.blocking) > 0 {
		// Transitions into ERROR and forced ones are not vetoable: a hook must never be
		// able to hold an agent hostage.
		vetoable := allowed && req.Target != StateError
		refusal, msg := m.runBlocking(ctx, hs, &ev, deadline, vetoable)
		if refusal != RefusalNone {
			return m.refuse(&a, req.Target, refusal, ev.Hooks, "agent %s stays %s: %s", a.ID, StateName(a.State), msg), nil
		}
	}

	next := a
	next.PreviousState, next.State, next.Revision, next.EnteredAt, next.Error = a.State, req.Target, ev.Revision, now, ev.Error
	seq, err := m.store.CommitTransition(ctx, next, a.Revision, ev)
	if err != nil {
		if ErrorCode(err) == CodeAborted {
			return m.refuse(&a, req.Target, RefusalPreconditionFailed, ev.Hooks,
				"agent %s was changed concurrently by another server; read its state and retry", a.ID), nil
		}
		return TransitionResult{}, fmt.Errorf("commit transition of agent %s: %w", a.ID, err)
	}
	ev.Sequence = seq
	m.hub.publish(&ev)
	return TransitionResult{
		Success: true, Previous: a.State, Current: req.Target, Event: ev, Revision: ev.Revision,
		AllowedNext: m.machine.allowedNext(req.Target), Hooks: ev.Hooks,
	}, nil
}

func (m *Manager) checkTransition(req *TransitionRequest) error {
	if err := m.checkOpen(); err != nil {
		return err
	}
	if err := checkID("agent_id", req.AgentID); err != nil {
		return err
	}
	if err := checkState("target_state", req.Target, false); err != nil {
		return err
	}
	if err := checkState("expected_state", req.ExpectedState, true); err != nil {
		return err
	}
	if req.ExpectedRevision < 0 {
		return invalid("expected_revision is negative")
	}
	if err := checkText("reason", req.Reason, MaxReasonLength); err != nil {
		return err
	}
	if err := checkTimeout("timeout_ms", req.Timeout); err != nil {
		return err
	}
	if len(req.Metadata) > 0 {
		if err := checkMap("metadata", req.Metadata); err != nil {
			return err
		}
	}
	return checkErrorInfo(req.Error)
}

func (m *Manager) errorInfo(req *TransitionRequest, now time.Time) *ErrorInfo {
	if req.Error == nil {
		return &ErrorInfo{Message: req.Reason, Time: now, Recoverable: true, RecoveryActions: m.machine.recoveryActions}
	}
	e := *req.Error
	e.Time = now
	if len(e.RecoveryActions) == 0 {
		e.RecoveryActions = m.machine.recoveryActions
	} else {
		e.RecoveryActions = append([]string(nil), e.RecoveryActions...)
	}
	return &e
}

func (m *Manager) refuse(a *Agent, target State, reason RefusalReason, hooks []HookOutcome, format string, args ...any) TransitionResult {
	return TransitionResult{
		Previous: a.State, Current: a.State, Refusal: reason, Revision: a.Revision, Hooks: hooks,
		Message:     fmt.Sprintf(format, args...),
		AllowedNext: m.machine.allowedNext(a.State),
	}
}

// slot returns the agent's serialization slot, creating it for an existing agent.
func (m *Manager) slot(ctx context.Context, id string) (*agentSlot, error) {
	if s, ok := m.slots.Load(id); ok {
		return s.(*agentSlot), nil
	}
	if _, err := m.store.GetAgent(ctx, id); err != nil {
		return nil, err
	}
	s, _ := m.slots.LoadOrStore(id, &agentSlot{sem: make(chan struct{}, 1)})
	return s.(*agentSlot), nil
}

// acquire waits up to timeout for the agent to be free. It reports false on timeout and
// an error if ctx ends first.
func (s *agentSlot) acquire(ctx context.Context, timeout time.Duration) (bool, error) {
	select {
	case s.sem <- struct{}{}:
		return true, nil
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
		return true, nil
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (s *agentSlot) release() { <-s.sem }
