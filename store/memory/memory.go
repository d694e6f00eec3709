// Package memory is a lifecycle.Store held in memory: for tests, examples and the
// WebAssembly build. Everything is lost when the process ends.
//
// History is bounded: the newest Options.MaxEvents events are retained, in a log of
// fixed-size chunks reused as a ring, so a long-running process neither grows nor copies
// its log. Agents and hooks are never dropped.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/hms-lifecycle/lifecycle"
)

// Options configure a Store; the zero value gives the defaults.
type Options struct {
	// MaxEvents is how many of the newest events are retained (rounded up to a multiple of
	// 4096). Zero means DefaultMaxEvents.
	MaxEvents int
}

// DefaultMaxEvents is the default history retention: about 200 MB of events.
const DefaultMaxEvents = 1 << 20

const chunkSize = 4096

// Store is an in-memory lifecycle.Store. Its zero value is not usable; call New.
type Store struct {
	mu     sync.Mutex
	agents map[string]*agentRecord
	ids    *btree.BTreeG[string] // agent ids in order, for paging
	// The event with sequence n is at ring position (n-1) % (len(log)*chunkSize), in
	// chunk position/chunkSize. Chunks are allocated on first use and then reused.
	log    [][]lifecycle.Event
	count  uint64 // newest sequence
	hooks  map[string]lifecycle.Hook
	closed bool
}

type agentRecord struct {
	lifecycle.Agent
	seqs []uint64 // the agent's retained sequences, ascending (older ones trimmed lazily)
}

var _ lifecycle.Store = (*Store)(nil)

// New returns an empty store with the default options.
func New() *Store { return NewWithOptions(nil) }

// NewWithOptions returns an empty store configured by opts; nil means the defaults.
func NewWithOptions(opts *Options) *Store {
	maxEvents := DefaultMaxEvents
	if opts != nil && opts.MaxEvents > 0 {
		maxEvents = opts.MaxEvents
	}
	return &Store{
		agents: make(map[string]*agentRecord),
		ids:    btree.NewG(32, func(a, b string) bool { return a < b }),
		log:    make([][]lifecycle.Event, (maxEvents+chunkSize-1)/chunkSize),
		hooks:  make(map[string]lifecycle.Hook),
	}
}

// Close makes every later call fail with CodeUnavailable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *Store) checkOpen() error {
	if s.closed {
		return lifecycle.Errorf(lifecycle.CodeUnavailable, "memory store is closed")
	}
	return nil
}

// append records ev with the next sequence, overwriting the oldest event once the log is
// full. Call with mu held for writing.
func (s *Store) append(r *agentRecord, ev *lifecycle.Event) uint64 {
	s.count++
	ev.Sequence = s.count
	pos := (s.count - 1) % uint64(len(s.log)*chunkSize)
	chunk := &s.log[pos/chunkSize]
	if *chunk == nil {
		*chunk = make([]lifecycle.Event, chunkSize)
	}
	(*chunk)[pos%chunkSize] = *ev
	if len(r.seqs) == cap(r.seqs) && len(r.seqs) > 0 {
		// Before the index grows, drop what retention has dropped.
		i, _ := slices.BinarySearch(r.seqs, s.oldest())
		r.seqs = append(r.seqs[:0], r.seqs[i:]...)
	}
	r.seqs = append(r.seqs, ev.Sequence)
	return ev.Sequence
}

// event returns the retained event with sequence seq.
func (s *Store) event(seq uint64) *lifecycle.Event {
	pos := (seq - 1) % uint64(len(s.log)*chunkSize)
	return &s.log[pos/chunkSize][pos%chunkSize]
}

// oldest is the oldest retained sequence (1 while nothing has been dropped).
func (s *Store) oldest() uint64 {
	if n := uint64(len(s.log) * chunkSize); s.count > n {
		return s.count - n + 1
	}
	return 1
}

// CreateAgent implements lifecycle.Store.
func (s *Store) CreateAgent(ctx context.Context, a lifecycle.Agent, ev lifecycle.Event) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if _, ok := s.agents[a.ID]; ok {
		return 0, lifecycle.Errorf(lifecycle.CodeAlreadyExists, "agent %s already exists", a.ID)
	}
	r := &agentRecord{Agent: a}
	r.LastSequence = s.append(r, &ev)
	s.agents[a.ID] = r
	s.ids.ReplaceOrInsert(a.ID)
	return r.LastSequence, nil
}

// GetAgent implements lifecycle.Store.
func (s *Store) GetAgent(ctx context.Context, id string) (lifecycle.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return lifecycle.Agent{}, err
	}
	r, ok := s.agents[id]
	if !ok {
		return lifecycle.Agent{}, lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", id)
	}
	return r.Agent, nil
}

// SetPolicy implements lifecycle.Store.
func (s *Store) SetPolicy(ctx context.Context, id string, p *lifecycle.SupervisionPolicy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	r, ok := s.agents[id]
	if !ok {
		return lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", id)
	}
	r.Policy = p
	return nil
}

// ListAgents implements lifecycle.Store.
func (s *Store) ListAgents(ctx context.Context, f lifecycle.AgentFilter) ([]lifecycle.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var out []lifecycle.Agent
	s.ids.AscendGreaterOrEqual(f.AfterID, func(id string) bool {
		if r := s.agents[id]; id != f.AfterID && f.Matches(&r.Agent) {
			out = append(out, r.Agent)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	})
	return out, nil
}

// CommitTransition implements lifecycle.Store.
func (s *Store) CommitTransition(ctx context.Context, ev lifecycle.Event, expectedRevision int64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	r, ok := s.agents[ev.AgentID]
	if !ok {
		return 0, lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", ev.AgentID)
	}
	if r.Revision != expectedRevision {
		return 0, lifecycle.Errorf(lifecycle.CodeAborted, "agent %s is at revision %d, not %d", ev.AgentID, r.Revision, expectedRevision)
	}
	s.append(r, &ev)
	r.Apply(&ev)
	return ev.Sequence, nil
}

// ReadEvents implements lifecycle.Store.
func (s *Store) ReadEvents(ctx context.Context, f lifecycle.EventFilter) ([]lifecycle.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	oldest := s.oldest()
	if f.FromSequence != 0 && f.FromSequence < oldest {
		return nil, &lifecycle.Error{Code: lifecycle.CodeOutOfRange, ResumeSequence: oldest,
			Message: fmt.Sprintf("sequence %d is older than the oldest retained event %d", f.FromSequence, oldest)}
	}
	from := max(f.FromSequence, oldest)
	var out []lifecycle.Event
	add := func(seq uint64) bool {
		if ev := s.event(seq); f.Matches(ev) {
			out = append(out, *ev)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	}
	if f.AgentID != "" {
		r, ok := s.agents[f.AgentID]
		if !ok {
			return nil, nil
		}
		seqs := r.seqs
		i, _ := slices.BinarySearch(seqs, from)
		for _, seq := range seqs[i:] {
			if !add(seq) {
				break
			}
		}
		return out, nil
	}
	for seq := from; seq <= s.count; seq++ {
		if !add(seq) {
			break
		}
	}
	return out, nil
}

// Sequences implements lifecycle.Store.
func (s *Store) Sequences(ctx context.Context) (oldest, newest uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return 0, 0, err
	}
	if s.count == 0 {
		return 0, 0, nil
	}
	return s.oldest(), s.count, nil
}

// CreateHook implements lifecycle.Store.
func (s *Store) CreateHook(ctx context.Context, h lifecycle.Hook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	for _, o := range s.hooks {
		if o.ID == h.ID || o.Spec.Name == h.Spec.Name {
			return lifecycle.Errorf(lifecycle.CodeAlreadyExists, "hook %s (%s) already exists", o.Spec.Name, o.ID)
		}
	}
	s.hooks[h.ID] = h
	return nil
}

// DeleteHook implements lifecycle.Store.
func (s *Store) DeleteHook(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	if _, ok := s.hooks[id]; !ok {
		return lifecycle.Errorf(lifecycle.CodeNotFound, "hook %s not found", id)
	}
	delete(s.hooks, id)
	return nil
}

// ListHooks implements lifecycle.Store.
func (s *Store) ListHooks(ctx context.Context) ([]lifecycle.Hook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	out := make([]lifecycle.Hook, 0, len(s.hooks))
	for _, h := range s.hooks {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b lifecycle.Hook) int { return cmp.Compare(a.Spec.Name, b.Spec.Name) })
	return out, nil
}

// SetHookCursor implements lifecycle.Store.
func (s *Store) SetHookCursor(ctx context.Context, id string, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	h, ok := s.hooks[id]
	if !ok {
		return lifecycle.Errorf(lifecycle.CodeNotFound, "hook %s not found", id)
	}
	h.Cursor = seq
	s.hooks[id] = h
	return nil
}

// LeaseHook implements lifecycle.Store.
func (s *Store) LeaseHook(ctx context.Context, id, owner string, now, until time.Time) (lifecycle.Hook, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return lifecycle.Hook{}, false, err
	}
	h, ok := s.hooks[id]
	if !ok {
		return lifecycle.Hook{}, false, lifecycle.Errorf(lifecycle.CodeNotFound, "hook %s not found", id)
	}
	if h.LeaseOwner != owner && h.LeaseUntil.After(now) {
		return h, false, nil
	}
	h.LeaseOwner, h.LeaseUntil = owner, until
	s.hooks[id] = h
	return h, true, nil
}
