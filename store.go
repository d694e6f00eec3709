package lifecycle

import (
	"context"
	"slices"
	"time"
)

// Store is the port to durable state. Every implementation passes the conformance suite in
// store/storetest, which checks the invariants below. Errors are *Error with the codes each
// method lists; anything else is reported as CodeInternal or CodeUnavailable.
//
// Invariants: an agent's state change and its event are stored atomically; an agent's
// state always equals the new state of its last event; event sequences are store-wide,
// gap-free, strictly increasing and in commit order; nothing partial is ever stored.
type Store interface {
	// CreateAgent stores a new agent together with its registration event, assigning the
	// event's sequence, which it returns. CodeAlreadyExists if the id was ever used.
	CreateAgent(ctx context.Context, a Agent, ev Event) (uint64, error)

	// GetAgent returns the agent. CodeNotFound if there is none.
	GetAgent(ctx context.Context, id string) (Agent, error)

	// ListAgents returns up to f.Limit agents with ids after f.AfterID, in id order.
	ListAgents(ctx context.Context, f AgentFilter) ([]Agent, error)

	// SetPolicy replaces the agent's supervision policy (nil: the server's default). It is
	// not an event and leaves the revision alone. CodeNotFound if there is no agent.
	SetPolicy(ctx context.Context, id string, p *SupervisionPolicy) error

	// CommitTransition appends ev, assigning its sequence, which it returns, and applies it
	// to agent ev.AgentID (Agent.Apply) — if and only if the agent's stored revision still
	// equals expectedRevision. CodeAborted when it does not, CodeNotFound when there is no
	// agent.
	CommitTransition(ctx context.Context, ev Event, expectedRevision int64) (uint64, error)

	// DeleteAgent appends ev, the deletion event (ev.To is StateUnspecified), assigning its
	// sequence, which it returns, and removes agent ev.AgentID — if and only if its stored
	// revision still equals expectedRevision. The agent's events stay until retention
	// removes them, and its id stays taken: CreateAgent refuses it (CodeAlreadyExists),
	// GetAgent and CommitTransition answer CodeNotFound and ListAgents skips it.
	// CodeAborted on a stale revision, CodeNotFound when there is no agent.
	DeleteAgent(ctx context.Context, ev Event, expectedRevision int64) (uint64, error)

	// ReadEvents returns up to f.Limit events matching f with sequence ≥ f.FromSequence, in
	// sequence order. CodeOutOfRange if f.FromSequence is older than the oldest retained
	// event, naming it.
	ReadEvents(ctx context.Context, f EventFilter) ([]Event, error)

	// Sequences returns the oldest retained and the newest sequence; (0, 0) when empty.
	Sequences(ctx context.Context) (oldest, newest uint64, err error)

	// CreateHook stores a hook. CodeAlreadyExists if its id or name is taken.
	CreateHook(ctx context.Context, h Hook) error
	// DeleteHook removes a hook. CodeNotFound if there is none.
	DeleteHook(ctx context.Context, id string) error
	// ListHooks returns every hook, ordered by name.
	ListHooks(ctx context.Context) ([]Hook, error)
	// SetHookCursor records that a non-blocking hook has handled every event up to seq.
	// CodeNotFound if the hook is gone.
	SetHookCursor(ctx context.Context, id string, seq uint64) error
	// LeaseHook makes owner the one process delivering non-blocking hook id until `until`,
	// unless another owner's lease is still valid at now; it returns the hook as stored
	// (with its cursor) and whether owner holds the lease. CodeNotFound if the hook is gone.
	LeaseHook(ctx context.Context, id, owner string, now, until time.Time) (Hook, bool, error)
}

// TailReader is implemented by a Store that keeps its newest events in memory, where a
// reader can copy one without a query (the memory store). A Manager's watchers then read
// the events there, and the Manager keeps no copy of its own: on two cores, copying each
// event once more, into lines the other core had just read, was most of what a
// transition cost beyond one core's. Not used over a SharedStore, whose events other
// processes commit.
type TailReader interface {
	// ReadTail appends to evs the events from sequence from on, in order, at most limit of
	// them, up to the first one not yet committed, and returns evs. lapped reports that it
	// stopped at an event no longer retained. It must not block but for copies in flight:
	// publishers call it.
	ReadTail(from uint64, limit int, evs []Event) (_ []Event, lapped bool)
	// TailHeld returns seq if its event is committed and retained. Otherwise it returns
	// the sequence in its place: an older one (or 0) while seq is not yet committed, a
	// newer one once seq is no longer retained.
	TailHeld(seq uint64) uint64
}

// SharedStore is a Store that several processes (server replicas) use at once. A Manager
// over one follows the others' work: on a signal it reads the new events by sequence and
// publishes them to its watchers, reloads the hooks, or reloads an agent's supervision
// policy. Signals may be lost or coalesced; the Manager also polls every second.
type SharedStore interface {
	Store
	// Changes returns the signals of other processes' work.
	Changes(ctx context.Context) Changes
	// RecordHeartbeats stores the agents' heartbeat times (Agent.HeartbeatAt), keeping a
	// later time already stored; unknown agents are skipped.
	RecordHeartbeats(ctx context.Context, beats map[string]time.Time) error
	// Lease makes owner the holder of the named lease until `until`, unless another
	// owner's lease is still valid at now, and reports whether owner holds it.
	Lease(ctx context.Context, name, owner string, now, until time.Time) (bool, error)
}

// Changes are a SharedStore's signals, each channel with room for pending signals.
type Changes struct {
	// Events: another process may have committed events.
	Events <-chan struct{}
	// Hooks: another process may have changed hooks.
	Hooks <-chan struct{}
	// Policies carries the ids of agents whose supervision policy another process set;
	// "" means any agent's (signals may have been lost).
	Policies <-chan string
}

// Retention says which events a durable store prunes. Each agent's last event is always
// kept, so an agent's state still equals its last event and a terminated agent keeps a
// tombstone. Pruning an event moves the store's oldest retained sequence past it: every
// event from there on is retained, and resuming or paging from before it is CodeOutOfRange.
type Retention struct {
	// MaxAge prunes events older than this. Zero keeps events of any age.
	MaxAge time.Duration
	// MaxPerAgent keeps at most this many of each agent's newest events. Zero keeps all.
	MaxPerAgent int
	// Every is how often the store prunes. Zero means once a minute.
	Every time.Duration
}

// Enabled reports whether r prunes anything.
func (r Retention) Enabled() bool { return r.MaxAge > 0 || r.MaxPerAgent > 0 }

// AgentFilter selects agents for Store.ListAgents.
type AgentFilter struct {
	AfterID string
	// States, if not empty, keeps agents in one of them.
	States []State
	// Labels keeps agents carrying every one of these labels with these values.
	Labels map[string]string
	Limit  int
}

// Matches reports whether a passes the filter's state and label conditions.
func (f AgentFilter) Matches(a *Agent) bool {
	if len(f.States) > 0 && !slices.Contains(f.States, a.State) {
		return false
	}
	for k, v := range f.Labels {
		if got, ok := a.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// EventFilter selects events for Store.ReadEvents. Zero fields select everything.
type EventFilter struct {
	FromSequence uint64
	AgentID      string
	Type         TransitionType
	// Start is inclusive, End exclusive.
	Start, End time.Time
	Limit      int
}

// Matches reports whether ev passes the filter (FromSequence and Limit aside).
func (f EventFilter) Matches(ev *Event) bool {
	return (f.AgentID == "" || ev.AgentID == f.AgentID) &&
		(f.Type == TypeUnspecified || ev.Type == f.Type) &&
		(f.Start.IsZero() || !ev.Time.Before(f.Start)) &&
		(f.End.IsZero() || ev.Time.Before(f.End))
}

// Hook is a registered hook as stored.
type Hook struct {
	ID        string
	Spec      HookSpec
	CreatedAt time.Time
	// Cursor: a non-blocking hook has handled every matching event up to this sequence.
	Cursor uint64
	// LeaseOwner is the process delivering a non-blocking hook, until LeaseUntil.
	LeaseOwner string
	LeaseUntil time.Time
}

// HookSpec is what a hook registration asks for.
type HookSpec struct {
	Name string
	// TriggerStates, if not empty, limits the hook to transitions into these states.
	TriggerStates []State
	// TriggerTypes, if not empty, limits the hook to these transition types.
	TriggerTypes []TransitionType
	// Blocking hooks run before the state change and may veto it; non-blocking ones run
	// after the commit, asynchronously, at least once.
	Blocking bool
	// Timeout bounds one invocation; zero means DefaultHookTimeout.
	Timeout time.Duration
	// Config: "type" ("callback"), "callback" (the name given to HandleCallback),
	// "failure_policy" ("fail", the default, or "ignore"), "max_attempts" (non-blocking
	// hooks: 1–100, default 5).
	Config map[string]string
	// AgentIDs, if not empty, limits the hook to these agents.
	AgentIDs []string
}
