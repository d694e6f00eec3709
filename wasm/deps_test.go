//go:build !wasip1

package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The WebAssembly modules link the core and the memory store only: no server, client,
// network or database code, no process supervision (size, and nothing a page could not
// use). The agent module links no plugin code at all (its initialization would slow every
// instantiation down: main.go); the plugin module links package plugin, whose process
// parts are not built for wasip1.
func TestNoServerOrClientCode(t *testing.T) {
	forbidden := []string{
		"net/http", "connectrpc.com/", "google.golang.org/grpc", "golang.org/x/net/http2",
		"modernc.org/", "github.com/jackc/", "database/sql", "os/exec", "golang.org/x/sys/unix",
		"github.com/hms-lifecycle/lifecycle/server", "github.com/hms-lifecycle/lifecycle/client",
		"github.com/hms-lifecycle/lifecycle/webhook",
		"github.com/hms-lifecycle/lifecycle/store/sqlite", "github.com/hms-lifecycle/lifecycle/store/postgres",
	}
	slow := []string{
		"github.com/hms-lifecycle/lifecycle/plugin", "github.com/santhosh-tekuri/jsonschema/",
		"github.com/Masterminds/semver/", "google.golang.org/protobuf/encoding/protojson",
	}
	for _, build := range []struct {
		tags   string
		forbid []string
		need   string
	}{
		{"", append(forbidden, slow...), "github.com/hms-lifecycle/lifecycle/rpc"},
		{"hms_plugins", forbidden, "github.com/hms-lifecycle/lifecycle/plugin"},
	} {
		cmd := exec.Command("go", "list", "-deps", "-tags="+build.tags, ".")
		cmd.Env = append(cmd.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags=%q: %v\n%s", build.tags, err, out)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, build.need) {
			t.Errorf("tags %q: the module does not link %s", build.tags, build.need)
		}
		for _, dep := range deps {
			for _, f := range build.forbid {
				if dep == strings.TrimSuffix(f, "/") || strings.HasPrefix(dep, f) && (strings.HasSuffix(f, "/") || strings.HasPrefix(dep, f+"/")) {
					if dep == "database/sql/driver" {
						continue // an interface package (github.com/google/uuid implements it)
					}
					t.Errorf("tags %q: the WebAssembly module depends on %s", build.tags, dep)
				}
			}
		}
	}
}
