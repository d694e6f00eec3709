package lifecycle

import (
	"math/rand/v2"
	"testing"
)

// TestHubRetainsWhatItClaims publishes events out of order, as concurrent committers do,
// some again (as a replica catching up does) and some a ring late (a committer
// descheduled), and checks after each publish that every slot holds the event its
// sequence claims, that no slot goes back to an older event, and that newestFrom stops at
// the first event not yet published.
func TestHubRetainsWhatItClaims(t *testing.T) {
	const size = 8
	h := newHub(size, 0, nil)
	next := uint64(1)
	var pending []uint64
	published := map[uint64]bool{}
	claims := make([]uint64, size)
	for range 10_000 {
		// Up to three commits in flight; any of them may publish first.
		for len(pending) < 3 {
			pending = append(pending, next)
			next++
		}
		i := rand.IntN(len(pending))
		seq := pending[i]
		if rand.IntN(50) == 0 && seq > 1 {
			seq = 1 + rand.Uint64N(seq-1) // again, or a ring late
		} else {
			pending = append(pending[:i], pending[i+1:]...)
		}
		h.publish(&Event{Sequence: seq})
		published[seq] = true
		for j := range h.ring {
			s := &h.ring[j]
			if got := s.seq.Load(); got < claims[j] || s.ev.Sequence != got {
				t.Fatalf("after publishing %d: slot %d claims %d (before %d) and holds %d", seq, j, got, claims[j], s.ev.Sequence)
			}
			claims[j] = s.seq.Load()
		}
		n := h.newestFrom(0)
		for s := uint64(1); s <= n; s++ {
			if !published[s] {
				t.Fatalf("newestFrom(0) = %d, but %d is not published", n, s)
			}
		}
	}
}

// TestParkedWatcherPassesHiddenEvents: publishers move a parked watcher's cursor past the
// events its filter hides instead of waking it, wake it for one it matches, and never past
// an event not yet published.
func TestParkedWatcherPassesHiddenEvents(t *testing.T) {
	h := newHub(16, 0, nil)
	w := &Watcher{m: &Manager{hub: h}, filter: newEventFilter([]string{"mine"}, nil, nil), notify: make(chan struct{}, 1)}
	w.cursor.Store(1)
	h.add(w)
	park := func() {
		w.parked.Store(true)
		h.parked.Add(1)
		if h.ready(w) {
			t.Fatalf("nothing to read at %d, yet ready", w.cursor.Load())
		}
	}
	woken := func() bool {
		select {
		case <-w.notify:
			return !w.parked.Load()
		default:
			return false
		}
	}
	park()
	for seq := uint64(1); seq <= 5; seq++ {
		h.publish(&Event{Sequence: seq, AgentID: "other"})
	}
	if woken() || w.cursor.Load() != 6 {
		t.Fatalf("after five hidden events: woken %v, cursor %d; want parked at 6", !w.parked.Load(), w.cursor.Load())
	}
	h.publish(&Event{Sequence: 7, AgentID: "mine"}) // 6 not yet published
	if woken() || w.cursor.Load() != 6 {
		t.Fatalf("a match past a gap: woken %v, cursor %d; want parked at 6", !w.parked.Load(), w.cursor.Load())
	}
	h.publish(&Event{Sequence: 6, AgentID: "other"})
	if !woken() || w.cursor.Load() != 7 {
		t.Fatalf("gap filled before a match: woken %v, cursor %d; want woken at 7", !w.parked.Load(), w.cursor.Load())
	}
	if h.parked.Load() != 0 {
		t.Fatalf("%d parked after the wake", h.parked.Load())
	}
}
