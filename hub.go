package lifecycle

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// hub fans committed events out to watchers. Each watcher is a cursor over the sequence;
// the events are read where they are kept: in the store itself when it is a TailReader
// (the memory store), else in one ring the hub keeps of the newest events. Publishing
// never blocks, never allocates and takes no lock that other publishers take: a publisher
// writes its event into its sequence's slot of the ring (if the hub keeps one), under that
// slot's lock, and looks at the watchers only when one of them is parked. (One lock for
// every publish, and the head they moved in turn, made transitions on two cores slower
// than on one: the lock's line went from core to core on every publish.) A watcher reads
// the events in sequence order, waiting at the first one not yet published, so it never
// sees a gap; one that falls a whole watch buffer behind is cut off when it next reads,
// with the sequence to resume from.
type hub struct {
	tail TailReader // the store, if watchers read its events in place; then ring is nil
	ring []hubSlot
	size uint64 // the watch buffer: a live watcher further behind is cut off
	mask uint64
	// base: the newest sequence when the hub started, if it keeps a ring; the ring never
	// holds it or older ones.
	base uint64
	// parked counts the parked watchers: publishers look at the watchers only when some
	// are.
	parked   atomic.Int32
	closed   atomic.Bool
	mu       sync.Mutex                 // serializes changes of watchers
	watchers atomic.Pointer[[]*Watcher] // replaced, never changed in place
	scratch  sync.Pool                  // *[]Event, for publishers matching a parked watcher's filter
	tap      tap
}

// hubSlot holds the event of one sequence of the ring. seq is stored after the event is
// complete, under mu, and only ever grows: a publisher that finds a newer event in its
// slot (it was descheduled for a whole ring) leaves it. Padded to whole cache lines,
// since consecutive sequences are published from different cores.
type hubSlot struct {
	mu  sync.Mutex
	seq atomic.Uint64
	ev  Event
	_   [(64 - (16+unsafe.Sizeof(Event{}))%64) % 64]byte
}

// tap hands the supervisor the published events into the states it supervises: a bit
// test per event for the others, so transitions nobody supervises cost nothing, and no
// ring to fall behind. An agent's events are tapped in its order (its next transition
// waits for the publish of the one before); across agents the supervisor needs no order,
// since it keeps each agent's newest revision.
type tap struct {
	states   atomic.Uint32
	mu       sync.Mutex
	events   []Event
	overflow bool // more than maxTapped events waited: the supervisor reloads instead
	notify   chan struct{}
}

// maxTapped bounds the events waiting for the supervisor.
const maxTapped = 1 << 16

// newHub returns a hub of a watch buffer of size events (rounded up to a power of two)
// that reads the events in tail, or, if tail is nil, keeps a ring of those published after
// head.
func newHub(size int, head uint64, tail TailReader) *hub {
	n := 1
	for n < size {
		n <<= 1
	}
	h := &hub{tail: tail, size: uint64(n), mask: uint64(n - 1), tap: tap{notify: make(chan struct{}, 1)}}
	if tail == nil {
		h.ring, h.base = make([]hubSlot, n), head
	}
	h.scratch.New = func() any { return new([]Event) }
	h.watchers.Store(new([]*Watcher))
	return h
}

// publish adds a committed event. Concurrent committers publish out of sequence order;
// watchers wait for the gaps. Publishing an event again (a replica catching up with the
// store) changes nothing.
func (h *hub) publish(ev *Event) {
	seq := ev.Sequence
	if seq <= h.base {
		return
	}
	if h.tail == nil {
		s := &h.ring[seq&h.mask]
		s.mu.Lock()
		old := s.seq.Load()
		if old < seq {
			s.ev = *ev
			s.seq.Store(seq)
		}
		s.mu.Unlock()
		if old == seq {
			return
		}
	}
	if t := &h.tap; t.states.Load()&(1<<ev.To) != 0 {
		t.add(ev)
	}
	// A watcher parks after counting itself parked and then looking at the events; the
	// event was stored before this looks at the count: one of the two sees the other.
	if h.parked.Load() > 0 {
		for _, w := range *h.watchers.Load() {
			if w.parked.Load() && h.ready(w) {
				w.unpark(true)
			}
		}
	}
}

// held returns c if its event is published and in the hub; otherwise the sequence in its
// place: older while c is not yet published, newer once c is overwritten.
func (h *hub) held(c uint64) uint64 {
	if h.tail != nil {
		return h.tail.TailHeld(c)
	}
	return h.ring[c&h.mask].seq.Load()
}

// read appends to evs the published events from c on, in order, at most limit of them,
// up to the first one not yet published, as TailReader.ReadTail does.
func (h *hub) read(c uint64, limit int, evs []Event) (_ []Event, lapped bool) {
	if h.tail != nil {
		return h.tail.ReadTail(c, limit, evs)
	}
	for end := c + uint64(limit); c < end; c++ {
		s := &h.ring[c&h.mask]
		s.mu.Lock()
		seq := s.seq.Load()
		if seq == c {
			evs = append(evs, s.ev)
		}
		s.mu.Unlock()
		if seq != c {
			return evs, seq > c
		}
	}
	return evs, false
}

func (t *tap) add(ev *Event) {
	t.mu.Lock()
	if len(t.events) < maxTapped {
		t.events = append(t.events, *ev)
	} else {
		t.overflow = true
	}
	t.mu.Unlock()
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// ready reports whether watcher w has something to read at its cursor: a published event
// its filter matches, an event it must read from the store, or the end of the hub.
// Published events its filter hides are passed over on its behalf, moving its cursor, so
// that a parked watcher of a few events is not woken for each of the others. Called by
// publishers for parked watchers, and by a watcher about to park.
func (h *hub) ready(w *Watcher) bool {
	c := w.cursor.Load()
	if c <= h.base || h.closed.Load() {
		return true
	}
	if w.filter.all() {
		return h.held(c) >= c // published, or lapped (read it from the store, or be cut off)
	}
	const limit = 64
	buf := h.scratch.Get().(*[]Event)
	evs, lapped := h.read(c, limit, (*buf)[:0])
	defer func() {
		clear(evs)
		*buf = evs[:0]
		h.scratch.Put(buf)
	}()
	next := c + uint64(len(evs))
	for i := range evs {
		if w.filter.match(&evs[i]) {
			next = evs[i].Sequence
			break
		}
	}
	if next != c {
		// Lost only to the watcher itself moving on, which is as good.
		w.cursor.CompareAndSwap(c, next)
	}
	// Stopped at a match, a lapped event, or many hidden ones (the watcher passes those
	// itself), or else at one not yet published.
	return next < c+uint64(len(evs)) || lapped || len(evs) == limit
}

// newestFrom returns the newest sequence from c on up to which every event has been
// published, or c.
func (h *hub) newestFrom(c uint64) uint64 {
	c = max(c, h.base)
	for h.held(c+1) == c+1 {
		c++
	}
	return c
}

func (h *hub) add(w *Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ws := append(append([]*Watcher(nil), *h.watchers.Load()...), w)
	h.watchers.Store(&ws)
}

func (h *hub) remove(w *Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.watchers.Load()
	ws := make([]*Watcher, 0, len(old))
	for _, x := range old {
		if x != w {
			ws = append(ws, x)
		}
	}
	h.watchers.Store(&ws)
}

// close ends every watch; each watcher's next read reports where to resume.
func (h *hub) close() {
	h.closed.Store(true)
	for _, w := range *h.watchers.Load() {
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

// eventFilter is a compiled watch or hook filter. Empty parts match everything.
type eventFilter struct {
	agents []string
	states uint32 // bit s set: new state s matches
	types  uint32 // bit t set: transition type t matches
}

func newEventFilter(agents []string, states []State, types []TransitionType) eventFilter {
	f := eventFilter{agents: agents}
	for _, s := range states {
		f.states |= 1 << s
	}
	for _, t := range types {
		f.types |= 1 << t
	}
	return f
}

// all reports whether the filter matches every event.
func (f *eventFilter) all() bool { return f.states == 0 && f.types == 0 && len(f.agents) == 0 }

func (f *eventFilter) match(ev *Event) bool {
	if f.states != 0 && f.states&(1<<ev.To) == 0 || f.types != 0 && f.types&(1<<ev.Type) == 0 {
		return false
	}
	if len(f.agents) == 0 {
		return true
	}
	for _, a := range f.agents {
		if a == ev.AgentID {
			return true
		}
	}
	return false
}
