package memory

import (
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/hms-lifecycle/lifecycle"
)

// chunkSize is the events of a chunk: 128 KB, written in order by one lane.
const chunkSize = 1024

// eventLog is the store-wide sequence and the retained events.
//
// A commit takes a lane, then the next sequence (one atomic add), and writes its event
// after the lane's last one. A lane is a run of chunks written by one commit at a time,
// in ascending sequence; each processor keeps the lane its commits take (a sync.Pool),
// so a core writes memory no other core writes, in the order its prefetcher expects.
// Written in sequence order into one ring, the events of two cores interleaved, and each
// core's commit missed the lines the other core had just fetched: on two cores, the
// largest cost of a commit (issue 15; docs/performance.md).
//
// Readers merge the lanes in sequence order, and stop at the first sequence not yet
// written: commit order is sequence order for every reader. A lane counts the events
// written in it, and stores the count after each event; readers read only the events
// below it.
//
// Retention is the newest `retain` sequences. When a lane needs a chunk, the chunks
// whose events are all older are retired, and reused once no reader is in them.
type eventLog struct {
	_        [128]byte
	reserved atomic.Uint64 // newest sequence handed out: the one line every commit writes
	_        [120]byte
	retain   uint64                  // how many of the newest sequences are retained
	idle     sync.Pool               // *lane: each processor's lane, between its commits
	lanes    atomic.Pointer[[]*lane] // every lane, in the order made
	readers  sync.Pool               // *logReader, to reuse its cursors
	_        [64]byte

	mu       sync.Mutex // guards what follows and changes to the lanes' chunk lists
	spare    []*logChunk
	retiring []*logChunk // retired, but a reader was in them
}

// lane is a run of chunks, written by the commit holding it.
type lane struct {
	// The count of events ever written in the lane (the offset of the next one) times
	// two, plus one while a commit holds the lane. The holder stores it after each event,
	// letting the lane go: readers read the events below the count.
	state atomic.Uint64
	chunk *logChunk // being written, by the holder: its first n slots are
	n     int
	_     [40]byte
	// The lane's chunks, oldest first, each chunkSize offsets on from the one before; the
	// last is being written. Replaced, never changed, under the log's mu.
	chunks atomic.Pointer[[]chunkRef]
	_      [56]byte
}

// chunkRef is a chunk in a lane's list: its life then, and the lane offset of its first slot.
type chunkRef struct {
	c           *logChunk
	life, start uint64
}

// logChunk is chunkSize events, and the readers in them.
type logChunk struct {
	slots   [chunkSize]logSlot
	life    atomic.Uint64 // one more each time the chunk is retired
	readers atomic.Int64
}

// logSlot is an event in two cache lines, its rarely set fields behind a pointer: a
// reader on another core copies each event's lines from the core that wrote it.
type logSlot struct {
	seq                 uint64
	id                  uuid.UUID
	agentID             string
	from, to            lifecycle.State
	typ                 lifecycle.TransitionType
	bookmark            bool
	time                time.Time
	initiatedBy, reason string
	revision            int64
	rare                *rareFields
}

type rareFields struct {
	metadata map[string]string
	err      *lifecycle.ErrorInfo
	hooks    []lifecycle.HookOutcome
}

var _ [128 - unsafe.Sizeof(logSlot{})]byte // two lines at most

func (s *logSlot) set(ev *lifecycle.Event) {
	s.seq, s.id, s.agentID, s.from, s.to = ev.Sequence, ev.ID, ev.AgentID, ev.From, ev.To
	s.typ, s.bookmark, s.time, s.initiatedBy = ev.Type, ev.Bookmark, ev.Time, ev.InitiatedBy
	s.reason, s.revision, s.rare = ev.Reason, ev.Revision, nil
	if ev.Metadata != nil || ev.Error != nil || ev.Hooks != nil {
		s.rare = &rareFields{metadata: ev.Metadata, err: ev.Error, hooks: ev.Hooks}
	}
}

func (s *logSlot) event() lifecycle.Event {
	ev := lifecycle.Event{
		Sequence: s.seq, ID: s.id, AgentID: s.agentID, From: s.from, To: s.to,
		Type: s.typ, Bookmark: s.bookmark, Time: s.time, InitiatedBy: s.initiatedBy,
		Reason: s.reason, Revision: s.revision,
	}
	if r := s.rare; r != nil {
		ev.Metadata, ev.Error, ev.Hooks = r.metadata, r.err, r.hooks
	}
	return ev
}

func (l *eventLog) init(retain int) {
	l.retain = uint64(retain)
	l.lanes.Store(new([]*lane))
	l.idle.New = func() any { return l.newLane() }
	l.readers.New = func() any { return &logReader{l: l} }
}

// append records ev with the next sequence and returns the sequence and the oldest
// retained one. On return the event is written; readers see it once the commits before
// it have written theirs.
func (l *eventLog) append(ev *lifecycle.Event) (seq, oldest uint64) {
	ln := l.acquire()
	if ln.n == chunkSize {
		// Before the sequence: readers wait for a sequence's event, so its commit does
		// nothing slower between taking the sequence and writing the event.
		l.grow(ln)
	}
	seq = l.reserved.Add(1)
	slot := &ln.chunk.slots[ln.n]
	ln.n++
	ev.Sequence = seq
	slot.set(ev)
	ln.state.Add(1) // count+1, not held
	l.idle.Put(ln)
	return seq, l.oldestAt(seq)
}

// acquire returns a lane held by no other commit: as a rule the one this processor's
// commits hold.
func (l *eventLog) acquire() *lane {
	for {
		ln := l.idle.Get().(*lane)
		if s := ln.state.Load(); s&1 == 0 && ln.state.CompareAndSwap(s, s|1) {
			return ln
		}
	}
}

// newLane returns a lane for a processor whose pool is empty: a new one while there are
// fewer lanes than processors, else one that no commit holds (its processor's pool may
// still hold it; acquire settles who does).
func (l *eventLog) newLane() *lane {
	l.mu.Lock()
	defer l.mu.Unlock()
	lanes := *l.lanes.Load()
	if len(lanes) >= runtime.GOMAXPROCS(0) {
		for _, ln := range lanes {
			if ln.state.Load()&1 == 0 {
				return ln
			}
		}
	}
	ln := &lane{n: chunkSize}
	ln.chunks.Store(new([]chunkRef))
	lanes = append(slices.Clip(lanes), ln)
	l.lanes.Store(&lanes)
	return ln
}

// grow gives lane ln, held, a chunk to write, retiring the chunks no longer retained.
func (l *eventLog) grow(ln *lane) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retire()
	var c *logChunk
	if n := len(l.spare); n > 0 {
		c, l.spare = l.spare[n-1], l.spare[:n-1]
	} else {
		c = new(logChunk)
	}
	// Appending writes past the end of every list readers hold.
	refs := append(*ln.chunks.Load(), chunkRef{c: c, life: c.life.Load(), start: ln.state.Load() >> 1})
	ln.chunks.Store(&refs)
	ln.chunk, ln.n = c, 0
}

// retire takes out of the lanes the chunks whose events are all older than the oldest
// retained; they are reused once no reader is in them. Call with mu held.
func (l *eventLog) retire() {
	l.retiring = slices.DeleteFunc(l.retiring, func(c *logChunk) bool {
		if c.readers.Load() != 0 {
			return false
		}
		l.spare = append(l.spare, c)
		return true
	})
	oldest := l.oldestAt(l.reserved.Load())
	for _, ln := range *l.lanes.Load() {
		refs := *ln.chunks.Load()
		k := 0
		// Not the last: it is being written.
		for ; k < len(refs)-1 && refs[k].c.slots[chunkSize-1].seq < oldest; k++ {
			c := refs[k].c
			// A reader counts itself in, then checks the life; this bumps the life, then
			// checks the count: one of the two sees the other.
			c.life.Add(1)
			if c.readers.Load() == 0 {
				l.spare = append(l.spare, c)
			} else {
				l.retiring = append(l.retiring, c)
			}
		}
		if k > 0 {
			rest := refs[k:]
			ln.chunks.Store(&rest)
		}
	}
}

// oldestAt is the oldest retained sequence once reserved is handed out (1 while nothing
// has been dropped).
func (l *eventLog) oldestAt(reserved uint64) uint64 {
	if reserved > l.retain {
		return reserved - l.retain + 1
	}
	return 1
}

// settle returns the newest sequence handed out once its event, and every one before it,
// is written: once every commit that held a lane then has let it go. A commit holds its
// lane from before it takes its sequence until its event is written, and a lane is listed
// before it is first held.
func (l *eventLog) settle() uint64 {
	reserved := l.reserved.Load()
	for _, ln := range *l.lanes.Load() {
		if s := ln.state.Load(); s&1 != 0 {
			for i := 0; ln.state.Load() == s; i++ {
				backoff(i)
			}
		}
	}
	return reserved
}

// backoff is the pause after the i-th look at a commit writing its event, well under a
// microsecond unless the goroutine writing is not running. Sleeping costs more than that
// wait, so it spins briefly, then yields the processor to runnable goroutines (one may be
// the one awaited).
func backoff(i int) {
	if i >= 64 {
		runtime.Gosched()
	}
}

// read copies the events of sequences seqs (ascending, committed) that match f, at most
// limit of them if limit > 0. CodeOutOfRange if one is dropped meanwhile: commits go on
// while a reader reads.
func (l *eventLog) read(seqs iter.Seq[uint64], f *lifecycle.EventFilter) ([]lifecycle.Event, error) {
	var out []lifecycle.Event
	r := l.reader()
	defer r.close()
	for seq := range seqs {
		slot := r.find(seq)
		if slot == nil {
			oldest := l.oldestAt(l.reserved.Load())
			return nil, &lifecycle.Error{Code: lifecycle.CodeOutOfRange, ResumeSequence: oldest,
				Message: fmt.Sprintf("sequence %d is older than the oldest retained event %d", seq, oldest)}
		}
		if ev := slot.event(); f.Matches(&ev) {
			out = append(out, ev)
		}
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// logReader finds events in ascending sequence, a cursor in each lane. Close it when done.
type logReader struct {
	l     *eventLog
	lanes []laneCursor
}

// laneCursor is a reader's place in a lane: the offset of the next event to look at,
// and the chunk it is counted in, which is not reused until it leaves.
type laneCursor struct {
	ln      *lane
	refs    []chunkRef
	count   uint64 // the lane's count when refs were loaded
	k       uint64
	placed  bool
	in      *logChunk // the chunk the reader is counted in, of lane offsets from inStart
	inStart uint64
}

func (l *eventLog) reader() *logReader {
	r := l.readers.Get().(*logReader)
	r.reload()
	return r
}

func (r *logReader) close() {
	for i := range r.lanes {
		r.lanes[i].leave()
	}
	clear(r.lanes)
	r.lanes = r.lanes[:0]
	r.l.readers.Put(r)
}

// find returns the slot of sequence seq, which is not reused until the reader moves on
// past it or closes; nil if seq is not committed yet or no longer retained. Each call
// must ask for a newer sequence than the one before.
func (r *logReader) find(seq uint64) *logSlot {
	for pass := 0; pass < 2; pass++ {
		for i := range r.lanes {
			if s := r.lanes[i].find(seq); s != nil {
				return s
			}
		}
		if pass == 0 && !r.reload() {
			break
		}
	}
	return nil
}

// reload looks at the lanes again: lanes made, events written since. It reports whether
// anything changed.
func (r *logReader) reload() bool {
	changed := false
	lanes := *r.l.lanes.Load()
	for _, ln := range lanes[len(r.lanes):] {
		r.lanes = append(r.lanes, laneCursor{ln: ln})
		changed = true
	}
	for i := range r.lanes {
		c := &r.lanes[i]
		if c.ln.state.Load()>>1 != c.count {
			c.load()
			changed = true
		}
	}
	return changed
}

// load reads the lane's count, then its chunks: those hold every event below the count.
func (c *laneCursor) load() {
	c.count = c.ln.state.Load() >> 1
	c.refs = *c.ln.chunks.Load()
}

// find returns the slot of seq if it is the lane's next event from the cursor on.
func (c *laneCursor) find(seq uint64) *logSlot {
	if !c.placed {
		c.place(seq)
	}
	for c.k < c.count {
		slot := c.slot(c.k)
		switch {
		case slot == nil || slot.seq > seq:
			return nil
		case slot.seq == seq:
			c.k++
			return slot
		}
		c.k = c.lowerBound(seq, c.k+1, c.count, true)
	}
	return nil
}

// place puts the cursor at the first event of sequence seq or newer, looking from the
// newest back: readers mostly read the newest events.
func (c *laneCursor) place(seq uint64) {
	c.placed = true
	c.k = c.lowerBound(seq, c.first(), c.count, false)
}

// first is the offset of the lane's oldest retained event.
func (c *laneCursor) first() uint64 {
	if len(c.refs) == 0 {
		return c.count
	}
	return c.refs[0].start
}

// lowerBound returns the first offset in [lo, hi) whose event has sequence seq or newer,
// or hi, galloping from lo up (forward) or from hi down, then bisecting. An event of a
// retired chunk counts as older: it is.
func (c *laneCursor) lowerBound(seq, lo, hi uint64, forward bool) uint64 {
	older := func(k uint64) bool {
		s, ok := c.seq(k)
		return !ok || s < seq
	}
	// Narrow [lo, hi) to a range where the answer is, by doubling steps.
	for step := uint64(1); lo < hi; step *= 2 {
		if forward {
			k := min(lo+step-1, hi-1)
			if !older(k) {
				hi = k
				break
			}
			lo = k + 1
		} else {
			k := hi - min(step, hi-lo)
			if older(k) {
				lo = k + 1
				break
			}
			hi = k
		}
	}
	for lo < hi {
		k := lo + (hi-lo)/2
		if older(k) {
			lo = k + 1
		} else {
			hi = k
		}
	}
	return lo
}

// seq returns the sequence of the event at offset k, below the count; false if its chunk
// is retired.
func (c *laneCursor) seq(k uint64) (uint64, bool) {
	if k >= c.count {
		return 0, false
	}
	slot := c.slot(k)
	if slot == nil {
		return 0, false
	}
	return slot.seq, true
}

// slot returns the slot at offset k, below the count, counting the reader in its chunk;
// nil if the chunk is retired.
func (c *laneCursor) slot(k uint64) *logSlot {
	if c.in != nil && k-c.inStart < chunkSize {
		return &c.in.slots[k-c.inStart]
	}
	if k < c.first() {
		return nil
	}
	ref := &c.refs[(k-c.refs[0].start)/chunkSize]
	c.leave()
	ref.c.readers.Add(1)
	if ref.c.life.Load() != ref.life {
		ref.c.readers.Add(-1)
		return nil
	}
	c.in, c.inStart = ref.c, ref.start
	return &ref.c.slots[k-ref.start]
}

func (c *laneCursor) leave() {
	if c.in != nil {
		c.in.readers.Add(-1)
		c.in = nil
	}
}
