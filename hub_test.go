package lifecycle

import (
	"math/rand/v2"
	"testing"
	"unsafe"
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
			if got := h.ring[s&h.mask].Event.Sequence; got != s {
				t.Fatalf("after publishing %d (head %d, top %d): slot of %d holds %d, yet oldest is %d",
					seq, h.head.Load(), h.top, s, got, h.oldest())
			}
		}
	}
}

// A ring slot must stay whole cache lines: if Event grows, grow the padding with it.
func TestRingSlotIsWholeCacheLines(t *testing.T) {
	if n := unsafe.Sizeof(ringSlot{}); n%64 != 0 || n-unsafe.Sizeof(Event{}) >= 64 {
		t.Fatalf("ringSlot is %d bytes for a %d-byte event: adjust its padding to the next multiple of 64", n, unsafe.Sizeof(Event{}))
	}
}

func TestAgentSlotIsWholeCacheLines(t *testing.T) {
	if n := unsafe.Sizeof(agentSlot{}); n%64 != 0 {
		t.Fatalf("agentSlot is %d bytes: adjust its padding to the next multiple of 64", n)
	}
}
