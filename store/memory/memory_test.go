package memory_test

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) lifecycle.Store {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestEventRoundTrip stores an event with every field set and reads it back whole: the
// log keeps events in a layout of its own, which a new field of Event must join.
func TestEventRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	now := time.Now()
	ev := lifecycle.Event{
		ID: uuid.New(), AgentID: "a1", From: lifecycle.StateInitialized, To: lifecycle.StateError,
		Type: lifecycle.TypeErrorTriggered, Bookmark: true, Time: now, InitiatedBy: "user:ann",
		Reason: "r", Metadata: map[string]string{"k": "v"}, Revision: 1,
		Error: &lifecycle.ErrorInfo{Code: 3, Message: "m", Time: now},
		Hooks: []lifecycle.HookOutcome{{HookID: "h", Result: lifecycle.HookAllowed}},
	}
	v := reflect.ValueOf(ev)
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.Name != "Sequence" && v.Field(i).IsZero() {
			t.Fatalf("set Event.%s in this test", f.Name)
		}
	}
	a := lifecycle.Agent{ID: "a1", State: lifecycle.StateError, Revision: 1}
	seq, err := s.CreateAgent(ctx, a, ev)
	if err != nil {
		t.Fatal(err)
	}
	ev.Sequence = seq
	got, err := s.ReadEvents(ctx, lifecycle.EventFilter{})
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], ev) {
		t.Fatalf("ReadEvents = %+v, %v; want %+v", got, err, ev)
	}
	if tail, _ := s.ReadTail(seq, 8, nil); len(tail) != 1 || !reflect.DeepEqual(tail[0], ev) {
		t.Fatalf("ReadTail = %+v; want %+v", tail, ev)
	}
}

// TestConcurrentLog commits from more goroutines than processors into a small log, so
// that commits overtake one another mid-copy and chunks are retired and reused, while
// readers check that what they see is gap-free and in sequence order, from the newest
// events and from the oldest (which commits drop as they are read), that the newest
// sequence never goes back, and that ReadTail copies the event it says it does.
func TestConcurrentLog(t *testing.T) {
	ctx := context.Background()
	s := memory.NewWithOptions(&memory.Options{MaxEvents: 4096})
	defer s.Close()
	const writers, commits = 32, 2000
	for w := range writers {
		a := lifecycle.Agent{ID: fmt.Sprintf("w-%d", w), State: lifecycle.StateInitialized, Revision: 1}
		if _, err := s.CreateAgent(ctx, a, lifecycle.Event{AgentID: a.ID, To: a.State, Revision: 1}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var newest uint64
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Microsecond):
				}
				oldest, n, err := s.Sequences(ctx)
				if err != nil || n < newest {
					t.Errorf("Sequences: newest %d after %d (%v)", n, newest, err)
					return
				}
				newest = n
				from := max(oldest, n-64) // reader 0: the newest events
				if r == 1 {
					from = oldest // reader 1: the oldest, being overwritten
				}
				evs, err := s.ReadEvents(ctx, lifecycle.EventFilter{FromSequence: from, Limit: 128})
				if lifecycle.ErrorCode(err) == lifecycle.CodeOutOfRange {
					continue // retention moved on meanwhile
				} else if err != nil {
					t.Error(err)
					return
				}
				for i, ev := range evs {
					if ev.Sequence != from+uint64(i) {
						t.Errorf("reading from %d, event %d has sequence %d", from, i, ev.Sequence)
						return
					}
				}
			}
		}()
	}
	var tailed atomic.Int64
	readers.Add(1)
	go func() {
		defer readers.Done()
		var evs []lifecycle.Event
		for seq := uint64(1); ; {
			select {
			case <-stop:
				return
			default:
			}
			evs, lapped := s.ReadTail(seq, 64, evs[:0])
			for i, ev := range evs {
				if ev.Sequence != seq+uint64(i) {
					t.Errorf("ReadTail from %d: event %d has sequence %d", seq, i, ev.Sequence)
					return
				}
			}
			tailed.Add(int64(len(evs)))
			switch {
			case len(evs) > 0:
				seq += uint64(len(evs))
			case lapped:
				seq = s.TailHeld(seq) // a ring behind: on to the newest
			default:
				runtime.Gosched() // not yet committed
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w-%d", w)
			for rev := int64(1); rev <= commits; rev++ {
				to := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}[rev%2]
				ev := lifecycle.Event{AgentID: id, To: to, Revision: rev + 1}
				if _, err := s.CommitTransition(ctx, ev, rev); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if tailed.Load() == 0 {
		t.Error("ReadTail never found a committed event")
	}
	oldest, newest, _ := s.Sequences(ctx)
	if want := uint64(writers * (commits + 1)); newest != want || oldest != want-4096+1 {
		t.Fatalf("Sequences = %d, %d; want %d, %d", oldest, newest, want-4096+1, want)
	}
	for w := range writers {
		id := fmt.Sprintf("w-%d", w)
		a, _ := s.GetAgent(ctx, id)
		evs, _ := s.ReadEvents(ctx, lifecycle.EventFilter{AgentID: id})
		if a.LastSequence < oldest {
			continue // its last event has left the ring
		}
		if len(evs) == 0 || evs[len(evs)-1].Sequence != a.LastSequence || evs[len(evs)-1].Revision != a.Revision {
			t.Fatalf("agent %s at revision %d, sequence %d; its retained events: %+v", id, a.Revision, a.LastSequence, evs)
		}
	}
}

// BenchmarkCommitParallel commits transitions of distinct agents from 16 goroutines per
// processor: the store alone, oversubscribed as in a many-threaded program.
func BenchmarkCommitParallel(b *testing.B) {
	ctx := context.Background()
	s := memory.New()
	defer s.Close()
	var next atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		a := lifecycle.Agent{ID: fmt.Sprintf("agent-%d", next.Add(1)), State: lifecycle.StateInitialized, Revision: 1}
		if _, err := s.CreateAgent(ctx, a, lifecycle.Event{AgentID: a.ID, To: a.State, Revision: 1}); err != nil {
			b.Error(err)
			return
		}
		for rev := int64(1); pb.Next(); rev++ {
			ev := lifecycle.Event{AgentID: a.ID, To: lifecycle.StateActive + lifecycle.State(rev%2), Revision: rev + 1}
			if _, err := s.CommitTransition(ctx, ev, rev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
