// Package lifecycle keeps the authoritative lifecycle state of agents: it enforces their
// state machine, records every transition as an event, streams events to watchers and runs
// hooks around transitions.
//
// The package holds the domain (types, errors, the Store port) and the Manager that runs
// the transition pipeline. Stores live in store/…, transports in their own packages; the
// enums are the generated protobuf ones so that every transport shares one set of values.
package lifecycle

import (
	"strings"
	"time"

	"github.com/google/uuid"

	lifecyclev1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
)

// State is an agent's lifecycle state.
type State = lifecyclev1.LifecycleState

// The agent states of the specification.
const (
	StateUnspecified  = lifecyclev1.LifecycleState_LIFECYCLE_STATE_UNSPECIFIED
	StateInitialized  = lifecyclev1.LifecycleState_LIFECYCLE_STATE_INITIALIZED
	StateActive       = lifecyclev1.LifecycleState_LIFECYCLE_STATE_ACTIVE
	StatePaused       = lifecyclev1.LifecycleState_LIFECYCLE_STATE_PAUSED
	StateSuspended    = lifecyclev1.LifecycleState_LIFECYCLE_STATE_SUSPENDED
	StateShuttingDown = lifecyclev1.LifecycleState_LIFECYCLE_STATE_SHUTTING_DOWN
	StateTerminated   = lifecyclev1.LifecycleState_LIFECYCLE_STATE_TERMINATED
	StateMaintenance  = lifecyclev1.LifecycleState_LIFECYCLE_STATE_MAINTENANCE
	StateError        = lifecyclev1.LifecycleState_LIFECYCLE_STATE_ERROR
	StateUpgrading    = lifecyclev1.LifecycleState_LIFECYCLE_STATE_UPGRADING
	StateRecovering   = lifecyclev1.LifecycleState_LIFECYCLE_STATE_RECOVERING
)

// TransitionType classifies a transition; the Manager decides it, never the caller.
type TransitionType = lifecyclev1.TransitionType

// The transition types of the specification.
const (
	TypeUnspecified    = lifecyclev1.TransitionType_TRANSITION_TYPE_UNSPECIFIED
	TypeNormal         = lifecyclev1.TransitionType_TRANSITION_TYPE_NORMAL
	TypeForced         = lifecyclev1.TransitionType_TRANSITION_TYPE_FORCED
	TypeAutomatic      = lifecyclev1.TransitionType_TRANSITION_TYPE_AUTOMATIC
	TypeErrorTriggered = lifecyclev1.TransitionType_TRANSITION_TYPE_ERROR_TRIGGERED
	TypeMaintenance    = lifecyclev1.TransitionType_TRANSITION_TYPE_MAINTENANCE
)

// RefusalReason says why the lifecycle refused a transition.
type RefusalReason = lifecyclev1.RefusalReason

// The refusal reasons.
const (
	RefusalNone               = lifecyclev1.RefusalReason_REFUSAL_REASON_UNSPECIFIED
	RefusalInvalidTransition  = lifecyclev1.RefusalReason_REFUSAL_REASON_INVALID_TRANSITION
	RefusalPreconditionFailed = lifecyclev1.RefusalReason_REFUSAL_REASON_PRECONDITION_FAILED
	RefusalHookVetoed         = lifecyclev1.RefusalReason_REFUSAL_REASON_HOOK_VETOED
	RefusalHookFailed         = lifecyclev1.RefusalReason_REFUSAL_REASON_HOOK_FAILED
	RefusalTimedOut           = lifecyclev1.RefusalReason_REFUSAL_REASON_TIMED_OUT
	RefusalTerminal           = lifecyclev1.RefusalReason_REFUSAL_REASON_TERMINAL
)

// HookResult is what one hook invocation came to.
type HookResult = lifecyclev1.HookOutcome_Result

// The hook results.
const (
	HookAllowed  = lifecyclev1.HookOutcome_RESULT_ALLOWED
	HookVetoed   = lifecyclev1.HookOutcome_RESULT_VETOED
	HookFailed   = lifecyclev1.HookOutcome_RESULT_FAILED
	HookTimedOut = lifecyclev1.HookOutcome_RESULT_TIMED_OUT
)

// StateName is the specification's short name of s ("ACTIVE").
func StateName(s State) string {
	return strings.TrimPrefix(s.String(), "LIFECYCLE_STATE_")
}

// TypeName is the specification's short name of t ("ERROR_TRIGGERED").
func TypeName(t TransitionType) string {
	return strings.TrimPrefix(t.String(), "TRANSITION_TYPE_")
}

// Agent is the stored record of one agent.
type Agent struct {
	ID            string
	State         State
	PreviousState State
	// Revision is 1 after registration and grows by one with every transition.
	Revision int64
	Metadata map[string]string
	Labels   map[string]string
	// CreatedAt is the registration time; EnteredAt the time of the last transition.
	CreatedAt time.Time
	EnteredAt time.Time
	// Error is set while the agent is in ERROR.
	Error *ErrorInfo
	// LastSequence is the sequence of the agent's last event.
	LastSequence uint64
	// Policy is the agent's own supervision policy; nil means the server's default.
	Policy *SupervisionPolicy
	// HeartbeatAt is the last heartbeat recorded in a SharedStore (other stores leave it
	// zero: heartbeats then live in the Manager's memory only).
	HeartbeatAt time.Time
}

// Apply moves the agent's lifecycle fields to what ev records: every store applies
// committed events this way, so an agent's state always equals its last event.
func (a *Agent) Apply(ev *Event) {
	a.PreviousState, a.State = ev.From, ev.To
	a.Revision, a.EnteredAt, a.Error, a.LastSequence = ev.Revision, ev.Time, ev.Error, ev.Sequence
}

// ErrorInfo describes the error that put an agent into ERROR.
type ErrorInfo struct {
	Code            int32
	Message         string
	Time            time.Time
	Recoverable     bool
	RecoveryActions []string
}

// Event is one recorded transition. The maps and slices of an Event returned by the
// Manager or a Store are shared: treat them as read-only.
type Event struct {
	// Sequence is the event's store-wide position: gap-free, strictly increasing, commit
	// order. A bookmark carries only Sequence.
	Sequence uint64
	ID       uuid.UUID
	AgentID  string
	From, To State
	Type     TransitionType
	// Bookmark marks a watch progress marker, not a transition.
	Bookmark bool
	Time     time.Time
	// InitiatedBy is the principal that asked for the transition, or "system:<component>".
	InitiatedBy string
	Reason      string
	Metadata    map[string]string
	// Revision is the agent's revision after the event.
	Revision int64
	// Error is set on a transition into ERROR.
	Error *ErrorInfo
	// Hooks are the outcomes of the blocking hooks that ran before the transition.
	Hooks []HookOutcome
}

// HookOutcome records one hook invocation.
type HookOutcome struct {
	HookID   string
	HookName string
	Result   HookResult
	Message  string
	Latency  time.Duration
	// Enforced is whether the outcome decided the transition.
	Enforced bool
}
