// Package scalemodel measures how far an ordered event log can scale with cores on the
// machine at hand, stripped of everything else a transition does: each operation does
// about 300 ns of private work (as a memory-store transition does at -cpu 1), then appends
// a 160-byte event the way the memory store's log did (sequence under a short lock, the
// copy outside it, committed moved in order, each commit waiting for the ones before it)
// and, in the second model, publishes it into a hub ring under a lock, as the Manager did;
// the NoWait models are the log and the hub of the third look (no commit waits for
// another; one lock per hub slot); LogNow is the log of the fourth look (the sequence one
// atomic add, no lock; watchers read the log itself, so nothing is published); LogLanes is
// the log now: each core writes its events into its own region of memory, and readers
// merge the regions. Sequence is the floor: the private work and the one line every
// commit writes. Issue 15, point 8; docs/performance.md.
//
//	go test -run '^$' -bench . -cpu 1,2 -count 3 ./scripts/scalemodel
package scalemodel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

type event [20]uint64 // 160 bytes, as lifecycle.Event

const ringSize = 1 << 20 // the memory store's default retention

// work is private computation, about 1 ns a round here.
func work(n int) uint64 {
	s := uint64(1)
	for range n {
		s = s*6364136223846793005 + 1442695040888963407
	}
	return s
}

var sink atomic.Uint64

// lockedSequence hands out sequences under a short lock, as the store's log did.
type lockedSequence struct {
	_        [128]byte
	mu       sync.Mutex
	reserved uint64
	_        [112]byte
}

func (q *lockedSequence) next() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reserved++
	return q.reserved
}

type eventLog struct {
	seqs      lockedSequence
	committed atomic.Uint64
	_         [128]byte
	written   [64]struct {
		seq atomic.Uint64
		_   [56]byte
	}
	ring []event
}

func (l *eventLog) append(e *event) uint64 {
	seq := l.seqs.next()
	l.ring[seq%ringSize] = *e
	l.written[seq%64].seq.Store(seq)
	for {
		c := l.committed.Load()
		if l.written[(c+1)%64].seq.Load() != c+1 || !l.committed.CompareAndSwap(c, c+1) {
			break
		}
	}
	for i := 0; l.committed.Load() < seq; i++ {
		if i > 256 {
			runtime.Gosched()
		}
	}
	return seq
}

type hub struct {
	_    [128]byte
	mu   sync.Mutex
	head uint64
	ring [4096]event
}

func (h *hub) publish(seq uint64, e *event) {
	h.mu.Lock()
	h.ring[seq%4096] = *e
	h.head = max(h.head, seq)
	h.mu.Unlock()
}

// parallel runs op b.N times over GOMAXPROCS goroutines, op(g) in goroutine g, each
// yielding now and then (as BenchmarkTransitionParallel's do, so that a watcher runs at
// -cpu 1). Not b.RunParallel: its goroutines' counters often share a cache line, written
// on every iteration by both cores — a cost as large as what these models measure.
func parallel(b *testing.B, op func(g int) uint64) {
	procs := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for g := range procs {
		wg.Go(func() {
			var s uint64
			for i := range b.N / procs {
				if i%256 == 0 {
					runtime.Gosched()
				}
				s += work(300) + op(g)
			}
			sink.Add(s)
		})
	}
	wg.Wait()
}

func run(b *testing.B, l *eventLog, h *hub) {
	var e event
	parallel(b, func(int) uint64 {
		if l == nil {
			return 0
		}
		seq := l.append(&e)
		if h != nil {
			h.publish(seq, &e)
		}
		return seq
	})
}

// BenchmarkPrivate is the private work alone: the machine's ceiling.
func BenchmarkPrivate(b *testing.B) { run(b, nil, nil) }

// BenchmarkLog adds the memory store's ordered append.
func BenchmarkLog(b *testing.B) { run(b, &eventLog{ring: make([]event, ringSize)}, nil) }

// BenchmarkLogHub adds, after the append, a publish into a hub ring under one lock.
func BenchmarkLogHub(b *testing.B) { run(b, &eventLog{ring: make([]event, ringSize)}, &hub{}) }

// slot is a ring slot marked with its sequence once written, padded to whole cache lines
// (the memory store's log slots are not padded; measured the same).
type slot struct {
	mu  sync.Mutex // the hub's slots only
	seq atomic.Uint64
	ev  event
	_   [16]byte
}

// noWaitLog is the memory store's log now: a commit marks its slot and returns; readers
// wait for the copies in flight.
type noWaitLog struct {
	seqs lockedSequence
	ring []slot
}

func (l *noWaitLog) append(e *event) uint64 {
	seq := l.seqs.next()
	s := &l.ring[seq%ringSize]
	s.ev = *e
	s.seq.Store(seq)
	return seq
}

// slotHub is the hub now: each publish takes only its slot's lock.
type slotHub struct {
	ring [4096]slot
}

func (h *slotHub) publish(seq uint64, e *event) {
	s := &h.ring[seq%4096]
	s.mu.Lock()
	if s.seq.Load() < seq {
		s.ev = *e
		s.seq.Store(seq)
	}
	s.mu.Unlock()
}

func runNoWait(b *testing.B, h *slotHub) {
	l := &noWaitLog{ring: make([]slot, ringSize)}
	var e event
	parallel(b, func(int) uint64 {
		seq := l.append(&e)
		if h != nil {
			h.publish(seq, &e)
		}
		return seq
	})
}

// BenchmarkLogNoWait is the ordered append as the memory store does it now.
func BenchmarkLogNoWait(b *testing.B) { runNoWait(b, nil) }

// BenchmarkLogNoWaitHubSlots adds a publish into a hub ring with a lock per slot.
func BenchmarkLogNoWaitHubSlots(b *testing.B) { runNoWait(b, &slotHub{}) }

// sequence is the one line every commit writes.
type sequence struct {
	_ [128]byte
	n atomic.Uint64
	_ [120]byte
}

// BenchmarkSequence is the private work and the one line every commit writes: the most
// any log handing out store-wide sequences can scale here.
func BenchmarkSequence(b *testing.B) {
	var seqs sequence
	parallel(b, func(int) uint64 { return seqs.n.Add(1) })
}

// BenchmarkLogNow is the memory store's log of the fourth look: the sequence one atomic
// add, and the commit copies its event into the sequence's slot of one ring and marks it.
func BenchmarkLogNow(b *testing.B) { runLog(b, false, false) }

// BenchmarkLogNowWatched adds a watcher reading every event as it is written.
func BenchmarkLogNowWatched(b *testing.B) { runLog(b, false, true) }

// BenchmarkLogLanes is the memory store's log now: each goroutine writes its events one
// after the other into a region of its own (its lane), as one core's prefetcher likes; a
// reader merges the lanes.
func BenchmarkLogLanes(b *testing.B) { runLog(b, true, false) }

// BenchmarkLogLanesWatched adds a watcher merging the lanes as they are written.
func BenchmarkLogLanesWatched(b *testing.B) { runLog(b, true, true) }

func runLog(b *testing.B, lanes, watched bool) {
	var seqs sequence
	procs := runtime.GOMAXPROCS(0)
	ring := make([]slot, ringSize)
	lane := uint64(ringSize / procs)
	if !lanes {
		procs, lane = 1, ringSize
	}
	// pos is where goroutine g writes its n-th event, or sequence seq without lanes.
	pos := func(g int, n, seq uint64) uint64 {
		if lanes {
			return uint64(g)*lane + n%lane
		}
		return seq % ringSize
	}
	var stop atomic.Bool
	var watcher sync.WaitGroup
	if watched {
		// Reads each event once written, in sequence order, looking at each lane's next
		// one; yields when none is written yet, as a parked watcher leaves its processor.
		watcher.Go(func() {
			next, read := uint64(1), make([]uint64, procs)
			var ev event
			for !stop.Load() {
				for g := 0; g < procs; {
					if s := &ring[pos(g, read[g], next)]; s.seq.Load() == next {
						ev = s.ev
						read[g]++
						next++
						g = 0
						continue
					}
					g++
				}
				runtime.Gosched()
			}
			sink.Add(ev[0])
		})
	}
	var e event
	written := make([]struct {
		n uint64
		_ [56]byte
	}, runtime.GOMAXPROCS(0))
	parallel(b, func(g int) uint64 {
		seq := seqs.n.Add(1)
		w := &written[g]
		s := &ring[pos(g, w.n, seq)]
		w.n++
		s.ev = e
		s.seq.Store(seq)
		return seq
	})
	stop.Store(true)
	watcher.Wait()
}
