package server

import (
	"context"
	"strings"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// WithTracerProvider traces every RPC with OpenTelemetry: a server span per call, the
// child of the W3C trace context (traceparent, tracestate) the request carries. Give the
// Manager the same provider (lifecycle.Options.TracerProvider) for the transition's spans
// under it. Without it nothing is traced.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracer = tp.Tracer("github.com/hms-lifecycle/lifecycle/server") }
}

// tracing starts the RPC spans, on both stacks.
type tracing struct{ tracer trace.Tracer }

func (t tracing) start(ctx context.Context, procedure, protocol string, carrier propagation.TextMapCarrier) (context.Context, trace.Span) {
	ctx = propagation.TraceContext{}.Extract(ctx, carrier)
	svc, method := splitProcedure(procedure)
	return t.tracer.Start(ctx, strings.TrimPrefix(procedure, "/"), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("rpc.system", "grpc"), attribute.String("rpc.service", svc),
			attribute.String("rpc.method", method), attribute.String("hms.protocol", protocol)))
}

func endRPCSpan(span trace.Span, err error) {
	if err != nil {
		code := connect.CodeOf(err)
		span.SetAttributes(attribute.Int("rpc.grpc.status_code", int(code)))
		span.SetStatus(codes.Error, code.String()+": "+err.Error())
	}
	span.End()
}

func (t tracing) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, span := t.start(ctx, req.Spec().Procedure, req.Peer().Protocol, propagation.HeaderCarrier(req.Header()))
		res, err := next(ctx, req)
		endRPCSpan(span, err)
		return res, err
	}
}

func (t tracing) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (t tracing) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, span := t.start(ctx, conn.Spec().Procedure, conn.Peer().Protocol, propagation.HeaderCarrier(conn.RequestHeader()))
		err := next(ctx, conn)
		endRPCSpan(span, err)
		return err
	}
}

func (t tracing) grpcUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	ctx, span := t.start(ctx, info.FullMethod, connect.ProtocolGRPC, mdCarrier(md))
	res, err := handler(ctx, req)
	endRPCSpan(span, grpcErr(err))
	return res, err
}

func (t tracing) grpcStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	md, _ := metadata.FromIncomingContext(ss.Context())
	ctx, span := t.start(ss.Context(), info.FullMethod, connect.ProtocolGRPC, mdCarrier(md))
	err := handler(srv, tracedStream{ss, ctx})
	endRPCSpan(span, grpcErr(err))
	return err
}

// grpcErr turns a grpc-go status error into a connect error, for its code.
func grpcErr(err error) error {
	if err == nil {
		return nil
	}
	return connect.NewError(connect.Code(status.Code(err)), err)
}

type tracedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s tracedStream) Context() context.Context { return s.ctx }

// mdCarrier reads W3C trace context from gRPC metadata (lower-case keys).
type mdCarrier metadata.MD

func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
