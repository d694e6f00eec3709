package lifecycle

import (
	"math/rand/v2"
	"testing"
)

// TestHubRetainsWhatItClaims publishes events out of order, as concurrent committers do,
// and checks after each publish that every sequence the ring claims to hold, from oldest
// to head, is the event in its slot: a pending event published ahead of the head
// overwrites one a ring older, which must no longer be handed to a lagging watcher.
func TestHubRetainsWhatItClaims(t *testing.T) {
	const size = 8
	h := newHub(size, 0)
	next := uint64(1)
	var pending []uint64
	for range 10_000 {
		// Up to three commits in flight; any of them may publish first.
		for len(pending) < 3 {
			pending = append(pending, next)
			next++
		}
		i := rand.IntN(len(pending))
		seq := pending[i]
		pending = append(pending[:i], pending[i+1:]...)
		h.publish(&Event{Sequence: seq})
		for s := h.oldest(); s <= h.head.Load(); s++ {
			if got := h.ring[s&h.mask].Sequence; got != s {
				t.Fatalf("after publishing %d (head %d, top %d): slot of %d holds %d, yet oldest is %d",
					seq, h.head.Load(), h.top, s, got, h.oldest())
			}
		}
	}
}
