package server

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	pluginv1 "github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1/pluginv1connect"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/plugin/pluginpb"
)

// WithPlugins serves svc as hms.plugin.lifecycle.v1.PluginLifecycleManager beside the
// agent service: the same protocols, encodings, limits and access control.
func WithPlugins(svc plugin.Service) Option { return func(o *options) { o.plugins = svc } }

// pluginService is the plugin service on protobuf messages, answering domain errors, for
// both transports.
type pluginService struct {
	svc          plugin.Service
	log          *slog.Logger
	writeTimeout time.Duration // of one message of a watch stream
}

func ref(id, version string) plugin.Ref { return plugin.Ref{ID: id, Version: version} }

func operation(call func(context.Context, plugin.Ref, string) (plugin.Plugin, error)) func(context.Context, *pluginv1.PluginOperationRequest) (*pluginv1.PluginOperationResponse, error) {
	return func(ctx context.Context, m *pluginv1.PluginOperationRequest) (*pluginv1.PluginOperationResponse, error) {
		p, err := call(ctx, ref(m.GetId(), m.GetVersion()), m.GetReason())
		if err != nil {
			return nil, err
		}
		return &pluginv1.PluginOperationResponse{Plugin: pluginpb.Plugin(&p)}, nil
	}
}

func (s *pluginService) scan(ctx context.Context, _ *pluginv1.ScanPluginsRequest) (*pluginv1.ScanPluginsResponse, error) {
	rep, err := s.svc.Scan(ctx)
	if err != nil {
		return nil, err
	}
	return pluginpb.ScanReport(&rep), nil
}

func (s *pluginService) get(ctx context.Context, m *pluginv1.GetPluginRequest) (*pluginv1.GetPluginResponse, error) {
	p, err := s.svc.Get(ctx, ref(m.GetId(), m.GetVersion()))
	if err != nil {
		return nil, err
	}
	return &pluginv1.GetPluginResponse{Plugin: pluginpb.Plugin(&p)}, nil
}

func (s *pluginService) list(ctx context.Context, m *pluginv1.ListPluginsRequest) (*pluginv1.ListPluginsResponse, error) {
	page, err := s.svc.List(ctx, plugin.ListRequest{States: m.GetStates(), ID: m.GetId(), Type: m.GetType(), Port: m.GetPort(),
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

func (s *pluginService) deprecate(ctx context.Context, m *pluginv1.DeprecatePluginRequest) (*pluginv1.PluginOperationResponse, error) {
	p, err := s.svc.Deprecate(ctx, ref(m.GetId(), m.GetVersion()), m.GetReplacement(), m.GetReason())
	if err != nil {
		return nil, err
	}
	return &pluginv1.PluginOperationResponse{Plugin: pluginpb.Plugin(&p)}, nil
}

func (s *pluginService) resolve(ctx context.Context, m *pluginv1.ResolvePluginRequest) (*pluginv1.ResolvePluginResponse, error) {
	p, err := s.svc.Resolve(ctx, m.GetId(), m.GetConstraint())
	if err != nil {
		return nil, err
	}
	return &pluginv1.ResolvePluginResponse{Plugin: pluginpb.Plugin(&p), Endpoint: p.Endpoint, Generation: p.Generation}, nil
}

func (s *pluginService) history(ctx context.Context, m *pluginv1.GetPluginHistoryRequest) (*pluginv1.GetPluginHistoryResponse, error) {
	page, err := s.svc.History(ctx, plugin.HistoryRequest{Ref: ref(m.GetId(), m.GetVersion()), Limit: int(m.GetLimit()), PageToken: m.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &pluginv1.GetPluginHistoryResponse{NextPageToken: page.NextPageToken}
	for i := range page.Events {
		res.Events = append(res.Events, pluginpb.Event(&page.Events[i]))
	}
	return res, nil
}

func (s *pluginService) watch(ctx context.Context, m *pluginv1.WatchPluginEventsRequest, ready func() error, send func(*pluginv1.WatchPluginEventsResponse) error) error {
	w, err := s.svc.Watch(ctx, plugin.WatchRequest{Ref: ref(m.GetId(), m.GetVersion()), States: m.GetStates(),
		FromSequence: m.GetFromSequence(), BookmarkInterval: time.Duration(m.GetBookmarkIntervalMs()) * time.Millisecond})
	if err != nil {
		return err
	}
	return pump(ctx, w, ready, send, func(ev *plugin.Event) *pluginv1.WatchPluginEventsResponse {
		return &pluginv1.WatchPluginEventsResponse{Event: pluginpb.Event(ev)}
	})
}

// connectPlugins is the plugin service as a Connect handler.
type connectPlugins struct{ *pluginService }

var _ pluginv1connect.PluginLifecycleManagerHandler = connectPlugins{}

func (c connectPlugins) ScanPlugins(ctx context.Context, req *connect.Request[pluginv1.ScanPluginsRequest]) (*connect.Response[pluginv1.ScanPluginsResponse], error) {
	return unary(ctx, c.log, req, c.scan)
}

func (c connectPlugins) GetPlugin(ctx context.Context, req *connect.Request[pluginv1.GetPluginRequest]) (*connect.Response[pluginv1.GetPluginResponse], error) {
	return unary(ctx, c.log, req, c.get)
}

func (c connectPlugins) ListPlugins(ctx context.Context, req *connect.Request[pluginv1.ListPluginsRequest]) (*connect.Response[pluginv1.ListPluginsResponse], error) {
	return unary(ctx, c.log, req, c.list)
}

func (c connectPlugins) ValidatePlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, operation(c.svc.Validate))
}

func (c connectPlugins) LoadPlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, operation(c.svc.Load))
}

func (c connectPlugins) ActivatePlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, operation(c.svc.Activate))
}

func (c connectPlugins) DeactivatePlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, operation(c.svc.Deactivate))
}

func (c connectPlugins) ResetPlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, operation(c.svc.Reset))
}

func (c connectPlugins) DeprecatePlugin(ctx context.Context, req *connect.Request[pluginv1.DeprecatePluginRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, c.deprecate)
}

func (c connectPlugins) ResolvePlugin(ctx context.Context, req *connect.Request[pluginv1.ResolvePluginRequest]) (*connect.Response[pluginv1.ResolvePluginResponse], error) {
	return unary(ctx, c.log, req, c.resolve)
}

func (c connectPlugins) GetPluginHistory(ctx context.Context, req *connect.Request[pluginv1.GetPluginHistoryRequest]) (*connect.Response[pluginv1.GetPluginHistoryResponse], error) {
	return unary(ctx, c.log, req, c.history)
}

func (c connectPlugins) WatchPluginEvents(ctx context.Context, req *connect.Request[pluginv1.WatchPluginEventsRequest], stream *connect.ServerStream[pluginv1.WatchPluginEventsResponse]) error {
	send := deadlineSend(ctx, c.writeTimeout, stream.Send)
	return connectError(c.log, c.watch(ctx, req.Msg, func() error { return send(nil) }, send))
}
