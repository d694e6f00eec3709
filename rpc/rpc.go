// Package rpc is the RPCs of both services as functions on protobuf messages, by their full
// method names, independent of any transport: the C library calls them by name, with
// requests decoded by package wire. Errors are the domain's (*lifecycle.Error).
package rpc

import (
	"context"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
)

// The services' full names.
const (
	AgentService  = "hms.agent.lifecycle.v1.LifecycleManager"
	PluginService = "hms.plugin.lifecycle.v1.PluginLifecycleManager"
)

// Unary is one unary RPC.
type Unary struct {
	NewRequest func() proto.Message
	Call       func(ctx context.Context, req proto.Message) (proto.Message, error)
}

// Stream is a server-streaming RPC, opened as a pull cursor of messages.
type Stream struct {
	NewRequest func() proto.Message
	Open       func(ctx context.Context, req proto.Message) (Cursor, error)
}

// Cursor is an open stream: Next blocks until the next message, ctx ends, or the stream
// ends with its error (an *lifecycle.Error whose ResumeSequence says where to resume).
// Resume is where a watch of the same request would continue after the messages so far
// (0 when unknown: no resume point was asked for and nothing came yet).
type Cursor interface {
	Next(ctx context.Context) (proto.Message, error)
	Resume() uint64
	Close() error
}

// Methods are RPCs by full name ("hms.agent.lifecycle.v1.LifecycleManager/GetState").
type Methods struct {
	Unary   map[string]Unary
	Streams map[string]Stream
}

// Lookup finds a unary method; a leading "/" is accepted.
func (m Methods) Lookup(name string) (Unary, bool) {
	u, ok := m.Unary[strings.TrimPrefix(name, "/")]
	return u, ok
}

// LookupStream finds a streaming method; a leading "/" is accepted.
func (m Methods) LookupStream(name string) (Stream, bool) {
	s, ok := m.Streams[strings.TrimPrefix(name, "/")]
	return s, ok
}

// Names lists the methods, for error messages.
func (m Methods) Names() []string {
	names := make([]string, 0, len(m.Unary)+len(m.Streams))
	for n := range m.Unary {
		names = append(names, n)
	}
	for n := range m.Streams {
		names = append(names, n)
	}
	return names
}

func unary[Req, Res proto.Message](newReq func() Req, call func(context.Context, Req) (Res, error)) Unary {
	return Unary{
		NewRequest: func() proto.Message { return newReq() },
		Call: func(ctx context.Context, req proto.Message) (proto.Message, error) {
			res, err := call(ctx, req.(Req))
			if err != nil {
				return nil, err
			}
			return res, nil
		},
	}
}

// cursor adapts a domain event stream to messages.
type cursor[E any] struct {
	w interface {
		Next(context.Context) (E, error)
		Close() error
	}
	conv   func(*E) proto.Message
	seq    func(*E) uint64
	resume uint64
}

func (c *cursor[E]) Next(ctx context.Context) (proto.Message, error) {
	ev, err := c.w.Next(ctx)
	if err != nil {
		return nil, err
	}
	if s := c.seq(&ev); s != 0 {
		c.resume = s + 1
	}
	return c.conv(&ev), nil
}

func (c *cursor[E]) Resume() uint64 { return c.resume }

func (c *cursor[E]) Close() error { return c.w.Close() }

// Agents returns the agent service's RPCs on svc (embedded Manager or remote Client).
func Agents(svc lifecycle.AgentService) Methods {
	a := AgentRPCs{svc}
	p := AgentService + "/"
	return Methods{
		Unary: map[string]Unary{
			p + "GetState":             unary(func() *v1.GetStateRequest { return new(v1.GetStateRequest) }, a.GetState),
			p + "TransitionState":      unary(func() *v1.TransitionRequest { return new(v1.TransitionRequest) }, a.TransitionState),
			p + "GetTransitionHistory": unary(func() *v1.GetHistoryRequest { return new(v1.GetHistoryRequest) }, a.GetTransitionHistory),
			p + "RegisterHook":         unary(func() *v1.RegisterHookRequest { return new(v1.RegisterHookRequest) }, a.RegisterHook),
			p + "RegisterAgent":        unary(func() *v1.RegisterAgentRequest { return new(v1.RegisterAgentRequest) }, a.RegisterAgent),
			p + "ListAgents":           unary(func() *v1.ListAgentsRequest { return new(v1.ListAgentsRequest) }, a.ListAgents),
			p + "UnregisterHook":       unary(func() *v1.UnregisterHookRequest { return new(v1.UnregisterHookRequest) }, a.UnregisterHook),
			p + "ListHooks":            unary(func() *v1.ListHooksRequest { return new(v1.ListHooksRequest) }, a.ListHooks),
			p + "SetSupervisionPolicy": unary(func() *v1.SetSupervisionPolicyRequest { return new(v1.SetSupervisionPolicyRequest) }, a.SetSupervisionPolicy),
			p + "Heartbeat":            unary(func() *v1.HeartbeatRequest { return new(v1.HeartbeatRequest) }, a.Heartbeat),
			p + "DeleteAgent":          unary(func() *v1.DeleteAgentRequest { return new(v1.DeleteAgentRequest) }, a.DeleteAgent),
		},
		Streams: map[string]Stream{
			p + "WatchEvents": {
				NewRequest: func() proto.Message { return new(v1.WatchEventsRequest) },
				Open: func(ctx context.Context, req proto.Message) (Cursor, error) {
					m := req.(*v1.WatchEventsRequest)
					w, err := svc.Watch(ctx, lifecyclepb.FromWatchRequest(m))
					if err != nil {
						return nil, err
					}
					return &cursor[lifecycle.Event]{w: w, conv: func(ev *lifecycle.Event) proto.Message { return lifecyclepb.Event(ev) },
						seq: func(ev *lifecycle.Event) uint64 { return ev.Sequence }, resume: m.GetFromSequence()}, nil
				},
			},
		},
	}
}

// AgentRPCs are the agent service's unary RPCs on protobuf messages, for transports that
// want them typed (the server); Agents has them by name.
type AgentRPCs struct{ Svc lifecycle.AgentService }

func (a AgentRPCs) GetState(ctx context.Context, m *v1.GetStateRequest) (*v1.GetStateResponse, error) {
	st, err := a.Svc.GetState(ctx, m.GetAgentId(), m.GetIncludeDetails())
	if err != nil {
		return nil, err
	}
	return lifecyclepb.AgentState(&st), nil
}

func (a AgentRPCs) TransitionState(ctx context.Context, m *v1.TransitionRequest) (*v1.TransitionResponse, error) {
	res, err := a.Svc.Transition(ctx, lifecyclepb.FromTransitionRequest(m))
	if err != nil {
		return nil, err
	}
	return lifecyclepb.TransitionResult(&res), nil
}

func (a AgentRPCs) GetTransitionHistory(ctx context.Context, m *v1.GetHistoryRequest) (*v1.GetHistoryResponse, error) {
	page, err := a.Svc.History(ctx, lifecyclepb.FromHistoryRequest(m))
	if err != nil {
		return nil, err
	}
	return lifecyclepb.HistoryPage(&page), nil
}

func (a AgentRPCs) RegisterHook(ctx context.Context, m *v1.RegisterHookRequest) (*v1.RegisterHookResponse, error) {
	res, err := a.Svc.RegisterHook(ctx, lifecyclepb.FromHookSpec(m))
	if err != nil {
		return nil, err
	}
	return &v1.RegisterHookResponse{Success: res.Success, HookId: res.HookID, ErrorMessage: res.Message, Warnings: res.Warnings}, nil
}

func (a AgentRPCs) RegisterAgent(ctx context.Context, m *v1.RegisterAgentRequest) (*v1.RegisterAgentResponse, error) {
	st, ev, err := a.Svc.RegisterAgent(ctx, lifecycle.RegisterRequest{
		AgentID: m.GetAgentId(), Metadata: m.GetMetadata(), Labels: m.GetLabels(),
		Policy: lifecyclepb.FromSupervisionPolicy(m.GetSupervisionPolicy())})
	if err != nil {
		return nil, err
	}
	return &v1.RegisterAgentResponse{Agent: lifecyclepb.AgentState(&st), Event: lifecyclepb.Event(&ev)}, nil
}

func (a AgentRPCs) SetSupervisionPolicy(ctx context.Context, m *v1.SetSupervisionPolicyRequest) (*v1.SetSupervisionPolicyResponse, error) {
	sup, err := a.Svc.SetPolicy(ctx, m.GetAgentId(), lifecyclepb.FromSupervisionPolicy(m.GetPolicy()))
	if err != nil {
		return nil, err
	}
	return &v1.SetSupervisionPolicyResponse{Supervision: lifecyclepb.Supervision(&sup)}, nil
}

func (a AgentRPCs) DeleteAgent(ctx context.Context, m *v1.DeleteAgentRequest) (*v1.DeleteAgentResponse, error) {
	ev, err := a.Svc.DeleteAgent(ctx, lifecycle.DeleteRequest{AgentID: m.GetAgentId(), Reason: m.GetReason()})
	if err != nil {
		return nil, err
	}
	return &v1.DeleteAgentResponse{Event: lifecyclepb.Event(&ev)}, nil
}

func (a AgentRPCs) Heartbeat(ctx context.Context, m *v1.HeartbeatRequest) (*v1.HeartbeatResponse, error) {
	unknown, err := a.Svc.Heartbeat(ctx, m.GetAgentIds())
	if err != nil {
		return nil, err
	}
	return &v1.HeartbeatResponse{UnknownAgentIds: unknown}, nil
}

func (a AgentRPCs) ListAgents(ctx context.Context, m *v1.ListAgentsRequest) (*v1.ListAgentsResponse, error) {
	page, err := a.Svc.ListAgents(ctx, lifecyclepb.FromListAgentsRequest(m))
	if err != nil {
		return nil, err
	}
	return lifecyclepb.AgentPage(&page), nil
}

func (a AgentRPCs) UnregisterHook(ctx context.Context, m *v1.UnregisterHookRequest) (*v1.UnregisterHookResponse, error) {
	if err := a.Svc.UnregisterHook(ctx, m.GetHookId()); err != nil {
		return nil, err
	}
	return &v1.UnregisterHookResponse{}, nil
}

func (a AgentRPCs) ListHooks(ctx context.Context, _ *v1.ListHooksRequest) (*v1.ListHooksResponse, error) {
	hooks, err := a.Svc.ListHooks(ctx)
	if err != nil {
		return nil, err
	}
	pb := &v1.ListHooksResponse{Hooks: make([]*v1.Hook, len(hooks))}
	for i := range hooks {
		pb.Hooks[i] = lifecyclepb.HookStatus(&hooks[i])
	}
	return pb, nil
}

// Merge returns the methods of ms together.
func Merge(ms ...Methods) Methods {
	out := Methods{Unary: map[string]Unary{}, Streams: map[string]Stream{}}
	for _, m := range ms {
		for k, v := range m.Unary {
			out.Unary[k] = v
		}
		for k, v := range m.Streams {
			out.Streams[k] = v
		}
	}
	return out
}
