// Package memory is a lifecycle.Store held in memory: for tests, examples and the
// WebAssembly build. Everything is lost when the process ends.
//
// History is bounded: the newest Options.MaxEvents events are retained, in chunks of
// events reused once all theirs are older, so a long-running process neither grows nor
// copies its log. Agents and hooks are never dropped.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/btree"

	"github.com/hms-lifecycle/lifecycle"
)

// Options configure a Store; the zero value gives the defaults.
type Options struct {
	// MaxEvents is how many of the newest events are retained. Zero means
	// DefaultMaxEvents.
	MaxEvents int
}

// DefaultMaxEvents is the default history retention: about 130 MB of events.
const DefaultMaxEvents = 1 << 20

// Store is an in-memory lifecycle.Store. Its zero value is not usable; call New.
//
// Transitions of different agents run in parallel: agents are spread over shards, each
// with its own lock, and what every commit shares is only the handing out of the next
// sequence, one atomic add (see eventLog). Locks are taken in the order ids, shard, log.
type Store struct {
	shards [shardCount]shard
	seed   maphash.Seed
	closed atomic.Bool

	log eventLog

	idsMu sync.Mutex
	ids   *btree.BTreeG[string] // agent ids in order, for paging

	hooksMu sync.Mutex
	hooks   map[string]lifecycle.Hook
}

// shardCount spreads agents so that two busy ones rarely share a lock.
const shardCount = 64

// shard holds some of the agents. Padded to its own cache lines, so that commits in
// different shards do not contend for one line.
type shard struct {
	mu     sync.Mutex
	agents map[string]*agentRecord
	_      [128 - 16]byte
}

// agentRecord is an agent and its events. Padded to whole cache lines: the records of
// agents that transition on different cores must not share one.
type agentRecord struct {
	lifecycle.Agent
	seqs []uint64 // the agent's retained sequences, ascending (older ones trimmed lazily)
	_    [(64 - (24+unsafe.Sizeof(lifecycle.Agent{}))%64) % 64]byte
}

var (
	_ lifecycle.Store      = (*Store)(nil)
	_ lifecycle.TailReader = (*Store)(nil)
)

// New returns an empty store with the default options.
func New() *Store { return NewWithOptions(nil) }

// NewWithOptions returns an empty store configured by opts; nil means the defaults.
func NewWithOptions(opts *Options) *Store {
	maxEvents := DefaultMaxEvents
	if opts != nil && opts.MaxEvents > 0 {
		maxEvents = opts.MaxEvents
	}
	s := &Store{
		seed:  maphash.MakeSeed(),
		ids:   btree.NewG(32, func(a, b string) bool { return a < b }),
		hooks: make(map[string]lifecycle.Hook),
	}
	s.log.init(maxEvents)
	for i := range s.shards {
		s.shards[i].agents = make(map[string]*agentRecord)
	}
	return s
}

// Close makes every later call fail with CodeUnavailable.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return lifecycle.Errorf(lifecycle.CodeUnavailable, "memory store is closed")
	}
	return nil
}

func (s *Store) shard(id string) *shard {
	return &s.shards[maphash.String(s.seed, id)%shardCount]
}

// commit appends ev to the log and indexes it under agent r. Call with r's shard locked,
// so that the agent's record and its events change together for every reader of the
// agent.
func (s *Store) commit(r *agentRecord, ev *lifecycle.Event) uint64 {
	seq, oldest := s.log.append(ev)
	if len(r.seqs) == cap(r.seqs) && len(r.seqs) > 0 {
		// Before the index grows, drop what retention has dropped, if that is a quarter of
		// it or more: dropping less, an agent holding most of the log moved all its index
		// every few thousand commits.
		if i, _ := slices.BinarySearch(r.seqs, oldest); i >= len(r.seqs)/4 {
			r.seqs = append(r.seqs[:0], r.seqs[i:]...)
		}
	}
	r.seqs = append(r.seqs, seq)
	return seq
}

// CreateAgent implements lifecycle.Store.
func (s *Store) CreateAgent(ctx context.Context, a lifecycle.Agent, ev lifecycle.Event) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	// The id goes into the paging index last: an agent listed is complete. The index is
	// locked from before the commit, which watchers see at once (ReadTail): a watcher that
	// saw the registration and then lists agents finds it.
	s.idsMu.Lock()
	defer s.idsMu.Unlock()
	sh := s.shard(a.ID)
	sh.mu.Lock()
	if r, ok := sh.agents[a.ID]; ok {
		sh.mu.Unlock()
		if r.deleted() {
			return 0, lifecycle.Errorf(lifecycle.CodeAlreadyExists, "agent %s was deleted, and an agent id is never used again", a.ID)
		}
		return 0, lifecycle.Errorf(lifecycle.CodeAlreadyExists, "agent %s already exists", a.ID)
	}
	r := &agentRecord{Agent: a}
	r.LastSequence = s.commit(r, &ev)
	sh.agents[a.ID] = r
	seq := r.LastSequence
	sh.mu.Unlock()
	s.ids.ReplaceOrInsert(a.ID)
	return seq, nil
}

// GetAgent implements lifecycle.Store.
func (s *Store) GetAgent(ctx context.Context, id string) (lifecycle.Agent, error) {
	if err := s.checkOpen(); err != nil {
		return lifecycle.Agent{}, err
	}
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, err := sh.live(id)
	if err != nil {
		return lifecycle.Agent{}, err
	}
	return r.Agent, nil
}

// SetPolicy implements lifecycle.Store.
func (s *Store) SetPolicy(ctx context.Context, id string, p *lifecycle.SupervisionPolicy) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	sh := s.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, err := sh.live(id)
	if err != nil {
		return err
	}
	r.Policy = p
	return nil
}

// ListAgents implements lifecycle.Store. Each agent is read as it is when reached, not
// all at one instant: the store has no lock over every agent.
func (s *Store) ListAgents(ctx context.Context, f lifecycle.AgentFilter) ([]lifecycle.Agent, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	s.idsMu.Lock()
	defer s.idsMu.Unlock()
	var out []lifecycle.Agent
	s.ids.AscendGreaterOrEqual(f.AfterID, func(id string) bool {
		if id == f.AfterID {
			return true
		}
		sh := s.shard(id)
		sh.mu.Lock()
		if r := sh.agents[id]; !r.deleted() && f.Matches(&r.Agent) {
			out = append(out, r.Agent)
		}
		sh.mu.Unlock()
		return f.Limit <= 0 || len(out) < f.Limit
	})
	return out, nil
}

// CommitTransition implements lifecycle.Store.
func (s *Store) CommitTransition(ctx context.Context, ev lifecycle.Event, expectedRevision int64) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	sh := s.shard(ev.AgentID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, ok := sh.agents[ev.AgentID]
	if !ok || r.deleted() {
		_, err := sh.live(ev.AgentID) // the error, out of the hot path
		return 0, err
	}
	if r.Revision != expectedRevision {
		return 0, lifecycle.Errorf(lifecycle.CodeAborted, "agent %s is at revision %d, not %d", ev.AgentID, r.Revision, expectedRevision)
	}
	s.commit(r, &ev)
	r.Apply(&ev)
	return ev.Sequence, nil
}

// DeleteAgent implements lifecycle.Store. The record stays as a tombstone: the id, so that
// it is never used again, and the retained sequences, for the agent's history; its state
// is UNSPECIFIED, which no live agent is in.
func (s *Store) DeleteAgent(ctx context.Context, ev lifecycle.Event, expectedRevision int64) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	sh := s.shard(ev.AgentID)
	sh.mu.Lock()
	r, err := sh.live(ev.AgentID)
	if err == nil && r.Revision != expectedRevision {
		err = lifecycle.Errorf(lifecycle.CodeAborted, "agent %s is at revision %d, not %d", ev.AgentID, r.Revision, expectedRevision)
	}
	if err != nil {
		sh.mu.Unlock()
		return 0, err
	}
	seq := s.commit(r, &ev)
	r.Agent = lifecycle.Agent{ID: r.ID, Revision: ev.Revision, LastSequence: seq}
	sh.mu.Unlock()
	s.idsMu.Lock()
	s.ids.Delete(ev.AgentID)
	s.idsMu.Unlock()
	return seq, nil
}

// live returns the agent's record; CodeNotFound if there is none or it was deleted. Call
// with sh.mu held.
func (sh *shard) live(id string) (*agentRecord, error) {
	r, ok := sh.agents[id]
	switch {
	case !ok:
		return nil, lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", id)
	case r.deleted():
		return nil, lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s was deleted", id)
	}
	return r, nil
}

func (r *agentRecord) deleted() bool { return r.State == lifecycle.StateUnspecified }

// ReadEvents implements lifecycle.Store.
func (s *Store) ReadEvents(ctx context.Context, f lifecycle.EventFilter) ([]lifecycle.Event, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var r *agentRecord
	if f.AgentID != "" {
		sh := s.shard(f.AgentID)
		sh.mu.Lock()
		defer sh.mu.Unlock()
		if r = sh.agents[f.AgentID]; r == nil {
			return nil, nil
		}
	}
	l := &s.log
	oldest := l.oldestAt(l.reserved.Load())
	if f.FromSequence != 0 && f.FromSequence < oldest {
		return nil, &lifecycle.Error{Code: lifecycle.CodeOutOfRange, ResumeSequence: oldest,
			Message: fmt.Sprintf("sequence %d is older than the oldest retained event %d", f.FromSequence, oldest)}
	}
	from := max(f.FromSequence, oldest)
	if r != nil {
		// The agent's commits are complete: they run under the shard lock held here.
		i, _ := slices.BinarySearch(r.seqs, from)
		return l.read(slices.Values(r.seqs[i:]), &f)
	}
	committed := l.settle()
	return l.read(func(yield func(uint64) bool) {
		for seq := from; seq <= committed && yield(seq); seq++ {
		}
	}, &f)
}

// Sequences implements lifecycle.Store.
func (s *Store) Sequences(ctx context.Context) (oldest, newest uint64, err error) {
	if err := s.checkOpen(); err != nil {
		return 0, 0, err
	}
	newest = s.log.settle()
	if newest == 0 {
		return 0, 0, nil
	}
	return min(s.log.oldestAt(s.log.reserved.Load()), newest), newest, nil
}

// ReadTail implements lifecycle.TailReader: watchers read the events in the log, where
// commits wrote them, rather than in a copy the Manager makes of each.
func (s *Store) ReadTail(from uint64, limit int, evs []lifecycle.Event) ([]lifecycle.Event, bool) {
	l := &s.log
	r := l.reader()
	defer r.close()
	for seq := from; seq < from+uint64(limit); seq++ {
		slot := r.find(seq)
		if slot == nil {
			// Not yet committed, unless dropped.
			return evs, seq < l.oldestAt(l.reserved.Load())
		}
		evs = append(evs, slot.event())
	}
	return evs, false
}

// TailHeld implements lifecycle.TailReader.
func (s *Store) TailHeld(seq uint64) uint64 {
	l := &s.log
	if seq == 0 || seq > l.reserved.Load() {
		return 0
	}
	r := l.reader()
	defer r.close()
	if r.find(seq) != nil {
		return seq
	}
	if reserved := l.reserved.Load(); seq < l.oldestAt(reserved) {
		return reserved // dropped
	}
	return 0 // being written
}

// CreateHook implements lifecycle.Store.
func (s *Store) CreateHook(ctx context.Context, h lifecycle.Hook) error {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
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
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
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
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
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
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
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
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
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
