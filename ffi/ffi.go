// Package ffi is the lifecycle core behind the C ABI (capi/hms_lifecycle.h), in Go: a
// Library holds managers, streams and hook workers in a table of integer handles, calls
// RPCs by name on bytes in any format, and turns streams and hook invocations into pull
// cursors with readiness file descriptors. Go never calls into the host: the host pulls.
// capi/ is the thin cgo layer over it; tests drive it directly.
package ffi

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/rpc"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// ABIVersion is HMS_ABI_VERSION of the header this package implements.
const ABIVersion = 1

// Library is a table of handles. Handles are never reused, so a stale one is always
// recognized. It is safe for concurrent use.
type Library struct {
	handles sync.Map // uint64 → *manager | *stream
	count   atomic.Int64
	last    atomic.Uint64
	waits   atomic.Bool
}

// New returns an empty library.
func New() *Library { return &Library{} }

// Waits reports whether a manager opened so far has calls that wait for goroutines of
// their own — a durable store's group commit, a server's answers — instead of finishing on
// the caller's thread (capi gives such hosts more Go processors than CPUs: procs.go).
func (l *Library) Waits() bool { return l.waits.Load() }

// Handles is how many managers, streams and workers are open.
func (l *Library) Handles() int64 { return l.count.Load() }

func (l *Library) add(v any) uint64 {
	h := l.last.Add(1)
	l.handles.Store(h, v)
	l.count.Add(1)
	return h
}

func (l *Library) remove(h uint64) bool {
	if _, ok := l.handles.LoadAndDelete(h); ok {
		l.count.Add(-1)
		return true
	}
	return false
}

func (l *Library) unknown(h uint64, what string) error {
	if h == 0 || h > l.last.Load() {
		return invalid("unknown %s handle %d: it was never opened", what, h)
	}
	return invalid("%s handle %d is closed", what, h)
}

// manager is an open handle: the services, and what closing it closes.
type manager struct {
	lib     *Library
	agents  lifecycle.AgentService
	methods rpc.Methods
	ctx     context.Context // calls' base: carries the initiator; canceled at close
	cancel  context.CancelFunc
	closers closers

	mu      sync.RWMutex // calls hold it shared; close exclusively, to wait for them
	closed  bool
	closing atomic.Bool // Close has begun

	streamsMu sync.Mutex
	streams   map[uint64]*stream // streams and workers opened on it, ended at close
	served    map[string]bool    // callbacks served by a worker of this handle
}

func (l *Library) manager(h uint64) (*manager, error) {
	v, ok := l.handles.Load(h)
	if !ok {
		return nil, l.unknown(h, "manager")
	}
	m, ok := v.(*manager)
	if !ok {
		return nil, invalid("handle %d is a stream, not a manager", h)
	}
	return m, nil
}

// enter marks a call in flight; it fails once the manager is closing.
func (m *manager) enter() error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return lifecycle.Errorf(lifecycle.CodeUnavailable, "the manager was closed")
	}
	return nil
}

// Open opens a manager from a JSON configuration and returns its handle.
func (l *Library) Open(config []byte) (uint64, error) {
	c, err := parseConfig(config)
	if err != nil {
		return 0, err
	}
	agents, methods, base, cl, err := c.open(context.Background())
	if err != nil {
		return 0, err
	}
	if c.Endpoint != "" || c.Store != "" && c.Store != "memory" {
		l.waits.Store(true)
	}
	ctx, cancel := context.WithCancel(base)
	m := &manager{lib: l, agents: agents, methods: methods, ctx: ctx, cancel: cancel, closers: cl,
		streams: map[uint64]*stream{}, served: map[string]bool{}}
	return l.add(m), nil
}

// Close closes a manager: its calls in flight end (canceled), then its streams and
// workers end with CodeUnavailable, then its services and stores close. Closing a closed
// handle does nothing.
func (l *Library) Close(h uint64) error {
	v, ok := l.handles.Load(h)
	if !ok {
		if h != 0 && h <= l.last.Load() {
			return nil // closed already
		}
		return l.unknown(h, "manager")
	}
	m, ok := v.(*manager)
	if !ok {
		return invalid("handle %d is a stream: close it with hms_stream_close", h)
	}
	if !l.remove(h) {
		return nil // closed concurrently
	}
	m.closing.Store(true) // streams ending from now on end for this reason
	m.endStreams()        // first: fails pending hook invocations, which calls in flight may wait for
	m.cancel()
	m.mu.Lock() // waits for calls in flight
	m.closed = true
	m.mu.Unlock()
	m.endStreams() // opened meanwhile
	return m.closers.Close()
}

// endStreams ends the manager's hook workers and stops its watches' pumps, which end their
// streams with the resume point; the host still closes them.
func (m *manager) endStreams() {
	m.streamsMu.Lock()
	streams := m.streams
	m.streams = map[uint64]*stream{}
	m.streamsMu.Unlock()
	for _, s := range streams {
		if s.worker != nil {
			s.end(lifecycle.Errorf(lifecycle.CodeUnavailable, "the manager was closed"))
		} else {
			s.cancel()
		}
	}
}

// Call calls a unary RPC by its full name on a request in format f, returning the
// response in the same format, in memory from alloc (nil: the Go heap).
func (l *Library) Call(h uint64, method string, f wire.Format, req []byte, alloc Alloc) ([]byte, error) {
	m, err := l.manager(h)
	if err != nil {
		return nil, err
	}
	u, ok := m.methods.Lookup(method)
	if !ok {
		return nil, m.unknownMethod(method)
	}
	in := u.NewRequest()
	if err := decode(f, req, in); err != nil {
		return nil, err
	}
	if err := m.enter(); err != nil {
		return nil, err
	}
	out, err := u.Call(m.ctx, in)
	m.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return encode(f, out, alloc)
}

// Alloc returns n bytes of memory the host will own (the C library's: malloc).
type Alloc func(n int) []byte

// encode marshals m into memory from alloc: protobuf straight into it (sized first),
// JSON and CBOR by a copy. On an error, what it returns (if anything) came from alloc.
func encode(f wire.Format, m proto.Message, alloc Alloc) ([]byte, error) {
	if alloc == nil {
		return wire.Marshal(f, m)
	}
	if f == wire.Protobuf {
		n := proto.Size(m)
		if n == 0 {
			return nil, nil
		}
		buf := alloc(n)
		out, err := proto.MarshalOptions{UseCachedSize: true, Deterministic: true}.MarshalAppend(buf[:0], m)
		if err != nil || len(out) != n || &out[0] != &buf[0] {
			return buf[:0], lifecycle.Errorf(lifecycle.CodeInternal, "encode %s: size changed while encoding (%v)", m.ProtoReflect().Descriptor().FullName(), err)
		}
		return out, nil
	}
	b, err := wire.Marshal(f, m)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	out := alloc(len(b))
	copy(out, b)
	return out, nil
}

func (m *manager) unknownMethod(method string) error {
	names := m.methods.Names()
	sort.Strings(names)
	if _, ok := m.methods.LookupStream(method); ok {
		return invalid("method %q is a stream: open it with hms_watch", method)
	}
	if _, ok := m.methods.Lookup(method); ok {
		return invalid("method %q is unary: call it with hms_call", method)
	}
	return invalid("unknown method %q; the methods are: %s", method, strings.Join(names, ", "))
}

// decode decodes a request; a bad one is CodeInvalidArgument.
func decode(f wire.Format, data []byte, m proto.Message) error {
	if !f.Valid() {
		return invalid("unknown format %d: use 0 (protobuf), 1 (JSON) or 2 (CBOR)", int(f))
	}
	err := wire.Unmarshal(f, data, m)
	if err == nil || lifecycle.ErrorCode(err) != lifecycle.CodeUnknown {
		return err
	}
	return invalid("request (%s %s): %v", m.ProtoReflect().Descriptor().FullName(), f, err)
}

// Watch opens a stream of a streaming RPC by its full name.
func (l *Library) Watch(h uint64, method string, f wire.Format, req []byte) (uint64, error) {
	m, err := l.manager(h)
	if err != nil {
		return 0, err
	}
	sm, ok := m.methods.LookupStream(method)
	if !ok {
		return 0, m.unknownMethod(method)
	}
	in := sm.NewRequest()
	if err := decode(f, req, in); err != nil {
		return 0, err
	}
	if err := m.enter(); err != nil {
		return 0, err
	}
	defer m.mu.RUnlock()
	ctx, cancel := context.WithCancel(m.ctx)
	cur, err := sm.Open(ctx, in)
	if err != nil {
		cancel()
		return 0, err
	}
	s := newStream(watchQueueLimit, cancel)
	go s.pump(ctx, cur, f)
	return m.register(s), nil
}

// register adds a stream to the table and to its manager (under m.mu, shared).
func (m *manager) register(s *stream) uint64 {
	h := m.lib.add(s)
	s.owner, s.handle = m, h
	m.streamsMu.Lock()
	m.streams[h] = s
	m.streamsMu.Unlock()
	return h
}

func (l *Library) stream(h uint64) (*stream, error) {
	v, ok := l.handles.Load(h)
	if !ok {
		return nil, l.unknown(h, "stream")
	}
	s, ok := v.(*stream)
	if !ok {
		return nil, invalid("handle %d is a manager, not a stream", h)
	}
	return s, nil
}

// Next takes up to max waiting items of a stream (all when max <= 0), waiting up to
// timeout (forever when negative), as one batch: each item a 4-byte little-endian length
// and the message. A nil batch and nil error is a timeout; the end of the stream is its
// error.
func (l *Library) Next(h uint64, timeout time.Duration, max int) ([]byte, error) {
	s, err := l.stream(h)
	if err != nil {
		return nil, err
	}
	return s.next(timeout, max)
}

// FD is the stream's readiness file descriptor.
func (l *Library) FD(h uint64) (int, error) {
	s, err := l.stream(h)
	if err != nil {
		return -1, err
	}
	return s.fd()
}

// CloseStream closes a stream or hook worker, waking a blocked Next. Closing a closed
// one does nothing.
func (l *Library) CloseStream(h uint64) error {
	v, ok := l.handles.Load(h)
	if !ok {
		if h != 0 && h <= l.last.Load() {
			return nil
		}
		return l.unknown(h, "stream")
	}
	s, ok := v.(*stream)
	if !ok {
		return invalid("handle %d is a manager: close it with hms_close", h)
	}
	if !l.remove(h) {
		return nil
	}
	if m := s.owner; m != nil {
		m.streamsMu.Lock()
		delete(m.streams, h)
		m.streamsMu.Unlock()
	}
	s.close()
	return nil
}

// grpcCodes are the gRPC code numbers of the domain's codes: the C ABI's status codes.
var grpcCodes = [...]int32{
	lifecycle.CodeUnknown:            2,
	lifecycle.CodeInvalidArgument:    3,
	lifecycle.CodeNotFound:           5,
	lifecycle.CodeAlreadyExists:      6,
	lifecycle.CodeFailedPrecondition: 9,
	lifecycle.CodeOutOfRange:         11,
	lifecycle.CodeResourceExhausted:  8,
	lifecycle.CodeAborted:            10,
	lifecycle.CodePermissionDenied:   7,
	lifecycle.CodeUnauthenticated:    16,
	lifecycle.CodeDeadlineExceeded:   4,
	lifecycle.CodeCanceled:           1,
	lifecycle.CodeUnavailable:        14,
	lifecycle.CodeInternal:           13,
}

// Status is an error as the C ABI reports it: a gRPC code, a message, and where a stream
// that ended resumes.
func Status(err error) (code int32, message string, resume uint64) {
	if err == nil {
		return 0, "", 0
	}
	var le *lifecycle.Error
	if errors.As(err, &le) {
		msg := le.Message
		if le.Err != nil {
			msg += ": " + le.Err.Error()
		}
		return grpcCodes[le.Code], msg, le.ResumeSequence
	}
	c := lifecycle.ErrorCode(err)
	if c == lifecycle.CodeUnknown {
		return grpcCodes[lifecycle.CodeInternal], err.Error(), 0
	}
	return grpcCodes[c], err.Error(), 0
}

// InvalidArgument is an error of code CodeInvalidArgument, for the cgo layer's own checks.
func InvalidArgument(msg string) error { return invalid("%s", msg) }

// Convert re-encodes a message, named by its full name, from one format to another.
func Convert(message string, from wire.Format, data []byte, to wire.Format) ([]byte, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(message))
	if err != nil {
		return nil, invalid("unknown message %q: name a message of proto/ in full, like hms.agent.lifecycle.v1.LifecycleEvent", message)
	}
	if !to.Valid() {
		return nil, invalid("unknown format %d: use 0 (protobuf), 1 (JSON) or 2 (CBOR)", int(to))
	}
	m := mt.New().Interface()
	if err := decode(from, data, m); err != nil {
		return nil, err
	}
	return wire.Marshal(to, m)
}
