package client

import (
	"context"

	"connectrpc.com/connect"

	pluginv1 "github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/plugin/pluginpb"
)

// Plugins is the server's plugin lifecycle manager, as a plugin.Service.
func (c *Client) Plugins() plugin.Service { return pluginClient{c} }

type pluginClient struct{ c *Client }

func (p pluginClient) op(res *connect.Response[pluginv1.PluginOperationResponse], err error) (plugin.Plugin, error) {
	if err != nil {
		return plugin.Plugin{}, domainError(err)
	}
	return pluginpb.FromPlugin(res.Msg.GetPlugin()), nil
}

func opReq(ref plugin.Ref, reason string) *connect.Request[pluginv1.PluginOperationRequest] {
	return connect.NewRequest(&pluginv1.PluginOperationRequest{Id: ref.ID, Version: ref.Version, Reason: reason})
}

func (p pluginClient) Scan(ctx context.Context) (plugin.ScanReport, error) {
	res, err := p.c.plugins.ScanPlugins(ctx, connect.NewRequest(&pluginv1.ScanPluginsRequest{}))
	if err != nil {
		return plugin.ScanReport{}, domainError(err)
	}
	return pluginpb.FromScanReport(res.Msg), nil
}

func (p pluginClient) Get(ctx context.Context, ref plugin.Ref) (plugin.Plugin, error) {
	res, err := p.c.plugins.GetPlugin(ctx, connect.NewRequest(&pluginv1.GetPluginRequest{Id: ref.ID, Version: ref.Version}))
	if err != nil {
		return plugin.Plugin{}, domainError(err)
	}
	return pluginpb.FromPlugin(res.Msg.GetPlugin()), nil
}

func (p pluginClient) List(ctx context.Context, req plugin.ListRequest) (plugin.Page, error) {
	res, err := p.c.plugins.ListPlugins(ctx, connect.NewRequest(&pluginv1.ListPluginsRequest{States: req.States, Id: req.ID,
		Type: req.Type, Port: req.Port, PageSize: int32(req.PageSize), PageToken: req.PageToken}))
	if err != nil {
		return plugin.Page{}, domainError(err)
	}
	page := plugin.Page{NextPageToken: res.Msg.GetNextPageToken()}
	for _, pb := range res.Msg.GetPlugins() {
		page.Plugins = append(page.Plugins, pluginpb.FromPlugin(pb))
	}
	return page, nil
}

func (p pluginClient) Validate(ctx context.Context, ref plugin.Ref, reason string) (plugin.Plugin, error) {
	return p.op(p.c.plugins.ValidatePlugin(ctx, opReq(ref, reason)))
}

func (p pluginClient) Load(ctx context.Context, ref plugin.Ref, reason string) (plugin.Plugin, error) {
	return p.op(p.c.plugins.LoadPlugin(ctx, opReq(ref, reason)))
}

func (p pluginClient) Activate(ctx context.Context, ref plugin.Ref, reason string) (plugin.Plugin, error) {
	return p.op(p.c.plugins.ActivatePlugin(ctx, opReq(ref, reason)))
}

func (p pluginClient) Deactivate(ctx context.Context, ref plugin.Ref, reason string) (plugin.Plugin, error) {
	return p.op(p.c.plugins.DeactivatePlugin(ctx, opReq(ref, reason)))
}

func (p pluginClient) Reset(ctx context.Context, ref plugin.Ref, reason string) (plugin.Plugin, error) {
	return p.op(p.c.plugins.ResetPlugin(ctx, opReq(ref, reason)))
}

func (p pluginClient) Deprecate(ctx context.Context, ref plugin.Ref, replacement, reason string) (plugin.Plugin, error) {
	return p.op(p.c.plugins.DeprecatePlugin(ctx, connect.NewRequest(&pluginv1.DeprecatePluginRequest{
		Id: ref.ID, Version: ref.Version, Replacement: replacement, Reason: reason})))
}

func (p pluginClient) Resolve(ctx context.Context, id, constraint string) (plugin.Plugin, error) {
	res, err := p.c.plugins.ResolvePlugin(ctx, connect.NewRequest(&pluginv1.ResolvePluginRequest{Id: id, Constraint: constraint}))
	if err != nil {
		return plugin.Plugin{}, domainError(err)
	}
	return pluginpb.FromPlugin(res.Msg.GetPlugin()), nil
}

func (p pluginClient) History(ctx context.Context, req plugin.HistoryRequest) (plugin.HistoryPage, error) {
	res, err := p.c.plugins.GetPluginHistory(ctx, connect.NewRequest(&pluginv1.GetPluginHistoryRequest{Id: req.ID, Version: req.Version,
		Limit: int32(req.Limit), PageToken: req.PageToken}))
	if err != nil {
		return plugin.HistoryPage{}, domainError(err)
	}
	page := plugin.HistoryPage{NextPageToken: res.Msg.GetNextPageToken()}
	for _, pb := range res.Msg.GetEvents() {
		page.Events = append(page.Events, pluginpb.FromEvent(pb))
	}
	return page, nil
}

func (p pluginClient) Watch(ctx context.Context, req plugin.WatchRequest) (plugin.EventStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	s, err := p.c.plugins.WatchPluginEvents(ctx, connect.NewRequest(&pluginv1.WatchPluginEventsRequest{Id: req.ID, Version: req.Version,
		States: req.States, FromSequence: req.FromSequence, BookmarkIntervalMs: int32(req.BookmarkInterval.Milliseconds())}))
	if err != nil {
		cancel()
		return nil, domainError(err)
	}
	return newWatch(s, cancel, func(m *pluginv1.WatchPluginEventsResponse) plugin.Event { return pluginpb.FromEvent(m.GetEvent()) },
		func(m *pluginv1.WatchPluginEventsResponse) uint64 { return m.GetEvent().GetSequence() }, req.FromSequence), nil
}
