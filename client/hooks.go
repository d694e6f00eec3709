package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
)

// HandleCallback implements lifecycle.AgentService: fn serves, from this process, the
// server's hooks whose config names callback name, over a ServeHooks stream that reconnects
// until HandleCallback(name, nil) or Close. It returns once the server is ready to send
// invocations (or with the error that kept it from being so).
func (c *Client) HandleCallback(name string, fn lifecycle.HookFunc) error {
	c.mu.Lock()
	if stop, ok := c.workers[name]; ok {
		stop()
		delete(c.workers, name)
	}
	if fn == nil {
		c.mu.Unlock()
		return nil
	}
	ctx, stop := context.WithCancel(context.Background())
	if c.workers == nil {
		c.workers = map[string]context.CancelFunc{}
	}
	c.workers[name] = stop
	c.mu.Unlock()
	ready := make(chan error, 1)
	go c.serveHooks(ctx, name, fn, ready)
	select {
	case err := <-ready:
		if err != nil {
			stop()
		}
		return err
	case <-time.After(10 * time.Second):
		stop()
		return errors.New("client: the server did not accept the hook worker within 10s")
	}
}

// Close stops every hook worker of this client.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, stop := range c.workers {
		stop()
		delete(c.workers, name)
	}
	return nil
}

func (c *Client) serveHooks(ctx context.Context, name string, fn lifecycle.HookFunc, ready chan<- error) {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		err := c.serveHooksOnce(ctx, name, fn, func() {
			if first {
				ready <- nil
				first = false
			}
			backoff = 100 * time.Millisecond
		})
		if first && err != nil && ctx.Err() == nil {
			ready <- domainError(err) // the first connection decides what HandleCallback says
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

func (c *Client) serveHooksOnce(ctx context.Context, name string, fn lifecycle.HookFunc, onReady func()) error {
	stream := c.hooks.ServeHooks(ctx)
	// Canceling ctx alone does not end a bidirectional stream over net/http's HTTP/2 (a
	// Receive waits on): closing the response sends the server the reset.
	stop := context.AfterFunc(ctx, func() { stream.CloseRequest(); stream.CloseResponse() })
	defer stop()
	defer stream.CloseResponse()
	defer stream.CloseRequest()
	var sendMu sync.Mutex
	send := func(m *v1.HookWorkerMessage) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(m)
	}
	if err := send(&v1.HookWorkerMessage{Kind: &v1.HookWorkerMessage_Hello{Hello: &v1.HookWorkerHello{Callbacks: []string{name}}}}); err != nil {
		if _, rerr := stream.Receive(); rerr != nil {
			return rerr // the server's reason (unauthenticated, permission denied…)
		}
		return err
	}
	if _, err := stream.Receive(); err != nil { // the server's ready
		return err
	}
	onReady()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		inv, err := stream.Receive()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := inv.GetRequest()
			call := lifecycle.HookCall{HookID: req.GetHookId(), HookName: req.GetHookName(), Blocking: req.GetBlocking(),
				Event: lifecyclepb.FromEvent(req.GetEvent()), IdempotencyKey: req.GetIdempotencyKey(), Attempt: int(req.GetAttempt()),
				Deadline: req.GetDeadline().AsTime()}
			cctx, cancel := context.WithDeadline(ctx, call.Deadline)
			defer cancel()
			reply := &v1.HookWorkerReply{InvocationId: inv.GetInvocationId()}
			d, err := safeCall(cctx, fn, call)
			if cctx.Err() != nil && ctx.Err() == nil {
				return // past the deadline: the server times the invocation out, as embedded
			}
			if err != nil {
				reply.Error = err.Error()
			} else {
				reply.Veto, reply.Reason = d.Veto, d.Reason
			}
			send(&v1.HookWorkerMessage{Kind: &v1.HookWorkerMessage_Reply{Reply: reply}})
		}()
	}
}

func safeCall(ctx context.Context, fn lifecycle.HookFunc, call lifecycle.HookCall) (d lifecycle.HookDecision, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("hook panicked: %v", p)
		}
	}()
	return fn(ctx, call)
}
