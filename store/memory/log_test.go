package memory

import (
	"runtime"
	"slices"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
)

// newTestLog returns a log retaining one event, on one processor: its commits take one
// lane (two when one is held), so the test knows which chunks they fill.
func newTestLog(t *testing.T) *eventLog {
	procs := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.GOMAXPROCS(procs) })
	l := new(eventLog)
	l.init(1)
	return l
}

func commitN(l *eventLog, n int) (last uint64) {
	for range n {
		last, _ = l.append(&lifecycle.Event{AgentID: "a", Reason: "r"})
	}
	return last
}

// TestRetiredChunkKept checks that a chunk whose events are no longer retained is not
// reused while a reader is in it, and is once the reader leaves; and that a reader that
// comes to it after it was retired finds nothing there.
func TestRetiredChunkKept(t *testing.T) {
	l := newTestLog(t)
	commitN(l, chunkSize+1)
	in := l.reader()
	slot := in.find(1)
	if slot == nil || slot.seq != 1 {
		t.Fatalf("find(1) = %+v", slot)
	}
	first := in.lanes[0].refs[0].c
	late := l.reader() // its list of chunks still has the first
	commitN(l, 2*chunkSize)
	l.mu.Lock()
	kept := slices.Contains(l.retiring, first) && !slices.Contains(l.spare, first)
	l.mu.Unlock()
	if !kept {
		t.Fatal("a retired chunk a reader is in was not kept apart")
	}
	if slot.seq != 1 || slot.reason != "r" {
		t.Fatalf("the event read was overwritten: %+v", slot)
	}
	if s := late.find(2); s != nil {
		t.Fatalf("a reader found event %d in a retired chunk", s.seq)
	}
	late.close()
	if _, err := l.read(slices.Values([]uint64{2}), &lifecycle.EventFilter{}); lifecycle.ErrorCode(err) != lifecycle.CodeOutOfRange {
		t.Fatalf("reading a dropped event: %v, want OUT_OF_RANGE", err)
	}
	in.close()
	commitN(l, chunkSize)
	l.mu.Lock()
	reused := !slices.Contains(l.retiring, first)
	l.mu.Unlock()
	if !reused {
		t.Fatal("a retired chunk was not released once its reader left")
	}
}

// TestReaderFindsNewLane checks that a reader finds an event written in a lane made after
// it started.
func TestReaderFindsNewLane(t *testing.T) {
	l := newTestLog(t)
	commitN(l, 1)
	r := l.reader()
	defer r.close()
	held := l.acquire() // the only lane: the next commit makes another
	seq := commitN(l, 1)
	held.state.Store(held.state.Load() &^ 1) // let go, nothing written
	if n := len(*l.lanes.Load()); n != 2 || len(r.lanes) != 1 {
		t.Fatalf("%d lanes, the reader knows %d; want 2 and 1", n, len(r.lanes))
	}
	if s := r.find(seq); s == nil || s.seq != seq {
		t.Fatalf("find(%d) = %+v", seq, s)
	}
}
