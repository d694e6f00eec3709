// Package plugin is the plugin lifecycle manager of the HMA Plugin Lifecycle Concept: it
// discovers plugin packages in a repository directory, validates their manifests,
// registers every version, runs plugins as processes, and resolves a plugin id and a
// version constraint to the preferred running instance.
//
// The lifecycle itself (states, transitions, events, history, watch) runs on the same
// engine and store port as agents: a lifecycle.Manager with the plugin table
// (statemachine.PluginDefinition) over a Store of its own, where each plugin version is an
// entity "<id>:<version>". This package adds what is particular to plugins.
package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	pluginv1 "github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
	"github.com/hms-lifecycle/lifecycle/statemachine"
)

// State is a plugin's lifecycle state.
type State = pluginv1.PluginState

// The plugin states of the specification.
const (
	StateUnspecified  = pluginv1.PluginState_PLUGIN_STATE_UNSPECIFIED
	StateDiscovered   = pluginv1.PluginState_PLUGIN_STATE_DISCOVERED
	StateRegistered   = pluginv1.PluginState_PLUGIN_STATE_REGISTERED
	StateInactive     = pluginv1.PluginState_PLUGIN_STATE_INACTIVE
	StateActivating   = pluginv1.PluginState_PLUGIN_STATE_ACTIVATING
	StateActive       = pluginv1.PluginState_PLUGIN_STATE_ACTIVE
	StateDeactivating = pluginv1.PluginState_PLUGIN_STATE_DEACTIVATING
	StateFailed       = pluginv1.PluginState_PLUGIN_STATE_FAILED
	StateDeprecated   = pluginv1.PluginState_PLUGIN_STATE_DEPRECATED
)

// StateName is the specification's name of s ("Discovered").
func StateName(s State) string {
	if s > StateUnspecified && int(s) <= len(definition.States) {
		return definition.States[s-1]
	}
	return s.String()
}

// definition is the plugin table; its states, in order, are the PluginState values 1, 2, …
var definition = statemachine.PluginDefinition()

// The operations of the specification; on_success, on_error and on_runtime_error are the
// manager's own, the others an administrator's (or a policy's).
const (
	OpDiscover       = "discover" // the registration event
	OpValidate       = "validate"
	OpLoad           = "load"
	OpActivate       = "activate"
	OpDeactivate     = "deactivate"
	OpReset          = "reset"
	OpDeprecate      = "deprecate"
	OpOnSuccess      = "on_success"
	OpOnError        = "on_error"
	OpOnRuntimeError = "on_runtime_error"
)

// Initiators of the manager's own decisions.
const (
	InitiatorDiscovery = lifecycle.SystemPrefix + "plugin-discovery"
	InitiatorRuntime   = lifecycle.SystemPrefix + "plugin-runtime"
	InitiatorPolicy    = lifecycle.SystemPrefix + "plugin-policy"
)

// Limits.
const (
	MaxReplacementLength = 256
	MaxConstraintLength  = 256
	outputLines          = 20 // of a failed plugin's output, kept in its error
)

// Ref names one plugin version.
type Ref struct{ ID, Version string }

func (r Ref) String() string { return r.ID + " " + r.Version }

// key is the engine entity of a plugin version: "<id>:<version>", with a semantic
// version's '+' (build metadata) written '_', which a version never contains.
func (r Ref) key() string { return r.ID + ":" + strings.ReplaceAll(r.Version, "+", "_") }

func refOf(key string) Ref {
	id, v, _ := strings.Cut(key, ":")
	return Ref{id, strings.ReplaceAll(v, "_", "+")}
}

// Plugin is a plugin version as the registry knows it.
type Plugin struct {
	Ref
	State        State
	Revision     int64
	StateSince   time.Time
	LastSequence uint64
	// Path is the package folder, relative to the repository.
	Path string
	// Manifest is nil when the manifest could not be read.
	Manifest *manifest.Manifest
	// Errors say why the manifest is invalid (the plugin stays Discovered).
	Errors []manifest.FieldError
	// PackageMissing: the package is no longer in the repository.
	PackageMissing bool
	// ReplacedBy is what a deprecation named as the replacement.
	ReplacedBy string
	// Generation numbers activations; it is the revision of the activation's event.
	Generation uint64
	// Endpoint is host:port of the running plugin.
	Endpoint string
	// LastError says why it last failed, with the process's last output lines.
	LastError string
	// LastUsed is the last time Resolve returned it.
	LastUsed time.Time
	// AllowedOperations are the operations its state allows.
	AllowedOperations []string
	// Policy is what the automatic policies decided about it, and the pressure reading
	// they act on.
	Policy PolicyState
}

// Options configure a Manager. The zero value gives the defaults documented on each field.
type Options struct {
	// Repository is the directory of plugin packages (one folder each). Empty: no
	// discovery; nothing is registered.
	Repository string
	// CorePorts is the core's port catalogue; nil means manifest.DefaultCorePorts.
	CorePorts []string
	// Rescan is how often the repository is scanned besides file-system notifications.
	// Zero means 30s.
	Rescan time.Duration
	// AutoActivate activates a plugin as soon as it is registered (validate, load,
	// activate).
	AutoActivate bool
	// ActivateOnDemand lets Resolve activate the best inactive version when no version
	// satisfying the constraint is active.
	ActivateOnDemand bool
	// IdleTimeout deactivates an active plugin that Resolve has not returned for this
	// long. Zero: never.
	IdleTimeout time.Duration
	// Failover: when the active version of a plugin fails at runtime (its process exits or
	// fails its health checks), activate the best other version of the same id — the
	// highest Inactive one (so never a Failed or Deprecated one) satisfying
	// FailoverConstraint — unless another version satisfying it is still Active. The failed
	// version stays Failed until an administrator resets it.
	Failover bool
	// FailoverConstraint limits the versions failover may activate (a semantic version
	// constraint such as "^1"); empty: any.
	FailoverConstraint string
	// FailoverRate limits failovers per plugin id: at most N in any window of Per (the
	// Now clock). A failure beyond it is not failed over (noted in the failed version's
	// PolicyState). Zero: 3 per 10 minutes.
	FailoverRate Rate
	// PressureThreshold, in percent of Pressure.Max: above it the host is under pressure,
	// and an on-demand activation waits up to PressureWait for the pressure to fall, then
	// is refused (CodeResourceExhausted naming the reading); idle plugins are deactivated
	// after PressureIdleTimeout, least recently resolved first, until the pressure falls.
	// Zero: the host's pressure is not read.
	PressureThreshold float64
	// PressureWait is how long an on-demand activation under pressure waits for it to
	// fall. Zero: it is refused at once.
	PressureWait time.Duration
	// PressureIdleTimeout is the idle timeout while the host is under pressure (shorter
	// than IdleTimeout, or on its own). Zero: IdleTimeout applies under pressure too.
	PressureIdleTimeout time.Duration
	// PressureInterval is how often the pressure is read, for PolicyState and metrics,
	// and while an activation waits. Zero: 5s.
	PressureInterval time.Duration
	// Pressure is where readings come from; nil means HostPressure().
	Pressure PressureSource
	// Now is the clock; nil means the system's.
	Now func() time.Time
	// Logger: nil means slog.Default().
	Logger *slog.Logger
}

// Service is what the plugin Manager offers; a remote client implements it too.
type Service interface {
	Scan(ctx context.Context) (ScanReport, error)
	Get(ctx context.Context, ref Ref) (Plugin, error)
	List(ctx context.Context, req ListRequest) (Page, error)
	Validate(ctx context.Context, ref Ref, reason string) (Plugin, error)
	Load(ctx context.Context, ref Ref, reason string) (Plugin, error)
	Activate(ctx context.Context, ref Ref, reason string) (Plugin, error)
	Deactivate(ctx context.Context, ref Ref, reason string) (Plugin, error)
	Reset(ctx context.Context, ref Ref, reason string) (Plugin, error)
	Deprecate(ctx context.Context, ref Ref, replacement, reason string) (Plugin, error)
	Resolve(ctx context.Context, id, constraint string) (Plugin, error)
	History(ctx context.Context, req HistoryRequest) (HistoryPage, error)
	Watch(ctx context.Context, req WatchRequest) (EventStream, error)
}

var _ Service = (*Manager)(nil)

// Manager is the plugin lifecycle manager. It is safe for concurrent use.
type Manager struct {
	engine    *lifecycle.Manager
	store     lifecycle.Store
	validator *manifest.Validator
	repo      string
	opts      Options
	now       func() time.Time
	log       *slog.Logger
	spawner   *spawner
	self      string // processIdentity, recorded with each activation

	mu      sync.Mutex
	entries map[string]*entry // by Ref.key()
	scanMu  sync.Mutex        // one scan at a time

	policy policyState // failover and pressure (policy.go)

	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	workers   sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// entry is what the registry keeps of a plugin version beside its engine record.
type entry struct {
	ref        Ref
	path       string // relative to the repository
	manifest   *manifest.Manifest
	errors     []manifest.FieldError
	digest     string // of the validated manifest
	missing    bool
	replacedBy string
	generation uint64
	lastError  string
	lastUsed   time.Time
	started    bool     // (from the stored events) its last event recorded a started process
	activation string   // the last activation's marker (EnvActivation)
	owner      string   // the processIdentity of the manager that ran the last activation
	failoverTo string   // the version failover activated when this one failed
	foNote     string   // why failover did not act when this one failed
	deactivate string   // who deactivated it last, and why (until it is activated again)
	proc       *process // while Activating, Active or Deactivating with a runtime
	opMu       sync.Mutex
}

// New returns a Manager over store, which holds the plugin registry and its events and
// must not be shared with agents; the Manager does not own it. It rebuilds the registry
// from the store, scans the repository and watches it.
func New(ctx context.Context, store lifecycle.Store, opts *Options) (*Manager, error) {
	if opts == nil {
		opts = &Options{}
	}
	v, err := manifest.NewValidator(opts.CorePorts)
	if err != nil {
		return nil, err
	}
	engine, err := lifecycle.New(ctx, asShared(store), &lifecycle.Options{
		Machine: statemachine.MustCompile(definition), GenericStates: true, Now: opts.Now, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("open plugin manager: %w", err)
	}
	if err := checkPolicyOptions(opts); err != nil {
		engine.Close()
		return nil, err
	}
	m := &Manager{engine: engine, store: store, validator: v, repo: opts.Repository, opts: *opts,
		now: opts.Now, log: opts.Logger, entries: map[string]*entry{}, spawner: newSpawner(), self: processIdentity()}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.opts.Rescan <= 0 {
		m.opts.Rescan = 30 * time.Second
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if err := m.rebuild(ctx); err != nil {
		m.Close()
		return nil, fmt.Errorf("open plugin manager: %w", err)
	}
	if m.repo != "" {
		w := m.newRepoWatcher()
		m.workers.Add(1)
		go m.watch(m.ctx, w)
		if _, err := m.Scan(ctx); err != nil {
			m.Close()
			return nil, fmt.Errorf("open plugin manager: %w", err)
		}
	}
	m.startPolicies()
	return m, nil
}

// Close stops every running plugin (SIGTERM, grace period, SIGKILL), recording each as
// deactivated, stops discovery and closes the engine. The store stays open.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *Manager) close() error {
	m.cancel()
	m.workers.Wait()
	m.mu.Lock()
	var running []*entry
	for _, e := range m.entries {
		if e.proc != nil {
			running = append(running, e)
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := m.deactivate(ctx, e, "the plugin manager is shutting down", InitiatorRuntime, nil); err != nil {
				m.log.Error("stop plugin", "plugin", e.ref.String(), "err", err)
				// Whatever the registry says, no process outlives the manager.
				if proc := m.takeProc(e); proc != nil {
					proc.stop(m.grace(e))
				}
			}
		}()
	}
	wg.Wait()
	m.spawner.close()
	return m.engine.Close()
}

// rebuild loads the registry from the store: every plugin version, and from its events
// what the record does not hold. Versions left running by a manager that is gone are
// marked Failed, after stopping whatever of their processes is still running; those of
// a manager still running (another server on the same data) are left to it.
func (m *Manager) rebuild(ctx context.Context) error {
	for from := uint64(0); ; {
		evs, err := m.store.ReadEvents(ctx, lifecycle.EventFilter{FromSequence: from, Limit: 1000})
		if err != nil {
			return err
		}
		for i := range evs {
			m.fold(&evs[i])
		}
		if len(evs) < 1000 {
			break
		}
		from = evs[len(evs)-1].Sequence + 1
	}
	type running struct {
		e     *entry
		state State
		rev   int64
	}
	var stale []running
	m.mu.Lock()
	for _, e := range m.entries {
		st, err := m.engine.GetState(ctx, e.ref.key(), true)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		e.path = st.Metadata["path"]
		switch s := State(st.State); {
		case s == StateActive && !e.started:
			// Without a runtime block there is no process: it stays Active.
		case s == StateActivating || s == StateActive || s == StateDeactivating:
			stale = append(stale, running{e, s, st.Revision})
		}
	}
	m.mu.Unlock()
	for _, r := range stale {
		m.mu.Lock()
		marker, owner := r.e.activation, r.e.owner
		m.mu.Unlock()
		if owner != "" && identityAlive(owner) {
			m.log.Info("plugin left to the manager running it", "plugin", r.e.ref.String(), "state", StateName(r.state), "manager", owner)
			continue
		}
		op := OpOnError
		if r.state == StateActive {
			op = OpOnRuntimeError
		}
		reason := "the plugin manager restarted: the plugin's process ended with it"
		var meta map[string]string
		if marker != "" {
			if found, left := killMarked(marker, 10*time.Second); len(found) > 0 {
				reason = "the plugin manager restarted; it stopped what the previous one left running: " + procList(found)
				if len(left) > 0 {
					reason += "; still running after SIGKILL: " + procList(left)
				}
				pids := make([]string, len(found))
				for i, p := range found {
					pids[i] = strconv.Itoa(p.pid)
				}
				meta = map[string]string{"leftovers": strings.Join(pids, ",")}
				m.log.Warn("stopped the processes a previous plugin manager left running", "plugin", r.e.ref.String(), "processes", procList(found))
			}
		}
		if _, err := m.transition(ctx, r.e, r.rev, StateFailed, op, reason, InitiatorRuntime, meta); err != nil {
			return err
		}
	}
	return nil
}

// fold applies one stored event to the registry's entries.
func (m *Manager) fold(ev *lifecycle.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[ev.AgentID]
	if e == nil {
		e = &entry{ref: refOf(ev.AgentID)}
		m.entries[ev.AgentID] = e
	}
	e.started = ev.Metadata["endpoint"] != "" // the event that made it Active started a process
	switch op := operation(ev); {
	case op == OpValidate:
		e.digest = ev.Metadata["digest"]
	case op == OpActivate:
		e.generation = uint64(ev.Revision)
		e.activation, e.owner = ev.Metadata["activation"], ev.Metadata["manager"]
		e.failoverTo, e.foNote, e.deactivate = "", "", ""
		if ev.Metadata["policy"] == policyFailover {
			if f := m.entries[Ref{e.ref.ID, ev.Metadata["failed_version"]}.key()]; f != nil {
				f.failoverTo, f.foNote = e.ref.Version, ""
			}
		}
	case op == OpDeactivate:
		e.deactivate = ev.InitiatedBy
		if ev.Reason != "" {
			e.deactivate += ": " + ev.Reason
		}
	case State(ev.To) == StateFailed:
		e.lastError = ev.Reason
	case op == OpDeprecate:
		e.replacedBy = ev.Metadata["replacement"]
	}
}

// operation names the operation an event records.
func operation(ev *lifecycle.Event) string {
	if ev.From == lifecycle.StateUnspecified {
		return OpDiscover
	}
	for _, t := range definition.Transitions {
		if t.From == StateName(State(ev.From)) && t.To == StateName(State(ev.To)) {
			return t.Event
		}
	}
	return ""
}

// AllowedOperations lists the operations an administrator (or a policy) may ask for in
// state s; on_success, on_error and on_runtime_error are the manager's own.
func AllowedOperations(s State) []string {
	var out []string
	for _, t := range definition.Transitions {
		if t.From == StateName(s) && t.Event != OpOnSuccess && t.Event != OpOnError && t.Event != OpOnRuntimeError {
			out = append(out, t.Event)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// transition records one transition of a plugin version, at the revision the caller saw.
// A refusal (another change came first) is CodeFailedPrecondition.
func (m *Manager) transition(ctx context.Context, e *entry, revision int64, to State, op, reason, initiator string, meta map[string]string) (lifecycle.Event, error) {
	if initiator != "" {
		ctx = lifecycle.WithInitiator(ctx, initiator)
	}
	if meta == nil {
		meta = map[string]string{}
	}
	meta["operation"] = op
	res, err := m.engine.Transition(ctx, lifecycle.TransitionRequest{AgentID: e.ref.key(), Target: lifecycle.State(to),
		ExpectedRevision: revision, Reason: truncate(reason, lifecycle.MaxReasonLength), Metadata: meta})
	if err != nil {
		return lifecycle.Event{}, fmt.Errorf("plugin %s: %s: %w", e.ref, op, err)
	}
	if !res.Success {
		return lifecycle.Event{}, lifecycle.Errorf(lifecycle.CodeFailedPrecondition, "plugin %s changed meanwhile (%s); try again", e.ref, res.Message)
	}
	m.fold(&res.Event)
	return res.Event, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 { // keep UTF-8 whole
		n--
	}
	return s[:n]
}

// entryFor returns the registry entry of ref. CodeNotFound if there is none.
func (m *Manager) entryFor(ref Ref) (*entry, error) {
	if ref.ID == "" || ref.Version == "" {
		return nil, lifecycle.Errorf(lifecycle.CodeInvalidArgument, "a plugin is named by id and version; got id %q, version %q", ref.ID, ref.Version)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[ref.key()]
	if e == nil {
		return nil, lifecycle.Errorf(lifecycle.CodeNotFound, "plugin %s not found", ref)
	}
	return e, nil
}

// Get returns one plugin version. CodeNotFound if the registry has none.
func (m *Manager) Get(ctx context.Context, ref Ref) (Plugin, error) {
	e, err := m.entryFor(ref)
	if err != nil {
		return Plugin{}, err
	}
	return m.view(ctx, e)
}

func (m *Manager) view(ctx context.Context, e *entry) (Plugin, error) {
	st, err := m.engine.GetState(ctx, e.ref.key(), false)
	if err != nil {
		return Plugin{}, fmt.Errorf("plugin %s: %w", e.ref, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.viewLocked(e, &st), nil
}

func (m *Manager) viewLocked(e *entry, st *lifecycle.AgentState) Plugin {
	p := Plugin{Ref: e.ref, State: State(st.State), Revision: st.Revision, StateSince: st.EnteredAt, LastSequence: st.LastSequence,
		Path: e.path, Manifest: e.manifest, Errors: e.errors, PackageMissing: e.missing, ReplacedBy: e.replacedBy,
		Generation: e.generation, LastError: e.lastError, LastUsed: e.lastUsed, AllowedOperations: AllowedOperations(State(st.State)),
		Policy: PolicyState{FailoverTarget: e.failoverTo, FailoverNote: e.foNote, Deactivation: e.deactivate,
			Pressure: m.policy.pressure, PressureThreshold: m.opts.PressureThreshold}}
	if e.proc != nil && p.State == StateActive {
		p.Endpoint = e.proc.endpoint
	}
	return p
}

// notAllowed is the answer to an operation the plugin's state does not allow.
func notAllowed(ref Ref, s State, op string) error {
	allowed := strings.Join(AllowedOperations(s), ", ")
	if allowed == "" {
		allowed = "none"
	}
	return lifecycle.Errorf(lifecycle.CodeFailedPrecondition, "plugin %s is %s: %s is not allowed; allowed operations: %s", ref, StateName(s), op, allowed)
}

// begin checks that op is allowed for e now and returns its state.
func (m *Manager) begin(ctx context.Context, e *entry, op string) (lifecycle.AgentState, error) {
	st, err := m.engine.GetState(ctx, e.ref.key(), false)
	if err != nil {
		return st, err
	}
	if !slices.Contains(AllowedOperations(State(st.State)), op) {
		return st, notAllowed(e.ref, State(st.State), op)
	}
	return st, nil
}
