//go:build wasip1

// Command wasm is the lifecycle core as a WebAssembly module (GOOS=wasip1, built as a
// reactor with -buildmode=c-shared) for the TypeScript binding's in-process mode. It exports
// functions with //go:wasmexport that pass protobuf messages through linear memory, on the
// model of the C library (capi/hms_lifecycle.h): integer handles, one call by full method
// name for every unary RPC (package rpc: no lifecycle logic here), watches and hook workers
// as pull cursors, hooks answered by the host (pull and complete). The memory store only;
// no server or client code is linked in (deps_test.go checks).
//
// Built with -tags hms_plugins it also has the plugin service (plugins.go): the registry of
// package plugin on a memory store of its own, over a repository the host preopens (WASI),
// starting no process (plugin/process_wasip1.go). Without the tag (noplugins.go) the plugin
// package is not linked: its dependencies' initialization (JSON Schema, semver) would
// add about 150 ms to every instantiation, so the binding loads that module only when the
// plugin service is used.
//
// Goroutines run only while an export runs, and the host has one thread, so:
//   - hms_call starts the call on a goroutine and returns its result when it completes
//     without the host; when it waits for the host (a hook invocation is outstanding) it
//     returns HMS_PENDING and a call id instead, and the host pumps (hms_pump), answers hook
//     invocations (hms_next on its workers, hms_hook_complete) and takes the result with
//     hms_call_result once hms_completed names the call;
//   - hms_pump lets goroutines run (timers, watch delivery, non-blocking hooks, supervision
//     deadlines) for up to the given number of microseconds or until work waits for the
//     host; the host calls it from a timer while anything is waiting.
//
// Every export reports through the result record at hms_result(): the status code (0, a
// gRPC code, or -1 for pending), a data buffer (response or batch) and a message, both
// owned by the module and valid until the next export call, a stream's resume sequence, and
// a value (a handle or call id).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
	"github.com/hms-lifecycle/lifecycle/rpc"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

func main() {}

// abiVersion is the module's interface version (hms_abi_version); the binding checks it.
// 2: the configuration's supervision is protobuf (base64); pluginRepository, corePorts.
const abiVersion = 2

// codePending is hms_call's answer when the call waits for the host.
const codePending = -1

// result is the record every export fills; its layout is read by the binding
// (bindings/typescript/src/wasm/core.ts): offsets 0, 4, 8, 12, 16, 24, 32.
type resultRecord struct {
	Code    int32
	DataPtr uint32
	DataLen uint32
	MsgPtr  uint32
	MsgLen  uint32
	_       uint32
	Resume  uint64
	Value   uint64
}

var (
	result   resultRecord
	keepData []byte // the buffers result points at, alive until the next export
	keepMsg  []byte
	allocs   = map[uintptr][]byte{} // hms_alloc's buffers, alive until hms_free

	handles = map[uint64]any{} // *manager | *stream
	last    uint64

	calls     = map[uint64]*call{}
	completed []uint64 // calls completed, not yet reported by hms_completed
	callsMu   sync.Mutex
	lastCall  uint64

	// hostWake is signaled when work waits for the host: a call completed, a stream has
	// items or ended, a hook invocation arrived.
	hostWake = make(chan struct{}, 1)
	// outstanding counts hook invocations handed to the host and not answered yet.
	outstanding int
	outMu       sync.Mutex
)

func wakeHost() {
	select {
	case hostWake <- struct{}{}:
	default:
	}
}

func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func setData(b []byte) {
	keepData = b
	result.DataPtr, result.DataLen = ptr(b), uint32(len(b))
}

// status fills the result record with err's code and message; it returns the code.
func status(err error) int32 {
	result = resultRecord{}
	keepData, keepMsg = nil, nil
	if err == nil {
		return 0
	}
	code, msg, resume := codeOf(err)
	keepMsg = []byte(msg)
	result.Code, result.MsgPtr, result.MsgLen, result.Resume = code, ptr(keepMsg), uint32(len(keepMsg)), resume
	return code
}

var grpcCodes = map[lifecycle.Code]int32{
	lifecycle.CodeUnknown: 2, lifecycle.CodeInvalidArgument: 3, lifecycle.CodeNotFound: 5,
	lifecycle.CodeAlreadyExists: 6, lifecycle.CodeFailedPrecondition: 9, lifecycle.CodeOutOfRange: 11,
	lifecycle.CodeResourceExhausted: 8, lifecycle.CodeAborted: 10, lifecycle.CodePermissionDenied: 7,
	lifecycle.CodeUnauthenticated: 16, lifecycle.CodeDeadlineExceeded: 4, lifecycle.CodeCanceled: 1,
	lifecycle.CodeUnavailable: 14, lifecycle.CodeInternal: 13,
}

func codeOf(err error) (int32, string, uint64) {
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
		return 13, err.Error(), 0
	}
	return grpcCodes[c], err.Error(), 0
}

func invalid(format string, args ...any) error {
	return lifecycle.Errorf(lifecycle.CodeInvalidArgument, format, args...)
}

// bytesAt is the module memory [p, p+n) as a slice (borrowed for the export's duration).
func bytesAt(p, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(p))), n)
}

// hms_debug_stacks prints every goroutine's stack and the streams' states to stderr: a
// diagnostic for a host that sees something never complete.
//
//go:wasmexport hms_debug_stacks
func hmsDebugStacks() {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	println(string(buf[:n]))
	for h, v := range handles {
		if s, ok := v.(*stream); ok {
			s.mu.Lock()
			println("stream", h, "items", len(s.items), "ended", fmt.Sprint(s.ended), "closed", s.closed)
			s.mu.Unlock()
		}
	}
}

//go:wasmexport hms_abi_version
func hmsABIVersion() uint32 { return abiVersion }

//go:wasmexport hms_result
func hmsResult() uint32 { return uint32(uintptr(unsafe.Pointer(&result))) }

// hms_alloc returns n bytes of module memory for the host to write a request into; they
// stay allocated until hms_free.
//
//go:wasmexport hms_alloc
func hmsAlloc(n uint32) uint32 {
	if n == 0 {
		n = 1
	}
	b := make([]byte, n)
	p := uintptr(unsafe.Pointer(&b[0]))
	allocs[p] = b
	return uint32(p)
}

//go:wasmexport hms_free
func hmsFree(p uint32) { delete(allocs, uintptr(p)) }

//go:wasmexport hms_handle_count
func hmsHandleCount() uint32 { return uint32(len(handles)) }

// hms_features says what the module was built with: bit 0, the plugin service.
//
//go:wasmexport hms_features
func hmsFeatures() uint32 {
	if pluginService {
		return 1
	}
	return 0
}

// manager is an open handle.
type manager struct {
	agents  *lifecycle.Manager
	plugins func() error // closes the plugin service (nil: none)
	methods rpc.Methods
	ctx     context.Context
	cancel  context.CancelFunc
	streams map[uint64]*stream
	served  map[string]bool
	inCalls sync.WaitGroup
}

// config is hms_open's JSON configuration.
type config struct {
	// Initiator is recorded as initiated_by (default "wasm").
	Initiator string `json:"initiator"`
	// Supervision is the default supervision policy, a SupervisionPolicy in protobuf
	// (base64 in the JSON: no protojson, whose initialization is slow in WebAssembly).
	Supervision []byte `json:"supervision"`
	// PluginRepository is the plugin repository directory as the module sees it (a
	// directory the host preopened); empty: none, the registry stays empty.
	PluginRepository string `json:"pluginRepository"`
	// CorePorts is the core's port catalogue for manifests; empty: the default.
	CorePorts []string `json:"corePorts"`
}

// hms_open opens a manager on the memory store; result.Value is its handle.
//
//go:wasmexport hms_open
func hmsOpen(p, n uint32) int32 {
	var c config
	if n > 0 {
		dec := json.NewDecoder(strings.NewReader(string(bytesAt(p, n))))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return status(invalid("config: %s (settings: initiator, supervision, pluginRepository, corePorts)", strings.TrimPrefix(err.Error(), "json: ")))
		}
	}
	opts := &lifecycle.Options{}
	if len(c.Supervision) > 0 {
		var pol v1.SupervisionPolicy
		if err := proto.Unmarshal(c.Supervision, &pol); err != nil {
			return status(invalid("config: supervision: %v", err))
		}
		opts.Supervision = lifecyclepb.FromSupervisionPolicy(&pol)
	}
	if c.Initiator == "" {
		c.Initiator = "wasm"
	}
	st := memory.New()
	base := lifecycle.WithInitiator(context.Background(), c.Initiator)
	m, err := lifecycle.New(base, st, opts)
	if err != nil {
		return status(err)
	}
	methods, closePlugins, err := openPlugins(base, &c)
	if err != nil {
		m.Close()
		return status(err)
	}
	ctx, cancel := context.WithCancel(base)
	mg := &manager{agents: m, plugins: closePlugins, methods: rpc.Merge(rpc.Agents(m), methods), ctx: ctx, cancel: cancel,
		streams: map[uint64]*stream{}, served: map[string]bool{}}
	last++
	handles[last] = mg
	status(nil)
	result.Value = last
	return 0
}

func getManager(h uint64) (*manager, error) {
	switch v := handles[h].(type) {
	case *manager:
		return v, nil
	case *stream:
		return nil, invalid("handle %d is a stream, not a manager", h)
	}
	if h == 0 || h > last {
		return nil, invalid("unknown manager handle %d: it was never opened", h)
	}
	return nil, invalid("manager handle %d is closed", h)
}

// hms_close closes a manager, ending its streams and workers (HMS_UNAVAILABLE) and
// canceling its calls. Idempotent.
//
//go:wasmexport hms_close
func hmsClose(h uint64) int32 {
	v, ok := handles[h]
	if !ok {
		if h != 0 && h <= last {
			return status(nil)
		}
		return status(invalid("unknown manager handle %d", h))
	}
	m, ok := v.(*manager)
	if !ok {
		return status(invalid("handle %d is a stream: close it with hms_stream_close", h))
	}
	delete(handles, h)
	for _, s := range m.streams {
		s.end(lifecycle.Errorf(lifecycle.CodeUnavailable, "the manager was closed"))
	}
	m.cancel()
	pump(0) // let canceled calls return
	var err error
	if m.plugins != nil {
		err = m.plugins()
	}
	err = errors.Join(err, m.agents.Close())
	return status(err)
}

// call is a unary call in flight.
type call struct {
	done chan struct{}
	resp []byte
	err  error
}

// hms_call calls a unary RPC by full method name on a protobuf request. The response is
// the data; HMS_PENDING (-1) with result.Value the call id when it waits for the host.
//
//go:wasmexport hms_call
func hmsCall(h uint64, mp, mn, rp, rn uint32) int32 {
	m, err := getManager(h)
	if err != nil {
		return status(err)
	}
	method := string(bytesAt(mp, mn))
	u, ok := m.methods.Lookup(method)
	if !ok {
		return status(m.unknownMethod(method))
	}
	in := u.NewRequest()
	if err := proto.Unmarshal(bytesAt(rp, rn), in); err != nil {
		return status(invalid("request (%s): %v", in.ProtoReflect().Descriptor().FullName(), err))
	}
	outMu.Lock()
	direct := outstanding == 0 && len(m.served) == 0
	outMu.Unlock()
	if direct {
		// No hook can wait for the host (no worker is open on this manager): the call runs
		// on the export's goroutine; it blocks only on goroutines that run meanwhile.
		out, err := u.Call(m.ctx, in)
		if err != nil {
			return status(err)
		}
		b, err := proto.Marshal(out)
		if err != nil {
			return status(err)
		}
		status(nil)
		setData(b)
		return 0
	}
	c := &call{done: make(chan struct{})}
	m.inCalls.Add(1)
	go func() {
		defer m.inCalls.Done()
		out, err := u.Call(m.ctx, in)
		if err == nil {
			c.resp, err = proto.Marshal(out)
		}
		c.err = err
		close(c.done)
	}()
	outMu.Lock()
	busy := outstanding > 0
	outMu.Unlock()
	if busy {
		// An invocation waits for the host: this call may wait behind it (the agent's
		// lock). Let goroutines run until nothing can, then answer or say pending.
		pump(0)
	} else {
		woke := false
	wait:
		for {
			select {
			case <-c.done:
				break wait
			case <-hostWake:
				woke = true
				outMu.Lock()
				busy = outstanding > 0
				outMu.Unlock()
				if busy {
					break wait
				}
			}
		}
		if woke {
			wakeHost() // still for the host to see
		}
	}
	select {
	case <-c.done:
		return finish(c)
	default:
	}
	callsMu.Lock()
	lastCall++
	id := lastCall
	calls[id] = c
	callsMu.Unlock()
	go func() {
		<-c.done
		callsMu.Lock()
		completed = append(completed, id)
		callsMu.Unlock()
		wakeHost()
	}()
	status(nil)
	result.Code, result.Value = codePending, id
	return codePending
}

func finish(c *call) int32 {
	if c.err != nil {
		return status(c.err)
	}
	status(nil)
	setData(c.resp)
	return 0
}

// hms_completed names a pending call that completed (0: none), for hms_call_result.
//
//go:wasmexport hms_completed
func hmsCompleted() uint64 {
	callsMu.Lock()
	defer callsMu.Unlock()
	if len(completed) == 0 {
		return 0
	}
	id := completed[0]
	completed = completed[1:]
	return id
}

// hms_call_result is a pending call's result, once completed (else HMS_PENDING again).
//
//go:wasmexport hms_call_result
func hmsCallResult(id uint64) int32 {
	callsMu.Lock()
	c, ok := calls[id]
	callsMu.Unlock()
	if !ok {
		return status(lifecycle.Errorf(lifecycle.CodeNotFound, "call %d is not pending", id))
	}
	select {
	case <-c.done:
	default:
		status(nil)
		result.Code, result.Value = codePending, id
		return codePending
	}
	callsMu.Lock()
	delete(calls, id)
	callsMu.Unlock()
	return finish(c)
}

// pump lets goroutines run: until one hands work to the host, or d has passed (d == 0:
// until none can run right now).
func pump(d time.Duration) bool {
	select {
	case <-hostWake:
		return true
	default:
	}
	if d <= 0 {
		// Parking on an expired timer runs every runnable goroutine (and fires due timers)
		// before this one is scheduled again.
		for i := 0; i < 3; i++ {
			runtime.Gosched()
		}
		t := time.NewTimer(time.Microsecond)
		select {
		case <-hostWake:
			t.Stop()
			return true
		case <-t.C:
		}
		select {
		case <-hostWake:
			return true
		default:
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-hostWake:
		return true
	case <-t.C:
		return false
	}
}

// hms_pump lets goroutines run for up to us microseconds, or until work waits for the host
// (0: until none can run right now). It returns 1 when work waits for the host.
//
//go:wasmexport hms_pump
func hmsPump(us int32) int32 {
	status(nil)
	if pump(time.Duration(us) * time.Microsecond) {
		return 1
	}
	return 0
}

func (m *manager) unknownMethod(method string) error {
	if _, ok := m.methods.LookupStream(method); ok {
		return invalid("method %q is a stream: open it with hms_watch", method)
	}
	names := m.methods.Names()
	return invalid("unknown method %q; the methods are: %s", method, strings.Join(names, ", "))
}

// hms_watch opens a stream (WatchEvents) on a protobuf request; result.Value is its handle.
//
//go:wasmexport hms_watch
func hmsWatch(h uint64, mp, mn, rp, rn uint32) int32 {
	m, err := getManager(h)
	if err != nil {
		return status(err)
	}
	method := string(bytesAt(mp, mn))
	sm, ok := m.methods.LookupStream(method)
	if !ok {
		return status(m.unknownMethod(method))
	}
	in := sm.NewRequest()
	if err := proto.Unmarshal(bytesAt(rp, rn), in); err != nil {
		return status(invalid("request (%s): %v", in.ProtoReflect().Descriptor().FullName(), err))
	}
	ctx, cancel := context.WithCancel(m.ctx)
	cur, err := sm.Open(ctx, in)
	if err != nil {
		cancel()
		return status(err)
	}
	s := newStream(watchQueueLimit, cancel)
	go s.pump(ctx, m, cur)
	h2 := m.register(s)
	status(nil)
	result.Value = h2
	return 0
}

func (m *manager) register(s *stream) uint64 {
	last++
	handles[last] = s
	s.owner, s.handle = m, last
	m.streams[last] = s
	return last
}

func getStream(h uint64) (*stream, error) {
	switch v := handles[h].(type) {
	case *stream:
		return v, nil
	case *manager:
		return nil, invalid("handle %d is a manager, not a stream", h)
	}
	if h == 0 || h > last {
		return nil, invalid("unknown stream handle %d: it was never opened", h)
	}
	return nil, invalid("stream handle %d is closed", h)
}

// hms_next takes up to max waiting items of a stream or worker (<= 0: all) without
// waiting: the data is a batch of 4-byte little-endian lengths and messages, empty when
// none waits; the end of the stream is its status (with result.Resume).
//
//go:wasmexport hms_next
func hmsNext(h uint64, max int32) int32 {
	s, err := getStream(h)
	if err != nil {
		return status(err)
	}
	b, err := s.next(int(max))
	if err != nil {
		return status(err)
	}
	status(nil)
	setData(b)
	return 0
}

// hms_stream_close closes a stream or hook worker. Idempotent.
//
//go:wasmexport hms_stream_close
func hmsStreamClose(h uint64) int32 {
	v, ok := handles[h]
	if !ok {
		if h != 0 && h <= last {
			return status(nil)
		}
		return status(invalid("unknown stream handle %d", h))
	}
	s, ok := v.(*stream)
	if !ok {
		return status(invalid("handle %d is a manager: close it with hms_close", h))
	}
	delete(handles, h)
	delete(s.owner.streams, h)
	s.close()
	return status(nil)
}

// hms_hooks_open opens a hook worker for the callbacks a HookWorkerHello names; its items
// are HookInvocation messages, answered with hms_hook_complete.
//
//go:wasmexport hms_hooks_open
func hmsHooksOpen(h uint64, p, n uint32) int32 {
	m, err := getManager(h)
	if err != nil {
		return status(err)
	}
	var hello v1.HookWorkerHello
	if err := proto.Unmarshal(bytesAt(p, n), &hello); err != nil {
		return status(invalid("hello: %v", err))
	}
	if len(hello.GetCallbacks()) == 0 {
		return status(invalid("hello: callbacks is empty: name at least one callback to serve"))
	}
	for _, name := range hello.GetCallbacks() {
		if m.served[name] {
			return status(lifecycle.Errorf(lifecycle.CodeAlreadyExists, "callback %q is served by another hook worker of this manager", name))
		}
	}
	s := newStream(0, func() {})
	w := &worker{m: m, s: s, pending: map[string]chan *v1.HookWorkerReply{}}
	s.worker = w
	for _, name := range hello.GetCallbacks() {
		name := name
		if err := m.agents.HandleCallback(name, func(ctx context.Context, call lifecycle.HookCall) (lifecycle.HookDecision, error) {
			return w.invoke(ctx, name, &call)
		}); err != nil {
			w.stop()
			return status(err)
		}
		m.served[name] = true
		w.names = append(w.names, name)
	}
	hw := m.register(s)
	status(nil)
	result.Value = hw
	return 0
}

// hms_hook_complete answers an invocation with a HookWorkerReply.
//
//go:wasmexport hms_hook_complete
func hmsHookComplete(h uint64, p, n uint32) int32 {
	s, err := getStream(h)
	if err != nil {
		return status(err)
	}
	w := s.worker
	if w == nil {
		return status(invalid("handle %d is a watch stream, not a hook worker", h))
	}
	var r v1.HookWorkerReply
	if err := proto.Unmarshal(bytesAt(p, n), &r); err != nil {
		return status(invalid("reply: %v", err))
	}
	if strings.TrimSpace(r.GetInvocationId()) == "" {
		return status(invalid("reply: invocation_id is empty"))
	}
	w.mu.Lock()
	ch, ok := w.pending[r.GetInvocationId()]
	delete(w.pending, r.GetInvocationId())
	w.mu.Unlock()
	if !ok {
		return status(lifecycle.Errorf(lifecycle.CodeNotFound, "invocation %q is not pending: completed already, past its deadline, or never sent", r.GetInvocationId()))
	}
	ch <- &r
	return status(nil)
}

// watchQueueLimit is how many events a watch stream holds for the host; past it the
// watch falls behind the manager's ring and is cut off with its resume sequence.
const watchQueueLimit = 8192

// stream is a pull cursor over encoded messages.
type stream struct {
	owner  *manager
	handle uint64
	cancel context.CancelFunc
	limit  int

	mu     sync.Mutex
	items  [][]byte
	ended  error
	closed bool
	space  chan struct{}
	done   chan struct{}
	worker *worker
}

func newStream(limit int, cancel context.CancelFunc) *stream {
	return &stream{cancel: cancel, limit: limit, space: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *stream) push(item []byte) bool {
	for {
		s.mu.Lock()
		if s.closed || s.ended != nil {
			s.mu.Unlock()
			return false
		}
		if s.limit == 0 || len(s.items) < s.limit {
			s.items = append(s.items, item)
			s.mu.Unlock()
			wakeHost()
			return true
		}
		s.mu.Unlock()
		select {
		case <-s.space:
		case <-s.done:
			return false
		}
	}
}

func (s *stream) end(err error) {
	s.mu.Lock()
	if s.ended == nil && !s.closed {
		s.ended = err
	}
	s.mu.Unlock()
	wakeHost()
	s.cancel()
	if s.worker != nil {
		s.worker.stop()
	}
}

func (s *stream) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.items = nil
	close(s.done)
	s.mu.Unlock()
	s.cancel()
	if s.worker != nil {
		s.worker.stop()
	}
}

func (s *stream) next(max int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, lifecycle.Errorf(lifecycle.CodeCanceled, "the stream was closed")
	}
	n := len(s.items)
	if n == 0 {
		return nil, s.ended
	}
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
	}
	select {
	case s.space <- struct{}{}:
	default:
	}
	return batch, nil
}

func (s *stream) pump(ctx context.Context, m *manager, cur rpc.Cursor) {
	defer cur.Close()
	for {
		msg, err := cur.Next(ctx)
		if err != nil {
			switch {
			case m.ctx.Err() != nil:
				err = lifecycle.Errorf(lifecycle.CodeUnavailable, "the manager was closed")
			case ctx.Err() != nil:
				err = lifecycle.Errorf(lifecycle.CodeCanceled, "the stream was closed")
			}
			s.end(err)
			return
		}
		b, err := proto.Marshal(msg)
		if err != nil {
			s.end(lifecycle.Errorf(lifecycle.CodeInternal, "encode event: %v", err))
			return
		}
		if !s.push(b) {
			return
		}
	}
}

// worker serves callbacks for the host: each invocation is a HookInvocation item of its
// stream and waits for the host's reply, its deadline, or the worker's end.
type worker struct {
	m     *manager
	s     *stream
	names []string
	next  uint64

	mu      sync.Mutex
	pending map[string]chan *v1.HookWorkerReply
	stopped bool
}

func (w *worker) invoke(ctx context.Context, name string, call *lifecycle.HookCall) (lifecycle.HookDecision, error) {
	w.mu.Lock()
	w.next++
	id := fmt.Sprintf("inv-%d", w.next)
	w.mu.Unlock()
	b, err := proto.Marshal(lifecyclepb.HookInvocation(id, name, call))
	if err != nil {
		return lifecycle.HookDecision{}, fmt.Errorf("encode invocation: %w", err)
	}
	reply := make(chan *v1.HookWorkerReply, 1)
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return lifecycle.HookDecision{}, errors.New("the hook worker was closed")
	}
	w.pending[id] = reply
	w.mu.Unlock()
	outMu.Lock()
	outstanding++
	outMu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.pending, id)
		w.mu.Unlock()
		outMu.Lock()
		outstanding--
		outMu.Unlock()
	}()
	if !w.s.push(b) {
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

func (w *worker) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	pending := w.pending
	w.pending = map[string]chan *v1.HookWorkerReply{}
	w.mu.Unlock()
	for _, ch := range pending {
		ch <- &v1.HookWorkerReply{Error: "the hook worker was closed"}
	}
	for _, name := range w.names {
		w.m.agents.HandleCallback(name, nil)
		delete(w.m.served, name)
	}
}
