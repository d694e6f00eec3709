package plugin

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/uuid"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
)

// Validate validates a Discovered plugin's manifest again (after it was fixed): valid, it
// becomes Registered; invalid, it stays Discovered and the error lists the problems.
func (m *Manager) Validate(ctx context.Context, ref Ref, reason string) (Plugin, error) {
	e, err := m.entryFor(ref)
	if err != nil {
		return Plugin{}, err
	}
	e.opMu.Lock()
	defer e.opMu.Unlock()
	st, err := m.begin(ctx, e, OpValidate)
	if err != nil {
		return Plugin{}, err
	}
	if err := m.validate(ctx, e, st.Revision, reason, lifecycle.InitiatorFrom(ctx)); err != nil {
		return Plugin{}, err
	}
	return m.view(ctx, e)
}

// validate reads e's manifest and, if it is valid, moves e from Discovered to Registered.
func (m *Manager) validate(ctx context.Context, e *entry, revision int64, reason, initiator string) error {
	man, err := m.validator.ReadFile(filepath.Join(m.repo, e.path, manifest.FileName))
	return m.accept(ctx, e, revision, man, err, reason, initiator)
}

// accept records a manifest as validated (man, or the error err): e's manifest and errors,
// and, if it is valid, Discovered → Registered.
func (m *Manager) accept(ctx context.Context, e *entry, revision int64, man *manifest.Manifest, err error, reason, initiator string) error {
	m.mu.Lock()
	e.manifest, e.errors = man, fieldErrors(err)
	m.mu.Unlock()
	if err != nil {
		return lifecycle.Errorf(lifecycle.CodeFailedPrecondition, "plugin %s stays %s: %v", e.ref, StateName(StateDiscovered), err)
	}
	if reason == "" {
		reason = "manifest valid"
	}
	_, err = m.transition(ctx, e, revision, StateRegistered, OpValidate, reason, initiator, map[string]string{"digest": man.Digest})
	return err
}

func fieldErrors(err error) []manifest.FieldError {
	if err == nil {
		return nil
	}
	if me, ok := err.(*manifest.Error); ok {
		return me.Fields
	}
	return []manifest.FieldError{{Message: err.Error()}}
}

// Load moves a Registered plugin to Inactive: available to be activated.
func (m *Manager) Load(ctx context.Context, ref Ref, reason string) (Plugin, error) {
	return m.simple(ctx, ref, OpLoad, StateInactive, reason)
}

// Reset moves a Failed plugin back to Inactive.
func (m *Manager) Reset(ctx context.Context, ref Ref, reason string) (Plugin, error) {
	return m.simple(ctx, ref, OpReset, StateInactive, reason)
}

// Deprecate retires a Registered or Inactive version: it is never activated again, and
// Resolve prefers the others. replacement names what replaces it (free text).
func (m *Manager) Deprecate(ctx context.Context, ref Ref, replacement, reason string) (Plugin, error) {
	if len(replacement) > MaxReplacementLength {
		return Plugin{}, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "replacement is %d bytes long, at most %d allowed", len(replacement), MaxReplacementLength)
	}
	var meta map[string]string
	if replacement != "" {
		meta = map[string]string{"replacement": replacement}
	}
	return m.simple(ctx, ref, OpDeprecate, StateDeprecated, reason, meta)
}

func (m *Manager) simple(ctx context.Context, ref Ref, op string, to State, reason string, meta ...map[string]string) (Plugin, error) {
	e, err := m.entryFor(ref)
	if err != nil {
		return Plugin{}, err
	}
	e.opMu.Lock()
	defer e.opMu.Unlock()
	st, err := m.begin(ctx, e, op)
	if err != nil {
		return Plugin{}, err
	}
	if op == OpReset {
		// A Failed plugin has no process here, unless another process recorded the failure
		// while this one still ran it: stop that, so that Inactive means stopped.
		if proc := m.takeProc(e); proc != nil {
			proc.stop(m.grace(e))
		}
	}
	var md map[string]string
	if len(meta) > 0 {
		md = meta[0]
	}
	if _, err := m.transition(ctx, e, st.Revision, to, op, reason, "", md); err != nil {
		return Plugin{}, err
	}
	return m.view(ctx, e)
}

// Activate starts an Inactive plugin: Activating, then, once its process answers its
// health check (or at once, without a runtime block), Active — or Failed with the reason
// and the process's last output lines. It waits for the outcome.
func (m *Manager) Activate(ctx context.Context, ref Ref, reason string) (Plugin, error) {
	e, err := m.entryFor(ref)
	if err != nil {
		return Plugin{}, err
	}
	return m.activate(ctx, e, reason, "", nil)
}

func (m *Manager) activate(ctx context.Context, e *entry, reason, initiator string, inputs map[string]string) (Plugin, error) {
	e.opMu.Lock()
	defer e.opMu.Unlock()
	st, err := m.begin(ctx, e, OpActivate)
	if err != nil {
		return Plugin{}, err
	}
	m.mu.Lock()
	man, missing, stale := e.manifest, e.missing, e.manifest != nil && e.digest != "" && e.manifest.Digest != e.digest
	m.mu.Unlock()
	switch {
	case missing:
		return Plugin{}, lifecycle.Errorf(lifecycle.CodeFailedPrecondition, "plugin %s: its package is no longer in the repository", e.ref)
	case man == nil:
		return Plugin{}, lifecycle.Errorf(lifecycle.CodeFailedPrecondition, "plugin %s: its manifest cannot be read", e.ref)
	case stale:
		return Plugin{}, lifecycle.Errorf(lifecycle.CodeFailedPrecondition,
			"plugin %s: its manifest changed after it was validated; a registered version is immutable: publish a new version", e.ref)
	case man.Runtime != nil:
		if err := canRun(e.ref); err != nil {
			return Plugin{}, err
		}
	}
	// The activation's marker and the manager running it are recorded first, so that a
	// later manager finds what this one leaves if it dies.
	marker := uuid.NewString()
	meta := map[string]string{"activation": marker, "manager": m.self}
	maps.Copy(meta, inputs)
	ev, err := m.transition(ctx, e, st.Revision, StateActivating, OpActivate, reason, initiator, meta)
	if err != nil {
		return Plugin{}, err
	}
	gen := uint64(ev.Revision)
	if man.Runtime == nil {
		_, err := m.transition(ctx, e, ev.Revision, StateActive, OpOnSuccess, "no runtime block: nothing to start", InitiatorRuntime,
			map[string]string{"generation": strconv.FormatUint(gen, 10)})
		if err != nil {
			return Plugin{}, err
		}
		m.tally(&m.policy.stats.Activations, "ok")
		return m.view(ctx, e)
	}
	proc, err := m.spawner.start(filepath.Join(m.repo, e.path), man, gen, marker)
	if err == nil {
		m.mu.Lock()
		e.proc = proc
		m.policy.stats.ProcessStarts++
		m.mu.Unlock()
		err = proc.waitHealthy(ctx, man.Runtime)
	}
	if err != nil {
		m.tally(&m.policy.stats.Activations, "failed")
		why := "activation failed: " + err.Error()
		if proc != nil {
			proc.stop(0)
			m.mu.Lock()
			e.proc = nil
			m.mu.Unlock()
			why += proc.tail()
		}
		if _, terr := m.transition(context.WithoutCancel(ctx), e, ev.Revision, StateFailed, OpOnError, why, InitiatorRuntime, nil); terr != nil {
			return Plugin{}, terr
		}
		return m.view(ctx, e)
	}
	if _, err := m.transition(ctx, e, ev.Revision, StateActive, OpOnSuccess, "healthy", InitiatorRuntime, map[string]string{
		"endpoint": proc.endpoint, "generation": strconv.FormatUint(gen, 10), "pid": strconv.Itoa(proc.pid())}); err != nil {
		proc.stop(0)
		return Plugin{}, err
	}
	m.tally(&m.policy.stats.Activations, "ok")
	m.workers.Add(1)
	go m.monitor(e, proc, ev.Revision+1)
	return m.view(ctx, e)
}

// monitor watches a running plugin: when its process exits or fails its health check
// often enough, the plugin fails (on_runtime_error) — if it is still the same activation.
func (m *Manager) monitor(e *entry, proc *process, activeRevision int64) {
	defer m.workers.Done()
	why := proc.watch(m.ctx)
	if m.ctx.Err() != nil {
		return // Close stops the plugin and records it
	}
	if reason, failed := m.recordRuntimeFailure(e, proc, activeRevision, why); failed {
		cause := "exit"
		if proc.healthFailed {
			cause = "health"
		}
		m.tally(&m.policy.stats.RuntimeFailures, cause)
		m.failover(e, proc.generation, reason)
	}
}

// recordRuntimeFailure records that proc, e's activation, failed at runtime (unless it was
// deactivated meanwhile); it reports whether it did, and the reason recorded.
func (m *Manager) recordRuntimeFailure(e *entry, proc *process, activeRevision int64, why string) (string, bool) {
	e.opMu.Lock()
	defer e.opMu.Unlock()
	m.mu.Lock()
	current := e.proc == proc
	if current {
		e.proc = nil
	}
	m.mu.Unlock()
	if !current {
		return "", false // deactivated meanwhile
	}
	proc.stop(0)
	reason := why + proc.tail()
	if _, err := m.transition(m.ctx, e, activeRevision, StateFailed, OpOnRuntimeError, reason, InitiatorRuntime,
		map[string]string{"generation": strconv.FormatUint(proc.generation, 10)}); err != nil {
		m.log.Error("record plugin failure", "plugin", e.ref.String(), "err", err)
		return "", false
	}
	return reason, true
}

// Deactivate stops an Active plugin: Deactivating, SIGTERM to its process group, the
// grace period, SIGKILL if it is still there, then Inactive.
func (m *Manager) Deactivate(ctx context.Context, ref Ref, reason string) (Plugin, error) {
	e, err := m.entryFor(ref)
	if err != nil {
		return Plugin{}, err
	}
	return m.deactivate(ctx, e, reason, "", nil)
}

func (m *Manager) deactivate(ctx context.Context, e *entry, reason, initiator string, inputs map[string]string) (Plugin, error) {
	e.opMu.Lock()
	defer e.opMu.Unlock()
	st, err := m.begin(ctx, e, OpDeactivate)
	if err != nil {
		return Plugin{}, err
	}
	ev, err := m.transition(ctx, e, st.Revision, StateDeactivating, OpDeactivate, reason, initiator, inputs)
	if err != nil {
		return Plugin{}, err
	}
	result := "stopped"
	if proc := m.takeProc(e); proc != nil {
		result = proc.stop(m.grace(e))
	}
	_, err = m.transition(context.WithoutCancel(ctx), e, ev.Revision, StateInactive, OpOnSuccess, result, InitiatorRuntime, nil)
	if err != nil {
		return Plugin{}, err
	}
	return m.view(ctx, e)
}

// takeProc returns e's running process, which is then no longer e's.
func (m *Manager) takeProc(e *entry) *process {
	m.mu.Lock()
	defer m.mu.Unlock()
	proc := e.proc
	e.proc = nil
	return proc
}

// grace is how long e's process gets between SIGTERM and SIGKILL.
func (m *Manager) grace(e *entry) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.manifest != nil && e.manifest.Runtime != nil {
		return e.manifest.Runtime.StopGracePeriod()
	}
	return manifest.DefaultStopGracePeriod
}

// ListRequest filters List. Empty fields match everything.
type ListRequest struct {
	States []State
	ID     string
	Type   string
	// Port keeps plugins implementing or consuming it.
	Port      string
	PageSize  int
	PageToken string
}

// Page is one page of plugin versions, in (id, version) order.
type Page struct {
	Plugins       []Plugin
	NextPageToken string
}

// List lists plugin versions.
func (m *Manager) List(ctx context.Context, req ListRequest) (Page, error) {
	size := req.PageSize
	switch {
	case size < 0 || size > lifecycle.MaxPageSize:
		return Page{}, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "page_size is %d, allowed 0 (default %d) to %d", size, lifecycle.DefaultPageSize, lifecycle.MaxPageSize)
	case size == 0:
		size = lifecycle.DefaultPageSize
	}
	for _, s := range req.States {
		if s <= StateUnspecified || s > StateDeprecated {
			return Page{}, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "states: %d is not a plugin state", int32(s))
		}
	}
	after, err := decodeListToken(req)
	if err != nil {
		return Page{}, err
	}
	// One pass over the stored records, in key order, rather than a read per plugin.
	f := lifecycle.AgentFilter{AfterID: after, Limit: lifecycle.MaxPageSize}
	for _, st := range req.States {
		f.States = append(f.States, lifecycle.State(st))
	}
	var page Page
	for {
		agents, err := m.store.ListAgents(ctx, f)
		if err != nil {
			return Page{}, fmt.Errorf("list plugins: %w", err)
		}
		m.mu.Lock()
		for i := range agents {
			e := m.entries[agents[i].ID]
			if e == nil || req.ID != "" && e.ref.ID != req.ID || !matchManifest(e.manifest, req.Type, req.Port) {
				continue
			}
			if len(page.Plugins) == size {
				m.mu.Unlock()
				page.NextPageToken = listToken(req, page.Plugins[size-1].key())
				return page, nil
			}
			page.Plugins = append(page.Plugins, m.viewLocked(e, &lifecycle.AgentState{Agent: agents[i]}))
		}
		m.mu.Unlock()
		if len(agents) < f.Limit {
			return page, nil
		}
		f.AfterID = agents[len(agents)-1].ID
	}
}

// listTokenKind starts every List page token, as "p1:" starts History's.
const listTokenKind = "l1"

// listToken is the opaque token of the page after key: its kind, a hash of the filters
// (so that it is not reused with other filters by mistake) and the key.
func listToken(req ListRequest, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(listTokenKind + "." + listFilterHash(req) + "." + key))
}

// decodeListToken returns the key a page token continues after; "" for none.
// CodeInvalidArgument for a token this server did not issue, or issued for other filters.
func decodeListToken(req ListRequest) (string, error) {
	if req.PageToken == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(req.PageToken)
	parts := strings.SplitN(string(raw), ".", 3)
	if err != nil || len(parts) != 3 || parts[0] != listTokenKind || !strings.Contains(parts[2], ":") {
		return "", lifecycle.Errorf(lifecycle.CodeInvalidArgument, "page_token is malformed: not a token this server issued")
	}
	if parts[1] != listFilterHash(req) {
		return "", lifecycle.Errorf(lifecycle.CodeInvalidArgument,
			"page_token was issued for other filters; repeat the first request's filters or start without a token")
	}
	return parts[2], nil
}

func listFilterHash(req ListRequest) string {
	h := fnv.New32a()
	fmt.Fprint(h, req.States, "|", req.ID, "|", req.Type, "|", req.Port)
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

func matchManifest(man *manifest.Manifest, typ, port string) bool {
	if typ == "" && port == "" {
		return true
	}
	if man == nil {
		return false
	}
	return (typ == "" || man.Type == typ) &&
		(port == "" || slices.Contains(man.ImplementedPorts, port) || slices.Contains(man.ConsumedCorePorts, port))
}

// Resolve returns the preferred instance of plugin id for a semantic version constraint
// (empty: any): the highest Active, non-deprecated version satisfying it. With
// Options.ActivateOnDemand, when none is active, it activates the highest Inactive one
// satisfying it and returns that — unless the host is under pressure (PressureThreshold):
// then it waits up to PressureWait for the pressure to fall, and beyond answers
// CodeResourceExhausted naming the reading. CodeNotFound when no version satisfies the constraint,
// CodeFailedPrecondition when none is active (the message lists the versions and states).
func (m *Manager) Resolve(ctx context.Context, id, constraint string) (Plugin, error) {
	if len(constraint) > MaxConstraintLength {
		return Plugin{}, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "constraint is %d bytes long, at most %d allowed", len(constraint), MaxConstraintLength)
	}
	c, err := semver.NewConstraint(orAny(constraint))
	if err != nil {
		return Plugin{}, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "constraint %q is not a semantic version constraint: %v", constraint, err)
	}
	var candidates []Plugin
	m.mu.Lock()
	var es []*entry
	for _, e := range m.entries {
		if e.ref.ID == id && e.manifest != nil && e.manifest.SemVer != nil && c.Check(e.manifest.SemVer) {
			es = append(es, e)
		}
	}
	m.mu.Unlock()
	for _, e := range es {
		p, err := m.view(ctx, e)
		if err != nil {
			return Plugin{}, err
		}
		candidates = append(candidates, p)
	}
	if len(candidates) == 0 {
		return Plugin{}, lifecycle.Errorf(lifecycle.CodeNotFound, "no version of plugin %s satisfies %q", id, orAny(constraint))
	}
	slices.SortFunc(candidates, func(a, b Plugin) int { return b.Manifest.SemVer.Compare(a.Manifest.SemVer) })
	pick := func(s State) *Plugin {
		for i := range candidates {
			if candidates[i].State == s {
				return &candidates[i]
			}
		}
		return nil
	}
	best := pick(StateActive)
	if best == nil && m.opts.ActivateOnDemand {
		if in := pick(StateInactive); in != nil {
			e, _ := m.entryFor(in.Ref)
			inputs := map[string]string{"policy": policyOnDemand, "constraint": orAny(constraint)}
			if m.opts.PressureThreshold > 0 {
				p, err := m.awaitPressure(ctx, fmt.Sprintf("plugin %s is not activated on demand", in.Ref))
				if err != nil {
					return Plugin{}, err
				}
				p.metadata(m.opts.PressureThreshold, inputs)
			}
			p, err := m.activate(ctx, e, fmt.Sprintf("resolve %s %q found no active version", id, orAny(constraint)), InitiatorPolicy, inputs)
			if err != nil {
				return Plugin{}, err
			}
			if p.State == StateActive {
				best = &p
			}
		}
	}
	if best == nil {
		var have []string
		for _, p := range candidates {
			have = append(have, p.Version+" "+StateName(p.State))
		}
		return Plugin{}, lifecycle.Errorf(lifecycle.CodeFailedPrecondition, "no active version of plugin %s satisfies %q (versions: %s)", id, orAny(constraint), strings.Join(have, ", "))
	}
	e, _ := m.entryFor(best.Ref)
	m.mu.Lock()
	e.lastUsed = m.now()
	best.LastUsed = e.lastUsed
	m.mu.Unlock()
	return *best, nil
}

func orAny(constraint string) string {
	if constraint == "" {
		return "*"
	}
	return constraint
}
