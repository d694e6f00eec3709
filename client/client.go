// Package client is a lifecycle.AgentService on a remote server: code written against the
// interface runs unchanged embedded (lifecycle.Manager) or remote (client.Client).
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"connectrpc.com/connect"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
	"github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1/pluginv1connect"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
	"github.com/hms-lifecycle/lifecycle/pbcbor"
	"github.com/hms-lifecycle/lifecycle/server"
)

// Protocol selects the wire protocol.
type Protocol string

// The protocols a server speaks on one port.
const (
	Connect Protocol = "connect" // the Connect protocol: HTTP/1.1 or HTTP/2, curl-friendly
	GRPC    Protocol = "grpc"
	GRPCWeb Protocol = "grpcweb"
)

// Options configure a Client; the zero value means Connect with protobuf (over HTTP/1.1
// for http:// URLs, HTTP/2 for https://; gRPC and gRPC-Web always over HTTP/2).
type Options struct {
	Protocol Protocol
	// Encoding is "proto" (the default), "json" or "cbor".
	Encoding string
	// Token is sent as "Authorization: Bearer <token>" when not empty.
	Token string
	// TLS configures https:// URLs: the server's CA (RootCAs) and a client certificate
	// for mutual TLS. Nil means the system's roots and no client certificate.
	TLS *tls.Config
	// HTTPClient replaces the default client.
	HTTPClient *http.Client
}

// Client talks to a server at a base URL ("http://127.0.0.1:7233").
type Client struct {
	rpc     lifecyclev1connect.LifecycleManagerClient
	hooks   lifecyclev1connect.LifecycleManagerClient // ServeHooks: a bidirectional stream, HTTP/2 only
	plugins pluginv1connect.PluginLifecycleManagerClient
	mu      sync.Mutex
	workers map[string]context.CancelFunc // hook workers by callback name
}

var _ lifecycle.AgentService = (*Client)(nil)

// New returns a client of the server at baseURL.
func New(baseURL string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, errors.New("client: the server URL must start with http:// or https://")
	}
	hc, h2 := opts.HTTPClient, opts.HTTPClient
	if hc == nil {
		h2 = httpClient(opts.TLS)
		hc = h2
		if (opts.Protocol == "" || opts.Protocol == Connect) && strings.HasPrefix(baseURL, "http://") {
			// Cleartext Connect calls go faster over a pool of HTTP/1.1 connections than
			// multiplexed on one HTTP/2 connection; only ServeHooks needs HTTP/2.
			hc = &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext, MaxIdleConnsPerHost: 256}}
		}
	}
	var copts []connect.ClientOption
	switch opts.Protocol {
	case "", Connect:
	case GRPC:
		copts = append(copts, connect.WithGRPC())
	case GRPCWeb:
		copts = append(copts, connect.WithGRPCWeb())
	default:
		return nil, errors.New("client: protocol " + string(opts.Protocol) + ": use connect, grpc or grpcweb")
	}
	if opts.Token != "" {
		copts = append(copts, connect.WithInterceptors(bearer(opts.Token)))
	}
	switch opts.Encoding {
	case "", "proto":
	case "json":
		copts = append(copts, connect.WithProtoJSON())
	case "cbor":
		copts = append(copts, connect.WithCodec(pbcbor.Codec{}))
	default:
		return nil, errors.New("client: encoding " + opts.Encoding + ": use proto, json or cbor")
	}
	base := strings.TrimRight(baseURL, "/")
	return &Client{rpc: lifecyclev1connect.NewLifecycleManagerClient(hc, base, copts...),
		hooks:   lifecyclev1connect.NewLifecycleManagerClient(h2, base, copts...),
		plugins: pluginv1connect.NewPluginLifecycleManagerClient(hc, base, copts...)}, nil
}

// bearer sends a token with every request.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// httpClient speaks HTTP/2 to https:// servers and, without TLS (h2c), to http:// ones, as
// gRPC needs.
func httpClient(tc *tls.Config) *http.Client {
	if tc == nil {
		tc = &tls.Config{}
	}
	t := &http.Transport{
		ForceAttemptHTTP2: true,
		DialContext:       (&net.Dialer{}).DialContext,
		TLSClientConfig:   tc.Clone(),
	}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetUnencryptedHTTP2(true)
	t.Protocols.SetHTTP2(true)
	return &http.Client{Transport: t}
}

// domainError maps a Connect error back to the domain's codes.
func domainError(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "server unreachable", Err: err}
	}
	e := &lifecycle.Error{Code: server.DomainCode(ce.Code()), Message: ce.Message()}
	if v := ce.Meta().Get(server.ResumeHeader); v != "" {
		e.ResumeSequence, _ = strconv.ParseUint(v, 10, 64)
	}
	return e
}

// RegisterAgent implements lifecycle.AgentService.
func (c *Client) RegisterAgent(ctx context.Context, req lifecycle.RegisterRequest) (lifecycle.AgentState, lifecycle.Event, error) {
	res, err := c.rpc.RegisterAgent(ctx, connect.NewRequest(&v1.RegisterAgentRequest{AgentId: req.AgentID, Metadata: req.Metadata, Labels: req.Labels,
		SupervisionPolicy: lifecyclepb.SupervisionPolicy(req.Policy)}))
	if err != nil {
		return lifecycle.AgentState{}, lifecycle.Event{}, domainError(err)
	}
	return lifecyclepb.FromAgentState(res.Msg.GetAgent()), lifecyclepb.FromEvent(res.Msg.GetEvent()), nil
}

// GetState implements lifecycle.AgentService.
func (c *Client) GetState(ctx context.Context, agentID string, includeDetails bool) (lifecycle.AgentState, error) {
	res, err := c.rpc.GetState(ctx, connect.NewRequest(&v1.GetStateRequest{AgentId: agentID, IncludeDetails: includeDetails}))
	if err != nil {
		return lifecycle.AgentState{}, domainError(err)
	}
	return lifecyclepb.FromAgentState(res.Msg), nil
}

// ListAgents implements lifecycle.AgentService.
func (c *Client) ListAgents(ctx context.Context, req lifecycle.ListAgentsRequest) (lifecycle.AgentPage, error) {
	res, err := c.rpc.ListAgents(ctx, connect.NewRequest(lifecyclepb.ListAgentsRequest(&req)))
	if err != nil {
		return lifecycle.AgentPage{}, domainError(err)
	}
	return lifecyclepb.FromAgentPage(res.Msg), nil
}

// Transition implements lifecycle.AgentService.
func (c *Client) Transition(ctx context.Context, req lifecycle.TransitionRequest) (lifecycle.TransitionResult, error) {
	res, err := c.rpc.TransitionState(ctx, connect.NewRequest(lifecyclepb.TransitionRequest(&req)))
	if err != nil {
		return lifecycle.TransitionResult{}, domainError(err)
	}
	return lifecyclepb.FromTransitionResult(res.Msg), nil
}

// History implements lifecycle.AgentService.
func (c *Client) History(ctx context.Context, req lifecycle.HistoryRequest) (lifecycle.HistoryPage, error) {
	res, err := c.rpc.GetTransitionHistory(ctx, connect.NewRequest(lifecyclepb.HistoryRequest(&req)))
	if err != nil {
		return lifecycle.HistoryPage{}, domainError(err)
	}
	return lifecyclepb.FromHistoryPage(res.Msg), nil
}

// RegisterHook implements lifecycle.AgentService.
func (c *Client) RegisterHook(ctx context.Context, spec lifecycle.HookSpec) (lifecycle.RegisterHookResult, error) {
	res, err := c.rpc.RegisterHook(ctx, connect.NewRequest(lifecyclepb.HookSpec(&spec)))
	if err != nil {
		return lifecycle.RegisterHookResult{}, domainError(err)
	}
	return lifecycle.RegisterHookResult{Success: res.Msg.GetSuccess(), HookID: res.Msg.GetHookId(), Message: res.Msg.GetErrorMessage(),
		Warnings: res.Msg.GetWarnings()}, nil
}

// UnregisterHook implements lifecycle.AgentService.
func (c *Client) UnregisterHook(ctx context.Context, hookID string) error {
	_, err := c.rpc.UnregisterHook(ctx, connect.NewRequest(&v1.UnregisterHookRequest{HookId: hookID}))
	return domainError(err)
}

// SetPolicy implements lifecycle.AgentService.
func (c *Client) SetPolicy(ctx context.Context, agentID string, p *lifecycle.SupervisionPolicy) (lifecycle.Supervision, error) {
	res, err := c.rpc.SetSupervisionPolicy(ctx, connect.NewRequest(&v1.SetSupervisionPolicyRequest{AgentId: agentID, Policy: lifecyclepb.SupervisionPolicy(p)}))
	if err != nil {
		return lifecycle.Supervision{}, domainError(err)
	}
	if sup := lifecyclepb.FromSupervision(res.Msg.GetSupervision()); sup != nil {
		return *sup, nil
	}
	return lifecycle.Supervision{}, nil
}

// DeleteAgent implements lifecycle.AgentService.
func (c *Client) DeleteAgent(ctx context.Context, req lifecycle.DeleteRequest) (lifecycle.Event, error) {
	res, err := c.rpc.DeleteAgent(ctx, connect.NewRequest(&v1.DeleteAgentRequest{AgentId: req.AgentID, Reason: req.Reason}))
	if err != nil {
		return lifecycle.Event{}, domainError(err)
	}
	return lifecyclepb.FromEvent(res.Msg.GetEvent()), nil
}

// Heartbeat implements lifecycle.AgentService.
func (c *Client) Heartbeat(ctx context.Context, agentIDs []string) ([]string, error) {
	res, err := c.rpc.Heartbeat(ctx, connect.NewRequest(&v1.HeartbeatRequest{AgentIds: agentIDs}))
	if err != nil {
		return nil, domainError(err)
	}
	return res.Msg.GetUnknownAgentIds(), nil
}

// ListHooks implements lifecycle.AgentService.
func (c *Client) ListHooks(ctx context.Context) ([]lifecycle.HookStatus, error) {
	res, err := c.rpc.ListHooks(ctx, connect.NewRequest(&v1.ListHooksRequest{}))
	if err != nil {
		return nil, domainError(err)
	}
	out := make([]lifecycle.HookStatus, len(res.Msg.GetHooks()))
	for i, h := range res.Msg.GetHooks() {
		out[i] = lifecyclepb.FromHookStatus(h)
	}
	return out, nil
}

// Watch implements lifecycle.AgentService. The stream lives until Close or until the ctx
// given here ends; an ended stream's error carries the resume point.
func (c *Client) Watch(ctx context.Context, req lifecycle.WatchRequest) (lifecycle.EventStream, error) {
	sctx, cancel := context.WithCancel(ctx)
	stream, err := c.rpc.WatchEvents(sctx, connect.NewRequest(lifecyclepb.WatchRequest(&req)))
	if err != nil {
		cancel()
		return nil, domainError(err)
	}
	return newWatch(stream, cancel, lifecyclepb.FromEvent, (*v1.LifecycleEvent).GetSequence, req.FromSequence), nil
}

// watch is a server stream of events of type E (an agent's or a plugin's) from messages
// of type M. A goroutine receives, so that Next can give up when its ctx ends.
type watch[M, E any] struct {
	stream *connect.ServerStreamForClient[M]
	cancel context.CancelFunc
	events chan received[E]
	err    error
}

type received[E any] struct {
	ev  E
	err error
}

// newWatch starts receiving; seq gives a message's sequence and from is the request's
// resume point, so that a stream the server's going away cut short still says where to
// resume.
func newWatch[M, E any](stream *connect.ServerStreamForClient[M], cancel context.CancelFunc, conv func(*M) E, seq func(*M) uint64, from uint64) *watch[M, E] {
	w := &watch[M, E]{stream: stream, cancel: cancel, events: make(chan received[E], 1)}
	go w.receive(conv, seq, from)
	return w
}

func (w *watch[M, E]) receive(conv func(*M) E, seq func(*M) uint64, resume uint64) {
	defer close(w.events)
	for w.stream.Receive() {
		if s := seq(w.stream.Msg()); s != 0 {
			resume = s + 1
		}
		w.events <- received[E]{ev: conv(w.stream.Msg())}
	}
	err := w.stream.Err()
	if err == nil {
		err = &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "the server ended the watch"}
	} else {
		err = domainError(err)
	}
	if e, ok := err.(*lifecycle.Error); ok && e.ResumeSequence == 0 {
		if v := w.stream.ResponseTrailer().Get(server.ResumeHeader); v != "" {
			e.ResumeSequence, _ = strconv.ParseUint(v, 10, 64)
		} else if e.Code == lifecycle.CodeInternal || e.Code == lifecycle.CodeUnavailable {
			// The connection broke (a killed server ends no stream properly): the server is
			// gone, and the watch resumes after the last event received.
			err = &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "the server went away: " + e.Message, ResumeSequence: resume, Err: e.Err}
		}
	}
	w.events <- received[E]{err: err}
}

// Next implements lifecycle.EventStream and plugin.EventStream.
func (w *watch[M, E]) Next(ctx context.Context) (E, error) {
	var zero E
	if w.err != nil {
		return zero, w.err
	}
	select {
	case r, ok := <-w.events:
		if !ok {
			w.err = lifecycle.Errorf(lifecycle.CodeCanceled, "watch closed")
			return zero, w.err
		}
		if r.err != nil {
			w.err = r.err
		}
		return r.ev, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Close implements lifecycle.EventStream and plugin.EventStream.
func (w *watch[M, E]) Close() error {
	w.cancel()
	for range w.events { // let the receiver finish
	}
	return w.stream.Close()
}
