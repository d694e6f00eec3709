//go:build wasip1

package plugin

import (
	"context"
	"errors"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
)

// Under wasip1 (the WebAssembly core of the TypeScript binding) there are no processes:
// the registry works as elsewhere (scan, validate, load, deprecate, resolve, history,
// watch), and activating a version that has a runtime block is refused by canRun before
// anything is recorded. A version without one has nothing to start and activates as
// elsewhere. The types below stand in for process.go and contain.go; nothing creates a
// process, so their methods are never reached.

// canRun refuses to start ref's process: CodeFailedPrecondition, naming why.
func canRun(ref Ref) error {
	return lifecycle.Errorf(lifecycle.CodeFailedPrecondition,
		"plugin %s has a runtime block, and the WebAssembly core cannot start processes: activate it through a server (remote mode)", ref)
}

type spawner struct{}

func newSpawner() *spawner { return &spawner{} }

func (*spawner) close() {}

// start is not reached (activate asks canRun first); it fails all the same.
func (*spawner) start(string, *manifest.Manifest, uint64, string) (*process, error) {
	return nil, errors.New("the WebAssembly core cannot start processes")
}

type process struct {
	generation   uint64
	endpoint     string
	healthFailed bool
}

func (*process) pid() int                                             { return 0 }
func (*process) waitHealthy(context.Context, *manifest.Runtime) error { return nil }
func (*process) watch(ctx context.Context) string                     { <-ctx.Done(); return "" }
func (*process) stop(time.Duration) string                            { return "stopped" }
func (*process) tail() string                                         { return "" }

type procInfo struct{ pid int }

// killMarked finds nothing: no process of this module can have been left running.
func killMarked(string, time.Duration) (found, left []procInfo) { return nil, nil }

func procList([]procInfo) string { return "" }

// processIdentity is "": a WebAssembly instance has no identity another can check, and
// its registry (the memory store) ends with it.
func processIdentity() string { return "" }

func identityAlive(string) bool { return false }
