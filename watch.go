package lifecycle

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// WatchRequest selects the events of a watch. Empty filters match everything.
type WatchRequest struct {
	AgentID string
	// States keeps events whose new state is one of these.
	States []State
	Types  []TransitionType
	// FromSequence is the resume point: the stored events with sequence ≥ FromSequence
	// come first, then live ones, with no gap and no duplicate. 0 means only events
	// committed from now on.
	FromSequence uint64
	// BookmarkInterval, if not zero, makes the watch send a bookmark (an Event with
	// Bookmark set and only Sequence) at most this often while its filter hides newer
	// events, so that a resume point stays fresh. At least MinBookmarkInterval.
	BookmarkInterval time.Duration
}

// MinBookmarkInterval bounds how often a watch sends bookmarks.
const MinBookmarkInterval = 10 * time.Millisecond

// watchBatch is how many events a watcher takes from the ring or the store at once.
const watchBatch = 256

// EventStream is a stream of events, in sequence order.
type EventStream interface {
	// Next blocks until the next event, ctx ends, or the stream ends. An ended stream
	// returns an *Error whose ResumeSequence is the FromSequence to watch again from.
	Next(ctx context.Context) (Event, error)
	// Close releases the stream; Next then fails.
	Close() error
}

// Watcher is an EventStream served by a Manager. One goroutine reads it with Next; Close
// may be called from any goroutine.
type Watcher struct {
	m      *Manager
	filter eventFilter
	// storeFilter narrows store reads when the filter names a single agent or type.
	storeFilter EventFilter
	// cursor is the next sequence to look at; the hub reads it to wake lagging watchers.
	cursor atomic.Uint64
	notify chan struct{}
	// parked: the watcher waits for notify; publishers signal only parked watchers.
	parked atomic.Bool
	// live: the watcher has caught up once (found the next event not yet published);
	// falling a watch buffer behind is then a lag.
	live bool
	// waited: the cursor where the watcher's last park ended. Behind there is no lag of
	// the watcher's: it waited for that event, whose committer was descheduled while
	// others committed a watch buffer of events.
	waited uint64
	buf    []Event
	pos    int
	err    error

	bookmarkEvery time.Duration
	lastSent      uint64 // sequence of the last event or bookmark delivered
	lastSentAt    time.Time
	timer         *time.Timer
	closed        atomic.Bool
}

// Watch starts a stream of events. CodeInvalidArgument for a bad filter; CodeOutOfRange
// when FromSequence is older than the oldest retained event.
func (m *Manager) Watch(ctx context.Context, req WatchRequest) (EventStream, error) {
	return m.watch(ctx, req)
}

func (m *Manager) watch(ctx context.Context, req WatchRequest) (*Watcher, error) {
	var agents []string
	if req.AgentID != "" {
		if err := checkID("agent_id", req.AgentID); err != nil {
			return nil, err
		}
		agents = []string{req.AgentID}
	}
	for _, s := range req.States {
		if err := checkState("states", s, false); err != nil {
			return nil, err
		}
	}
	for _, t := range req.Types {
		if err := checkType("transition_types", t); err != nil {
			return nil, err
		}
	}
	if req.BookmarkInterval != 0 && (req.BookmarkInterval < MinBookmarkInterval || req.BookmarkInterval > time.Hour) {
		return nil, invalid("bookmark_interval_ms must be between %d and %d", MinBookmarkInterval.Milliseconds(), time.Hour.Milliseconds())
	}
	return m.newWatcher(ctx, newEventFilter(agents, req.States, req.Types), req.FromSequence, req.BookmarkInterval)
}

func (m *Manager) newWatcher(ctx context.Context, f eventFilter, from uint64, bookmarkEvery time.Duration) (*Watcher, error) {
	w := &Watcher{m: m, filter: f, notify: make(chan struct{}, 1), bookmarkEvery: bookmarkEvery, lastSentAt: m.now()}
	if len(f.agents) == 1 {
		w.storeFilter.AgentID = f.agents[0]
	}
	if f.types != 0 && f.types&(f.types-1) == 0 {
		for t := TypeNormal; t <= TypeMaintenance; t++ {
			if f.types == 1<<t {
				w.storeFilter.Type = t
			}
		}
	}
	oldest, newest, err := m.store.Sequences(ctx)
	if err != nil {
		return nil, err
	}
	if from == 0 || from > newest+1 {
		from = max(from, newest+1)
	} else if from < oldest {
		return nil, &Error{Code: CodeOutOfRange, ResumeSequence: oldest, Message: fmt.Sprintf(
			"sequence %d is older than the oldest retained event %d; resume from %d (and re-list current state)", from, oldest, oldest)}
	}
	w.cursor.Store(from)
	w.lastSent = from - 1
	m.hub.add(w)
	return w, nil
}

// Next returns the next matching event (or bookmark).
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	for {
		if w.pos < len(w.buf) {
			ev := w.buf[w.pos]
			w.buf[w.pos] = Event{}
			w.pos++
			w.sent(ev.Sequence)
			return ev, nil
		}
		if w.err != nil {
			return Event{}, w.err
		}
		w.buf, w.pos = w.buf[:0], 0
		if err := w.fill(ctx); err != nil {
			if ctx.Err() != nil {
				return Event{}, ctx.Err()
			}
			w.fail(err)
			return Event{}, err
		}
		if len(w.buf) > 0 {
			continue
		}
		var wake <-chan time.Time
		if seen := w.cursor.Load() - 1; w.bookmarkEvery > 0 && seen > w.lastSent {
			if wait := w.bookmarkEvery - w.m.now().Sub(w.lastSentAt); wait <= 0 {
				w.sent(seen)
				return Event{Sequence: seen, Bookmark: true}, nil
			} else {
				wake = w.resetTimer(wait)
			}
		}
		h := w.m.hub
		w.parked.Store(true)
		h.parked.Add(1)
		if h.ready(w) {
			w.unpark(false) // published since fill looked
			continue
		}
		select {
		case <-w.notify:
		case <-wake:
		case <-ctx.Done():
			w.unpark(false)
			return Event{}, ctx.Err()
		}
		w.unpark(false)
		w.waited = w.cursor.Load()
		if w.timer != nil && wake != nil {
			w.timer.Stop()
		}
	}
}

// unpark ends a park, once: by the watcher, or by a publisher (signal) that found
// something for it.
func (w *Watcher) unpark(signal bool) {
	if !w.parked.CompareAndSwap(true, false) {
		return
	}
	w.m.hub.parked.Add(-1)
	if signal {
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

func (w *Watcher) sent(seq uint64) {
	w.lastSent = seq
	if w.bookmarkEvery > 0 {
		w.lastSentAt = w.m.now()
	}
}

func (w *Watcher) resetTimer(d time.Duration) <-chan time.Time {
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	return w.timer.C
}

// fill takes the next batch of matching events from the hub, or from the store when the
// cursor is older than the hub's ring.
func (w *Watcher) fill(ctx context.Context) error {
	h := w.m.hub
	cur := w.cursor.Load()
	if w.closed.Load() {
		return Errorf(CodeCanceled, "watch closed")
	}
	if h.closed.Load() {
		return &Error{Code: CodeUnavailable, ResumeSequence: cur,
			Message: fmt.Sprintf("the lifecycle manager is shutting down; watch again from sequence %d", cur)}
	}
	// Lapped: the events at the cursor are gone from the ring, or the watcher is a whole
	// watch buffer behind the store's tail.
	lagged := w.live && cur != w.waited
	lapped := cur <= h.base || lagged && h.tail != nil && h.held(cur+h.size) >= cur+h.size
	if !lapped {
		var evs []Event
		evs, lapped = h.read(cur, watchBatch, w.buf)
		cur += uint64(len(evs))
		if !lapped && len(evs) < watchBatch {
			w.live = true // caught up: the next event is not yet published
		}
		w.buf = evs
		if !w.filter.all() {
			w.buf = evs[:0]
			for i := range evs {
				if w.filter.match(&evs[i]) {
					w.buf = append(w.buf, evs[i])
				}
			}
			clear(evs[len(w.buf):])
		}
		if !lapped || lagged && len(evs) > 0 { // a lagging watcher gets what it read first
			w.cursor.Store(cur)
			return nil
		}
	}
	if lagged {
		w.m.counts.watchCutoffs.Add(1)
		return &Error{Code: CodeResourceExhausted, ResumeSequence: cur,
			Message: fmt.Sprintf("watcher fell more than %d events behind and was cut off; watch again from sequence %d", h.size, cur)}
	}
	// Older than the ring: from the store, up to its newest event, every one of which is
	// at least committed.
	_, newest, err := w.m.store.Sequences(ctx)
	if err != nil {
		return err
	}
	f := w.storeFilter
	f.FromSequence, f.Limit = cur, watchBatch
	evs, err := w.m.store.ReadEvents(ctx, f)
	if err != nil {
		return err
	}
	for i := range evs {
		if w.filter.match(&evs[i]) {
			w.buf = append(w.buf, evs[i])
		}
	}
	// A short page means the store had nothing more matching up to at least newest.
	next := max(cur, newest+1)
	if n := len(evs); n == watchBatch || n > 0 && evs[n-1].Sequence >= next {
		next = evs[n-1].Sequence + 1
	}
	w.cursor.Store(next)
	return nil
}

func (w *Watcher) fail(err error) {
	w.err = err
	w.m.hub.remove(w)
}

// Resume is the FromSequence that continues this stream with no gap and no duplicate.
func (w *Watcher) Resume() uint64 { return w.lastSent + 1 }

// Close ends the stream; a Next blocked in another goroutine returns CodeCanceled.
func (w *Watcher) Close() error {
	if w.closed.CompareAndSwap(false, true) {
		w.m.hub.remove(w)
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
	return nil
}
