//go:build wasip1 && hms_plugins

package main

import (
	"context"

	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/rpc"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// pluginService says whether this module has the plugin service (hms_features).
const pluginService = true

// openPlugins opens the plugin registry on a memory store of its own (package plugin:
// never shared with agents), over the repository c names, if any.
func openPlugins(ctx context.Context, c *config) (rpc.Methods, func() error, error) {
	pm, err := plugin.New(ctx, memory.New(), &plugin.Options{Repository: c.PluginRepository, CorePorts: c.CorePorts})
	if err != nil {
		return rpc.Methods{}, nil, err
	}
	return rpc.Plugins(pm), pm.Close, nil
}
