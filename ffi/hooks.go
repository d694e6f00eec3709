package ffi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// worker serves callbacks for the host: each invocation becomes a HookInvocation item of
// its stream, and waits for the host's HookWorkerReply (hms_hook_complete), the
// invocation's deadline, or the worker's end. The manager's callback (embedded) or the
// client's ServeHooks stream (remote) calls it, so the host's code is the same either way.
type worker struct {
	m      *manager
	s      *stream
	format wire.Format
	names  []string
	next   atomic.Uint64

	mu      sync.Mutex
	pending map[string]pending
	stopped bool
}

// pending is an invocation waiting for the host's reply until its deadline.
type pending struct {
	reply    chan *v1.HookWorkerReply
	deadline time.Time
}

// HooksOpen opens a hook worker for the callbacks named in hello (a HookWorkerHello).
func (l *Library) HooksOpen(h uint64, f wire.Format, hello []byte) (uint64, error) {
	m, err := l.manager(h)
	if err != nil {
		return 0, err
	}
	var msg v1.HookWorkerHello
	if err := decode(f, hello, &msg); err != nil {
		return 0, err
	}
	if len(msg.GetCallbacks()) == 0 {
		return 0, invalid("hello: callbacks is empty: name at least one callback to serve")
	}
	if err := m.enter(); err != nil {
		return 0, err
	}
	defer m.mu.RUnlock()
	s := newStream(0, func() {})
	w := &worker{m: m, s: s, format: f, pending: map[string]pending{}}
	s.worker = w
	m.streamsMu.Lock()
	for _, name := range msg.GetCallbacks() {
		if m.served[name] {
			m.streamsMu.Unlock()
			s.close()
			return 0, lifecycle.Errorf(lifecycle.CodeAlreadyExists, "callback %q is served by another hook worker of this manager", name)
		}
	}
	for _, name := range msg.GetCallbacks() {
		m.served[name] = true
	}
	m.streamsMu.Unlock()
	w.names = msg.GetCallbacks()
	for _, name := range w.names {
		if err := m.agents.HandleCallback(name, func(ctx context.Context, call lifecycle.HookCall) (lifecycle.HookDecision, error) {
			return w.invoke(ctx, name, &call)
		}); err != nil {
			s.close() // stops the worker: its callbacks are no longer served
			return 0, err
		}
	}
	return m.register(s), nil
}

// invoke hands one invocation to the host and waits for its reply.
func (w *worker) invoke(ctx context.Context, name string, call *lifecycle.HookCall) (lifecycle.HookDecision, error) {
	id := fmt.Sprintf("inv-%d", w.next.Add(1))
	b, err := wire.Marshal(w.format, lifecyclepb.HookInvocation(id, name, call))
	if err != nil {
		return lifecycle.HookDecision{}, fmt.Errorf("encode invocation: %w", err)
	}
	reply := make(chan *v1.HookWorkerReply, 1)
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return lifecycle.HookDecision{}, errors.New("the hook worker was closed")
	}
	w.pending[id] = pending{reply, call.Deadline}
	w.mu.Unlock()
	defer func() { w.mu.Lock(); delete(w.pending, id); w.mu.Unlock() }()
	if !w.s.push(ctx, b) {
		return lifecycle.HookDecision{}, errors.New("the hook worker was closed")
	}
	select {
	case r := <-reply:
		if r.GetError() != "" {
			return lifecycle.HookDecision{}, errors.New(r.GetError())
		}
		return lifecycle.HookDecision{Veto: r.GetVeto(), Reason: r.GetReason()}, nil
	case <-w.s.done:
		return lifecycle.HookDecision{}, errors.New("the hook worker was closed")
	case <-ctx.Done():
		return lifecycle.HookDecision{}, ctx.Err()
	}
}

// stop stops serving the worker's callbacks and fails its pending invocations.
func (w *worker) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	waiting := w.pending
	w.pending = map[string]pending{}
	w.mu.Unlock()
	for _, p := range waiting {
		p.reply <- &v1.HookWorkerReply{Error: "the hook worker was closed"}
	}
	m := w.m
	for _, name := range w.names {
		m.agents.HandleCallback(name, nil)
	}
	m.streamsMu.Lock()
	for _, name := range w.names {
		delete(m.served, name)
	}
	m.streamsMu.Unlock()
}

// Complete completes an invocation of a hook worker with a HookWorkerReply.
func (l *Library) Complete(h uint64, reply []byte) error {
	s, err := l.stream(h)
	if err != nil {
		return err
	}
	w := s.worker
	if w == nil {
		return invalid("handle %d is a watch stream, not a hook worker", h)
	}
	var r v1.HookWorkerReply
	if err := decode(w.format, reply, &r); err != nil {
		return err
	}
	if strings.TrimSpace(r.GetInvocationId()) == "" {
		return invalid("reply: invocation_id is empty")
	}
	w.mu.Lock()
	p, ok := w.pending[r.GetInvocationId()]
	delete(w.pending, r.GetInvocationId())
	w.mu.Unlock()
	if !ok || (!p.deadline.IsZero() && time.Now().After(p.deadline)) {
		return lifecycle.Errorf(lifecycle.CodeNotFound, "invocation %q is not pending: completed already, past its deadline, or never sent", r.GetInvocationId())
	}
	p.reply <- &r
	return nil
}
