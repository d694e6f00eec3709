// Package groupcommit is the writer shared by the SQL stores: one goroutine takes every
// commit waiting (up to a batch size) and hands them to the store's commit function as one
// batch, so concurrent transitions share one transaction and one fsync.
package groupcommit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hms-lifecycle/lifecycle"
)

// Request is one CreateAgent (Create set, with Agent) or CommitTransition waiting for the
// writer. The commit function sets Seq on success or Err.
type Request struct {
	Create   bool
	Delete   bool // Event deletes the agent (lifecycle.Store.DeleteAgent)
	Agent    lifecycle.Agent
	Event    lifecycle.Event
	Expected int64
	Seq      uint64
	Err      error
	done     chan struct{}
}

// Writer batches requests for a commit function.
type Writer struct {
	reqs     chan *Request
	maxBatch int
	commit   func([]*Request)
	done     chan struct{}
	closeMu  sync.RWMutex // held for reading while sending to reqs
	closed   bool
	name     string
	// commits, requests and busy (ns) count the batches committed, for Stats.
	commits, requests, busy atomic.Uint64
}

// Start starts a writer that passes batches of up to maxBatch requests (256 if zero) to
// commit, which must set each request's Seq or Err. name names the store in errors.
func Start(name string, maxBatch int, commit func([]*Request)) *Writer {
	if maxBatch <= 0 {
		maxBatch = 256
	}
	w := &Writer{reqs: make(chan *Request, 1024), maxBatch: maxBatch, commit: commit, done: make(chan struct{}), name: name}
	go w.run()
	return w
}

// Submit hands r to the writer and waits for its outcome. Once handed over, it waits even
// if ctx ends: the caller must learn whether the event was committed, or watchers would
// wait for a sequence that nobody publishes.
func (w *Writer) Submit(ctx context.Context, r *Request) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r.done = make(chan struct{})
	w.closeMu.RLock()
	if w.closed {
		w.closeMu.RUnlock()
		return 0, lifecycle.Errorf(lifecycle.CodeUnavailable, "%s store is closed", w.name)
	}
	w.reqs <- r
	w.closeMu.RUnlock()
	<-r.done
	return r.Seq, r.Err
}

// Close commits what is queued and stops the writer.
func (w *Writer) Close() {
	w.closeMu.Lock()
	if !w.closed {
		w.closed = true
		close(w.reqs)
	}
	w.closeMu.Unlock()
	<-w.done
}

// Stats returns the batches committed so far: how many, the requests in them and the time
// spent committing them.
func (w *Writer) Stats() lifecycle.CommitStats {
	return lifecycle.CommitStats{Commits: w.commits.Load(), Requests: w.requests.Load(), Duration: time.Duration(w.busy.Load())}
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]*Request, 0, w.maxBatch)
	for r := range w.reqs {
		batch = append(batch[:0], r)
	drain:
		for len(batch) < w.maxBatch {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		start := time.Now()
		w.commit(batch)
		w.busy.Add(uint64(time.Since(start)))
		w.commits.Add(1)
		w.requests.Add(uint64(len(batch)))
		for _, r := range batch {
			close(r.done)
		}
	}
}

// Prune calls prune every interval (a minute if zero) until stop is closed, logging
// failures, and closes stopped when it returns.
func Prune(stop <-chan struct{}, stopped chan<- struct{}, every time.Duration, log *slog.Logger,
	prune func(context.Context, time.Time) (int64, error)) {
	defer close(stopped)
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := prune(context.Background(), time.Now()); err != nil {
				log.Error("prune history", "err", err)
			}
		}
	}
}
