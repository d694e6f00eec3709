package plugin

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/hms-lifecycle/lifecycle"
)

// The policies, as the "policy" input of their decisions' events.
const (
	policyAutoActivate   = "auto-activate"
	policyOnDemand       = "activate-on-demand"
	policyIdle           = "idle-deactivation"
	policyIdlePressure   = "idle-deactivation-under-pressure"
	policyFailover       = "failover"
	defaultFailoverN     = 3
	defaultFailoverPer   = 10 * time.Minute
	defaultPressureEvery = 5 * time.Second
)

// PolicyState is what the automatic policies decided about a plugin version, and the
// pressure reading they act on.
type PolicyState struct {
	// FailoverTarget is the version failover activated when this one failed at runtime.
	FailoverTarget string
	// FailoverNote says why failover did not act when this one failed: the rate limit, no
	// version to fail over to, or its activation failing.
	FailoverNote string
	// Deactivation says who last deactivated it and why ("system:plugin-policy: idle under
	// pressure …"), until it is activated again.
	Deactivation string
	// Pressure is the manager's last reading of the host's pressure; zero when
	// PressureThreshold is not set.
	Pressure Pressure
	// PressureThreshold is Options.PressureThreshold.
	PressureThreshold float64
}

// Rate is a rate limit: at most N in any window of Per.
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate reads "N/DURATION", e.g. "3/10m".
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/DURATION, like 3/10m", s)
	}
	var r Rate
	var err error
	if r.N, err = strconv.Atoi(strings.TrimSpace(n)); err != nil || r.N < 1 {
		return Rate{}, fmt.Errorf("rate %q: N must be a whole number of at least 1", s)
	}
	if r.Per, err = time.ParseDuration(strings.TrimSpace(per)); err != nil || r.Per <= 0 {
		return Rate{}, fmt.Errorf("rate %q: the window must be a positive duration like 10m", s)
	}
	return r, nil
}

func (r Rate) String() string {
	if r == (Rate{}) {
		return ""
	}
	return strconv.Itoa(r.N) + "/" + r.Per.String()
}

// Set implements pflag.Value (and flag.Value).
func (r *Rate) Set(s string) error {
	if s == "" {
		*r = Rate{}
		return nil
	}
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Type implements pflag.Value.
func (*Rate) Type() string { return "rate" }

// PolicyStats are counters of the automatic policies' decisions, for metrics.
type PolicyStats struct {
	// Failovers by result: "activated", "rate_limited", "no_candidate", "activation_failed".
	Failovers map[string]uint64
	// PressureRefusals counts on-demand activations refused under pressure.
	PressureRefusals uint64
	// Deactivations by policy: "idle-deactivation", "idle-deactivation-under-pressure".
	Deactivations map[string]uint64
	// Pressure is the last reading (zero without PressureThreshold), and Threshold the
	// threshold.
	Pressure  Pressure
	Threshold float64
	// Activations by result: "ok" (Active), "failed" (the process did not start or never
	// became healthy).
	Activations map[string]uint64
	// RuntimeFailures of active plugins by cause: "exit" (the process ended) or "health"
	// (it failed its health check FailureThreshold times in a row).
	RuntimeFailures map[string]uint64
	// ProcessStarts counts plugin processes started.
	ProcessStarts uint64
	// States counts the plugin versions in each state ("active", "failed", …).
	States map[string]uint64
}

// policyState is the Manager's state of the failover and pressure policies. pressure and
// the counters are guarded by Manager.mu.
type policyState struct {
	source    PressureSource
	pressure  Pressure
	readErr   string
	failovers map[string][]time.Time // by plugin id: the failovers in the current window
	foLocks   sync.Map               // plugin id → *sync.Mutex: one failover decision at a time
	idleMu    sync.Mutex             // one idle pass at a time
	stats     PolicyStats
}

func checkPolicyOptions(o *Options) error {
	if o.FailoverConstraint != "" {
		if len(o.FailoverConstraint) > MaxConstraintLength {
			return lifecycle.Errorf(lifecycle.CodeInvalidArgument, "failover constraint is %d bytes long, at most %d allowed", len(o.FailoverConstraint), MaxConstraintLength)
		}
		if _, err := semver.NewConstraint(o.FailoverConstraint); err != nil {
			return lifecycle.Errorf(lifecycle.CodeInvalidArgument, "failover constraint %q is not a semantic version constraint: %v", o.FailoverConstraint, err)
		}
	}
	if r := o.FailoverRate; r != (Rate{}) && (r.N < 1 || r.Per <= 0) {
		return lifecycle.Errorf(lifecycle.CodeInvalidArgument, "failover rate %d per %v: want at least 1 per a positive duration", r.N, r.Per)
	}
	if o.PressureThreshold < 0 || o.PressureWait < 0 || o.PressureIdleTimeout < 0 || o.PressureInterval < 0 {
		return lifecycle.Errorf(lifecycle.CodeInvalidArgument, "pressure threshold, wait, idle timeout and interval cannot be negative")
	}
	return nil
}

// startPolicies fills in the policies' defaults and starts their workers.
func (m *Manager) startPolicies() {
	if m.opts.FailoverRate == (Rate{}) {
		m.opts.FailoverRate = Rate{defaultFailoverN, defaultFailoverPer}
	}
	if m.opts.PressureInterval <= 0 {
		m.opts.PressureInterval = defaultPressureEvery
	}
	m.policy.source = m.opts.Pressure
	if m.policy.source == nil {
		m.policy.source = HostPressure()
	}
	m.policy.failovers = map[string][]time.Time{}
	m.policy.stats = PolicyStats{Failovers: map[string]uint64{}, Deactivations: map[string]uint64{}}
	if m.opts.PressureThreshold > 0 {
		m.readPressure()
		m.workers.Add(1)
		go m.samplePressure(m.ctx)
	}
	if m.idleTimeout(false) > 0 || m.idleTimeout(true) > 0 {
		m.workers.Add(1)
		go m.idle(m.ctx)
	}
}

// PolicyStats returns the counters of the automatic policies' decisions.
func (m *Manager) PolicyStats() PolicyStats {
	states := m.countStates()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.policy.stats
	s.Failovers, s.Deactivations = copyCounts(s.Failovers), copyCounts(s.Deactivations)
	s.Activations, s.RuntimeFailures = copyCounts(s.Activations), copyCounts(s.RuntimeFailures)
	s.States = states
	s.Pressure, s.Threshold = m.policy.pressure, m.opts.PressureThreshold
	return s
}

// countStates counts the registry's versions by state, from the stored records.
func (m *Manager) countStates() map[string]uint64 {
	out := map[string]uint64{}
	f := lifecycle.AgentFilter{Limit: lifecycle.MaxPageSize}
	for {
		recs, err := m.store.ListAgents(context.Background(), f)
		if err != nil || len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			out[strings.ToLower(strings.TrimPrefix(State(r.State).String(), "PLUGIN_STATE_"))]++
		}
		f.AfterID = recs[len(recs)-1].ID
	}
}

// tally adds one to counter key of the PolicyStats map *c.
func (m *Manager) tally(c *map[string]uint64, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if *c == nil {
		*c = map[string]uint64{}
	}
	(*c)[key]++
}

func copyCounts(c map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// Pressure: reading and waiting.

// samplePressure keeps the last reading current, for PolicyState and metrics.
func (m *Manager) samplePressure(ctx context.Context) {
	defer m.workers.Done()
	t := time.NewTicker(m.opts.PressureInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.readPressure()
		}
	}
}

// readPressure reads the host's pressure and keeps it as the last reading. A source that
// cannot be read counts as no pressure (logged once per distinct error): the policies
// never stop plugins, or refuse them, on a reading they do not have.
func (m *Manager) readPressure() (Pressure, bool) {
	p, err := m.policy.source.ReadPressure()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if msg := err.Error(); msg != m.policy.readErr {
			m.policy.readErr = msg
			m.log.Warn("cannot read the host's pressure; the pressure policies act as if there were none", "err", err)
		}
		return Pressure{}, false
	}
	m.policy.readErr = ""
	if p.Time.IsZero() {
		p.Time = m.now()
	}
	m.policy.pressure = p
	return p, p.Max() > m.opts.PressureThreshold
}

// awaitPressure returns the pressure reading once it is at or below the threshold,
// waiting up to PressureWait; beyond, CodeResourceExhausted naming the reading.
func (m *Manager) awaitPressure(ctx context.Context, what string) (Pressure, error) {
	p, over := m.readPressure()
	if !over {
		return p, nil
	}
	if wait := m.opts.PressureWait; wait > 0 {
		deadline := time.NewTimer(wait)
		defer deadline.Stop()
		poll := time.NewTicker(min(m.opts.PressureInterval, time.Second))
		defer poll.Stop()
	waiting:
		for {
			select {
			case <-ctx.Done():
				return p, ctx.Err()
			case <-m.ctx.Done():
				return p, lifecycle.Errorf(lifecycle.CodeUnavailable, "the plugin manager is closing")
			case <-deadline.C:
				break waiting
			case <-poll.C:
			}
			if p, over = m.readPressure(); !over {
				return p, nil
			}
		}
	}
	m.mu.Lock()
	m.policy.stats.PressureRefusals++
	m.mu.Unlock()
	waited := ""
	if m.opts.PressureWait > 0 {
		waited = fmt.Sprintf(" (waited %v)", m.opts.PressureWait)
	}
	return p, lifecycle.Errorf(lifecycle.CodeResourceExhausted, "the host is under pressure: %s, above the threshold of %g%%: %s%s",
		p, m.opts.PressureThreshold, what, waited)
}

// Idle deactivation.

// idleTimeout is the idle timeout with or without pressure; 0: none.
func (m *Manager) idleTimeout(underPressure bool) time.Duration {
	if underPressure && m.opts.PressureThreshold > 0 && m.opts.PressureIdleTimeout > 0 {
		if m.opts.IdleTimeout <= 0 {
			return m.opts.PressureIdleTimeout
		}
		return min(m.opts.IdleTimeout, m.opts.PressureIdleTimeout)
	}
	return m.opts.IdleTimeout
}

// idle deactivates active plugins that Resolve has not returned for the idle timeout,
// recording the inputs of each decision.
func (m *Manager) idle(ctx context.Context) {
	defer m.workers.Done()
	every := 10 * time.Second
	for _, d := range []time.Duration{m.idleTimeout(false), m.idleTimeout(true)} {
		if d > 0 {
			every = min(every, d/4)
		}
	}
	t := time.NewTicker(max(every, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.deactivateIdle(ctx)
	}
}

// deactivateIdle deactivates the plugins idle for the idle timeout, least recently
// resolved first. Under pressure the shorter PressureIdleTimeout applies, and the
// pressure is read again after each deactivation: once it has fallen, the normal timeout
// applies again.
func (m *Manager) deactivateIdle(ctx context.Context) {
	m.policy.idleMu.Lock()
	defer m.policy.idleMu.Unlock()
	usePressure := m.opts.PressureThreshold > 0 && m.opts.PressureIdleTimeout > 0
	var pressure Pressure
	var under bool
	if usePressure {
		pressure, under = m.readPressure()
	}
	type candidate struct {
		e        *entry
		lastUsed time.Time // zero: never
		since    time.Time // idle since: the later of its last use and its activation
	}
	var cands []candidate
	m.mu.Lock()
	var es []*entry
	for _, e := range m.entries {
		if e.generation > 0 {
			es = append(es, e)
		}
	}
	m.mu.Unlock()
	for _, e := range es {
		st, err := m.engine.GetState(ctx, e.ref.key(), false)
		if err != nil || State(st.State) != StateActive {
			continue
		}
		m.mu.Lock()
		last := e.lastUsed
		m.mu.Unlock()
		since := st.EnteredAt
		if last.After(since) {
			since = last
		}
		cands = append(cands, candidate{e, last, since})
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		if c := a.since.Compare(b.since); c != 0 {
			return c
		}
		return strings.Compare(a.e.ref.key(), b.e.ref.key())
	})
	for _, c := range cands {
		timeout := m.idleTimeout(under)
		now := m.now()
		if timeout <= 0 || now.Sub(c.since) < timeout {
			continue
		}
		policy, why := policyIdle, fmt.Sprintf("idle: not resolved for %v", timeout)
		inputs := map[string]string{"idle_timeout": timeout.String(), "last_used": "never"}
		if !c.lastUsed.IsZero() {
			inputs["last_used"] = c.lastUsed.UTC().Format(time.RFC3339Nano)
		}
		byPressure := under && (m.opts.IdleTimeout <= 0 || now.Sub(c.since) < m.opts.IdleTimeout)
		if byPressure {
			policy = policyIdlePressure
			why = fmt.Sprintf("idle under pressure: not resolved for %v while the host is under pressure (%s, threshold %g%%)", timeout, pressure, m.opts.PressureThreshold)
			pressure.metadata(m.opts.PressureThreshold, inputs)
		}
		inputs["policy"] = policy
		_, err := m.deactivate(ctx, c.e, why, InitiatorPolicy, inputs)
		switch {
		case err == nil:
			m.mu.Lock()
			m.policy.stats.Deactivations[policy]++
			m.mu.Unlock()
		case lifecycle.ErrorCode(err) != lifecycle.CodeFailedPrecondition:
			m.log.Error("idle deactivation", "plugin", c.e.ref.String(), "err", err)
		}
		if byPressure {
			pressure, under = m.readPressure()
		}
	}
}

// Failover.

// failover acts on the runtime failure of failed (recorded just before): unless another
// version of the plugin satisfying FailoverConstraint is Active, it activates the highest
// Inactive one, within the rate limit. Each activation is an event with its inputs; a
// failure it does not fail over is noted in the failed version's PolicyState.
func (m *Manager) failover(failed *entry, generation uint64, why string) {
	if !m.opts.Failover || m.ctx.Err() != nil {
		return
	}
	id := failed.ref.ID
	mu, _ := m.policy.foLocks.LoadOrStore(id, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	ctx := m.ctx
	c, _ := semver.NewConstraint(orAny(m.opts.FailoverConstraint)) // checked by New
	m.mu.Lock()
	var es []*entry
	for _, e := range m.entries {
		if e.ref.ID == id && e != failed && e.manifest != nil && e.manifest.SemVer != nil && c.Check(e.manifest.SemVer) {
			es = append(es, e)
		}
	}
	m.mu.Unlock()
	var versions []Plugin
	for _, e := range es {
		p, err := m.view(ctx, e)
		if err != nil {
			m.log.Error("failover", "plugin", failed.ref.String(), "err", err)
			return
		}
		versions = append(versions, p)
	}
	slices.SortFunc(versions, func(a, b Plugin) int { return b.Manifest.SemVer.Compare(a.Manifest.SemVer) })
	var have []string
	for _, p := range versions {
		have = append(have, p.Version+" "+StateName(p.State))
		if p.State == StateActive {
			m.noteFailover(failed, "", fmt.Sprintf("no failover needed: %s %s is active", id, p.Version))
			return
		}
	}
	rate := m.opts.FailoverRate
	tried := 0
	for _, p := range versions {
		if p.State != StateInactive {
			continue // Failed, Deprecated, not loaded, or changing
		}
		now := m.now()
		m.mu.Lock()
		window := slices.DeleteFunc(m.policy.failovers[id], func(t time.Time) bool { return now.Sub(t) >= rate.Per })
		limited := len(window) >= rate.N
		if !limited {
			window = append(window, now)
		}
		m.policy.failovers[id] = window
		m.mu.Unlock()
		if limited {
			note := fmt.Sprintf("no failover: the rate limit of %d per %v for %s is reached (since %s)", rate.N, rate.Per, id,
				window[0].UTC().Format(time.RFC3339))
			m.noteFailover(failed, "rate_limited", note)
			m.log.Warn("plugin failover suppressed", "plugin", failed.ref.String(), "rate", rate.String())
			return
		}
		tried++
		e, err := m.entryFor(p.Ref)
		if err != nil {
			continue
		}
		inputs := map[string]string{"policy": policyFailover, "failed_version": failed.ref.Version,
			"failed_generation": strconv.FormatUint(generation, 10), "failure": truncate(why, 512),
			"constraint": orAny(m.opts.FailoverConstraint), "candidates": strings.Join(have, ", "),
			"rate": rate.String(), "failovers_in_window": strconv.Itoa(len(window))}
		got, err := m.activate(ctx, e, fmt.Sprintf("failover: %s %s failed at runtime", id, failed.ref.Version), InitiatorPolicy, inputs)
		if err == nil && got.State == StateActive {
			m.mu.Lock()
			m.policy.stats.Failovers["activated"]++
			m.mu.Unlock()
			m.log.Info("plugin failover", "plugin", failed.ref.String(), "to", p.Version)
			return
		}
		m.mu.Lock()
		m.policy.stats.Failovers["activation_failed"]++
		m.mu.Unlock()
		if err != nil && m.ctx.Err() != nil {
			return
		}
		// The next best, if any (within the rate limit).
	}
	if tried == 0 {
		m.noteFailover(failed, "no_candidate", fmt.Sprintf("no failover: no Inactive version of %s satisfies %q (versions: %s)",
			id, orAny(m.opts.FailoverConstraint), orNoneList(have)))
	} else {
		m.noteFailover(failed, "", fmt.Sprintf("no failover: %d activation(s) of another version of %s failed", tried, id))
	}
}

// noteFailover notes why failover did not act on failed's failure, and counts it.
func (m *Manager) noteFailover(failed *entry, result, note string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	failed.foNote, failed.failoverTo = note, ""
	if result != "" {
		m.policy.stats.Failovers[result]++
	}
}

func orNoneList(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
