package lifecycle_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreDependencies keeps the domain free of adapters: the core package and the state
// machine engine never import a database driver, a transport or the testing package, so
// they build for WebAssembly and into the C library unchanged.
func TestCoreDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "./statemachine").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// database/sql/driver is allowed: github.com/google/uuid implements its interfaces.
	forbiddenPackages := []string{"testing", "database/sql", "net/http"}
	forbiddenModules := []string{"google.golang.org/grpc", "connectrpc.com/", "modernc.org/sqlite",
		"github.com/jackc/pgx", "github.com/hms-lifecycle/lifecycle/store/",
		"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbiddenPackages {
			if dep == f {
				t.Errorf("the core depends on %s", dep)
			}
		}
		for _, f := range forbiddenModules {
			if strings.HasPrefix(dep, f) {
				t.Errorf("the core depends on %s", dep)
			}
		}
	}
}

// TestLibraryNeedsNoExporter: the C library traces nothing by itself and links no
// OpenTelemetry SDK or exporter (the server's command does, for --otlp-endpoint).
func TestLibraryNeedsNoExporter(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./capi", "./ffi").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "go.opentelemetry.io/otel/sdk") || strings.HasPrefix(dep, "go.opentelemetry.io/otel/exporters") {
			t.Errorf("the C library depends on %s", dep)
		}
	}
}
