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

// pluginService adapts a plugin.Service to the generated handler interface.
type pluginService struct {
	svc plugin.Service
	log *slog.Logger
}

var _ pluginv1connect.PluginLifecycleManagerHandler = (*pluginService)(nil)

func (s *pluginService) answer(p plugin.Plugin, err error) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	if err != nil {
		return nil, connectError(s.log, err)
	}
	return connect.NewResponse(&pluginv1.PluginOperationResponse{Plugin: pluginpb.Plugin(&p)}), nil
}

func ref(id, version string) plugin.Ref { return plugin.Ref{ID: id, Version: version} }

func (s *pluginService) ScanPlugins(ctx context.Context, _ *connect.Request[pluginv1.ScanPluginsRequest]) (*connect.Response[pluginv1.ScanPluginsResponse], error) {
	rep, err := s.svc.Scan(ctx)
	if err != nil {
		return nil, connectError(s.log, err)
	}
	return connect.NewResponse(pluginpb.ScanReport(&rep)), nil
}

func (s *pluginService) GetPlugin(ctx context.Context, req *connect.Request[pluginv1.GetPluginRequest]) (*connect.Response[pluginv1.GetPluginResponse], error) {
	p, err := s.svc.Get(ctx, ref(req.Msg.GetId(), req.Msg.GetVersion()))
	if err != nil {
		return nil, connectError(s.log, err)
	}
	return connect.NewResponse(&pluginv1.GetPluginResponse{Plugin: pluginpb.Plugin(&p)}), nil
}

func (s *pluginService) ListPlugins(ctx context.Context, req *connect.Request[pluginv1.ListPluginsRequest]) (*connect.Response[pluginv1.ListPluginsResponse], error) {
	m := req.Msg
	page, err := s.svc.List(ctx, plugin.ListRequest{States: m.GetStates(), ID: m.GetId(), Type: m.GetType(), Port: m.GetPort(),
		PageSize: int(m.GetPageSize()), PageToken: m.GetPageToken()})
	if err != nil {
		return nil, connectError(s.log, err)
	}
	res := &pluginv1.ListPluginsResponse{NextPageToken: page.NextPageToken}
	for i := range page.Plugins {
		res.Plugins = append(res.Plugins, pluginpb.Plugin(&page.Plugins[i]))
	}
	return connect.NewResponse(res), nil
}

func (s *pluginService) ValidatePlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return s.answer(s.svc.Validate(ctx, ref(req.Msg.GetId(), req.Msg.GetVersion()), req.Msg.GetReason()))
}

func (s *pluginService) LoadPlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return s.answer(s.svc.Load(ctx, ref(req.Msg.GetId(), req.Msg.GetVersion()), req.Msg.GetReason()))
}

func (s *pluginService) ActivatePlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return s.answer(s.svc.Activate(ctx, ref(req.Msg.GetId(), req.Msg.GetVersion()), req.Msg.GetReason()))
}

func (s *pluginService) DeactivatePlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return s.answer(s.svc.Deactivate(ctx, ref(req.Msg.GetId(), req.Msg.GetVersion()), req.Msg.GetReason()))
}

func (s *pluginService) ResetPlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return s.answer(s.svc.Reset(ctx, ref(req.Msg.GetId(), req.Msg.GetVersion()), req.Msg.GetReason()))
}

func (s *pluginService) DeprecatePlugin(ctx context.Context, req *connect.Request[pluginv1.DeprecatePluginRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return s.answer(s.svc.Deprecate(ctx, ref(req.Msg.GetId(), req.Msg.GetVersion()), req.Msg.GetReplacement(), req.Msg.GetReason()))
}

func (s *pluginService) ResolvePlugin(ctx context.Context, req *connect.Request[pluginv1.ResolvePluginRequest]) (*connect.Response[pluginv1.ResolvePluginResponse], error) {
	p, err := s.svc.Resolve(ctx, req.Msg.GetId(), req.Msg.GetConstraint())
	if err != nil {
		return nil, connectError(s.log, err)
	}
	return connect.NewResponse(&pluginv1.ResolvePluginResponse{Plugin: pluginpb.Plugin(&p), Endpoint: p.Endpoint, Generation: p.Generation}), nil
}

func (s *pluginService) GetPluginHistory(ctx context.Context, req *connect.Request[pluginv1.GetPluginHistoryRequest]) (*connect.Response[pluginv1.GetPluginHistoryResponse], error) {
	m := req.Msg
	page, err := s.svc.History(ctx, plugin.HistoryRequest{Ref: ref(m.GetId(), m.GetVersion()), Limit: int(m.GetLimit()), PageToken: m.GetPageToken()})
	if err != nil {
		return nil, connectError(s.log, err)
	}
	res := &pluginv1.GetPluginHistoryResponse{NextPageToken: page.NextPageToken}
	for i := range page.Events {
		res.Events = append(res.Events, pluginpb.Event(&page.Events[i]))
	}
	return connect.NewResponse(res), nil
}

func (s *pluginService) WatchPluginEvents(ctx context.Context, req *connect.Request[pluginv1.WatchPluginEventsRequest], stream *connect.ServerStream[pluginv1.WatchPluginEventsResponse]) error {
	m := req.Msg
	w, err := s.svc.Watch(ctx, plugin.WatchRequest{Ref: ref(m.GetId(), m.GetVersion()), States: m.GetStates(),
		FromSequence: m.GetFromSequence(), BookmarkInterval: time.Duration(m.GetBookmarkIntervalMs()) * time.Millisecond})
	if err != nil {
		return connectError(s.log, err)
	}
	defer w.Close()
	if err := stream.Send(nil); err != nil { // headers now: the watch is established
		return err
	}
	for {
		ev, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return connectError(s.log, err)
		}
		if err := stream.Send(&pluginv1.WatchPluginEventsResponse{Event: pluginpb.Event(&ev)}); err != nil {
			return err
		}
	}
}
