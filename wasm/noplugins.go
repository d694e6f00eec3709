//go:build wasip1 && !hms_plugins

package main

import (
	"context"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/rpc"
)

// pluginService says whether this module has the plugin service (hms_features).
const pluginService = false

// openPlugins: this module has no plugin service (see the package comment); the binding
// opens the plugin service in the module built with -tags hms_plugins.
func openPlugins(_ context.Context, c *config) (rpc.Methods, func() error, error) {
	if c.PluginRepository != "" || len(c.CorePorts) > 0 {
		return rpc.Methods{}, nil, lifecycle.Errorf(lifecycle.CodeInvalidArgument,
			"config: pluginRepository and corePorts are settings of the plugin service, which this module is built without (-tags hms_plugins)")
	}
	return rpc.Methods{}, nil, nil
}
