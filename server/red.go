package server

import (
	"context"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// red records the RED metrics of every RPC — requests, errors (by code) and duration — on
// both stacks: the Connect handlers (Connect, gRPC-Web, and gRPC under NewHandler) and
// grpc-go (gRPC under New). The grpc-go side also names the server's version in the
// response header, as withVersion does for HTTP.
type red struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRED(reg prometheus.Registerer) red {
	r := red{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hms_rpc_requests_total",
			Help: "RPCs handled, by service, method, protocol (connect, grpc, grpcweb) and status code (ok for success).",
		}, []string{"service", "method", "protocol", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hms_rpc_duration_seconds",
			Help: "Time to handle a unary RPC, by service, method and protocol (streams are not timed: their length is the client's choice).",
			// 100µs to ~26s
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"service", "method", "protocol"}),
	}
	reg.MustRegister(r.requests, r.duration)
	return r
}

// splitProcedure turns "/pkg.Service/Method" into "pkg.Service", "Method".
func splitProcedure(p string) (string, string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

func (r red) observe(procedure, protocol string, code string, unary bool, took time.Duration) {
	svc, method := splitProcedure(procedure)
	r.requests.WithLabelValues(svc, method, protocol, code).Inc()
	if unary {
		r.duration.WithLabelValues(svc, method, protocol).Observe(took.Seconds())
	}
}

func connectCode(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

func grpcCode(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.Code(status.Code(err)).String()
}

// The Connect interceptor.

func (r red) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		res, err := next(ctx, req)
		r.observe(req.Spec().Procedure, req.Peer().Protocol, connectCode(err), true, time.Since(start))
		return res, err
	}
}

func (r red) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r red) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		r.observe(conn.Spec().Procedure, conn.Peer().Protocol, connectCode(err), false, time.Since(start))
		return err
	}
}

// The grpc-go interceptors.

func (r red) grpcUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	grpc.SetHeader(ctx, metadata.Pairs(VersionHeader, Version()))
	res, err := handler(ctx, req)
	r.observe(info.FullMethod, connect.ProtocolGRPC, grpcCode(err), true, time.Since(start))
	return res, err
}

func (r red) grpcStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ss.SetHeader(metadata.Pairs(VersionHeader, Version()))
	err := handler(srv, ss)
	r.observe(info.FullMethod, connect.ProtocolGRPC, grpcCode(err), false, time.Since(start))
	return err
}
