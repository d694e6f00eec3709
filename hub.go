package lifecycle

import (
	"sync"
	"sync/atomic"
)

// hub fans committed events out to watchers. It keeps the newest events in one ring shared
// by every watcher; each watcher is a cursor over the sequence. Publishing never blocks and
// never allocates: a watcher that falls a whole ring behind is cut off when it next reads,
// with the sequence to resume from, and catches up from the store.
type hub struct {
	mu   sync.Mutex
	ring []Event
	mask uint64
	// head: every event up to head has been published; written under mu, read without it
	// by a watcher about to park. base: head when the hub started; the ring never holds
	// events at or below it. top: the newest event in the ring, beyond head when events
	// were published out of order; each such one has overwritten an event a ring older,
	// which is no longer retained.
	head      atomic.Uint64
	base, top uint64
	watchers  []*Watcher
	closed    bool
	tap       tap
}

// tap hands the supervisor, in sequence order, the published events into the states it
// supervises: a bit test per event for the others, so transitions nobody supervises cost
// nothing, and no ring to fall behind. Guarded by hub.mu.
type tap struct {
	states   uint32
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
	h := &hub{ring: make([]Event, n), mask: uint64(n - 1), base: head, top: head, tap: tap{notify: make(chan struct{}, 1)}}
	h.head.Store(head)
	return h
}

// publish adds a committed event. Concurrent committers may publish out of sequence
// order; head advances over contiguous sequences only, so a watcher never sees a gap.
// Only parked watchers are signalled: a watcher that is reading will find the event on
// its own, and its notify channel and cursor stay out of the publishers' caches.
//
// It reports false when ev is more than a ring ahead of head, where it could overwrite an
// event not yet published: the events up to it must then be published from the store
// (Manager.publish), or head would never pass them.
//
// The signals are sent after the lock is released: readying a goroutine may wake a
// thread, a system call that would lengthen every other publisher's wait.
func (h *hub) publish(ev *Event) bool {
	var wake [4]chan struct{}
	h.mu.Lock()
	woken, ok := h.publishLocked(ev, wake[:0])
	h.mu.Unlock()
	for _, c := range woken {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	return ok
}

// publishLocked adds ev and appends to woken the channels to signal. Call with mu held.
func (h *hub) publishLocked(ev *Event, woken []chan struct{}) ([]chan struct{}, bool) {
	old := h.head.Load()
	if ev.Sequence <= old || h.closed {
		return woken, true
	}
	if ev.Sequence > old+uint64(len(h.ring)) {
		return woken, false
	}
	h.ring[ev.Sequence&h.mask] = *ev
	h.top = max(h.top, ev.Sequence)
	head := old
	for h.ring[(head+1)&h.mask].Sequence == head+1 {
		head++
	}
	if head == old {
		return woken, true
	}
	// A watcher parks after setting parked and then looking at head; this stores head and
	// then looks at parked: one of the two sees the other.
	h.head.Store(head)
	if t := &h.tap; t.states != 0 {
		tapped := false
		for s := old + 1; s <= head; s++ {
			if ev := &h.ring[s&h.mask]; t.states&(1<<ev.To) != 0 {
				if len(t.events) < maxTapped {
					t.events = append(t.events, *ev)
				} else {
					t.overflow = true
				}
				tapped = true
			}
		}
		if tapped {
			woken = append(woken, t.notify)
		}
	}
	for _, w := range h.watchers {
		if w.parked.Load() && h.wakes(w, old, head) && w.parked.CompareAndSwap(true, false) {
			woken = append(woken, w.notify)
		}
	}
	return woken, true
}

// wakes reports whether parked watcher w should be woken for the events after old up to
// head: one of them matches its filter, or its cursor is about to be lapped (so that it
// moves past events its filter hides before the ring overwrites them).
func (h *hub) wakes(w *Watcher, old, head uint64) bool {
	if half := uint64(len(h.ring) / 2); head > half && w.cursor.Load() <= head-half {
		return true
	}
	for s := old + 1; s <= head; s++ {
		if w.filter.match(&h.ring[s&h.mask]) {
			return true
		}
	}
	return false
}

// oldest is the oldest sequence the ring still holds. Call with mu held.
func (h *hub) oldest() uint64 {
	o := h.base + 1
	if n := uint64(len(h.ring)); h.top >= n && h.top-n+1 > o {
		o = h.top - n + 1
	}
	return o
}

func (h *hub) add(w *Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers = append(h.watchers, w)
}

func (h *hub) remove(w *Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.watchers {
		if x == w {
			last := len(h.watchers) - 1
			h.watchers[i] = h.watchers[last]
			h.watchers[last] = nil
			h.watchers = h.watchers[:last]
			return
		}
	}
}

// close ends every watch; each watcher's next read reports where to resume.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, w := range h.watchers {
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
