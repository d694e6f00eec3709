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
	p := PluginService + "/"
	op := func(call func(context.Context, plugin.Ref, string) (plugin.Plugin, error)) Unary {
		return unary(func() *pluginv1.PluginOperationRequest { return new(pluginv1.PluginOperationRequest) },
			func(ctx context.Context, m *pluginv1.PluginOperationRequest) (*pluginv1.PluginOperationResponse, error) {
				pl, err := call(ctx, ref(m.GetId(), m.GetVersion()), m.GetReason())
				if err != nil {
					return nil, err
				}
				return &pluginv1.PluginOperationResponse{Plugin: pluginpb.Plugin(&pl)}, nil
			})
	}
	return Methods{
		Unary: map[string]Unary{
			p + "ScanPlugins": unary(func() *pluginv1.ScanPluginsRequest { return new(pluginv1.ScanPluginsRequest) },
				func(ctx context.Context, _ *pluginv1.ScanPluginsRequest) (*pluginv1.ScanPluginsResponse, error) {
					rep, err := svc.Scan(ctx)
					if err != nil {
						return nil, err
					}
					return pluginpb.ScanReport(&rep), nil
				}),
			p + "GetPlugin": unary(func() *pluginv1.GetPluginRequest { return new(pluginv1.GetPluginRequest) },
				func(ctx context.Context, m *pluginv1.GetPluginRequest) (*pluginv1.GetPluginResponse, error) {
					pl, err := svc.Get(ctx, ref(m.GetId(), m.GetVersion()))
					if err != nil {
						return nil, err
					}
					return &pluginv1.GetPluginResponse{Plugin: pluginpb.Plugin(&pl)}, nil
				}),
			p + "ListPlugins": unary(func() *pluginv1.ListPluginsRequest { return new(pluginv1.ListPluginsRequest) },
				func(ctx context.Context, m *pluginv1.ListPluginsRequest) (*pluginv1.ListPluginsResponse, error) {
					page, err := svc.List(ctx, plugin.ListRequest{States: m.GetStates(), ID: m.GetId(), Type: m.GetType(), Port: m.GetPort(),
						PageSize: int(m.GetPageSize()), PageToken: m.GetPageToken()})
					if err != nil {
						return nil, err
					}
					res := &pluginv1.ListPluginsResponse{NextPageToken: page.NextPageToken}
					for i := range page.Plugins {
						res.Plugins = append(res.Plugins, pluginpb.Plugin(&page.Plugins[i]))
					}
					return res, nil
				}),
			p + "ValidatePlugin":   op(svc.Validate),
			p + "LoadPlugin":       op(svc.Load),
			p + "ActivatePlugin":   op(svc.Activate),
			p + "DeactivatePlugin": op(svc.Deactivate),
			p + "ResetPlugin":      op(svc.Reset),
			p + "DeprecatePlugin": unary(func() *pluginv1.DeprecatePluginRequest { return new(pluginv1.DeprecatePluginRequest) },
				func(ctx context.Context, m *pluginv1.DeprecatePluginRequest) (*pluginv1.PluginOperationResponse, error) {
					pl, err := svc.Deprecate(ctx, ref(m.GetId(), m.GetVersion()), m.GetReplacement(), m.GetReason())
					if err != nil {
						return nil, err
					}
					return &pluginv1.PluginOperationResponse{Plugin: pluginpb.Plugin(&pl)}, nil
				}),
			p + "ResolvePlugin": unary(func() *pluginv1.ResolvePluginRequest { return new(pluginv1.ResolvePluginRequest) },
				func(ctx context.Context, m *pluginv1.ResolvePluginRequest) (*pluginv1.ResolvePluginResponse, error) {
					pl, err := svc.Resolve(ctx, m.GetId(), m.GetConstraint())
					if err != nil {
						return nil, err
					}
					return &pluginv1.ResolvePluginResponse{Plugin: pluginpb.Plugin(&pl), Endpoint: pl.Endpoint, Generation: pl.Generation}, nil
				}),
			p + "GetPluginHistory": unary(func() *pluginv1.GetPluginHistoryRequest { return new(pluginv1.GetPluginHistoryRequest) },
				func(ctx context.Context, m *pluginv1.GetPluginHistoryRequest) (*pluginv1.GetPluginHistoryResponse, error) {
					page, err := svc.History(ctx, plugin.HistoryRequest{Ref: ref(m.GetId(), m.GetVersion()), Limit: int(m.GetLimit()), PageToken: m.GetPageToken()})
					if err != nil {
						return nil, err
					}
					res := &pluginv1.GetPluginHistoryResponse{NextPageToken: page.NextPageToken}
					for i := range page.Events {
						res.Events = append(res.Events, pluginpb.Event(&page.Events[i]))
					}
					return res, nil
				}),
		},
		Streams: map[string]Stream{
			p + "WatchPluginEvents": {
				NewRequest: func() proto.Message { return new(pluginv1.WatchPluginEventsRequest) },
				Open: func(ctx context.Context, req proto.Message) (Cursor, error) {
					m := req.(*pluginv1.WatchPluginEventsRequest)
					w, err := svc.Watch(ctx, plugin.WatchRequest{Ref: ref(m.GetId(), m.GetVersion()), States: m.GetStates(),
						FromSequence: m.GetFromSequence(), BookmarkInterval: time.Duration(m.GetBookmarkIntervalMs()) * time.Millisecond})
					if err != nil {
						return nil, err
					}
					return cursor[plugin.Event]{w, func(ev *plugin.Event) proto.Message {
						return &pluginv1.WatchPluginEventsResponse{Event: pluginpb.Event(ev)}
					}}, nil
				},
			},
		},
	}
}

func ref(id, version string) plugin.Ref { return plugin.Ref{ID: id, Version: version} }

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
