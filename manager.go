package lifecycle

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/trace"

	"github.com/hms-lifecycle/lifecycle/statemachine"
)

// Options configure a Manager. The zero value (or nil) gives the defaults documented on
// each field.
type Options struct {
	// Machine is the transition table. Nil means statemachine.AgentDefinition, the table
	// of section 4.1. A custom agent table uses the agent state names and starts in
	// INITIALIZED.
	Machine *statemachine.Machine
	// GenericStates runs Machine as a table of its own states rather than agent states
	// (statemachine.PluginDefinition, for the plugin registry): they are numbered 1, 2, …
	// in the definition's order, and the agent semantics (error details, maintenance,
	// supervision) do not apply.
	GenericStates bool
	// Now is the clock. Nil means the system's wall clock.
	Now func() time.Time
	// Logger receives hook delivery problems. Nil means slog.Default().
	Logger *slog.Logger
	// WatchBuffer is how many recent events are kept for watchers (rounded up to a power
	// of two); a watcher that falls this far behind is cut off. Zero means 4096.
	WatchBuffer int
	// HookRetryBackoff is the first delay before a failed non-blocking hook is retried; it
	// doubles, with jitter, up to 30s. Zero means 100ms.
	HookRetryBackoff time.Duration
	// Callbacks are in-process hook targets, by name (see HandleCallback).
	Callbacks map[string]HookFunc
	// Targets are the hook target types besides the built-in "callback", by the name a
	// hook's config["type"] gives (the server adds "webhook").
	Targets map[string]TargetType
	// HookLease is how long a replica's claim to deliver a non-blocking hook lasts without
	// renewal (it renews every third of it). Zero means 10s.
	HookLease time.Duration
	// Owner names this process in hook and supervisor leases. Empty means host name,
	// process id and a random suffix.
	Owner string
	// Supervision is the server-wide default supervision policy, for agents without their
	// own; its zero fields take the built-in defaults (SupervisionPolicy.WithDefaults).
	Supervision *SupervisionPolicy
	// SuperviseTick is how often the supervisor looks for due automatic actions. Zero
	// means DefaultSuperviseTick; negative means never by itself (call Supervise).
	SuperviseTick time.Duration
	// TracerProvider traces transitions with OpenTelemetry: the transition, the wait for
	// the agent, each blocking hook, the store commit and the publication, as children of
	// the span in the caller's context (the server's RPC span). Nil: no tracing, and no
	// cost beyond a nil check per step.
	TracerProvider trace.TracerProvider
}

// AgentService is what the Manager offers; a remote client implements it too, so code
// written against it runs unchanged embedded or against a server.
type AgentService interface {
	RegisterAgent(ctx context.Context, req RegisterRequest) (AgentState, Event, error)
	GetState(ctx context.Context, agentID string, includeDetails bool) (AgentState, error)
	ListAgents(ctx context.Context, req ListAgentsRequest) (AgentPage, error)
	Transition(ctx context.Context, req TransitionRequest) (TransitionResult, error)
	History(ctx context.Context, req HistoryRequest) (HistoryPage, error)
	Watch(ctx context.Context, req WatchRequest) (EventStream, error)
	SetPolicy(ctx context.Context, agentID string, p *SupervisionPolicy) (Supervision, error)
	Heartbeat(ctx context.Context, agentIDs []string) (unknown []string, err error)
	DeleteAgent(ctx context.Context, req DeleteRequest) (Event, error)
	RegisterHook(ctx context.Context, spec HookSpec) (RegisterHookResult, error)
	UnregisterHook(ctx context.Context, hookID string) error
	ListHooks(ctx context.Context) ([]HookStatus, error)
	// HandleCallback serves the hooks whose config names callback name with fn (nil
	// stops). Remote clients serve them over a stream from their own process.
	HandleCallback(name string, fn HookFunc) error
}

var _ AgentService = (*Manager)(nil)

// Manager is the agent lifecycle manager: it owns the transition pipeline over a Store.
// It is safe for concurrent use.
type Manager struct {
	store   Store
	machine *agentMachine
	now     func() time.Time
	log     *slog.Logger
	hub     *hub
	// followed: over a SharedStore, the newest sequence published by follow (or known
	// published by this process); only follow uses it.
	followed uint64
	sup      *supervisor
	backoff  time.Duration
	lease    time.Duration
	owner    string
	// shared: other processes write to the store too, so cached agent records can be stale.
	shared bool

	// slots holds one *agentSlot per agent that has been transitioned.
	slots sync.Map

	targets   map[string]TargetType
	hooks     atomic.Pointer[hookSet]
	hookMu    sync.Mutex   // serializes hook registration
	callbacks sync.Map     // name → HookFunc
	tracer    trace.Tracer // nil: tracing is off
	counts    counters

	ctx     context.Context // canceled by Close; parent of background work
	cancel  context.CancelFunc
	workers sync.WaitGroup
	closed  atomic.Bool
}

// agentSlot serializes the transitions of one agent: held is true while a transition is
// in flight. Whoever holds it may use cached, the agent's record as last read or written
// by this process (Revision 0: not loaded). Another replica's write makes it stale; the
// store's compare-and-swap catches that. Padded to whole cache lines: the slots of agents
// that transition on different cores must not share one.
type agentSlot struct {
	held    atomic.Bool
	waiters atomic.Int32
	wake    atomic.Pointer[chan struct{}] // a release's signal to one waiter; made on first contention
	cached  Agent
	_       [(64 - (16+unsafe.Sizeof(Agent{}))%64) % 64]byte
}

// tailOf returns store as the TailReader its watchers read, if it is one and no other
// process commits to it.
func tailOf(store Store) TailReader {
	if _, shared := store.(SharedStore); shared {
		return nil
	}
	t, _ := store.(TailReader)
	return t
}

// New returns a Manager over store, which it does not own: close the Manager, then the
// store. It loads the registered hooks and resumes delivery to non-blocking ones.
func New(ctx context.Context, store Store, opts *Options) (*Manager, error) {
	if opts == nil {
		opts = &Options{}
	}
	mach := opts.Machine
	if mach == nil {
		mach = statemachine.MustCompile(statemachine.AgentDefinition())
	}
	am, err := newAgentMachine(mach, opts.GenericStates)
	if err != nil {
		return nil, err
	}
	_, newest, err := store.Sequences(ctx)
	if err != nil {
		return nil, fmt.Errorf("open lifecycle manager: %w", err)
	}
	m := &Manager{
		store:    store,
		machine:  am,
		now:      opts.Now,
		log:      opts.Logger,
		hub:      newHub(orDefault(opts.WatchBuffer, 4096), newest, tailOf(store)),
		followed: newest,
		backoff:  time.Duration(orDefault(int(opts.HookRetryBackoff), int(100*time.Millisecond))),
		lease:    time.Duration(orDefault(int(opts.HookLease), int(10*time.Second))),
		owner:    opts.Owner,
	}
	if m.owner == "" {
		host, _ := os.Hostname()
		m.owner = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.N(1<<16))
	}
	if m.now == nil {
		m.now = newWallClock().Now
	}
	if opts.TracerProvider != nil {
		m.tracer = opts.TracerProvider.Tracer(tracerName)
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	for name, fn := range opts.Callbacks {
		m.callbacks.Store(name, fn)
	}
	m.targets = map[string]TargetType{"callback": callbackTarget{m}}
	for name, t := range opts.Targets {
		m.targets[name] = t
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if err := CheckPolicy("supervision", opts.Supervision); err != nil {
		m.cancel()
		return nil, fmt.Errorf("open lifecycle manager: %w", err)
	}
	if am.agents {
		m.sup = newSupervisor(m, opts.Supervision, time.Duration(orDefault(int(opts.SuperviseTick), int(DefaultSuperviseTick))))
	}
	if err := m.loadHooks(ctx); err != nil {
		m.cancel()
		return nil, fmt.Errorf("open lifecycle manager: %w", err)
	}
	if m.sup != nil {
		if err := m.sup.load(ctx); err != nil {
			m.cancel()
			return nil, fmt.Errorf("open lifecycle manager: %w", err)
		}
	}
	if shared, ok := store.(SharedStore); ok {
		m.shared = true
		m.workers.Add(1)
		go m.follow(m.ctx, shared)
	}
	if m.sup != nil && opts.SuperviseTick >= 0 {
		m.workers.Add(1)
		go m.sup.loop(m.ctx)
	}
	return m, nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Close ends every watch (each reports where to resume), stops hook delivery and waits for
// it. In-flight transitions finish; new calls fail with CodeUnavailable.
func (m *Manager) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	m.hub.close()
	m.cancel()
	m.workers.Wait()
	if m.sup != nil {
		m.sup.handBack()
	}
	return nil
}

func (m *Manager) checkOpen() error {
	if m.closed.Load() {
		return Errorf(CodeUnavailable, "the lifecycle manager is closed")
	}
	return nil
}

// RegisterRequest asks for a new agent.
type RegisterRequest struct {
	AgentID  string
	Metadata map[string]string
	Labels   map[string]string
	// Policy is the agent's supervision policy; nil means the server's default.
	Policy *SupervisionPolicy
}

// AgentState is an agent's record with what GetState derives from it.
type AgentState struct {
	Agent
	TimeInState time.Duration
	// Transitioning is true while a transition of the agent is in flight.
	Transitioning bool
	// AllowedNext lists the states the agent may move to next; shared, read-only.
	AllowedNext []State
	// Supervision is set by GetState (not by ListAgents).
	Supervision *Supervision
}

// RegisterAgent creates an agent in INITIALIZED and records the registration event
// (UNSPECIFIED → INITIALIZED). CodeAlreadyExists if the id was ever used, including by a
// terminated agent.
func (m *Manager) RegisterAgent(ctx context.Context, req RegisterRequest) (AgentState, Event, error) {
	if err := m.checkOpen(); err != nil {
		return AgentState{}, Event{}, err
	}
	if err := checkID("agent_id", req.AgentID); err != nil {
		return AgentState{}, Event{}, err
	}
	if err := checkMap("metadata", req.Metadata); err != nil {
		return AgentState{}, Event{}, err
	}
	if err := checkMap("labels", req.Labels); err != nil {
		return AgentState{}, Event{}, err
	}
	if err := CheckPolicy("supervision_policy", req.Policy); err != nil {
		return AgentState{}, Event{}, err
	}
	if req.Policy != nil && m.sup == nil {
		return AgentState{}, Event{}, errNoSupervision
	}
	now := m.now()
	a := Agent{
		ID: req.AgentID, State: m.machine.initial, Revision: 1,
		Metadata: cloneMap(req.Metadata), Labels: cloneMap(req.Labels),
		CreatedAt: now, EnteredAt: now, Policy: clonePolicy(req.Policy),
	}
	ev := Event{
		ID: newEventID(now), AgentID: a.ID, To: a.State, Type: m.machine.classify(false, 0, a.State, InitiatorFrom(ctx)),
		Time: now, InitiatedBy: InitiatorFrom(ctx), Reason: "registered", Revision: 1,
	}
	seq, err := m.store.CreateAgent(ctx, a, ev)
	if err != nil {
		return AgentState{}, Event{}, fmt.Errorf("register agent %s: %w", a.ID, err)
	}
	a.LastSequence, ev.Sequence = seq, seq
	if a.Policy != nil {
		m.sup.setPolicy(a.ID, a.Policy)
	}
	m.hub.publish(&ev)
	return m.view(a, true), ev, nil
}

// DeleteRequest asks to delete an agent.
type DeleteRequest struct {
	AgentID string
	// Reason is recorded in the deletion event; empty means "deleted".
	Reason string
}

// DeleteAgent deletes an agent in a terminal state (TERMINATED in the standard table) and
// returns the deletion event, from that state to StateUnspecified. The record goes; the
// history stays until retention removes it; the id is never used again (RegisterAgent
// answers CodeAlreadyExists). CodeFailedPrecondition for an agent in any other state,
// CodeNotFound for an unknown or deleted one, CodeAborted if a transition kept the agent
// busy for DefaultTransitionTimeout.
func (m *Manager) DeleteAgent(ctx context.Context, req DeleteRequest) (Event, error) {
	if err := m.checkOpen(); err != nil {
		return Event{}, err
	}
	if err := checkID("agent_id", req.AgentID); err != nil {
		return Event{}, err
	}
	if err := checkText("reason", req.Reason, MaxReasonLength); err != nil {
		return Event{}, err
	}
	slot, err := m.slot(ctx, req.AgentID)
	if err != nil {
		return Event{}, err
	}
	if _, ok, err := slot.acquire(ctx, DefaultTransitionTimeout); err != nil {
		return Event{}, err
	} else if !ok {
		return Event{}, Errorf(CodeAborted, "agent %s stayed busy with a transition for %v; delete it again", req.AgentID, DefaultTransitionTimeout)
	}
	defer slot.release()
	a, err := m.store.GetAgent(ctx, req.AgentID)
	if err != nil {
		return Event{}, err
	}
	if !m.machine.terminal(a.State) {
		return Event{}, Errorf(CodeFailedPrecondition, "agent %s is %s; only an agent in a terminal state can be deleted: transition it to %s first",
			a.ID, m.machine.name(a.State), m.machine.name(StateTerminated))
	}
	now := m.now()
	initiator := InitiatorFrom(ctx)
	ev := Event{
		ID: newEventID(now), AgentID: a.ID, From: a.State, To: StateUnspecified,
		Type: m.machine.classify(false, a.State, StateUnspecified, initiator),
		Time: now, InitiatedBy: initiator, Reason: cmp.Or(req.Reason, "deleted"), Revision: a.Revision + 1,
	}
	seq, err := m.store.DeleteAgent(ctx, ev, a.Revision)
	if err != nil {
		slot.cached.Revision = 0
		return Event{}, fmt.Errorf("delete agent %s: %w", a.ID, err)
	}
	ev.Sequence = seq
	// A transition waiting for the slot reloads the agent, and finds it gone.
	slot.cached.Revision = 0
	m.slots.Delete(a.ID)
	if m.sup != nil {
		m.sup.setPolicy(a.ID, nil)
	}
	m.hub.publish(&ev)
	return ev, nil
}

// GetState returns the agent's state; includeDetails adds its metadata and labels.
// CodeNotFound for an unknown agent.
func (m *Manager) GetState(ctx context.Context, agentID string, includeDetails bool) (AgentState, error) {
	if err := checkID("agent_id", agentID); err != nil {
		return AgentState{}, err
	}
	a, err := m.store.GetAgent(ctx, agentID)
	if err != nil {
		return AgentState{}, err
	}
	st := m.view(a, includeDetails)
	if m.sup != nil {
		sup, err := m.sup.status(ctx, &a)
		if err != nil {
			return AgentState{}, err
		}
		st.Supervision = &sup
	}
	return st, nil
}

// SetPolicy sets the agent's supervision policy; nil makes it follow the server's default
// again. The change is not an event; it takes effect at once, for the agent's current
// state too. CodeNotFound for an unknown agent.
func (m *Manager) SetPolicy(ctx context.Context, agentID string, p *SupervisionPolicy) (Supervision, error) {
	if err := m.checkOpen(); err != nil {
		return Supervision{}, err
	}
	if err := checkID("agent_id", agentID); err != nil {
		return Supervision{}, err
	}
	if err := CheckPolicy("policy", p); err != nil {
		return Supervision{}, err
	}
	if m.sup == nil {
		return Supervision{}, errNoSupervision
	}
	if err := m.store.SetPolicy(ctx, agentID, clonePolicy(p)); err != nil {
		return Supervision{}, fmt.Errorf("set policy of agent %s: %w", agentID, err)
	}
	a, err := m.store.GetAgent(ctx, agentID)
	if err != nil {
		return Supervision{}, err
	}
	if err := m.sup.observeRecord(ctx, &a); err != nil {
		return Supervision{}, err
	}
	return m.sup.status(ctx, &a)
}

// Heartbeat records that agents are alive. It is cheap (no store write, no event, except
// that a SharedStore receives each agent's latest heartbeat once a second) and returns the
// ids that name no agent, or a terminated one. Only agents under a liveness policy
// (HeartbeatTimeout) need heartbeats; the others' are accepted and dropped.
func (m *Manager) Heartbeat(ctx context.Context, agentIDs []string) ([]string, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	if m.sup == nil {
		return nil, errNoSupervision
	}
	if len(agentIDs) > MaxHeartbeatBatch {
		return nil, invalid("agent_ids has %d entries, at most %d allowed", len(agentIDs), MaxHeartbeatBatch)
	}
	for _, id := range agentIDs {
		if err := checkID("agent_ids", id); err != nil {
			return nil, err
		}
	}
	var unknown []string
	now := m.now()
	for _, id := range m.sup.heartbeat(agentIDs, now) {
		// Not followed (yet): perhaps the supervisor has not seen the agent's last event.
		a, err := m.store.GetAgent(ctx, id)
		switch {
		case ErrorCode(err) == CodeNotFound || err == nil && m.machine.terminal(a.State):
			unknown = append(unknown, id)
		case err != nil:
			return nil, err
		default:
			if err := m.sup.observeRecord(ctx, &a); err != nil {
				return nil, err
			}
			m.sup.heartbeat([]string{id}, now)
		}
	}
	return unknown, nil
}

// errNoSupervision: supervision applies to agents, not to other tables' entities.
var errNoSupervision = Errorf(CodeFailedPrecondition, "supervision applies to agent state machines only")

func clonePolicy(p *SupervisionPolicy) *SupervisionPolicy {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func (m *Manager) view(a Agent, details bool) AgentState {
	if !details {
		a.Metadata, a.Labels = nil, nil
	}
	st := AgentState{Agent: a, TimeInState: max(m.now().Sub(a.EnteredAt), 0), AllowedNext: m.machine.allowedNext(a.State)}
	if s, ok := m.slots.Load(a.ID); ok {
		st.Transitioning = s.(*agentSlot).held.Load()
	}
	return st
}

// ListAgentsRequest filters and pages ListAgents.
type ListAgentsRequest struct {
	States []State
	// Labels keeps agents carrying every one of these labels with these values.
	Labels map[string]string
	// PageSize: 0 means 100, at most 1000.
	PageSize  int
	PageToken string
}

// AgentPage is one page of agents, in id order.
type AgentPage struct {
	Agents        []AgentState
	NextPageToken string
}

// ListAgents lists agents in id order. Metadata is left out; labels are included.
func (m *Manager) ListAgents(ctx context.Context, req ListAgentsRequest) (AgentPage, error) {
	size, err := checkPageSize("page_size", req.PageSize)
	if err != nil {
		return AgentPage{}, err
	}
	for _, s := range req.States {
		if err := m.machine.check("states", s, false); err != nil {
			return AgentPage{}, err
		}
	}
	if err := checkMap("label_selector", req.Labels); err != nil {
		return AgentPage{}, err
	}
	after, err := decodeToken(req.PageToken, agentsToken, listFilterKey(req))
	if err != nil {
		return AgentPage{}, err
	}
	agents, err := m.store.ListAgents(ctx, AgentFilter{AfterID: after, States: req.States, Labels: req.Labels, Limit: size + 1})
	if err != nil {
		return AgentPage{}, fmt.Errorf("list agents: %w", err)
	}
	var page AgentPage
	if len(agents) > size {
		agents = agents[:size]
		page.NextPageToken = encodeToken(agentsToken, listFilterKey(req), agents[size-1].ID)
	}
	page.Agents = make([]AgentState, len(agents))
	for i, a := range agents {
		a.Metadata = nil
		page.Agents[i] = m.view(a, true)
	}
	return page, nil
}
