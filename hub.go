package lifecycle

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// hub fans committed events out to watchers. It keeps the newest events in one ring shared
// by every watcher; each watcher is a cursor over the sequence. Publishing never blocks,
// never allocates and takes no lock that other publishers take: a publisher writes its
// event into its sequence's slot, under that slot's lock, and looks at the watchers only
// when one of them is parked. (One lock for every publish, and the head they moved in
// turn, made transitions on two cores slower than on one: the lock's line went from core
// to core on every publish.) A watcher reads the slots in sequence order, waiting at the
// first event not yet published, so it never sees a gap; one that falls a whole ring
// behind is cut off when it next reads, with the sequence to resume from, and catches up
// from the store.
type hub struct {
	ring []hubSlot
	mask uint64
	// base: the newest sequence when the hub started; the ring never holds it or older ones.
	base uint64
	// parked counts the parked watchers: publishers look at the watchers only when some
	// are.
	parked   atomic.Int32
	closed   atomic.Bool
	mu       sync.Mutex                 // serializes changes of watchers
	watchers atomic.Pointer[[]*Watcher] // replaced, never changed in place
	tap      tap
}

// hubSlot holds the event of one sequence of the ring. seq is stored after the event is
// complete, under mu, and only ever grows: a publisher that finds a newer event in its
// slot (it was descheduled for a whole ring) leaves it. Padded to whole cache lines,
// since consecutive sequences are published from different cores.
type hubSlot struct {
	mu  sync.Mutex
	seq atomic.Uint64
	// prev: the sequence the slot held before seq. A watcher that finds the event at its
	// cursor overwritten, and prev older than it, knows that event was never here: its
	// committer was descheduled while others published a ring of events. It reads it from
	// the store instead of being cut off.
	prev uint64
	ev   Event
	_    [(64 - (24+unsafe.Sizeof(Event{}))%64) % 64]byte
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

func newHub(size int, head uint64) *hub {
	n := 1
	for n < size {
		n <<= 1
	}
	h := &hub{ring: make([]hubSlot, n), mask: uint64(n - 1), base: head, tap: tap{notify: make(chan struct{}, 1)}}
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
	s := &h.ring[seq&h.mask]
	s.mu.Lock()
	old := s.seq.Load()
	if old < seq {
		s.ev, s.prev = *ev, old
		s.seq.Store(seq)
	}
	s.mu.Unlock()
	if old == seq {
		return
	}
	if t := &h.tap; t.states.Load()&(1<<ev.To) != 0 {
		t.add(ev)
	}
	// A watcher parks after counting itself parked and then looking at the slots; this
	// stored seq and then looks at the count: one of the two sees the other.
	if h.parked.Load() > 0 {
		for _, w := range *h.watchers.Load() {
			if w.parked.Load() && h.ready(w) {
				w.unpark(true)
			}
		}
	}
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
	start := w.cursor.Load()
	c := start
	defer func() {
		if c != start {
			// Lost only to the watcher itself moving on, which is as good.
			w.cursor.CompareAndSwap(start, c)
		}
	}()
	for range 64 {
		if c <= h.base || h.closed.Load() {
			return true
		}
		s := &h.ring[c&h.mask]
		if seq := s.seq.Load(); seq != c {
			return seq > c // lapped (read it from the store, or be cut off) or not yet published
		}
		s.mu.Lock()
		match := s.seq.Load() != c || w.filter.match(&s.ev)
		s.mu.Unlock()
		if match {
			return true
		}
		c++
	}
	return true // many hidden events: let the watcher pass them itself
}

// newestFrom returns the newest sequence from c on up to which every event has been
// published into its slot, or c.
func (h *hub) newestFrom(c uint64) uint64 {
	c = max(c, h.base)
	for h.ring[(c+1)&h.mask].seq.Load() == c+1 {
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
