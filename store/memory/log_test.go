package memory

import (
	"sync"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
)

// TestLogBoundsCommitsInFlight holds one commit between its reservation and its copy, as
// a descheduled committer would, while more commits than there are flight slots append
// after it (commits wait for earlier ones outside their shards' locks, so nothing else
// bounds them). Once it is written, every commit must complete: two in flight in one slot
// would have left committed stuck behind the first.
func TestLogBoundsCommitsInFlight(t *testing.T) {
	s := NewWithOptions(&Options{MaxEvents: 4096})
	l := &s.log
	l.mu.Lock()
	l.reserved++ // sequence 1, reserved and not yet written
	l.chunks[0] = make([]lifecycle.Event, chunkSize)
	slot := l.event(1)
	l.mu.Unlock()
	var wg sync.WaitGroup
	for range 3 * shardCount {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := lifecycle.Event{AgentID: "a"}
			seq, _ := l.append(&ev)
			l.await(seq)
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them pile up behind sequence 1
	*slot = lifecycle.Event{Sequence: 1, AgentID: "a"}
	l.flight[1].written.Store(1)
	l.advance()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("commits stuck: committed %d", l.committed.Load())
	}
	if got := l.committed.Load(); got != 3*shardCount+1 {
		t.Fatalf("committed %d, want %d", got, 3*shardCount+1)
	}
}
