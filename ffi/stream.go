package ffi

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/rpc"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// watchQueueLimit is how many encoded events a watch stream holds for the host. When the
// host does not keep up, the pump stops reading and the watch falls behind the manager's
// ring, which cuts it off with the sequence to resume from: memory stays bounded and
// transitions never wait for a slow host.
const watchQueueLimit = 8192

// stream is a pull cursor over encoded messages (events, or hook invocations), with an
// eventfd that is readable while items are waiting or the stream has ended.
type stream struct {
	owner  *manager
	handle uint64
	cancel context.CancelFunc // stops what feeds it
	limit  int                // items held at most; 0: unbounded
	efd    int                // the readiness descriptor; -1 until the host asks for it

	mu       sync.Mutex
	items    [][]byte
	ended    error // why the stream ended, once all items are taken
	closed   bool
	signaled bool // efd is readable

	wake  chan struct{} // an item or the end arrived
	space chan struct{} // the host took items
	done  chan struct{} // closed by the host

	worker *worker // set for hook workers
}

func newStream(limit int, cancel context.CancelFunc) *stream {
	return &stream{cancel: cancel, limit: limit, efd: -1,
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{})}
}

// fd returns the readiness descriptor, made on first use: a host that only calls next
// never pays the system calls that keep it current.
func (s *stream) fd() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return -1, lifecycle.Errorf(lifecycle.CodeCanceled, "the stream was closed")
	}
	if s.efd < 0 {
		efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			return -1, lifecycle.Errorf(lifecycle.CodeResourceExhausted, "readiness file descriptor: %v", err)
		}
		s.efd = efd
		if len(s.items) > 0 || s.ended != nil {
			s.write()
		}
	}
	return s.efd, nil
}

// write makes efd readable; under s.mu.
func (s *stream) write() {
	s.signaled = true
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(s.efd, one[:])
}

// signal makes efd readable and wakes a waiting next; under s.mu.
func (s *stream) signal() {
	if !s.signaled && s.efd >= 0 {
		s.write()
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// unsignal drains efd; under s.mu.
func (s *stream) unsignal() {
	if s.signaled {
		s.signaled = false
		var buf [8]byte
		unix.Read(s.efd, buf[:])
	}
}

// push adds an item, waiting for room when the stream is bounded; false once the stream
// is closed or ended, or ctx ends.
func (s *stream) push(ctx context.Context, item []byte) bool {
	for {
		s.mu.Lock()
		if s.closed || s.ended != nil {
			s.mu.Unlock()
			return false
		}
		if s.limit == 0 || len(s.items) < s.limit {
			s.items = append(s.items, item)
			s.signal()
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
		select {
		case <-s.space:
		case <-s.done:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// end records why the stream ended (the first reason wins) and stops its feed.
func (s *stream) end(err error) {
	s.mu.Lock()
	if s.ended == nil && !s.closed {
		s.ended = err
		s.signal()
	}
	s.mu.Unlock()
	s.cancel()
	if s.worker != nil {
		s.worker.stop()
	}
}

// close is the host's close: it wakes a blocked next and frees the descriptor.
func (s *stream) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.items = nil
	close(s.done)
	if s.efd >= 0 {
		unix.Close(s.efd)
	}
	s.mu.Unlock()
	s.cancel()
	if s.worker != nil {
		s.worker.stop()
	}
}

func (s *stream) next(timeout time.Duration, max int) ([]byte, error) {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, lifecycle.Errorf(lifecycle.CodeCanceled, "the stream was closed")
		}
		if n := len(s.items); n > 0 {
			if max > 0 && n > max {
				n = max
			}
			size := 0
			for _, it := range s.items[:n] {
				size += 4 + len(it)
			}
			batch := make([]byte, 0, size)
			for i, it := range s.items[:n] {
				batch = binary.LittleEndian.AppendUint32(batch, uint32(len(it)))
				batch = append(batch, it...)
				s.items[i] = nil
			}
			s.items = s.items[n:]
			if len(s.items) == 0 {
				s.items = nil
				if s.ended == nil {
					s.unsignal()
				}
			}
			s.mu.Unlock()
			select {
			case s.space <- struct{}{}:
			default:
			}
			return batch, nil
		}
		if s.ended != nil {
			err := s.ended
			s.mu.Unlock()
			return nil, err
		}
		s.mu.Unlock()
		if timeout == 0 {
			return nil, nil
		}
		select {
		case <-s.wake:
		case <-expired:
			return nil, nil
		case <-s.done:
		}
	}
}

// pump feeds a watch's events into the stream until it ends; an end it causes itself (the
// manager or the stream closed) says where to resume, as the core's own ends do.
func (s *stream) pump(ctx context.Context, cur rpc.Cursor, f wire.Format) {
	defer cur.Close()
	var err error
	for {
		var msg proto.Message
		if msg, err = cur.Next(ctx); err != nil {
			break
		}
		var b []byte
		if b, err = wire.Marshal(f, msg); err != nil {
			err = lifecycle.Errorf(lifecycle.CodeInternal, "encode event: %v", err)
			break
		}
		if !s.push(ctx, b) {
			break
		}
	}
	switch {
	case s.owner != nil && s.owner.closing.Load():
		err = &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "the manager was closed", ResumeSequence: cur.Resume()}
	case ctx.Err() != nil:
		err = &lifecycle.Error{Code: lifecycle.CodeCanceled, Message: "the stream was closed", ResumeSequence: cur.Resume()}
	}
	s.end(err)
}
