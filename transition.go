package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"
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

// giveUpKey marks the context of the supervisor's record that it gave up: ERROR → ERROR,
// the one edge not in the table that it alone may take.
type giveUpKey struct{}

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
	if m.tracer != nil {
		return m.traceTransition(ctx, req)
	}
	return m.transitionPipeline(ctx, req)
}

// transitionPipeline answers in its named result, which transition fills in place: the
// result is large, and a copy more per transition measurably cost (tens of ns).
func (m *Manager) transitionPipeline(ctx context.Context, req TransitionRequest) (res TransitionResult, _ error) {
	if err := m.checkTransition(&req); err != nil {
		return TransitionResult{}, err
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = DefaultTransitionTimeout
	}
	slot, err := m.slot(ctx, req.AgentID)
	if err != nil {
		return TransitionResult{}, err
	}
	var span trace.Span
	if m.tracer != nil {
		_, span = m.span(ctx, "lifecycle.wait_agent")
	}
	waited, ok, err := slot.acquire(ctx, timeout)
	endSpan(span, err)
	if err != nil {
		return TransitionResult{}, err
	} else if !ok {
		a, err := m.store.GetAgent(ctx, req.AgentID)
		if err != nil {
			return TransitionResult{}, err
		}
		return m.refuse(&a, RefusalTimedOut, nil,
			"agent %s is busy with another transition and stayed busy for %v (timeout_ms)", a.ID, timeout), nil
	}
	defer slot.release()
	for attempt := 1; ; attempt++ {
		err := m.transition(ctx, slot, &req, timeout-waited, &res)
		if err != errStale && ErrorCode(err) != CodeAborted {
			return res, err
		}
		// Another replica may have changed the agent since this process cached it: reload
		// and try once more; if it changes again, the refusal in res says so.
		slot.cached.Revision = 0
		if attempt == 2 {
			return res, nil
		}
	}
}

// errStale: a refusal was decided from a cached record that another replica may have
// changed; it is decided again from a fresh read.
var errStale = errors.New("refusal from a possibly stale record")

// transition runs the pipeline for an agent whose slot the caller holds, answering in
// res (a pointer, so that the large result is not copied on its way up).
func (m *Manager) transition(ctx context.Context, slot *agentSlot, req *TransitionRequest, timeout time.Duration, res *TransitionResult) (err error) {
	fresh := slot.cached.Revision == 0
	if fresh {
		a, err := m.store.GetAgent(ctx, req.AgentID)
		if err != nil {
			return err
		}
		slot.cached = a
	}
	if m.shared && !fresh {
		defer func() {
			if err == nil && !res.Success && res.Refusal != RefusalHookVetoed && res.Refusal != RefusalHookFailed {
				err = errStale
			}
		}()
	}
	a := &slot.cached
	switch {
	case m.machine.terminal(a.State):
		*res = m.refuse(a, RefusalTerminal, nil,
			"agent %s is %s, a terminal state: no transition leaves it, not even a forced one", a.ID, m.machine.name(a.State))
		return nil
	case req.ExpectedState != StateUnspecified && a.State != req.ExpectedState:
		*res = m.refuse(a, RefusalPreconditionFailed, nil,
			"agent %s is %s, not the expected %s", a.ID, m.machine.name(a.State), m.machine.name(req.ExpectedState))
		return nil
	case req.ExpectedRevision != 0 && a.Revision != req.ExpectedRevision:
		*res = m.refuse(a, RefusalPreconditionFailed, nil,
			"agent %s is at revision %d, not the expected %d", a.ID, a.Revision, req.ExpectedRevision)
		return nil
	}
	allowed := m.machine.allowed(a.State, req.Target) ||
		a.State == m.machine.errorState && req.Target == a.State && ctx.Value(giveUpKey{}) != nil
	if !allowed && (!req.Force || !m.machine.known[req.Target]) {
		*res = m.refuse(a, RefusalInvalidTransition, nil,
			"agent %s cannot go from %s to %s; allowed next states: %s", a.ID, m.machine.name(a.State), m.machine.name(req.Target), m.machine.nextText[a.State])
		return nil
	}

	now := m.now()
	initiator := InitiatorFrom(ctx)
	ev := Event{
		ID: newEventID(now), AgentID: a.ID, From: a.State, To: req.Target,
		Type: m.machine.classify(!allowed, a.State, req.Target, initiator),
		Time: now, InitiatedBy: initiator, Reason: req.Reason, Metadata: cloneMap(req.Metadata),
		Revision: a.Revision + 1,
	}
	if req.Target == m.machine.errorState {
		ev.Error = m.errorInfo(req, now)
	}
	if hs := m.hooks.Load(); len(hs.blocking) > 0 {
		// Hooks must judge the agent as it is: with other replicas, confirm the cached
		// record first (a veto is not re-checked like the other refusals).
		if m.shared && !fresh {
			if cur, err := m.store.GetAgent(ctx, a.ID); err != nil {
				return err
			} else if cur.Revision != a.Revision {
				return errStale
			}
		}
		// Transitions into ERROR and forced ones are not vetoable: a hook must never be
		// able to hold an agent hostage.
		vetoable := allowed && req.Target != m.machine.errorState
		refusal, msg := m.runBlocking(ctx, hs, &ev, now.Add(timeout), vetoable)
		if refusal != RefusalNone {
			*res = m.refuse(a, refusal, ev.Hooks, "agent %s stays %s: %s", a.ID, m.machine.name(a.State), msg)
			return nil
		}
	}

	var span trace.Span
	sctx := ctx
	if m.tracer != nil {
		sctx, span = m.span(ctx, "lifecycle.store.commit")
	}
	seq, err := m.store.CommitTransition(sctx, ev, a.Revision)
	endSpan(span, err)
	if err != nil {
		if ErrorCode(err) == CodeAborted {
			*res = m.refuse(a, RefusalPreconditionFailed, ev.Hooks,
				"agent %s was changed concurrently by another server; read its state and retry", a.ID)
			return err
		}
		slot.cached.Revision = 0 // the store may or may not have it: reload next time
		return fmt.Errorf("commit transition of agent %s: %w", a.ID, err)
	}
	ev.Sequence = seq
	a.Apply(&ev)
	if m.tracer != nil {
		_, span = m.span(ctx, "lifecycle.publish")
	}
	m.hub.publish(&ev)
	endSpan(span, nil)
	*res = TransitionResult{
		Success: true, Previous: ev.From, Current: ev.To, Event: ev, Revision: ev.Revision,
		AllowedNext: m.machine.allowedNext(ev.To), Hooks: ev.Hooks,
	}
	return nil
}

func (m *Manager) checkTransition(req *TransitionRequest) error {
	if err := m.checkOpen(); err != nil {
		return err
	}
	if err := checkID("agent_id", req.AgentID); err != nil {
		return err
	}
	if err := m.machine.check("target_state", req.Target, false); err != nil {
		return err
	}
	if err := m.machine.check("expected_state", req.ExpectedState, true); err != nil {
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

func (m *Manager) refuse(a *Agent, reason RefusalReason, hooks []HookOutcome, format string, args ...any) TransitionResult {
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
	a, err := m.store.GetAgent(ctx, id)
	if err != nil {
		return nil, err
	}
	s, _ := m.slots.LoadOrStore(id, &agentSlot{cached: a})
	return s.(*agentSlot), nil
}

// acquire waits up to timeout for the agent to be free and says how long it waited. It
// reports false on timeout and an error if ctx ends first.
// The uncontended path is one compare-and-swap; waiters register first, so a release
// either sees them and signals, or happens before their next compare-and-swap.
func (s *agentSlot) acquire(ctx context.Context, timeout time.Duration) (time.Duration, bool, error) {
	if s.held.CompareAndSwap(false, true) {
		return 0, true, nil
	}
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	start := time.Now()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if s.held.CompareAndSwap(false, true) {
			return time.Since(start), true, nil
		}
		select {
		case <-s.wakeChan():
		case <-t.C:
			return 0, false, nil
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
	}
}

func (s *agentSlot) release() {
	s.held.Store(false)
	if s.waiters.Load() > 0 {
		select {
		case s.wakeChan() <- struct{}{}:
		default:
		}
	}
}

func (s *agentSlot) wakeChan() chan struct{} {
	if c := s.wake.Load(); c != nil {
		return *c
	}
	c := make(chan struct{}, 1)
	if s.wake.CompareAndSwap(nil, &c) {
		return c
	}
	return *s.wake.Load()
}
