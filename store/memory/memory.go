// Package memory is a lifecycle.Store held in memory: for tests, examples and the
// WebAssembly build. Everything is lost when the process ends.
package memory

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/google/btree"

	"github.com/hms-lifecycle/lifecycle"
)

// Store is an in-memory lifecycle.Store. Its zero value is not usable; call New.
type Store struct {
	mu     sync.RWMutex
	agents map[string]*lifecycle.Agent
	ids    *btree.BTreeG[string] // agent ids in order, for paging
	// events[i] has sequence i+1; byAgent lists each agent's sequences.
	events  []lifecycle.Event
	byAgent map[string][]uint64
	hooks   map[string]lifecycle.Hook
	closed  bool
}

var _ lifecycle.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		agents:  make(map[string]*lifecycle.Agent),
		ids:     btree.NewG(32, func(a, b string) bool { return a < b }),
		byAgent: make(map[string][]uint64),
		hooks:   make(map[string]lifecycle.Hook),
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

// append records ev with the next sequence. Call with mu held for writing.
func (s *Store) append(ev *lifecycle.Event) uint64 {
	ev.Sequence = uint64(len(s.events)) + 1
	s.events = append(s.events, *ev)
	s.byAgent[ev.AgentID] = append(s.byAgent[ev.AgentID], ev.Sequence)
	return ev.Sequence
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
	seq := s.append(&ev)
	a.LastSequence = seq
	s.agents[a.ID] = &a
	s.ids.ReplaceOrInsert(a.ID)
	return seq, nil
}

// GetAgent implements lifecycle.Store.
func (s *Store) GetAgent(ctx context.Context, id string) (lifecycle.Agent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(); err != nil {
		return lifecycle.Agent{}, err
	}
	a, ok := s.agents[id]
	if !ok {
		return lifecycle.Agent{}, lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", id)
	}
	return *a, nil
}

// ListAgents implements lifecycle.Store.
func (s *Store) ListAgents(ctx context.Context, f lifecycle.AgentFilter) ([]lifecycle.Agent, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var out []lifecycle.Agent
	s.ids.AscendGreaterOrEqual(f.AfterID, func(id string) bool {
		if a := s.agents[id]; id != f.AfterID && f.Matches(a) {
			out = append(out, *a)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	})
	return out, nil
}

// CommitTransition implements lifecycle.Store.
func (s *Store) CommitTransition(ctx context.Context, a lifecycle.Agent, expectedRevision int64, ev lifecycle.Event) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	cur, ok := s.agents[a.ID]
	if !ok {
		return 0, lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", a.ID)
	}
	if cur.Revision != expectedRevision {
		return 0, lifecycle.Errorf(lifecycle.CodeAborted, "agent %s is at revision %d, not %d", a.ID, cur.Revision, expectedRevision)
	}
	seq := s.append(&ev)
	a.LastSequence = seq
	*cur = a
	return seq, nil
}

// ReadEvents implements lifecycle.Store.
func (s *Store) ReadEvents(ctx context.Context, f lifecycle.EventFilter) ([]lifecycle.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	from := max(f.FromSequence, 1)
	var out []lifecycle.Event
	add := func(seq uint64) bool {
		if ev := &s.events[seq-1]; f.Matches(ev) {
			out = append(out, *ev)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	}
	if f.AgentID != "" {
		seqs := s.byAgent[f.AgentID]
		i, _ := slices.BinarySearch(seqs, from)
		for _, seq := range seqs[i:] {
			if !add(seq) {
				break
			}
		}
		return out, nil
	}
	for seq := from; seq <= uint64(len(s.events)); seq++ {
		if !add(seq) {
			break
		}
	}
	return out, nil
}

// Sequences implements lifecycle.Store. The memory store retains every event.
func (s *Store) Sequences(ctx context.Context) (oldest, newest uint64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.checkOpen(); err != nil {
		return 0, 0, err
	}
	if len(s.events) == 0 {
		return 0, 0, nil
	}
	return 1, uint64(len(s.events)), nil
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
	s.mu.RLock()
	defer s.mu.RUnlock()
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
