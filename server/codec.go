package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// wireCodec is the JSON or CBOR codec of both stacks (connect-go's "json" and "cbor",
// grpc-go's application/grpc+json and +cbor): it decodes with package wire, as the C
// library does, so that every transport is strict alike — unknown fields and enum values
// refused, the specification's short enum names accepted.
type wireCodec struct {
	name   string // the content subtype
	format wire.Format
}

func (c wireCodec) Name() string { return c.name }

func (c wireCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not a protobuf message", c.name, v)
	}
	return wire.Marshal(c.format, m)
}

// MarshalStable serves Connect's GET requests: protojson's spacing varies, so compact it.
func (c wireCodec) MarshalStable(v any) ([]byte, error) {
	b, err := c.Marshal(v)
	if err != nil || c.format != wire.JSON {
		return b, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (c wireCodec) IsBinary() bool { return c.format != wire.JSON }

// Unmarshal returns wire's message alone: connect-go puts its prefix before it and answers
// INVALID_ARGUMENT.
func (c wireCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("%s: %T is not a protobuf message", c.name, v)
	}
	err := wire.Unmarshal(c.format, data, m)
	var le *lifecycle.Error
	if errors.As(err, &le) {
		return errors.New(le.Message)
	}
	return err
}

// grpcFrame is a gRPC message's bytes. grpc-go's codec only carries frames (frameCodec); the
// handlers decode and encode them in the call's format, because a codec's error is
// answered by grpc-go itself with INTERNAL, where a request that does not decode is the
// client's error: INVALID_ARGUMENT with wire's message.
type grpcFrame struct{ data []byte }

// frameCodec is the grpc-go server's only codec (grpc.ForceServerCodecV2). Messages that
// are not frames — health checking, reflection — are protobuf.
type frameCodec struct{}

func (frameCodec) Name() string { return "proto" }

func (frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch x := v.(type) {
	case *grpcFrame:
		return mem.BufferSlice{mem.SliceBuffer(x.data)}, nil
	case proto.Message:
		b, err := proto.Marshal(x)
		return mem.BufferSlice{mem.SliceBuffer(b)}, err
	}
	return nil, fmt.Errorf("grpc: %T is not a protobuf message", v)
}

func (frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch x := v.(type) {
	case *grpcFrame:
		x.data = data.Materialize()
		return nil
	case proto.Message:
		return proto.Unmarshal(data.Materialize(), x)
	}
	return fmt.Errorf("grpc: %T is not a protobuf message", v)
}

// grpcFormat is the format of a gRPC call, from its content type (application/grpc,
// application/grpc+proto, +json, +cbor); grpc-go has checked it is a gRPC one.
func grpcFormat(ctx context.Context) wire.Format {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, ct := range md.Get("content-type") {
		_, sub, _ := strings.Cut(strings.ToLower(ct), "+")
		sub, _, _ = strings.Cut(sub, ";")
		switch strings.TrimSpace(sub) {
		case "json":
			return wire.JSON
		case "cbor":
			return wire.CBOR
		}
	}
	return wire.Protobuf
}

// decodeFrame decodes a request grpcFrame; its error is an INVALID_ARGUMENT status.
func decodeFrame(f wire.Format, fr *grpcFrame, m proto.Message) error {
	if err := wire.Unmarshal(f, fr.data, m); err != nil {
		msg := err.Error()
		var le *lifecycle.Error
		if errors.As(err, &le) {
			msg = le.Message
		}
		return status.Error(codes.InvalidArgument, msg)
	}
	return nil
}

// encodeFrame encodes a response.
func encodeFrame(f wire.Format, m proto.Message) (*grpcFrame, error) {
	b, err := wire.Marshal(f, m)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode %s: %v", m.ProtoReflect().Descriptor().Name(), err)
	}
	return &grpcFrame{b}, nil
}

// clientErrors answers a streaming request whose envelope is malformed — truncated,
// say — with INVALID_ARGUMENT: connect-go reports it as INTERNAL, though it is the
// client's error. (Unary requests are read before any interceptor runs.)
type clientErrors struct{}

func (clientErrors) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (clientErrors) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (clientErrors) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, receiveErrorConn{conn})
	}
}

type receiveErrorConn struct{ connect.StreamingHandlerConn }

func (c receiveErrorConn) Receive(m any) error {
	err := c.StreamingHandlerConn.Receive(m)
	var ce *connect.Error
	if errors.As(err, &ce) && ce.Code() == connect.CodeInternal && strings.HasPrefix(ce.Message(), "protocol error: ") {
		return connect.NewError(connect.CodeInvalidArgument, errors.New(ce.Message()))
	}
	return err
}

// withWholeGRPCWebEnvelopes answers a gRPC-Web request whose envelope is cut short with
// INVALID_ARGUMENT: the client's error. connect-go reads a unary request before any
// interceptor sees it and calls a short envelope INTERNAL. A gRPC-Web request carries one
// message (browsers cannot stream requests), so it is read whole here, bounded by
// MaxRequestBytes, and its envelopes checked before the handler reads them again.
func withWholeGRPCWebEnvelopes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if r.Method != http.MethodPost || !strings.HasPrefix(ct, "application/grpc-web") || strings.HasPrefix(ct, "application/grpc-web-text") {
			next.ServeHTTP(w, r)
			return
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+5+1))
		if err != nil {
			next.ServeHTTP(w, r) // a broken connection: let the handler meet it
			return
		}
		for rest := data; len(rest) > 0 && len(data) <= MaxRequestBytes+5; {
			n := -1
			if len(rest) >= 5 {
				n = int(binary.BigEndian.Uint32(rest[1:5]))
			}
			if n < 0 || len(rest)-5 < n {
				msg := fmt.Sprintf("protocol error: the request's gRPC-Web envelope is cut short (%d bytes after a %d-byte prefix that promises %d)",
					max(len(rest)-5, 0), min(len(rest), 5), max(n, 0))
				w.Header().Set("Content-Type", ct)
				w.Header().Set("Grpc-Status", strconv.Itoa(int(connect.CodeInvalidArgument)))
				w.Header().Set("Grpc-Message", url.PathEscape(msg))
				w.WriteHeader(http.StatusOK)
				return
			}
			rest = rest[5+n:]
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		next.ServeHTTP(w, r)
	})
}
