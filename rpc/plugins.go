//go:build !wasip1 || hms_plugins

// The plugin service's RPCs. In the WebAssembly core (wasip1) they are linked only with
// -tags hms_plugins: package plugin's dependencies are slow to initialize there
// (wasm/main.go).

package rpc

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/plugin/pluginpb"
)

// Plugins returns the plugin service's RPCs on svc (embedded Manager or remote client).
func Plugins(svc plugin.Service) Methods {
	r := PluginRPCs{svc}
	p := PluginService + "/"
	op := func() *pluginv1.PluginOperationRequest { return new(pluginv1.PluginOperationRequest) }
	return Methods{
		Unary: map[string]Unary{
			p + "ScanPlugins":      unary(func() *pluginv1.ScanPluginsRequest { return new(pluginv1.ScanPluginsRequest) }, r.ScanPlugins),
			p + "GetPlugin":        unary(func() *pluginv1.GetPluginRequest { return new(pluginv1.GetPluginRequest) }, r.GetPlugin),
			p + "ListPlugins":      unary(func() *pluginv1.ListPluginsRequest { return new(pluginv1.ListPluginsRequest) }, r.ListPlugins),
			p + "ValidatePlugin":   unary(op, r.ValidatePlugin),
			p + "LoadPlugin":       unary(op, r.LoadPlugin),
			p + "ActivatePlugin":   unary(op, r.ActivatePlugin),
			p + "DeactivatePlugin": unary(op, r.DeactivatePlugin),
			p + "ResetPlugin":      unary(op, r.ResetPlugin),
			p + "DeprecatePlugin":  unary(func() *pluginv1.DeprecatePluginRequest { return new(pluginv1.DeprecatePluginRequest) }, r.DeprecatePlugin),
			p + "ResolvePlugin":    unary(func() *pluginv1.ResolvePluginRequest { return new(pluginv1.ResolvePluginRequest) }, r.ResolvePlugin),
			p + "GetPluginHistory": unary(func() *pluginv1.GetPluginHistoryRequest { return new(pluginv1.GetPluginHistoryRequest) }, r.GetPluginHistory),
		},
		Streams: map[string]Stream{
			p + "WatchPluginEvents": {
				NewRequest: func() proto.Message { return new(pluginv1.WatchPluginEventsRequest) },
				Open: func(ctx context.Context, req proto.Message) (Cursor, error) {
					m := req.(*pluginv1.WatchPluginEventsRequest)
					w, err := svc.Watch(ctx, PluginWatchRequest(m))
					if err != nil {
						return nil, err
					}
					return &cursor[plugin.Event]{w: w, conv: func(ev *plugin.Event) proto.Message { return PluginWatchResponse(ev) },
						seq: func(ev *plugin.Event) uint64 { return ev.Sequence }, resume: m.GetFromSequence()}, nil
				},
			},
		},
	}
}

// PluginRPCs are the plugin service's unary RPCs on protobuf messages, for transports that
// want them typed (the server); Plugins has them by name.
type PluginRPCs struct{ Svc plugin.Service }

func ref(id, version string) plugin.Ref { return plugin.Ref{ID: id, Version: version} }

func (r PluginRPCs) operation(ctx context.Context, m *pluginv1.PluginOperationRequest, call func(context.Context, plugin.Ref, string) (plugin.Plugin, error)) (*pluginv1.PluginOperationResponse, error) {
	p, err := call(ctx, ref(m.GetId(), m.GetVersion()), m.GetReason())
	if err != nil {
		return nil, err
	}
	return &pluginv1.PluginOperationResponse{Plugin: pluginpb.Plugin(&p)}, nil
}

func (r PluginRPCs) ScanPlugins(ctx context.Context, _ *pluginv1.ScanPluginsRequest) (*pluginv1.ScanPluginsResponse, error) {
	rep, err := r.Svc.Scan(ctx)
	if err != nil {
		return nil, err
	}
	return pluginpb.ScanReport(&rep), nil
}

func (r PluginRPCs) GetPlugin(ctx context.Context, m *pluginv1.GetPluginRequest) (*pluginv1.GetPluginResponse, error) {
	p, err := r.Svc.Get(ctx, ref(m.GetId(), m.GetVersion()))
	if err != nil {
		return nil, err
	}
	return &pluginv1.GetPluginResponse{Plugin: pluginpb.Plugin(&p)}, nil
}

func (r PluginRPCs) ListPlugins(ctx context.Context, m *pluginv1.ListPluginsRequest) (*pluginv1.ListPluginsResponse, error) {
	page, err := r.Svc.List(ctx, plugin.ListRequest{States: m.GetStates(), ID: m.GetId(), Type: m.GetType(), Port: m.GetPort(),
		PageSize: int(m.GetPageSize()), PageToken: m.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &pluginv1.ListPluginsResponse{NextPageToken: page.NextPageToken}
	for i := range page.Plugins {
		res.Plugins = append(res.Plugins, pluginpb.Plugin(&page.Plugins[i]))
	}
	return res, nil
}

func (r PluginRPCs) ValidatePlugin(ctx context.Context, m *pluginv1.PluginOperationRequest) (*pluginv1.PluginOperationResponse, error) {
	return r.operation(ctx, m, r.Svc.Validate)
}

func (r PluginRPCs) LoadPlugin(ctx context.Context, m *pluginv1.PluginOperationRequest) (*pluginv1.PluginOperationResponse, error) {
	return r.operation(ctx, m, r.Svc.Load)
}

func (r PluginRPCs) ActivatePlugin(ctx context.Context, m *pluginv1.PluginOperationRequest) (*pluginv1.PluginOperationResponse, error) {
	return r.operation(ctx, m, r.Svc.Activate)
}

func (r PluginRPCs) DeactivatePlugin(ctx context.Context, m *pluginv1.PluginOperationRequest) (*pluginv1.PluginOperationResponse, error) {
	return r.operation(ctx, m, r.Svc.Deactivate)
}

func (r PluginRPCs) ResetPlugin(ctx context.Context, m *pluginv1.PluginOperationRequest) (*pluginv1.PluginOperationResponse, error) {
	return r.operation(ctx, m, r.Svc.Reset)
}

func (r PluginRPCs) DeprecatePlugin(ctx context.Context, m *pluginv1.DeprecatePluginRequest) (*pluginv1.PluginOperationResponse, error) {
	p, err := r.Svc.Deprecate(ctx, ref(m.GetId(), m.GetVersion()), m.GetReplacement(), m.GetReason())
	if err != nil {
		return nil, err
	}
	return &pluginv1.PluginOperationResponse{Plugin: pluginpb.Plugin(&p)}, nil
}

func (r PluginRPCs) ResolvePlugin(ctx context.Context, m *pluginv1.ResolvePluginRequest) (*pluginv1.ResolvePluginResponse, error) {
	p, err := r.Svc.Resolve(ctx, m.GetId(), m.GetConstraint())
	if err != nil {
		return nil, err
	}
	return &pluginv1.ResolvePluginResponse{Plugin: pluginpb.Plugin(&p), Endpoint: p.Endpoint, Generation: p.Generation}, nil
}

func (r PluginRPCs) GetPluginHistory(ctx context.Context, m *pluginv1.GetPluginHistoryRequest) (*pluginv1.GetPluginHistoryResponse, error) {
	page, err := r.Svc.History(ctx, plugin.HistoryRequest{Ref: ref(m.GetId(), m.GetVersion()), Limit: int(m.GetLimit()), PageToken: m.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &pluginv1.GetPluginHistoryResponse{NextPageToken: page.NextPageToken}
	for i := range page.Events {
		res.Events = append(res.Events, pluginpb.Event(&page.Events[i]))
	}
	return res, nil
}

// PluginWatchRequest is the domain's form of a plugin watch request.
func PluginWatchRequest(m *pluginv1.WatchPluginEventsRequest) plugin.WatchRequest {
	return plugin.WatchRequest{Ref: ref(m.GetId(), m.GetVersion()), States: m.GetStates(),
		FromSequence: m.GetFromSequence(), BookmarkInterval: time.Duration(m.GetBookmarkIntervalMs()) * time.Millisecond}
}

// PluginWatchResponse is one event of a plugin watch stream.
func PluginWatchResponse(ev *plugin.Event) *pluginv1.WatchPluginEventsResponse {
	return &pluginv1.WatchPluginEventsResponse{Event: pluginpb.Event(ev)}
}
