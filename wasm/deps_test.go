//go:build !wasip1

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The WebAssembly module links the core and the memory store only: no server, client,
// network or database code (size, and nothing a page could not use).
func TestNoServerOrClientCode(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(cmd.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"net/http", "connectrpc.com/", "google.golang.org/grpc", "golang.org/x/net/http2",
		"modernc.org/", "github.com/jackc/", "database/sql", "os/exec",
		"github.com/hms-lifecycle/lifecycle/server", "github.com/hms-lifecycle/lifecycle/client",
		"github.com/hms-lifecycle/lifecycle/plugin", "github.com/hms-lifecycle/lifecycle/webhook",
		"github.com/hms-lifecycle/lifecycle/store/sqlite", "github.com/hms-lifecycle/lifecycle/store/postgres",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == strings.TrimSuffix(f, "/") || strings.HasPrefix(dep, f) && (strings.HasSuffix(f, "/") || strings.HasPrefix(dep, f+"/")) {
				if dep == "database/sql/driver" {
					continue // an interface package (github.com/google/uuid implements it)
				}
				t.Errorf("the WebAssembly module depends on %s", dep)
			}
		}
	}
}
