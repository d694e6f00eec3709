package lifecycle

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// HookFunc is an in-process hook target. A blocking hook vetoes by returning a decision
// with Veto set; returning an error (or panicking, or overrunning the deadline of ctx)
// fails the invocation, which then follows the hook's failure policy.
type HookFunc func(ctx context.Context, call HookCall) (HookDecision, error)

// HookCall is one invocation of a hook.
type HookCall struct {
	HookID, HookName string
	// Event is the transition. For a blocking hook it is not committed yet, so Sequence is 0.
	Event    Event
	Blocking bool
	Deadline time.Time
	// IdempotencyKey is the event id: the same for every retry of one delivery.
	IdempotencyKey string
	Attempt        int
}

// HookDecision is a hook's answer. The zero value allows the transition.
type HookDecision struct {
	Veto   bool
	Reason string
}

// RegisterHookResult answers a registration. A registration the lifecycle refuses (the
// name is taken, the blocking hooks' timeouts would not fit a transition's default
// deadline) has Success false and a Message, like a refused transition.
type RegisterHookResult struct {
	Success bool
	HookID  string
	Message string
	// Warnings, on success: what may not work as intended, such as a callback hook that
	// nothing serves yet (every invocation fails until something does).
	Warnings []string
}

// HookStatus is a hook with what it has done in this process.
type HookStatus struct {
	Hook
	Invocations, Allowed, Vetoed, Failed, TimedOut uint64
	Last                                           *HookOutcome
	// WorkerConnected: something serves the callback hook's callback — a HandleCallback
	// function in this process, or a hook worker connected to the server. Always false for
	// other targets.
	WorkerConnected bool
}

// TargetType is a kind of hook target, named by a hook's config["type"]. "callback" (the
// default) is built in; others, such as webhooks, come in Options.Targets.
type TargetType interface {
	// Target checks a hook's target configuration — its config without the keys every
	// hook has (type, failure_policy, max_attempts) — and returns the function that serves
	// the hook. A bad configuration is a CodeInvalidArgument error naming the key.
	Target(hook Hook, config map[string]string) (HookFunc, error)
}

// callbackTarget serves hooks with functions given to HandleCallback, looked up at each
// invocation so that a callback registered after the hook (or after a restart) is used.
type callbackTarget struct{ m *Manager }

func (t callbackTarget) Target(_ Hook, config map[string]string) (HookFunc, error) {
	name := config["callback"]
	for k := range config {
		if k != "callback" {
			return nil, invalid("config: unknown key %q for a callback hook; known keys: type, callback, failure_policy, max_attempts", k)
		}
	}
	if name == "" {
		return nil, invalid("config[callback] is empty: name the callback (see HandleCallback) that serves this hook")
	}
	if err := checkID("config[callback]", name); err != nil {
		return nil, err
	}
	return func(ctx context.Context, call HookCall) (HookDecision, error) {
		fn, ok := t.m.callbacks.Load(name)
		if !ok {
			return HookDecision{}, fmt.Errorf("no callback named %q is registered in this process", name)
		}
		return fn.(HookFunc)(ctx, call)
	}, nil
}

// HandleCallback makes fn the target of hooks whose config names callback name. Hooks are
// stored; callbacks are not, so a process registers its callbacks again after a restart
// (or passes them in Options.Callbacks). A nil fn removes the callback.
func (m *Manager) HandleCallback(name string, fn HookFunc) error {
	if err := checkID("callback", name); err != nil {
		return err
	}
	if fn == nil {
		m.callbacks.Delete(name)
	} else {
		m.callbacks.Store(name, fn)
	}
	return nil
}

type hookEntry struct {
	Hook
	filter         eventFilter
	fn             HookFunc
	ignoreFailures bool
	maxAttempts    int

	mu       sync.Mutex
	stats    HookStatus
	delivery *Watcher           // a non-blocking hook's, while it delivers (for its backlog)
	buffered atomic.Int64       // events its delivery has read but not taken up yet (backlog)
	stop     context.CancelFunc // ends non-blocking delivery
	done     chan struct{}
}

// hookSet is replaced as a whole on every change, so transitions read it without a lock.
type hookSet struct {
	byID     map[string]*hookEntry
	blocking []*hookEntry // in the order they run: by name, then id
}

const (
	defaultMaxAttempts = 5
	maxMaxAttempts     = 100
	maxRetryBackoff    = 30 * time.Second
)

// RegisterHook stores a hook and starts using it. CodeInvalidArgument names a malformed
// field; a refusal is answered in the result.
func (m *Manager) RegisterHook(ctx context.Context, spec HookSpec) (RegisterHookResult, error) {
	if err := m.checkOpen(); err != nil {
		return RegisterHookResult{}, err
	}
	h, err := m.newHookEntry(Hook{Spec: spec})
	if err != nil {
		return RegisterHookResult{}, err
	}
	m.hookMu.Lock()
	defer m.hookMu.Unlock()
	hs := m.hooks.Load()
	budget := h.Spec.Timeout
	for _, o := range hs.byID {
		if o.Spec.Name == spec.Name {
			return RegisterHookResult{Message: fmt.Sprintf("a hook named %q already exists (%s)", spec.Name, o.ID)}, nil
		}
		if o.Spec.Blocking {
			budget += o.Spec.Timeout
		}
	}
	if spec.Blocking && budget > DefaultTransitionTimeout {
		return RegisterHookResult{Message: fmt.Sprintf(
			"the blocking hooks' timeouts would add up to %v, more than a transition's default deadline of %v; lower timeout_ms",
			budget, DefaultTransitionTimeout)}, nil
	}
	h.ID = "hook-" + uuid.Must(uuid.NewV7()).String()
	h.CreatedAt = m.now()
	if !spec.Blocking {
		_, newest, err := m.store.Sequences(ctx)
		if err != nil {
			return RegisterHookResult{}, fmt.Errorf("register hook %s: %w", spec.Name, err)
		}
		h.Cursor = newest // a new hook sees events committed from now on
	}
	if err := m.store.CreateHook(ctx, h.Hook); err != nil {
		return RegisterHookResult{}, fmt.Errorf("register hook %s: %w", spec.Name, err)
	}
	m.installHooks(hs, h, "")
	return RegisterHookResult{Success: true, HookID: h.ID, Warnings: m.unservedWarning(&spec)}, nil
}

// UnregisterHook removes a hook; its delivery stops. CodeNotFound for an unknown id.
func (m *Manager) UnregisterHook(ctx context.Context, hookID string) error {
	if err := checkID("hook_id", hookID); err != nil {
		return err
	}
	m.hookMu.Lock()
	defer m.hookMu.Unlock()
	if err := m.store.DeleteHook(ctx, hookID); err != nil {
		return fmt.Errorf("unregister hook %s: %w", hookID, err)
	}
	m.installHooks(m.hooks.Load(), nil, hookID)
	return nil
}

// ListHooks returns the hooks, by name, with their statistics in this process. Secrets
// in their configs are write-only: shown as SecretSet (redactConfig).
func (m *Manager) ListHooks(ctx context.Context) ([]HookStatus, error) {
	hs := m.hooks.Load()
	out := make([]HookStatus, 0, len(hs.byID))
	for _, h := range hs.byID {
		h.mu.Lock()
		st := h.stats
		st.Hook = h.Hook
		h.mu.Unlock()
		if name := callbackOf(st.Spec.Config); name != "" {
			_, st.WorkerConnected = m.callbacks.Load(name)
		}
		st.Spec.Config = redactConfig(st.Spec.Config)
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b HookStatus) int { return cmp.Compare(a.Spec.Name, b.Spec.Name) })
	return out, nil
}

// callbackOf is the callback a hook's config names, or "" for other targets.
func callbackOf(config map[string]string) string {
	if t := config["type"]; t != "" && t != "callback" {
		return ""
	}
	return config["callback"]
}

// unservedWarning warns of a callback hook whose callback nothing serves yet: it is stored,
// but every invocation fails until something does.
func (m *Manager) unservedWarning(spec *HookSpec) []string {
	name := callbackOf(spec.Config)
	if _, ok := m.callbacks.Load(name); name == "" || ok {
		return nil
	}
	policy := "the transition is refused (failure_policy fail)"
	switch {
	case !spec.Blocking:
		policy = "its deliveries are retried and then given up"
	case spec.Config["failure_policy"] == "ignore":
		policy = "the failure is ignored (failure_policy ignore)"
	}
	return []string{fmt.Sprintf("nothing serves callback %q yet: until a program serving it connects to the server "+
		"(client.HandleCallback, a binding's handle_callback) or registers it in-process (HandleCallback), "+
		"the hook fails each time it runs and %s", name, policy)}
}

func (m *Manager) loadHooks(ctx context.Context) error {
	hooks, err := m.store.ListHooks(ctx)
	if err != nil {
		return fmt.Errorf("load hooks: %w", err)
	}
	m.hooks.Store(&hookSet{byID: map[string]*hookEntry{}})
	for _, stored := range hooks {
		m.installHooks(m.hooks.Load(), m.storedHookEntry(stored), "")
	}
	return nil
}

// installHooks publishes a new hookSet with add added and the hook removeID removed,
// starting or stopping non-blocking delivery. Call with hookMu held (or before use).
func (m *Manager) installHooks(old *hookSet, add *hookEntry, removeID string) {
	next := &hookSet{byID: make(map[string]*hookEntry, len(old.byID)+1)}
	for id, h := range old.byID {
		if id == removeID {
			if h.stop != nil {
				h.stop()
				<-h.done
			}
			continue
		}
		next.byID[id] = h
	}
	if add != nil {
		next.byID[add.ID] = add
		if !add.Spec.Blocking {
			ctx, stop := context.WithCancel(m.ctx)
			add.stop, add.done = stop, make(chan struct{})
			m.workers.Add(1)
			go m.deliver(ctx, add)
		}
	}
	for _, h := range next.byID {
		if h.Spec.Blocking {
			next.blocking = append(next.blocking, h)
		}
	}
	slices.SortFunc(next.blocking, func(a, b *hookEntry) int {
		return cmp.Or(cmp.Compare(a.Spec.Name, b.Spec.Name), cmp.Compare(a.ID, b.ID))
	})
	m.hooks.Store(next)
}

// storedHookEntry compiles a stored hook. One this process cannot serve (a target type it
// was not given) stays visible and fails each invocation, saying why.
func (m *Manager) storedHookEntry(h Hook) *hookEntry {
	e, err := m.newHookEntry(h)
	if err != nil {
		m.log.Error("hook cannot be served by this process", "hook", h.Spec.Name, "err", err)
		e = &hookEntry{Hook: h, maxAttempts: defaultMaxAttempts,
			fn: func(context.Context, HookCall) (HookDecision, error) { return HookDecision{}, err }}
		e.filter = newEventFilter(h.Spec.AgentIDs, h.Spec.TriggerStates, h.Spec.TriggerTypes)
	}
	return e
}

// newHookEntry validates a hook's spec and compiles it.
func (m *Manager) newHookEntry(h Hook) (*hookEntry, error) {
	s := &h.Spec
	if err := checkID("hook_name", s.Name); err != nil {
		return nil, err
	}
	for _, st := range s.TriggerStates {
		if err := m.machine.check("trigger_states", st, false); err != nil {
			return nil, err
		}
	}
	for _, t := range s.TriggerTypes {
		if err := checkType("trigger_transitions", t); err != nil {
			return nil, err
		}
		if t == TypeUnspecified {
			return nil, invalid("trigger_transitions: UNSPECIFIED is not a transition type")
		}
	}
	if err := checkTimeout("timeout_ms", s.Timeout); err != nil {
		return nil, err
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultHookTimeout
	}
	if len(s.AgentIDs) > MaxAgentIDsPerHook {
		return nil, invalid("agent_ids has %d entries, at most %d allowed", len(s.AgentIDs), MaxAgentIDsPerHook)
	}
	for _, id := range s.AgentIDs {
		if err := checkID("agent_ids", id); err != nil {
			return nil, err
		}
	}
	e := &hookEntry{maxAttempts: defaultMaxAttempts}
	typ := "callback"
	target := map[string]string{}
	for k, v := range s.Config {
		switch k {
		case "type":
			typ = v
		case "failure_policy":
			if v != "fail" && v != "ignore" {
				return nil, invalid("config[failure_policy]: %q is not a failure policy; use fail or ignore", v)
			}
			e.ignoreFailures = v == "ignore"
		case "max_attempts":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxMaxAttempts {
				return nil, invalid("config[max_attempts]: %q is not a number from 1 to %d", v, maxMaxAttempts)
			}
			e.maxAttempts = n
		default:
			if v == SecretSet && secretKey(k) {
				return nil, invalid("config[%s]: %q is how ListHooks shows a secret that is set; give the secret itself", k, v)
			}
			target[k] = v
		}
	}
	tt, ok := m.targets[typ]
	if !ok {
		return nil, invalid("config[type]: %q is not a hook type; supported: %s", typ, strings.Join(slices.Sorted(maps.Keys(m.targets)), ", "))
	}
	fn, err := tt.Target(h, target)
	if err != nil {
		return nil, err
	}
	e.fn = fn
	s.Config = cloneMap(s.Config)
	s.TriggerStates = slices.Clone(s.TriggerStates)
	s.TriggerTypes = slices.Clone(s.TriggerTypes)
	s.AgentIDs = slices.Clone(s.AgentIDs)
	e.Hook = h
	e.filter = newEventFilter(s.AgentIDs, s.TriggerStates, s.TriggerTypes)
	return e, nil
}

// SecretSet is what ListHooks shows in place of a secret of a hook's config: secrets are
// write-only, never returned to anyone; to rotate one, register the hook again.
const SecretSet = "(set)"

// secretKey reports whether a config key holds a secret: a signing secret, or a header
// (headers carry credentials: Authorization, API keys).
func secretKey(k string) bool {
	return k == "secret" || strings.HasPrefix(k, "header.") || strings.HasSuffix(k, "password") || strings.HasSuffix(k, "token")
}

// redactConfig returns config with its secrets replaced by SecretSet and the credentials
// in a URL's user information by "xxxxx" (as url.URL.Redacted). It copies only if it
// changes something.
func redactConfig(config map[string]string) map[string]string {
	var out map[string]string
	set := func(k, v string) {
		if out == nil {
			out = maps.Clone(config)
		}
		out[k] = v
	}
	for k, v := range config {
		switch {
		case secretKey(k):
			set(k, SecretSet)
		case k == "url":
			if u, err := url.Parse(v); err == nil && u.User != nil {
				// A user name alone can be a credential too (a token as the user).
				if _, has := u.User.Password(); has {
					u.User = url.UserPassword(u.User.Username(), "xxxxx")
				} else {
					u.User = url.User("xxxxx")
				}
				set(k, u.String())
			}
		}
	}
	if out == nil {
		return config
	}
	return out
}

func (h *hookEntry) record(out HookOutcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats.Invocations++
	switch out.Result {
	case HookAllowed:
		h.stats.Allowed++
	case HookVetoed:
		h.stats.Vetoed++
	case HookFailed:
		h.stats.Failed++
	case HookTimedOut:
		h.stats.TimedOut++
	}
	h.stats.Last = &out
}
