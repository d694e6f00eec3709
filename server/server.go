// Package server serves a lifecycle.AgentService (and, WithPlugins, a plugin.Service) over
// the network: every RPC of hms.agent.lifecycle.v1.LifecycleManager and
// hms.plugin.lifecycle.v1.PluginLifecycleManager over gRPC, gRPC-Web and the Connect
// protocol, each in protobuf, JSON or CBOR (chosen by content type), plus gRPC health
// checking, server reflection and Prometheus metrics, so grpcurl, browsers and curl all
// work. A Server (New) serves one listener, handing gRPC connections to grpc-go's
// transport and the rest to net/http; NewHandler is the net/http side alone.
package server

import (
	"go.opentelemetry.io/otel/trace"

	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
	"github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1/pluginv1connect"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/rpc"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// ResumeHeader carries, on a watch that ended, the from_sequence that continues it.
const ResumeHeader = "Hms-Resume-Sequence"

// MaxRequestBytes bounds one request message, in any encoding. A larger one is refused
// with RESOURCE_EXHAUSTED before it is decoded, as gRPC servers do.
const MaxRequestBytes = 1 << 20

// Anonymous is the initiator recorded when the server has no credentials configured.
const Anonymous = "anonymous"

// Option configures NewHandler.
type Option func(*options)

type options struct {
	log          *slog.Logger
	writeTimeout time.Duration
	tokens       *Tokens
	plugins      plugin.Service
	corsOrigins  []string
	tracer       trace.Tracer // nil: no tracing
	ui           http.Handler
}

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(log *slog.Logger) Option { return func(o *options) { o.log = log } }

// WithTokens requires a bearer token on every lifecycle RPC and checks the caller's role.
// Without it every caller is Anonymous and may do everything.
func WithTokens(t *Tokens) Option { return func(o *options) { o.tokens = t } }

// WithUI serves the web console (package ui) at /ui/, and redirects / to it.
func WithUI(h http.Handler) Option { return func(o *options) { o.ui = h } }

// NewHandler returns the http.Handler serving svc through the Connect handlers alone:
// gRPC, gRPC-Web and Connect, all through net/http. New (a Server) serves gRPC faster.
func NewHandler(svc lifecycle.AgentService, opts ...Option) http.Handler {
	o := options{log: slog.Default(), writeTimeout: WatchWriteTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return newHandlers(svc, &o).mux
}

// handlers are the services and the Connect side's mux, shared with a Server's grpc-go side.
type handlers struct {
	mux     http.Handler
	metrics *metrics
	agents  *service
	plugins *pluginService
}

func newHandlers(svc lifecycle.AgentService, o *options) *handlers {
	h := &handlers{metrics: newMetrics()}
	h.metrics.watchManager(svc)
	h.agents = &service{svc: svc, rpc: rpc.AgentRPCs{Svc: svc}, log: o.log, metrics: h.metrics, writeTimeout: o.writeTimeout}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h.metrics.handler())
	interceptors := []connect.Interceptor{h.metrics.red, errorCounter{h.metrics}, clientErrors{}, authorizer{o.tokens}}
	if o.tracer != nil {
		interceptors = append([]connect.Interceptor{tracing{o.tracer}}, interceptors...)
	}
	if o.ui != nil {
		mux.Handle("/ui/", o.ui)
		mux.Handle("/ui", o.ui)
		mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	}
	hopts := []connect.HandlerOption{
		// Small messages are not worth compressing (connect-go gzips everything by default).
		connect.WithCompressMinBytes(4096),
		connect.WithInterceptors(interceptors...),
		// Strict decoding (wire), in place of connect-go's codecs (its JSON one drops
		// unknown fields and turns unknown enum names into zero).
		connect.WithCodec(wireCodec{"proto", wire.Protobuf}),
		connect.WithCodec(wireCodec{"json", wire.JSON}),
		connect.WithCodec(wireCodec{"json; charset=utf-8", wire.JSON}),
		connect.WithCodec(wireCodec{"cbor", wire.CBOR}),
		connect.WithReadMaxBytes(MaxRequestBytes),
	}
	mux.Handle(lifecyclev1connect.NewLifecycleManagerHandler(connectService{h.agents}, hopts...))
	services := []string{lifecyclev1connect.LifecycleManagerName}
	if o.plugins != nil {
		h.plugins = &pluginService{svc: o.plugins, rpc: rpc.PluginRPCs{Svc: o.plugins}, log: o.log, writeTimeout: o.writeTimeout}
		h.metrics.watchPlugins(o.plugins)
		mux.Handle(pluginv1connect.NewPluginLifecycleManagerHandler(connectPlugins{h.plugins}, hopts...))
		services = append(services, pluginv1connect.PluginLifecycleManagerName)
	}
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(services...)))
	reflector := grpcreflect.NewStaticReflector(append(services, grpchealth.HealthV1ServiceName, grpcreflect.ReflectV1ServiceName)...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	h.mux = withCORS(o.corsOrigins, withVersion(withClientCert(withStreamController(withWholeGRPCWebEnvelopes(mux)))))
	return h
}

// errorCounter counts the requests answered with an error status.
type errorCounter struct{ m *metrics }

func (e errorCounter) count(procedure string, err error) {
	if err != nil {
		e.m.errors.WithLabelValues(procedure[strings.LastIndex(procedure, "/")+1:], connect.CodeOf(err).String()).Inc()
	}
}

func (e errorCounter) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		e.count(req.Spec().Procedure, err)
		return res, err
	}
}

func (e errorCounter) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (e errorCounter) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		e.count(conn.Spec().Procedure, err)
		return err
	}
}

// codes maps the domain's error codes to Connect's (which are gRPC's), and back through
// DomainCode: the one place the mapping is written.
var connectCodes = map[lifecycle.Code]connect.Code{
	lifecycle.CodeInvalidArgument:    connect.CodeInvalidArgument,
	lifecycle.CodeNotFound:           connect.CodeNotFound,
	lifecycle.CodeAlreadyExists:      connect.CodeAlreadyExists,
	lifecycle.CodeFailedPrecondition: connect.CodeFailedPrecondition,
	lifecycle.CodeOutOfRange:         connect.CodeOutOfRange,
	lifecycle.CodeResourceExhausted:  connect.CodeResourceExhausted,
	lifecycle.CodeAborted:            connect.CodeAborted,
	lifecycle.CodePermissionDenied:   connect.CodePermissionDenied,
	lifecycle.CodeUnauthenticated:    connect.CodeUnauthenticated,
	lifecycle.CodeDeadlineExceeded:   connect.CodeDeadlineExceeded,
	lifecycle.CodeCanceled:           connect.CodeCanceled,
	lifecycle.CodeUnavailable:        connect.CodeUnavailable,
	lifecycle.CodeInternal:           connect.CodeInternal,
}

// DomainCode maps a Connect (gRPC) code back to the domain's; codes the domain does not
// use become CodeInternal.
func DomainCode(c connect.Code) lifecycle.Code {
	for d, cc := range connectCodes {
		if cc == c {
			return d
		}
	}
	return lifecycle.CodeInternal
}

// connectError maps a domain error for Connect; the message is the domain's, which names
// the field or the state. Stream errors pass as they are.
func connectError(log *slog.Logger, err error) error {
	var te transportError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return te.error
	}
	code, ok := connectCodes[lifecycle.ErrorCode(err)]
	if !ok {
		log.Error("unexpected error", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	msg := err.Error()
	var le *lifecycle.Error
	if errors.As(err, &le) {
		msg = le.Message
	}
	ce := connect.NewError(code, errors.New(msg))
	if le != nil && le.ResumeSequence != 0 {
		ce.Meta().Set(ResumeHeader, strconv.FormatUint(le.ResumeSequence, 10))
	}
	return ce
}

type service struct {
	svc          lifecycle.AgentService
	rpc          rpc.AgentRPCs // the RPCs on protobuf messages, shared with the C library
	log          *slog.Logger
	metrics      *metrics
	workers      workers
	writeTimeout time.Duration // of one message of a watch stream
}

// transportError is an error of the stream itself (the client went away): the adapters
// return it as it is rather than map it.
type transportError struct{ error }

// The RPCs of the agent service on protobuf messages, answering domain errors, are
// rpc.AgentRPCs; the Connect handler methods below and the grpc-go service (grpc.go) wrap
// them, and these two, which the server measures.

func (s *service) transitionState(ctx context.Context, m *v1.TransitionRequest) (*v1.TransitionResponse, error) {
	start := time.Now()
	res, err := s.svc.Transition(ctx, lifecyclepb.FromTransitionRequest(m))
	if err != nil {
		return nil, err
	}
	s.metrics.transition(&res, m.GetTargetState(), time.Since(start))
	return lifecyclepb.TransitionResult(&res), nil
}

// watchEvents streams events until the client goes away or the watch ends; an ended watch
// (lagging watcher, server shutting down) ends with its error, which carries the sequence
// to resume from. ready sends the headers, so that the client knows the watch is
// established before any event.
func (s *service) watchEvents(ctx context.Context, m *v1.WatchEventsRequest, ready func() error, send func(*v1.LifecycleEvent) error) error {
	w, err := s.svc.Watch(ctx, lifecyclepb.FromWatchRequest(m))
	if err != nil {
		return err
	}
	s.metrics.watchers.Inc()
	defer s.metrics.watchers.Dec()
	return pump(ctx, w, ready, send, lifecyclepb.Event)
}

// pump sends a watch's events (E, as messages M) until the client goes away (nil) or the
// watch ends (its error); the stream's own errors come back as transportError.
func pump[E, M any](ctx context.Context, w interface {
	Next(context.Context) (E, error)
	Close() error
}, ready func() error, send func(M) error, conv func(*E) M) error {
	defer w.Close()
	if err := ready(); err != nil {
		return transportError{err}
	}
	for {
		ev, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // the client went away
			}
			return err
		}
		if err := send(conv(&ev)); err != nil {
			return transportError{err}
		}
	}
}

// connectService is the agent service as a Connect handler.
type connectService struct{ *service }

var _ lifecyclev1connect.LifecycleManagerHandler = connectService{}

// unary runs an RPC for Connect, mapping its error.
func unary[Req, Res any](ctx context.Context, log *slog.Logger, req *connect.Request[Req], call func(context.Context, *Req) (*Res, error)) (*connect.Response[Res], error) {
	res, err := call(ctx, req.Msg)
	if err != nil {
		return nil, connectError(log, err)
	}
	return connect.NewResponse(res), nil
}

func (c connectService) GetState(ctx context.Context, req *connect.Request[v1.GetStateRequest]) (*connect.Response[v1.GetStateResponse], error) {
	return unary(ctx, c.log, req, c.rpc.GetState)
}

func (c connectService) TransitionState(ctx context.Context, req *connect.Request[v1.TransitionRequest]) (*connect.Response[v1.TransitionResponse], error) {
	return unary(ctx, c.log, req, c.transitionState)
}

func (c connectService) GetTransitionHistory(ctx context.Context, req *connect.Request[v1.GetHistoryRequest]) (*connect.Response[v1.GetHistoryResponse], error) {
	return unary(ctx, c.log, req, c.rpc.GetTransitionHistory)
}

func (c connectService) WatchEvents(ctx context.Context, req *connect.Request[v1.WatchEventsRequest], stream *connect.ServerStream[v1.LifecycleEvent]) error {
	send := deadlineSend(ctx, c.writeTimeout, stream.Send)
	return connectError(c.log, c.watchEvents(ctx, req.Msg, func() error { return send(nil) }, send))
}

func (c connectService) RegisterHook(ctx context.Context, req *connect.Request[v1.RegisterHookRequest]) (*connect.Response[v1.RegisterHookResponse], error) {
	return unary(ctx, c.log, req, c.rpc.RegisterHook)
}

func (c connectService) RegisterAgent(ctx context.Context, req *connect.Request[v1.RegisterAgentRequest]) (*connect.Response[v1.RegisterAgentResponse], error) {
	return unary(ctx, c.log, req, c.rpc.RegisterAgent)
}

func (c connectService) SetSupervisionPolicy(ctx context.Context, req *connect.Request[v1.SetSupervisionPolicyRequest]) (*connect.Response[v1.SetSupervisionPolicyResponse], error) {
	return unary(ctx, c.log, req, c.rpc.SetSupervisionPolicy)
}

func (c connectService) DeleteAgent(ctx context.Context, req *connect.Request[v1.DeleteAgentRequest]) (*connect.Response[v1.DeleteAgentResponse], error) {
	return unary(ctx, c.log, req, c.rpc.DeleteAgent)
}

func (c connectService) Heartbeat(ctx context.Context, req *connect.Request[v1.HeartbeatRequest]) (*connect.Response[v1.HeartbeatResponse], error) {
	return unary(ctx, c.log, req, c.rpc.Heartbeat)
}

func (c connectService) ListAgents(ctx context.Context, req *connect.Request[v1.ListAgentsRequest]) (*connect.Response[v1.ListAgentsResponse], error) {
	return unary(ctx, c.log, req, c.rpc.ListAgents)
}

func (c connectService) UnregisterHook(ctx context.Context, req *connect.Request[v1.UnregisterHookRequest]) (*connect.Response[v1.UnregisterHookResponse], error) {
	return unary(ctx, c.log, req, c.rpc.UnregisterHook)
}

func (c connectService) ListHooks(ctx context.Context, req *connect.Request[v1.ListHooksRequest]) (*connect.Response[v1.ListHooksResponse], error) {
	return unary(ctx, c.log, req, c.rpc.ListHooks)
}

func (c connectService) ServeHooks(ctx context.Context, stream *connect.BidiStream[v1.HookWorkerMessage, v1.HookInvocation]) error {
	return connectError(c.log, c.serveHooks(stream))
}
