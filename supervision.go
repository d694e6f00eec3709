package lifecycle

import (
	"hash/fnv"
	"time"

	lifecyclev1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
)

// RestartPolicy says whether the supervisor recovers an agent from ERROR.
type RestartPolicy = lifecyclev1.RestartPolicy

// The restart policies.
const (
	RestartDefault = lifecyclev1.RestartPolicy_RESTART_POLICY_UNSPECIFIED
	RestartNever   = lifecyclev1.RestartPolicy_RESTART_POLICY_NEVER
	RestartOnError = lifecyclev1.RestartPolicy_RESTART_POLICY_ON_ERROR
)

// GiveUpAction is what the supervisor does when the restart intensity is exceeded.
type GiveUpAction = lifecyclev1.GiveUpAction

// The give-up actions.
const (
	GiveUpDefault   = lifecyclev1.GiveUpAction_GIVE_UP_ACTION_UNSPECIFIED
	GiveUpStay      = lifecyclev1.GiveUpAction_GIVE_UP_ACTION_STAY
	GiveUpTerminate = lifecyclev1.GiveUpAction_GIVE_UP_ACTION_TERMINATE
)

// AutomaticAction is a kind of action the supervisor takes by itself.
type AutomaticAction = lifecyclev1.AutomaticAction

// The automatic actions.
const (
	ActionNone      = lifecyclev1.AutomaticAction_AUTOMATIC_ACTION_UNSPECIFIED
	ActionRecover   = lifecyclev1.AutomaticAction_AUTOMATIC_ACTION_RECOVER
	ActionGiveUp    = lifecyclev1.AutomaticAction_AUTOMATIC_ACTION_GIVE_UP
	ActionLiveness  = lifecyclev1.AutomaticAction_AUTOMATIC_ACTION_LIVENESS
	ActionTimeLimit = lifecyclev1.AutomaticAction_AUTOMATIC_ACTION_TIME_LIMIT
)

// The initiators of automatic transitions.
const (
	InitiatorSupervisor = SystemPrefix + "supervisor" // recovery and giving up
	InitiatorLiveness   = SystemPrefix + "liveness"   // missed heartbeats
	InitiatorTimeLimit  = SystemPrefix + "timeout"    // time limits on transitional states
)

// SupervisionPolicy says how the supervisor treats an agent. A zero field takes the
// built-in default named on it (see WithDefaults); a zero heartbeat timeout or time limit
// is off.
type SupervisionPolicy struct {
	// Restart: RestartOnError by default.
	Restart RestartPolicy
	// MaxRecoveries within Period is the restart intensity: one more gives up. Default 5.
	MaxRecoveries int
	// Period: default 10 minutes.
	Period time.Duration
	// BackoffInitial is the delay before the first recovery; it doubles per attempt up to
	// BackoffMax, less up to 20% jitter. Defaults 1s and 1 minute.
	BackoffInitial, BackoffMax time.Duration
	// StablePeriod: the backoff starts over once the agent has stayed ACTIVE this long.
	// Default 5 minutes.
	StablePeriod time.Duration
	// OnGiveUp: GiveUpStay by default.
	OnGiveUp GiveUpAction
	// HeartbeatTimeout: ACTIVE with no heartbeat for this long → ERROR.
	HeartbeatTimeout time.Duration
	// Longest stays in SHUTTING_DOWN (→ TERMINATED), RECOVERING and UPGRADING (→ ERROR).
	ShuttingDownLimit, RecoveringLimit, UpgradingLimit time.Duration
}

// Limits and defaults of supervision policies.
const (
	MaxRecoveriesLimit     = 100
	MaxSupervisionDuration = 7 * 24 * time.Hour // any duration of a policy
	MaxHeartbeatBatch      = 10000              // agent ids in one Heartbeat call
	// BackoffJitter is the largest fraction taken off a backoff, so that agents that
	// failed together do not recover in lockstep.
	BackoffJitter = 0.2

	DefaultMaxRecoveries  = 5
	DefaultRecoveryPeriod = 10 * time.Minute
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = time.Minute
	DefaultStablePeriod   = 5 * time.Minute
)

// WithDefaults returns p with its zero fields set to the built-in defaults.
func (p SupervisionPolicy) WithDefaults() SupervisionPolicy {
	if p.Restart == RestartDefault {
		p.Restart = RestartOnError
	}
	if p.OnGiveUp == GiveUpDefault {
		p.OnGiveUp = GiveUpStay
	}
	p.MaxRecoveries = orDefault(p.MaxRecoveries, DefaultMaxRecoveries)
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&p.Period, DefaultRecoveryPeriod}, {&p.BackoffInitial, DefaultBackoffInitial},
		{&p.BackoffMax, DefaultBackoffMax}, {&p.StablePeriod, DefaultStablePeriod}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	return p
}

// CheckPolicy reports, naming the field, what is wrong with p.
func CheckPolicy(field string, p *SupervisionPolicy) error {
	if p == nil {
		return nil
	}
	if p.Restart < RestartDefault || p.Restart > RestartOnError {
		return invalid("%s.restart: %d is not a restart policy", field, int32(p.Restart))
	}
	if p.OnGiveUp < GiveUpDefault || p.OnGiveUp > GiveUpTerminate {
		return invalid("%s.on_give_up: %d is not a give-up action", field, int32(p.OnGiveUp))
	}
	if p.MaxRecoveries < 0 || p.MaxRecoveries > MaxRecoveriesLimit {
		return invalid("%s.max_recoveries is %d, allowed 0 (default) to %d", field, p.MaxRecoveries, MaxRecoveriesLimit)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"period_ms", p.Period}, {"backoff_initial_ms", p.BackoffInitial}, {"backoff_max_ms", p.BackoffMax},
		{"stable_period_ms", p.StablePeriod}, {"heartbeat_timeout_ms", p.HeartbeatTimeout},
		{"shutting_down_limit_ms", p.ShuttingDownLimit}, {"recovering_limit_ms", p.RecoveringLimit},
		{"upgrading_limit_ms", p.UpgradingLimit}} {
		if d.v < 0 || d.v > MaxSupervisionDuration {
			return invalid("%s.%s is %v, allowed 0 to %v", field, d.name, d.v, MaxSupervisionDuration)
		}
	}
	if d := p.WithDefaults(); d.BackoffInitial > d.BackoffMax {
		return invalid("%s.backoff_initial_ms (%v) is more than backoff_max_ms (%v)", field, d.BackoffInitial, d.BackoffMax)
	}
	return nil
}

// Backoff is the delay before recovery attempt n (1, 2, …) of an agent that entered ERROR
// with the event of sequence seq: BackoffInitial doubled per attempt up to BackoffMax, less
// a jitter of up to BackoffJitter of it. The jitter is derived from the agent and seq, so
// every replica, and a restarted server, computes the same schedule.
func (p SupervisionPolicy) Backoff(agentID string, seq uint64, n int) time.Duration {
	d := p.BackoffInitial
	for i := 1; i < n && d < p.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.BackoffMax)
	h := fnv.New64a()
	h.Write([]byte(agentID))
	var b [8]byte
	for i := range b {
		b[i] = byte(seq >> (8 * i))
	}
	h.Write(b[:])
	frac := float64(h.Sum64()>>11) / (1 << 53) // [0, 1)
	return d - time.Duration(frac*BackoffJitter*float64(d))
}

// recoveryCount reads an agent's recent events, in sequence order, as of time at: inWindow
// is the number of automatic recoveries in (at−Period, at]; attempt is the number of those
// since the agent last stayed ACTIVE for StablePeriod, plus one.
func recoveryCount(evs []Event, p *SupervisionPolicy, at time.Time) (inWindow, attempt int) {
	since := at.Add(-p.Period)
	var activeSince time.Time
	if len(evs) > 0 && evs[0].From == StateActive {
		activeSince = since // entered before the window; at the latest at its start
	}
	stable := func(t time.Time) bool { return !activeSince.IsZero() && t.Sub(activeSince) >= p.StablePeriod }
	for i := range evs {
		ev := &evs[i]
		if ev.Time.After(at) {
			break
		}
		if ev.From == StateActive && stable(ev.Time) {
			attempt = 0
		}
		activeSince = time.Time{}
		if ev.To == StateActive {
			activeSince = ev.Time
		}
		if isRecovery(ev) && ev.Time.After(since) {
			inWindow++
			attempt++
		}
	}
	if stable(at) {
		attempt = 0
	}
	return inWindow, attempt + 1
}

func isRecovery(ev *Event) bool {
	return ev.From == StateError && ev.To == StateRecovering && ev.InitiatedBy == InitiatorSupervisor
}

// Supervision is an agent's supervision as GetState reports it.
type Supervision struct {
	// Policy is the effective policy, defaults applied.
	Policy SupervisionPolicy
	// Default is true when Policy is the server's default.
	Default bool
	// Next is the next automatic action; Action is ActionNone when nothing is scheduled.
	Next ScheduledAction
	// RecoveriesInWindow counts the automatic recoveries within Policy.Period.
	RecoveriesInWindow int
	// LastHeartbeat is the last heartbeat this process knows of; zero if none.
	LastHeartbeat time.Time
}

// ScheduledAction is an automatic action the supervisor will take.
type ScheduledAction struct {
	Action AutomaticAction
	Target State
	At     time.Time
	Reason string
}
