package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/soheilhy/cmux"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
	"github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1/pluginv1connect"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// Server serves the lifecycle services on one listener. gRPC connections (HTTP/2 whose
// first request has a gRPC content type, not gRPC-Web's) go to grpc-go's own transport,
// which is several times faster than serving gRPC through net/http; everything else —
// the Connect protocol, gRPC-Web, HTTP/1.1, /metrics — goes to net/http and the Connect
// handlers (NewHandler). Both sides share one service, one set of hook workers, one access
// control and one set of metrics.
type Server struct {
	http   *http.Server
	grpc   *grpc.Server
	health *health.Server
	mux    cmux.CMux
	ln     net.Listener // the mux's; closed by stopAccepting alone
	done   chan struct{}
}

// grpcContentTypes are the content types whose connections grpc-go serves.
var grpcContentTypes = []string{"application/grpc", "application/grpc+proto", "application/grpc+json", "application/grpc+cbor"}

// New returns a Server of svc; opts as for NewHandler.
func New(svc lifecycle.AgentService, opts ...Option) *Server {
	o := options{log: slog.Default(), writeTimeout: WatchWriteTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	h := newHandlers(svc, &o)
	s := &Server{done: make(chan struct{})}
	s.http = &http.Server{Handler: h.mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(o.log.Handler(), slog.LevelWarn), ConnContext: tlsConnContext}
	// TLS, if any, is the listener's; the connections net/http gets from the demultiplexer
	// are decrypted, so it speaks HTTP/2 to them as it would cleartext.
	s.http.Protocols = new(http.Protocols)
	s.http.Protocols.SetHTTP1(true)
	s.http.Protocols.SetUnencryptedHTTP2(true)

	a := authorizer{o.tokens}
	ec := errorCounter{h.metrics}
	unary := []grpc.UnaryServerInterceptor{h.metrics.red.grpcUnary, ec.grpcUnary, a.grpcUnary}
	stream := []grpc.StreamServerInterceptor{h.metrics.red.grpcStream, ec.grpcStream, a.grpcStream}
	if o.tracer != nil {
		t := tracing{o.tracer}
		unary = append([]grpc.UnaryServerInterceptor{t.grpcUnary}, unary...)
		stream = append([]grpc.StreamServerInterceptor{t.grpcStream}, stream...)
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(tlsInfoCreds{insecure.NewCredentials()}),
		grpc.MaxRecvMsgSize(MaxRequestBytes),
		grpc.ForceServerCodecV2(frameCodec{}), // the handlers decode, strictly (codec.go)
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	)
	s.grpc.RegisterService(h.agents.grpcDesc(), struct{}{})
	s.health = health.NewServer()
	s.health.SetServingStatus(lifecyclev1connect.LifecycleManagerName, healthpb.HealthCheckResponse_SERVING)
	if h.plugins != nil {
		s.grpc.RegisterService(h.plugins.grpcDesc(), struct{}{})
		s.health.SetServingStatus(pluginv1connect.PluginLifecycleManagerName, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s
}

// Serve accepts connections on ln until Shutdown or Close. A TLS listener must offer "h2"
// and "http/1.1" by ALPN.
func (s *Server) Serve(ln net.Listener) error {
	s.mux, s.ln = cmux.New(ln), ln
	s.mux.SetReadTimeout(10 * time.Second) // a connection that says nothing is dropped
	grpcL := subListener{s.mux.MatchWithWriters(grpcMatcher)}
	httpL := ackListener{subListener{s.mux.Match(cmux.Any())}}
	go s.grpc.Serve(grpcL)
	go s.http.Serve(httpL)
	err := s.mux.Serve()
	select {
	case <-s.done:
		return http.ErrServerClosed
	default:
		return err
	}
}

// Shutdown stops accepting connections and waits, up to ctx, for the calls in flight
// (watch streams end when the service's watches do).
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	err := s.http.Shutdown(ctx)
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
		err = ctx.Err()
	}
	return err
}

// Close stops everything at once.
func (s *Server) Close() error {
	s.stopAccepting()
	s.grpc.Stop()
	return s.http.Close()
}

func (s *Server) stopAccepting() {
	select {
	case <-s.done:
		return
	default:
		close(s.done)
	}
	s.health.Shutdown()
	if s.mux != nil {
		s.mux.Close()
		s.ln.Close()
	}
}

// subListener is one of the mux's listeners. Closing it leaves the mux's listener open
// (stopAccepting closes that): a mux listener's Close closes the mux's, and gRPC's
// GracefulStop and net/http's Shutdown each close theirs, so the second failed with "use
// of closed network connection", and with it the server's shutdown.
type subListener struct{ net.Listener }

func (subListener) Close() error { return nil }

// tlsStateKey carries a connection's TLS state to net/http handlers, which cannot see it
// through the demultiplexer's connection wrapper.
type tlsStateKey struct{}

func tlsConnContext(ctx context.Context, c net.Conn) context.Context {
	if st, ok := tlsState(c); ok {
		return context.WithValue(ctx, tlsStateKey{}, st)
	}
	return ctx
}

func tlsState(c net.Conn) (tls.ConnectionState, bool) {
	if af, ok := c.(*ackFilter); ok {
		c = af.Conn
	}
	if mc, ok := c.(*cmux.MuxConn); ok {
		c = mc.Conn
	}
	if tc, ok := c.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// tlsInfoCreds hands grpc-go the TLS state of connections whose TLS the listener
// terminated, so that client certificates identify principals on both transports.
type tlsInfoCreds struct {
	credentials.TransportCredentials
}

func (c tlsInfoCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if st, ok := tlsState(conn); ok {
		return conn, credentials.TLSInfo{State: st, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c tlsInfoCreds) Clone() credentials.TransportCredentials {
	return tlsInfoCreds{c.TransportCredentials.Clone()}
}

// grpcError maps an error for grpc-go, like connectError for Connect (the codes are the
// same numbers); a resume point goes in the trailer set by setTrailer.
func grpcError(log *slog.Logger, err error, setTrailer func(metadata.MD)) error {
	var te transportError
	var ce *connect.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return te.error
	case errors.As(err, &ce):
		return status.Error(codes.Code(ce.Code()), ce.Message())
	}
	code, ok := grpcCodes[lifecycle.ErrorCode(err)]
	if !ok {
		log.Error("unexpected error", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	msg := err.Error()
	var le *lifecycle.Error
	if errors.As(err, &le) {
		msg = le.Message
		if le.ResumeSequence != 0 && setTrailer != nil {
			setTrailer(metadata.Pairs(strings.ToLower(ResumeHeader), strconv.FormatUint(le.ResumeSequence, 10)))
		}
	}
	return status.Error(code, msg)
}

// grpcCodes is connectCodes in grpc-go's type.
var grpcCodes = func() map[lifecycle.Code]codes.Code {
	m := make(map[lifecycle.Code]codes.Code, len(connectCodes))
	for d, c := range connectCodes {
		m[d] = codes.Code(c)
	}
	return m
}()

// unaryMethod is one unary RPC for grpc-go; the handler decodes the request and encodes
// the response (grpcFrame).
func unaryMethod[Req, Res any](service, name string, log *slog.Logger, call func(context.Context, *Req) (*Res, error)) grpc.MethodDesc {
	full := "/" + service + "/" + name
	return grpc.MethodDesc{MethodName: name, Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		var in grpcFrame
		if err := dec(&in); err != nil {
			return nil, err
		}
		format := grpcFormat(ctx)
		req := new(Req)
		if err := decodeFrame(format, &in, any(req).(proto.Message)); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, r any) (any, error) {
			res, err := call(ctx, r.(*Req))
			if err != nil {
				return nil, grpcError(log, err, func(md metadata.MD) { grpc.SetTrailer(ctx, md) })
			}
			return res, nil
		}
		var res any
		var err error
		if ic == nil {
			res, err = h(ctx, req)
		} else {
			res, err = ic(ctx, req, &grpc.UnaryServerInfo{FullMethod: full}, h)
		}
		if err != nil {
			return nil, err
		}
		return encodeFrame(format, res.(proto.Message))
	}}
}

// serverStream is one server-streaming RPC for grpc-go.
func serverStream[Req, Res any](name string, log *slog.Logger, writeTimeout time.Duration, call func(context.Context, *Req, func() error, func(*Res) error) error) grpc.StreamDesc {
	return grpc.StreamDesc{StreamName: name, ServerStreams: true, Handler: func(_ any, stream grpc.ServerStream) error {
		var in grpcFrame
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		format := grpcFormat(stream.Context())
		req := new(Req)
		if err := decodeFrame(format, &in, any(req).(proto.Message)); err != nil {
			return err
		}
		send := timedSend(writeTimeout, func(m any) error { return stream.SendMsg(m) })
		err := call(stream.Context(), req, func() error { return stream.SendHeader(metadata.MD{}) },
			func(res *Res) error {
				out, err := encodeFrame(format, any(res).(proto.Message))
				if err != nil {
					return err
				}
				return send(out)
			})
		return grpcError(log, err, stream.SetTrailer)
	}}
}

func (s *service) grpcDesc() *grpc.ServiceDesc {
	const name = lifecyclev1connect.LifecycleManagerName
	return &grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unaryMethod(name, "GetState", s.log, s.rpc.GetState),
			unaryMethod(name, "TransitionState", s.log, s.transitionState),
			unaryMethod(name, "GetTransitionHistory", s.log, s.rpc.GetTransitionHistory),
			unaryMethod(name, "RegisterHook", s.log, s.rpc.RegisterHook),
			unaryMethod(name, "RegisterAgent", s.log, s.rpc.RegisterAgent),
			unaryMethod(name, "ListAgents", s.log, s.rpc.ListAgents),
			unaryMethod(name, "UnregisterHook", s.log, s.rpc.UnregisterHook),
			unaryMethod(name, "ListHooks", s.log, s.rpc.ListHooks),
			unaryMethod(name, "SetSupervisionPolicy", s.log, s.rpc.SetSupervisionPolicy),
			unaryMethod(name, "Heartbeat", s.log, s.rpc.Heartbeat),
			unaryMethod(name, "DeleteAgent", s.log, s.rpc.DeleteAgent),
		},
		Streams: []grpc.StreamDesc{
			serverStream("WatchEvents", s.log, s.writeTimeout, s.watchEvents),
			{StreamName: "ServeHooks", ServerStreams: true, ClientStreams: true, Handler: func(_ any, stream grpc.ServerStream) error {
				return grpcError(s.log, s.serveHooks(grpcHookStream{stream, grpcFormat(stream.Context())}), nil)
			}},
		},
		Metadata: "hms/agent/lifecycle/v1/lifecycle_manager.proto",
	}
}

type grpcHookStream struct {
	grpc.ServerStream
	format wire.Format
}

func (g grpcHookStream) Receive() (*v1.HookWorkerMessage, error) {
	var in grpcFrame
	if err := g.RecvMsg(&in); err != nil {
		return nil, err
	}
	m := new(v1.HookWorkerMessage)
	return m, decodeFrame(g.format, &in, m)
}

func (g grpcHookStream) Send(inv *v1.HookInvocation) error {
	out, err := encodeFrame(g.format, inv)
	if err != nil {
		return err
	}
	return g.SendMsg(out)
}

func (s *pluginService) grpcDesc() *grpc.ServiceDesc {
	const name = pluginv1connect.PluginLifecycleManagerName
	return &grpc.ServiceDesc{
		ServiceName: name,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unaryMethod(name, "ScanPlugins", s.log, s.rpc.ScanPlugins),
			unaryMethod(name, "GetPlugin", s.log, s.rpc.GetPlugin),
			unaryMethod(name, "ListPlugins", s.log, s.rpc.ListPlugins),
			unaryMethod(name, "ValidatePlugin", s.log, s.rpc.ValidatePlugin),
			unaryMethod(name, "LoadPlugin", s.log, s.rpc.LoadPlugin),
			unaryMethod(name, "ActivatePlugin", s.log, s.rpc.ActivatePlugin),
			unaryMethod(name, "DeactivatePlugin", s.log, s.rpc.DeactivatePlugin),
			unaryMethod(name, "ResetPlugin", s.log, s.rpc.ResetPlugin),
			unaryMethod(name, "DeprecatePlugin", s.log, s.rpc.DeprecatePlugin),
			unaryMethod(name, "ResolvePlugin", s.log, s.rpc.ResolvePlugin),
			unaryMethod(name, "GetPluginHistory", s.log, s.rpc.GetPluginHistory),
		},
		Streams:  []grpc.StreamDesc{serverStream("WatchPluginEvents", s.log, s.writeTimeout, s.watch)},
		Metadata: "hms/plugin/lifecycle/v1/plugin_lifecycle.proto",
	}
}

// open reports whether a gRPC method needs no credentials: health checking and reflection,
// as on the Connect side. Any other method not in needs is refused.
func open(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.") || strings.HasPrefix(method, "/grpc.reflection.")
}

// header reads gRPC metadata the way the authorizer reads HTTP headers.
type header metadata.MD

func (h header) Get(name string) string {
	if v := metadata.MD(h).Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// withPeerCert puts a verified client certificate's common name where the authorizer
// looks for it.
func withPeerCert(ctx context.Context) context.Context {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			if cn, ok := commonName(&ti.State); ok {
				return context.WithValue(ctx, certKey{}, cn)
			}
		}
	}
	return ctx
}

func (a authorizer) grpcCheck(ctx context.Context, method string, msg any) (context.Context, error) {
	if open(method) {
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	ctx, err := a.check(withPeerCert(ctx), method, header(md), msg)
	if err != nil {
		return nil, grpcError(slog.Default(), err, nil)
	}
	return ctx, nil
}

func (a authorizer) grpcUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := a.grpcCheck(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a authorizer) grpcStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := a.grpcCheck(ss.Context(), info.FullMethod, nil)
	if err != nil {
		return err
	}
	return handler(srv, contextStream{ss, ctx})
}

// contextStream is a stream with the context the authorizer derived.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c contextStream) Context() context.Context { return c.ctx }

func (e errorCounter) grpcCount(method string, err error) {
	if err != nil && !open(method) {
		e.count(method, connect.NewError(connect.Code(status.Code(err)), err))
	}
}

func (e errorCounter) grpcUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	res, err := handler(ctx, req)
	e.grpcCount(info.FullMethod, err)
	return res, err
}

func (e errorCounter) grpcStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	e.grpcCount(info.FullMethod, err)
	return err
}

// The JSON and CBOR codecs of gRPC's content subtypes ("application/grpc+json",
// "application/grpc+cbor") for grpc-go clients in this process (the server decodes
// frames itself). grpc-go looks codecs up in its registry by name.
func init() {
	encoding.RegisterCodec(wireCodec{"json", wire.JSON})
	encoding.RegisterCodec(wireCodec{"cbor", wire.CBOR})
}
