package server

import (
	"context"
	"log/slog"
	"time"

	"connectrpc.com/connect"

	pluginv1 "github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1/pluginv1connect"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/rpc"
)

// WithPlugins serves svc as hms.plugin.lifecycle.v1.PluginLifecycleManager beside the
// agent service: the same protocols, encodings, limits and access control.
func WithPlugins(svc plugin.Service) Option { return func(o *options) { o.plugins = svc } }

// pluginService is the plugin service on protobuf messages, answering domain errors, for
// both transports.
type pluginService struct {
	svc          plugin.Service
	rpc          rpc.PluginRPCs // the RPCs on protobuf messages, shared with the C library
	log          *slog.Logger
	writeTimeout time.Duration // of one message of a watch stream
}

// watch streams a plugin watch until the client goes away or the watch ends.
func (s *pluginService) watch(ctx context.Context, m *pluginv1.WatchPluginEventsRequest, ready func() error, send func(*pluginv1.WatchPluginEventsResponse) error) error {
	w, err := s.svc.Watch(ctx, rpc.PluginWatchRequest(m))
	if err != nil {
		return err
	}
	return pump(ctx, w, ready, send, rpc.PluginWatchResponse)
}

// connectPlugins is the plugin service as a Connect handler.
type connectPlugins struct{ *pluginService }

var _ pluginv1connect.PluginLifecycleManagerHandler = connectPlugins{}

func (c connectPlugins) ScanPlugins(ctx context.Context, req *connect.Request[pluginv1.ScanPluginsRequest]) (*connect.Response[pluginv1.ScanPluginsResponse], error) {
	return unary(ctx, c.log, req, c.rpc.ScanPlugins)
}

func (c connectPlugins) GetPlugin(ctx context.Context, req *connect.Request[pluginv1.GetPluginRequest]) (*connect.Response[pluginv1.GetPluginResponse], error) {
	return unary(ctx, c.log, req, c.rpc.GetPlugin)
}

func (c connectPlugins) ListPlugins(ctx context.Context, req *connect.Request[pluginv1.ListPluginsRequest]) (*connect.Response[pluginv1.ListPluginsResponse], error) {
	return unary(ctx, c.log, req, c.rpc.ListPlugins)
}

func (c connectPlugins) ValidatePlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, c.rpc.ValidatePlugin)
}

func (c connectPlugins) LoadPlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, c.rpc.LoadPlugin)
}

func (c connectPlugins) ActivatePlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, c.rpc.ActivatePlugin)
}

func (c connectPlugins) DeactivatePlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, c.rpc.DeactivatePlugin)
}

func (c connectPlugins) ResetPlugin(ctx context.Context, req *connect.Request[pluginv1.PluginOperationRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, c.rpc.ResetPlugin)
}

func (c connectPlugins) DeprecatePlugin(ctx context.Context, req *connect.Request[pluginv1.DeprecatePluginRequest]) (*connect.Response[pluginv1.PluginOperationResponse], error) {
	return unary(ctx, c.log, req, c.rpc.DeprecatePlugin)
}

func (c connectPlugins) ResolvePlugin(ctx context.Context, req *connect.Request[pluginv1.ResolvePluginRequest]) (*connect.Response[pluginv1.ResolvePluginResponse], error) {
	return unary(ctx, c.log, req, c.rpc.ResolvePlugin)
}

func (c connectPlugins) GetPluginHistory(ctx context.Context, req *connect.Request[pluginv1.GetPluginHistoryRequest]) (*connect.Response[pluginv1.GetPluginHistoryResponse], error) {
	return unary(ctx, c.log, req, c.rpc.GetPluginHistory)
}

func (c connectPlugins) WatchPluginEvents(ctx context.Context, req *connect.Request[pluginv1.WatchPluginEventsRequest], stream *connect.ServerStream[pluginv1.WatchPluginEventsResponse]) error {
	send := deadlineSend(ctx, c.writeTimeout, stream.Send)
	return connectError(c.log, c.watch(ctx, req.Msg, func() error { return send(nil) }, send))
}
