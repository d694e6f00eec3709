package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
)

// workers tracks the hook workers connected to this server, by the callbacks they serve.
type workers struct {
	mu     sync.Mutex
	byName map[string][]*worker
	next   atomic.Uint64 // round robin, and invocation ids
}

// hookStream is a ServeHooks stream, of either transport.
type hookStream interface {
	Receive() (*v1.HookWorkerMessage, error)
	Send(*v1.HookInvocation) error
}

// worker is one ServeHooks stream.
type worker struct {
	stream  hookStream
	sendMu  sync.Mutex
	closed  bool // under sendMu: the handler has returned, the stream is not to be used
	mu      sync.Mutex
	pending map[string]chan *v1.HookWorkerReply
	gone    chan struct{}
}

func (w *worker) send(inv *v1.HookInvocation) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if w.closed {
		return errWorkerGone
	}
	return w.stream.Send(inv)
}

// serveHooks registers the worker's callbacks for the stream's lifetime; the first message
// must be a hello, answered by an empty invocation once the callbacks are in place.
func (s *service) serveHooks(stream hookStream) error {
	hello, err := stream.Receive()
	if err != nil {
		return transportError{err}
	}
	names := hello.GetHello().GetCallbacks()
	if len(names) == 0 {
		return lifecycle.Errorf(lifecycle.CodeInvalidArgument, "the first message must be a hello naming at least one callback")
	}
	w := &worker{stream: stream, pending: map[string]chan *v1.HookWorkerReply{}, gone: make(chan struct{})}
	for _, name := range names {
		if err := s.addWorker(name, w); err != nil {
			s.removeWorker(w, names)
			return err
		}
	}
	defer s.removeWorker(w, names)
	if err := w.send(&v1.HookInvocation{}); err != nil { // ready
		return transportError{err}
	}
	defer close(w.gone)
	defer func() { // runs first: no send may follow the handler's return
		w.sendMu.Lock()
		w.closed = true
		w.sendMu.Unlock()
	}()
	for {
		msg, err := stream.Receive()
		if err != nil {
			return nil // the worker left; its pending invocations fail
		}
		r := msg.GetReply()
		w.mu.Lock()
		ch, ok := w.pending[r.GetInvocationId()]
		delete(w.pending, r.GetInvocationId())
		w.mu.Unlock()
		if ok {
			ch <- r
		}
	}
}

func (s *service) addWorker(name string, w *worker) error {
	s.workers.mu.Lock()
	defer s.workers.mu.Unlock()
	if s.workers.byName == nil {
		s.workers.byName = map[string][]*worker{}
	}
	if len(s.workers.byName[name]) == 0 {
		if err := s.svc.HandleCallback(name, func(ctx context.Context, call lifecycle.HookCall) (lifecycle.HookDecision, error) {
			return s.invoke(ctx, name, call)
		}); err != nil {
			return err
		}
	}
	s.workers.byName[name] = append(s.workers.byName[name], w)
	return nil
}

func (s *service) removeWorker(w *worker, names []string) {
	s.workers.mu.Lock()
	defer s.workers.mu.Unlock()
	for _, name := range names {
		ws := s.workers.byName[name]
		for i, x := range ws {
			if x == w {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if s.workers.byName[name] = ws; len(ws) == 0 {
			delete(s.workers.byName, name)
			s.svc.HandleCallback(name, nil)
		}
	}
}

// invoke sends one invocation to a worker serving name and waits for its reply. A worker
// that leaves before answering (a client replacing its worker, say) hands the invocation
// to the next one, each tried once.
func (s *service) invoke(ctx context.Context, name string, call lifecycle.HookCall) (lifecycle.HookDecision, error) {
	s.workers.mu.Lock()
	ws := slices.Clone(s.workers.byName[name])
	n := s.workers.next.Add(1)
	s.workers.mu.Unlock()
	if len(ws) == 0 {
		return lifecycle.HookDecision{}, fmt.Errorf("no worker serves callback %q", name)
	}
	id := fmt.Sprintf("inv-%d", n)
	inv := lifecyclepb.HookInvocation(id, name, &call)
	var err error
	for i := range ws {
		w := ws[(n+uint64(i))%uint64(len(ws))]
		var d lifecycle.HookDecision
		if d, err = w.invoke(ctx, id, inv); !errors.Is(err, errWorkerGone) {
			return d, err
		}
	}
	return lifecycle.HookDecision{}, err
}

var errWorkerGone = errors.New("the hook worker disconnected")

func (w *worker) invoke(ctx context.Context, id string, inv *v1.HookInvocation) (lifecycle.HookDecision, error) {
	reply := make(chan *v1.HookWorkerReply, 1)
	w.mu.Lock()
	w.pending[id] = reply
	w.mu.Unlock()
	defer func() { w.mu.Lock(); delete(w.pending, id); w.mu.Unlock() }()
	if err := w.send(inv); err != nil {
		return lifecycle.HookDecision{}, fmt.Errorf("send to hook worker: %w: %w", errWorkerGone, err)
	}
	select {
	case r := <-reply:
		if r.GetError() != "" {
			return lifecycle.HookDecision{}, errors.New(r.GetError())
		}
		return lifecycle.HookDecision{Veto: r.GetVeto(), Reason: r.GetReason()}, nil
	case <-w.gone:
		return lifecycle.HookDecision{}, errWorkerGone
	case <-ctx.Done():
		return lifecycle.HookDecision{}, ctx.Err()
	}
}
