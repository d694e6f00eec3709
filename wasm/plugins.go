//go:build wasip1 && hms_plugins

package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/rpc"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// pluginService says whether this module has the plugin service (hms_features).
const pluginService = true

// openPlugins opens the plugin registry on a memory store of its own (package plugin:
// never shared with agents), over the repository c names, if any. Its log says errors
// only: its warnings concern what WASI has not (file-system notifications, processes
// left by an earlier manager) and would be printed at every open.
func openPlugins(ctx context.Context, c *config) (rpc.Methods, func() error, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	pm, err := plugin.New(ctx, memory.New(), &plugin.Options{Repository: c.PluginRepository, CorePorts: c.CorePorts, Logger: log})
	if err != nil {
		return rpc.Methods{}, nil, err
	}
	return rpc.Plugins(pm), pm.Close, nil
}
