package lifecycle

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The supervisor makes the Manager act by itself (section 4.3): it recovers agents from
// ERROR within a restart intensity, moves ACTIVE agents that stopped sending heartbeats to
// ERROR, and moves agents on from transitional states they stayed in too long.
//
// Its schedule is derived from stored state, never kept only in timers: every action is a
// function of the agent's record (state, entry time, the sequence of the event that
// entered it, error, policy), the agent's history within the policy's period, and the
// heartbeats. On start it lists the agents; then it follows the event stream (its own
// process's commits and, over a SharedStore, the other replicas'). Each action is an
// ordinary transition through the pipeline, made only at the revision it was planned
// for, so a user's transition in between cancels it and two replicas never both make it.
// Over a SharedStore, one replica at a time (the holder of the "supervisor" lease) acts.
type supervisor struct {
	m      *Manager
	def    SupervisionPolicy // the server's default, defaults applied
	tick   time.Duration
	start  time.Time // liveness deadlines are at least start + timeout
	shared SharedStore

	runMu     sync.Mutex    // one supervise pass at a time; guards leaseEnd, lastFlush
	inflight  chan struct{} // one element per automatic transition in flight
	freed     chan struct{} // an automatic transition finished: there may be room for more
	spare     []Event       // the tap's previous batch, reused
	resync    atomic.Bool
	leaseEnd  time.Time
	lastFlush time.Time

	mu       sync.Mutex
	agents   map[string]*tracked
	policies map[string]*SupervisionPolicy // agents' own policies, defaults applied
	counts   [maxStates]int                // own policies supervising each state
	queue    actionQueue
	beats    map[string]time.Time // over a SharedStore: heartbeats not yet recorded there
}

// tracked is an agent the supervisor follows: one with a scheduled action or a liveness
// policy.
type tracked struct {
	id        string
	revision  int64
	enteredAt time.Time
	err       *ErrorInfo // shared, read-only
	beat      time.Time
	next      ScheduledAction // Action is ActionNone when nothing is scheduled
	index     int             // in queue; -1 when not queued
}

// Supervision defaults of the loop.
const (
	DefaultSuperviseTick = 100 * time.Millisecond
	superviseLease       = "supervisor"
	heartbeatFlush       = time.Second
	maxConcurrentActions = 64
	maxHistoryScan       = 10000 // events read to count an agent's recent recoveries
	actionRetry          = time.Second
)

func newSupervisor(m *Manager, def *SupervisionPolicy, tick time.Duration) *supervisor {
	s := &supervisor{m: m, tick: tick, start: m.now(), inflight: make(chan struct{}, maxConcurrentActions), freed: make(chan struct{}, 1),
		agents: map[string]*tracked{}, policies: map[string]*SupervisionPolicy{}, beats: map[string]time.Time{}}
	if def != nil {
		s.def = *def
	}
	s.def = s.def.WithDefaults()
	if sh, ok := m.store.(SharedStore); ok {
		s.shared = sh
	}
	return s
}

// load lists every agent. Events committed meanwhile reach the supervisor through the
// hub's tap too; an event seen twice converges, since events are applied in order.
func (s *supervisor) load(ctx context.Context) error {
	s.refilter()
	after := ""
	for {
		page, err := s.m.store.ListAgents(ctx, AgentFilter{AfterID: after, Limit: MaxPageSize})
		if err != nil {
			return fmt.Errorf("supervisor: list agents: %w", err)
		}
		for i := range page {
			if err := s.observeRecord(ctx, &page[i]); err != nil {
				return err
			}
		}
		if len(page) < MaxPageSize {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// supervisedStates are the states whose entry matters under policy p.
func supervisedStates(p *SupervisionPolicy) uint32 {
	var bits uint32
	for _, f := range []struct {
		on    bool
		state State
	}{{p.Restart != RestartNever, StateError}, {p.HeartbeatTimeout > 0, StateActive},
		{p.ShuttingDownLimit > 0, StateShuttingDown}, {p.RecoveringLimit > 0, StateRecovering},
		{p.UpgradingLimit > 0, StateUpgrading}} {
		if f.on {
			bits |= 1 << f.state
		}
	}
	return bits
}

// refilter sets the hub's tap to the states some policy supervises (and, over a shared
// store, registrations, which may carry a policy), so that transitions nobody supervises
// cost the supervisor nothing. An agent whose transition it did not see is re-read when
// its planned action is refused.
func (s *supervisor) refilter() {
	s.mu.Lock()
	bits := supervisedStates(&s.def)
	for st, n := range s.counts {
		if n > 0 {
			bits |= 1 << st
		}
	}
	if s.shared != nil {
		bits |= 1 << StateInitialized
	}
	s.mu.Unlock()
	s.m.hub.tap.states.Store(bits)
}

func (s *supervisor) loop(ctx context.Context) {
	defer s.m.workers.Done()
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.notify():
		case <-s.freed:
		case <-t.C:
		}
		if err := s.supervise(ctx, false); err != nil && ctx.Err() == nil {
			s.m.log.Error("supervisor", "err", err)
		}
	}
}

// notify is the hub's signal that events the supervisor watches were published.
func (s *supervisor) notify() <-chan struct{} { return s.m.hub.tap.notify }

// Supervise brings the supervisor up to date with the committed events and performs every
// automatic action due by the Manager's clock, waiting for them. The Manager calls it
// every Options.SuperviseTick (without waiting for the transitions it starts); with a
// negative tick only callers do (tests that drive a manual clock).
func (m *Manager) Supervise(ctx context.Context) error {
	if err := m.checkOpen(); err != nil || m.sup == nil {
		return err
	}
	return m.sup.supervise(ctx, true)
}

func (s *supervisor) supervise(ctx context.Context, wait bool) error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if err := s.drain(ctx); err != nil {
		return err
	}
	s.flushBeats(ctx)
	if !s.lead(ctx) {
		return nil
	}
	var wg sync.WaitGroup
	for s.startDue(ctx, &wg) > 0 && wait {
		wg.Wait()
	}
	return nil
}

// drain observes the events the tap collected since the last pass.
func (s *supervisor) drain(ctx context.Context) error {
	t := &s.m.hub.tap
	t.mu.Lock()
	evs, overflow := t.events, t.overflow
	t.events, t.overflow = s.spare[:0], false
	t.mu.Unlock()
	defer func() { s.spare = evs }()
	if overflow {
		s.m.log.Warn("supervisor fell behind the event stream; reloading agents")
		s.resync.Store(true)
	}
	if s.resync.Swap(false) {
		if err := s.load(ctx); err != nil {
			s.resync.Store(true)
			return err
		}
	}
	for i := range evs {
		ev := &evs[i]
		if ev.From == StateUnspecified && s.shared != nil {
			// Registered by another replica, perhaps with its own policy.
			if err := s.reload(ctx, ev.AgentID); err != nil {
				return err
			}
			continue
		}
		if err := s.observe(ctx, ev.AgentID, ev.To, ev.Revision, ev.Time, ev.Sequence, ev.Error, time.Time{}); err != nil {
			return err
		}
	}
	clear(evs)
	return nil
}

// reload reads an agent's record and observes it (after a policy change, or when the
// supervisor's view may be stale).
func (s *supervisor) reload(ctx context.Context, id string) error {
	a, err := s.m.store.GetAgent(ctx, id)
	if ErrorCode(err) == CodeNotFound {
		return nil
	} else if err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	return s.observeRecord(ctx, &a)
}

func (s *supervisor) observeRecord(ctx context.Context, a *Agent) error {
	s.setPolicy(a.ID, a.Policy)
	return s.observe(ctx, a.ID, a.State, a.Revision, a.EnteredAt, a.LastSequence, a.Error, a.HeartbeatAt)
}

func (s *supervisor) setPolicy(id string, p *SupervisionPolicy) {
	s.mu.Lock()
	before := s.counts
	if old := s.policies[id]; old != nil {
		s.count(old, -1)
		delete(s.policies, id)
	}
	if p != nil {
		d := p.WithDefaults()
		s.policies[id] = &d
		s.count(&d, 1)
	}
	changed := before != s.counts
	s.mu.Unlock()
	if changed {
		s.refilter()
	}
}

// count adds n to the counts of the states p supervises. Call with mu held.
func (s *supervisor) count(p *SupervisionPolicy, n int) {
	bits := supervisedStates(p)
	for st := range State(maxStates) {
		if bits&(1<<st) != 0 {
			s.counts[st] += n
		}
	}
}

// policy returns the agent's effective policy and whether it is the default.
func (s *supervisor) policy(id string) (*SupervisionPolicy, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.policyLocked(id)
	return p, p == &s.def
}

func (s *supervisor) policyLocked(id string) *SupervisionPolicy {
	if p := s.policies[id]; p != nil {
		return p
	}
	return &s.def
}

// observe plans the supervision of an agent that is in state since entered (by the event
// of sequence seq, making it revision rev); beat is a heartbeat time from the store.
func (s *supervisor) observe(ctx context.Context, id string, state State, rev int64, entered time.Time, seq uint64, errInfo *ErrorInfo, beat time.Time) error {
	p, _ := s.policy(id)
	next, err := s.plan(ctx, id, p, state, entered, seq, errInfo)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.agents[id]
	if t != nil && t.revision > rev {
		return nil // a newer event was observed already
	}
	if next.Action == ActionNone && (p.HeartbeatTimeout == 0 || s.m.machine.terminal(state)) {
		if t != nil {
			if t.index >= 0 {
				heap.Remove(&s.queue, t.index)
			}
			delete(s.agents, id)
		}
		return nil
	}
	if t == nil {
		t = &tracked{id: id, index: -1}
		s.agents[id] = t
	}
	t.revision, t.enteredAt, t.err, t.next = rev, entered, errInfo, next
	if beat.After(t.beat) {
		t.beat = beat
	}
	if next.Action == ActionLiveness {
		t.next.At = s.livenessDeadline(entered, t.beat, p)
	}
	s.schedule(t)
	return nil
}

// plan decides an agent's next automatic action under policy p (a liveness deadline is
// left to the caller, who knows the heartbeats).
func (s *supervisor) plan(ctx context.Context, id string, p *SupervisionPolicy, state State, entered time.Time, seq uint64, errInfo *ErrorInfo) (ScheduledAction, error) {
	switch {
	case state == StateError && errInfo != nil && errInfo.Recoverable && p.Restart == RestartOnError:
		evs, err := s.recentEvents(ctx, id, p, entered, TypeUnspecified)
		if err != nil {
			return ScheduledAction{}, err
		}
		n, attempt := recoveryCount(evs, p, entered)
		if n >= p.MaxRecoveries {
			next := ScheduledAction{Action: ActionGiveUp, Target: StateError, At: entered, Reason: fmt.Sprintf(
				"recovery gave up: %d automatic recoveries within %v reached max_recoveries %d", n, p.Period, p.MaxRecoveries)}
			if p.OnGiveUp == GiveUpTerminate {
				next.Target = StateTerminated
			}
			return next, nil
		}
		backoff := p.Backoff(id, seq, attempt)
		return ScheduledAction{Action: ActionRecover, Target: StateRecovering, At: entered.Add(backoff), Reason: fmt.Sprintf(
			"automatic recovery, attempt %d, after a backoff of %v (%d of %d within %v)", attempt, backoff.Round(time.Millisecond), n+1, p.MaxRecoveries, p.Period)}, nil
	case state == StateActive && p.HeartbeatTimeout > 0:
		return ScheduledAction{Action: ActionLiveness, Target: StateError, Reason: fmt.Sprintf(
			"no heartbeat for %v (heartbeat_timeout)", p.HeartbeatTimeout)}, nil
	case state == StateShuttingDown && p.ShuttingDownLimit > 0:
		return timeLimit(state, StateTerminated, entered, p.ShuttingDownLimit), nil
	case state == StateRecovering && p.RecoveringLimit > 0:
		return timeLimit(state, StateError, entered, p.RecoveringLimit), nil
	case state == StateUpgrading && p.UpgradingLimit > 0:
		return timeLimit(state, StateError, entered, p.UpgradingLimit), nil
	}
	return ScheduledAction{}, nil
}

func timeLimit(state, target State, entered time.Time, limit time.Duration) ScheduledAction {
	return ScheduledAction{Action: ActionTimeLimit, Target: target, At: entered.Add(limit), Reason: fmt.Sprintf(
		"%s exceeded its time limit of %v", StateName(state), limit)}
}

// livenessDeadline: a heartbeat is due within the timeout of the last one, of entering
// ACTIVE, or of this process's start (so a restart does not fail every agent at once).
func (s *supervisor) livenessDeadline(entered, beat time.Time, p *SupervisionPolicy) time.Time {
	from := entered
	if beat.After(from) {
		from = beat
	}
	if s.start.After(from) {
		from = s.start
	}
	return from.Add(p.HeartbeatTimeout)
}

// schedule puts t in the queue at t.next.At, or takes it out. Call with mu held.
func (s *supervisor) schedule(t *tracked) {
	switch {
	case t.next.Action == ActionNone && t.index >= 0:
		heap.Remove(&s.queue, t.index)
	case t.next.Action == ActionNone:
	case t.index >= 0:
		heap.Fix(&s.queue, t.index)
	default:
		heap.Push(&s.queue, t)
	}
}

// recentEvents reads the agent's events within the policy's period before at, of type typ
// only unless it is TypeUnspecified.
func (s *supervisor) recentEvents(ctx context.Context, id string, p *SupervisionPolicy, at time.Time, typ TransitionType) ([]Event, error) {
	f := EventFilter{AgentID: id, Type: typ, Start: at.Add(-p.Period), Limit: MaxPageSize}
	var out []Event
	for len(out) < maxHistoryScan {
		evs, err := s.m.store.ReadEvents(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("supervisor: read history of agent %s: %w", id, err)
		}
		out = append(out, evs...)
		if len(evs) < f.Limit {
			break
		}
		f.FromSequence = evs[len(evs)-1].Sequence + 1
	}
	return out, nil
}

// startDue starts the actions due now, as many as there are free places among the
// maxConcurrentActions transitions in flight (so that a store's group commit takes many
// together, and a slow hook holds up only its place), and says how many it started. The
// others stay queued for the next pass.
func (s *supervisor) startDue(ctx context.Context, wg *sync.WaitGroup) int {
	now := s.m.now()
	started := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) > 0 && !s.queue[0].next.At.After(now) {
		t := s.queue[0]
		if t.next.Action == ActionLiveness {
			// Heartbeats since the deadline was set move it on.
			if d := s.livenessDeadline(t.enteredAt, t.beat, s.policyLocked(t.id)); d.After(now) {
				t.next.At = d
				heap.Fix(&s.queue, 0)
				continue
			}
		}
		select {
		case s.inflight <- struct{}{}:
		default:
			return started
		}
		heap.Pop(&s.queue)
		due := *t
		started++
		wg.Add(1)
		s.m.workers.Add(1)
		go func() {
			defer func() {
				<-s.inflight
				select {
				case s.freed <- struct{}{}:
				default:
				}
				wg.Done()
				s.m.workers.Done()
			}()
			s.perform(ctx, &due)
		}()
	}
	return started
}

// perform makes the transition of one due action, planned at revision t.revision.
func (s *supervisor) perform(ctx context.Context, t *tracked) {
	p, _ := s.policy(t.id)
	req := TransitionRequest{AgentID: t.id, Target: t.next.Target, ExpectedRevision: t.revision, Reason: t.next.Reason}
	initiator := InitiatorSupervisor
	switch t.next.Action {
	case ActionGiveUp:
		if t.next.Target == StateError {
			// Recorded as ERROR → ERROR, with the error now marked unrecoverable so that
			// the supervisor, here or after a restart, leaves the agent alone.
			e := *t.err
			e.Recoverable = false
			req.Error = &e
			ctx = context.WithValue(ctx, giveUpKey{}, true)
		}
	case ActionLiveness:
		initiator = InitiatorLiveness
		if s.shared != nil {
			// Another replica may have received heartbeats: its record decides.
			a, err := s.m.store.GetAgent(ctx, t.id)
			if err != nil {
				s.retry(t, err)
				return
			}
			if a.Revision == t.revision && a.HeartbeatAt.Add(p.HeartbeatTimeout).After(s.m.now()) {
				if err := s.observeRecord(ctx, &a); err != nil {
					s.m.log.Error("supervisor", "err", err)
				}
				return
			}
		}
		req.Error = &ErrorInfo{Message: t.next.Reason, Recoverable: true}
	case ActionTimeLimit:
		initiator = InitiatorTimeLimit
		if t.next.Target == StateError {
			req.Error = &ErrorInfo{Message: t.next.Reason, Recoverable: true}
		}
	}
	res, err := s.m.Transition(WithInitiator(ctx, initiator), req)
	switch {
	case err == nil && res.Success:
		s.m.counts.supervision[t.next.Action].Add(1)
	case err != nil:
		s.retry(t, err)
	case !res.Success:
		// Planned from a view that no longer holds (a user's transition, another
		// replica): plan again from the stored record.
		s.m.log.Debug("automatic transition not made", "agent", t.id, "action", t.next.Action.String(), "why", res.Message)
		if err := s.reload(ctx, t.id); err != nil {
			s.m.log.Error("supervisor", "err", err)
		}
	}
}

// retry puts an action whose transition failed back in the queue, a little later.
func (s *supervisor) retry(t *tracked, err error) {
	if s.m.ctx.Err() != nil {
		return
	}
	s.m.log.Error("automatic transition failed; retrying", "agent", t.id, "action", t.next.Action.String(), "err", err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.agents[t.id]; cur != nil && cur.revision == t.revision && cur.index < 0 {
		cur.next.At = s.m.now().Add(actionRetry)
		s.schedule(cur)
	}
}

// heartbeat records that agents are alive; it returns the ids it does not follow.
func (s *supervisor) heartbeat(ids []string, now time.Time) (untracked []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		t := s.agents[id]
		if t == nil {
			untracked = append(untracked, id)
			continue
		}
		t.beat = now
		if s.shared != nil {
			s.beats[id] = now
		}
		// The queued deadline is left as is: when it comes, the newer beat moves it on.
		// So a heartbeat costs a map lookup, not a queue operation.
	}
	return untracked
}

// flushBeats records the heartbeats received here in the shared store, once a second.
func (s *supervisor) flushBeats(ctx context.Context) {
	if s.shared == nil || s.m.now().Sub(s.lastFlush) < heartbeatFlush {
		return
	}
	s.lastFlush = s.m.now()
	s.mu.Lock()
	beats := s.beats
	if len(beats) == 0 {
		s.mu.Unlock()
		return
	}
	s.beats = make(map[string]time.Time, len(beats))
	s.mu.Unlock()
	if err := s.shared.RecordHeartbeats(ctx, beats); err != nil && ctx.Err() == nil {
		s.m.log.Error("record heartbeats", "agents", len(beats), "err", err)
	}
}

// lead reports whether this process may act: always, unless the store is shared; then
// while it holds the supervisor lease, renewed every third of its term.
func (s *supervisor) lead(ctx context.Context) bool {
	if s.shared == nil {
		return true
	}
	now := s.m.now()
	if now.Before(s.leaseEnd.Add(-s.m.lease * 2 / 3)) {
		return true
	}
	held, err := s.shared.Lease(ctx, superviseLease, s.m.owner, now, now.Add(s.m.lease))
	if err != nil {
		if ctx.Err() == nil {
			s.m.log.Error("supervisor lease", "err", err)
		}
		held = false
	}
	if held {
		s.leaseEnd = now.Add(s.m.lease)
	} else {
		s.leaseEnd = time.Time{}
	}
	return held
}

// handBack gives the lease up on close so that another replica takes over now.
func (s *supervisor) handBack() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.shared == nil || s.leaseEnd.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	now := s.m.now()
	s.shared.Lease(ctx, superviseLease, s.m.owner, now, now)
}

// status reports an agent's supervision, planning afresh if the supervisor has not
// observed the agent's last event yet.
func (s *supervisor) status(ctx context.Context, a *Agent) (Supervision, error) {
	p, def := s.policy(a.ID)
	st := Supervision{Policy: *p, Default: def}
	fresh := false
	s.mu.Lock()
	if t := s.agents[a.ID]; t != nil {
		st.LastHeartbeat = t.beat
		fresh = t.revision == a.Revision
		st.Next = t.next
	}
	s.mu.Unlock()
	if !fresh {
		next, err := s.plan(ctx, a.ID, p, a.State, a.EnteredAt, a.LastSequence, a.Error)
		if err != nil {
			return st, err
		}
		st.Next = next
	}
	if st.Next.Action == ActionLiveness {
		st.Next.At = s.livenessDeadline(a.EnteredAt, st.LastHeartbeat, p)
	}
	// The agent's last event is the one that entered its state: entered before the window,
	// it has no event in the window, and nothing needs reading.
	if now := s.m.now(); p.Restart == RestartOnError && a.EnteredAt.After(now.Add(-p.Period)) {
		// Recoveries are AUTOMATIC transitions: a busy agent's other events are not read.
		evs, err := s.recentEvents(ctx, a.ID, p, now, TypeAutomatic)
		if err != nil {
			return st, err
		}
		st.RecoveriesInWindow, _ = recoveryCount(evs, p, now)
	}
	return st, nil
}

// actionQueue is a min-heap of tracked agents by the time of their next action.
type actionQueue []*tracked

func (q actionQueue) Len() int           { return len(q) }
func (q actionQueue) Less(i, j int) bool { return q[i].next.At.Before(q[j].next.At) }
func (q actionQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *actionQueue) Push(x any) {
	t := x.(*tracked)
	t.index = len(*q)
	*q = append(*q, t)
}
func (q *actionQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*q = old[:len(old)-1]
	return t
}
