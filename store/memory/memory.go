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
	"hash/maphash"
	"iter"
	"runtime"
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
	// MaxEvents is how many of the newest events are retained (rounded up to a multiple of
	// 4096). Zero means DefaultMaxEvents.
	MaxEvents int
}

// DefaultMaxEvents is the default history retention: about 200 MB of events.
const DefaultMaxEvents = 1 << 20

const chunkSize = 4096

// Store is an in-memory lifecycle.Store. Its zero value is not usable; call New.
//
// Transitions of different agents run in parallel: agents are spread over shards, each
// with its own lock, and what every commit shares is only the handing out of the next
// sequence, one atomic add (see eventLog). Locks are taken in the order ids, shard, log
// (readers), log slot.
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

// eventLog is the store-wide sequence and the retained events. A commit takes the next
// sequence with one atomic add, copies the event into the sequence's slot (the copy
// writes memory long out of cache, the slowest step of a commit), marks the slot with
// its sequence, and returns: it takes no lock other commits take and does not wait for
// the commits before it to finish their copies. Readers do. A reader notes the newest
// sequence handed out, waits until every slot up to it is marked (a copy away, unless
// its committer is not running), and then sees every event up to committed and nothing
// after. Commit order is sequence order for every reader; only the committers do not
// wait for one another, which on two cores was most of what a commit cost (each waiting
// for a line the other core had just written, or for the lock of the sequence).
//
// Readers copy events without a lock, while commits go on: a reader counts itself in
// the chunk it reads, and a commit that would overwrite an event of that chunk waits until
// the count is back to zero (see logReader). So a commit writes no line but its sequence's
// and its slot's: a lock in each slot, taken by every commit, had cost more on two cores
// than anything else a transition did.
type eventLog struct {
	_        [128]byte
	reserved atomic.Uint64 // newest sequence handed out: the line every commit writes
	_        [120]byte
	// The event with sequence n is at ring position (n-1) % (len(chunks)*chunkSize), in
	// chunk position/chunkSize. Chunks are allocated on first use and then reused.
	chunks    []atomic.Pointer[logChunk]
	mu        sync.Mutex // serializes readers moving committed
	committed uint64     // newest sequence whose event, and every one before it, is in the log
}

// logChunk is chunkSize slots of the log, and the readers copying events from them,
// counted by the parity of the lap of the ring their events were written in: commits of
// the next lap wait for those, not for readers of the events they write.
type logChunk struct {
	slots   [chunkSize]logSlot
	readers [2]struct {
		n atomic.Int64
		_ [56]byte
	}
}

// logSlot is a retained event and the sequence it was last written with, stored once the
// copy is complete. Padded to whole cache lines: consecutive events are written from
// different cores.
type logSlot struct {
	seq atomic.Uint64
	ev  lifecycle.Event
	_   [(64 - (8+unsafe.Sizeof(lifecycle.Event{}))%64) % 64]byte
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
	s.log.chunks = make([]atomic.Pointer[logChunk], (maxEvents+chunkSize-1)/chunkSize)
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

// append records ev with the next sequence, overwriting the oldest event once the log is
// full, and returns the sequence and the oldest retained one. On return the event is
// written; readers see it once the commits before it have written theirs.
func (l *eventLog) append(ev *lifecycle.Event) (seq, oldest uint64) {
	seq = l.reserved.Add(1)
	chunk, slot := l.slot(seq)
	// No reader sees the slot's new event before it is marked. The slot's previous
	// committer, a ring of commits ago, has finished with it unless it was descheduled
	// for all of them; the readers of the previous lap's events in the chunk are a copy
	// away from done, unless descheduled too. Readers that count themselves later see
	// this commit's sequence and leave the event alone.
	if n := l.size(); seq > n {
		readers := &chunk.readers[((seq-1)/n+1)%2].n
		for i := 0; slot.seq.Load() != seq-n || readers.Load() != 0; i++ {
			backoff(i)
		}
	}
	ev.Sequence = seq
	slot.ev = *ev
	slot.seq.Store(seq)
	return seq, l.oldestAt(seq)
}

// settle moves committed up to the newest sequence handed out, waiting for the copies
// still in flight, and returns it. Call with l.mu held.
func (l *eventLog) settle() uint64 {
	reserved := l.reserved.Load()
	// The events a ring older than reserved are written: their slots' next committers
	// waited for them.
	l.committed = max(l.committed, l.oldestAt(reserved)-1)
	for ; l.committed < reserved; l.committed++ {
		// A slot that holds a newer event held this one before.
		_, slot := l.slot(l.committed + 1)
		for i := 0; slot.seq.Load() < l.committed+1; i++ {
			backoff(i)
		}
	}
	return l.committed
}

// backoff is the pause after the i-th look at something a copy away: a commit or a reader
// copying an event, well under a microsecond, unless the goroutine copying is not running.
// Sleeping costs more than that wait, so it spins briefly, then yields the processor to
// runnable goroutines (one may be the one awaited).
func backoff(i int) {
	if i >= 64 {
		runtime.Gosched()
	}
}

func (l *eventLog) size() uint64 { return uint64(len(l.chunks) * chunkSize) }

// slot returns the slot of a sequence and its chunk, allocating the chunk on first use.
func (l *eventLog) slot(seq uint64) (*logChunk, *logSlot) {
	if chunk, slot := l.lookup(seq); chunk != nil {
		return chunk, slot
	}
	// Lost only to another commit allocating it first.
	l.chunks[(seq-1)%l.size()/chunkSize].CompareAndSwap(nil, new(logChunk))
	return l.lookup(seq)
}

// lookup returns the slot of a sequence and its chunk; nil if the chunk was never used.
func (l *eventLog) lookup(seq uint64) (*logChunk, *logSlot) {
	pos := (seq - 1) % l.size()
	chunk := l.chunks[pos/chunkSize].Load()
	if chunk == nil {
		return nil, nil
	}
	return chunk, &chunk.slots[pos%chunkSize]
}

// logReader copies events out of the log in ascending order of sequence, counted among
// the readers of the chunk it is in. Close it when done.
type logReader struct {
	l       *eventLog
	readers *atomic.Int64 // where it is counted; nil: nowhere
	key     uint64        // the chunk and lap counted in: (seq-1)/chunkSize
}

// slot returns the slot of sequence seq, which no commit overwrites until the reader
// moves to another chunk or closes (nil if none was ever written there), and whether
// seq is retained: false once the commit that overwrites it has its sequence.
func (r *logReader) slot(seq uint64) (_ *logSlot, retained bool) {
	l := r.l
	chunk, slot := l.lookup(seq)
	if chunk == nil {
		return nil, true
	}
	if key := (seq - 1) / chunkSize; r.readers == nil || key != r.key {
		r.close()
		readers := &chunk.readers[((seq-1)/l.size())%2].n
		readers.Add(1)
		// The commits of the chunk's next lap look at the count after taking their
		// sequence: either they see this reader, or it sees their sequence here.
		if l.reserved.Load() >= seq+l.size() {
			readers.Add(-1)
			return nil, false
		}
		r.readers, r.key = readers, key
	}
	return slot, true
}

func (r *logReader) close() {
	if r.readers != nil {
		r.readers.Add(-1)
		r.readers = nil
	}
}

// read copies the events of sequences seqs (ascending, committed) that match f, at most
// limit of them if limit > 0. CodeOutOfRange if one is overwritten meanwhile: commits go
// on while a reader reads.
func (l *eventLog) read(seqs iter.Seq[uint64], f *lifecycle.EventFilter) ([]lifecycle.Event, error) {
	var out []lifecycle.Event
	r := logReader{l: l}
	defer r.close()
	for seq := range seqs {
		if slot, retained := r.slot(seq); retained {
			if f.Matches(&slot.ev) {
				out = append(out, slot.ev)
			}
		} else {
			oldest := l.oldestAt(l.reserved.Load())
			return nil, &lifecycle.Error{Code: lifecycle.CodeOutOfRange, ResumeSequence: oldest,
				Message: fmt.Sprintf("sequence %d is older than the oldest retained event %d", seq, oldest)}
		}
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// oldestAt is the oldest retained sequence once reserved is handed out (1 while nothing
// has been dropped), counting the events reserved but not yet committed, whose slots are
// being overwritten.
func (l *eventLog) oldestAt(reserved uint64) uint64 {
	if n := l.size(); reserved > n {
		return reserved - n + 1
	}
	return 1
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
	l.mu.Lock()
	committed := l.settle()
	l.mu.Unlock()
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
	s.log.mu.Lock()
	newest = s.log.settle()
	s.log.mu.Unlock()
	if newest == 0 {
		return 0, 0, nil
	}
	return min(s.log.oldestAt(s.log.reserved.Load()), newest), newest, nil
}

// ReadTail implements lifecycle.TailReader: watchers read the events in the log, where
// commits wrote them, rather than in a copy the Manager makes of each.
func (s *Store) ReadTail(from uint64, limit int, evs []lifecycle.Event) ([]lifecycle.Event, bool) {
	r := logReader{l: &s.log}
	defer r.close()
	for seq := from; seq < from+uint64(limit); seq++ {
		slot, retained := r.slot(seq)
		if !retained {
			return evs, true
		}
		if slot == nil || slot.seq.Load() != seq {
			return evs, false // not yet committed (retained, it is not overwritten)
		}
		evs = append(evs, slot.ev)
	}
	return evs, false
}

// TailHeld implements lifecycle.TailReader.
func (s *Store) TailHeld(seq uint64) uint64 {
	if seq == 0 {
		return 0
	}
	if _, slot := s.log.lookup(seq); slot != nil {
		return slot.seq.Load()
	}
	return 0
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
