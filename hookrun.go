package lifecycle

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// runBlocking runs the matching blocking hooks in order, recording each outcome in
// ev.Hooks, and stops at the first enforced veto or failure.
func (m *Manager) runBlocking(ctx context.Context, hs *hookSet, ev *Event, deadline time.Time, vetoable bool) (RefusalReason, string) {
	for _, h := range hs.blocking {
		if !h.filter.match(ev) {
			continue
		}
		hctx, span := ctx, trace.Span(nil)
		if m.tracer != nil {
			hctx, span = m.span(ctx, "lifecycle.hook")
		}
		out := m.invoke(hctx, h, ev, deadline, 1)
		out.Enforced = vetoable && out.Result != HookAllowed && (out.Result == HookVetoed || !h.ignoreFailures)
		if span != nil {
			traceHook(span, h, &out)
		}
		ev.Hooks = append(ev.Hooks, out)
		if !out.Enforced {
			continue
		}
		switch out.Result {
		case HookVetoed:
			return RefusalHookVetoed, fmt.Sprintf("hook %s vetoed the transition: %s", h.Spec.Name, out.Message)
		case HookTimedOut:
			return RefusalHookFailed, fmt.Sprintf("hook %s timed out: %s", h.Spec.Name, out.Message)
		default:
			return RefusalHookFailed, fmt.Sprintf("hook %s failed: %s", h.Spec.Name, out.Message)
		}
	}
	return RefusalNone, ""
}

type hookReply struct {
	d   HookDecision
	err error
}

// invoke calls a hook once, bounded by its timeout and the deadline, and records the
// outcome. A hook that ignores its context is abandoned, not waited for.
func (m *Manager) invoke(ctx context.Context, h *hookEntry, ev *Event, deadline time.Time, attempt int) HookOutcome {
	out := HookOutcome{HookID: h.ID, HookName: h.Spec.Name}
	defer func() { h.record(out) }()
	timeout := min(h.Spec.Timeout, deadline.Sub(m.now()))
	if timeout <= 0 {
		out.Result, out.Message = HookTimedOut, "no time left before the transition's deadline"
		return out
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	call := HookCall{
		HookID: h.ID, HookName: h.Spec.Name, Event: *ev, Blocking: h.Spec.Blocking,
		Deadline: start.Add(timeout), IdempotencyKey: ev.ID.String(), Attempt: attempt,
	}
	reply := make(chan hookReply, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				reply <- hookReply{err: fmt.Errorf("hook panicked: %v", p)}
			}
		}()
		d, err := h.fn(cctx, call)
		reply <- hookReply{d, err}
	}()
	select {
	case r := <-reply:
		switch {
		case r.err != nil:
			out.Result, out.Message = HookFailed, r.err.Error()
		case r.d.Veto:
			out.Result, out.Message = HookVetoed, r.d.Reason
		default:
			out.Result = HookAllowed
		}
	case <-cctx.Done():
		out.Result, out.Message = HookTimedOut, fmt.Sprintf("no answer within %v", timeout)
		if ctx.Err() != nil {
			out.Result, out.Message = HookFailed, ctx.Err().Error()
		}
	}
	out.Latency = time.Since(start)
	return out
}

// deliver feeds a non-blocking hook every matching event after its stored cursor, at
// least once, in sequence order. Among processes sharing a store, only the holder of the
// hook's lease delivers; losing the lease (or failing to renew it) stops delivery, and the
// next holder resumes from the stored cursor.
func (m *Manager) deliver(ctx context.Context, h *hookEntry) {
	defer m.workers.Done()
	defer close(h.done)
	for ctx.Err() == nil {
		stored, held, err := m.leaseHook(ctx, h)
		if err != nil || !held {
			if ErrorCode(err) == CodeNotFound {
				return // unregistered by another process; the next hook reload drops it
			}
			if err != nil && ctx.Err() == nil {
				m.log.Error("hook lease", "hook", h.Spec.Name, "err", err)
			}
			sleep(ctx, m.lease/3)
			continue
		}
		leased, lost := context.WithCancel(ctx)
		renewed := make(chan struct{})
		go func() {
			defer close(renewed)
			for {
				sleep(leased, m.lease/3)
				if leased.Err() != nil {
					return
				}
				if _, held, err := m.leaseHook(leased, h); err != nil || !held {
					lost()
					return
				}
			}
		}()
		m.deliverFrom(leased, h, stored.Cursor+1)
		lost()
		<-renewed
		if ctx.Err() != nil {
			// Hand the lease back so that a restarted or another process takes over now,
			// not when it would have expired.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			now := m.now()
			m.store.LeaseHook(rctx, h.ID, m.owner, now, now)
			cancel()
		}
	}
}

func (m *Manager) leaseHook(ctx context.Context, h *hookEntry) (Hook, bool, error) {
	now := m.now()
	stored, held, err := m.store.LeaseHook(ctx, h.ID, m.owner, now, now.Add(m.lease))
	if err == nil {
		h.mu.Lock()
		h.Cursor, h.LeaseOwner, h.LeaseUntil = stored.Cursor, stored.LeaseOwner, stored.LeaseUntil
		h.mu.Unlock()
	}
	return stored, held, err
}

// deliverFrom delivers events from sequence cursor on until ctx ends.
func (m *Manager) deliverFrom(ctx context.Context, h *hookEntry, cursor uint64) {
	for ctx.Err() == nil {
		w, err := m.newWatcher(ctx, h.filter, cursor, 0)
		if err != nil {
			if e, ok := err.(*Error); ok && e.Code == CodeOutOfRange {
				m.log.Error("hook missed events older than retention", "hook", h.Spec.Name, "from", cursor, "resume", e.ResumeSequence)
				cursor = e.ResumeSequence
				continue
			}
			if ctx.Err() == nil {
				m.log.Error("hook delivery cannot read events", "hook", h.Spec.Name, "err", err)
			}
			sleep(ctx, m.backoff)
			continue
		}
		h.mu.Lock()
		h.delivery = w
		h.mu.Unlock()
		for {
			ev, err := w.Next(ctx)
			if err != nil {
				break // lagged or ending: watch again from the cursor
			}
			h.buffered.Store(int64(len(w.buf) - w.pos))
			if !m.deliverOne(ctx, h, &ev) {
				break // lease lost or shutting down: the event is delivered again later
			}
			// Saved even when ctx has just ended, so a delivered event is not repeated.
			if err := m.store.SetHookCursor(context.WithoutCancel(ctx), h.ID, ev.Sequence); err != nil {
				m.log.Error("hook cursor not saved", "hook", h.Spec.Name, "sequence", ev.Sequence, "err", err)
			}
			h.mu.Lock()
			h.Cursor = ev.Sequence
			h.mu.Unlock()
			cursor = ev.Sequence + 1
		}
		h.mu.Lock()
		h.delivery = nil
		h.mu.Unlock()
		w.Close()
	}
}

// deliverOne invokes the hook until it accepts the event or maxAttempts is reached,
// backing off exponentially with jitter between attempts. It reports false if ctx ended
// first.
func (m *Manager) deliverOne(ctx context.Context, h *hookEntry, ev *Event) bool {
	backoff := m.backoff
	for attempt := 1; ; attempt++ {
		out := m.invoke(ctx, h, ev, m.now().Add(h.Spec.Timeout), attempt)
		if out.Result == HookAllowed || out.Result == HookVetoed {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt == h.maxAttempts {
			m.counts.hookGiveUps.Add(1)
			m.log.Error("hook gave up on an event", "hook", h.Spec.Name, "sequence", ev.Sequence,
				"attempts", attempt, "last_error", out.Message)
			return true
		}
		m.counts.hookRetries.Add(1)
		sleep(ctx, backoff/2+rand.N(backoff))
		backoff = min(2*backoff, maxRetryBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
