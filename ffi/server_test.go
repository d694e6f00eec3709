package ffi_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/server"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// startServer serves a fresh manager on the memory store (and a plugin manager of repo,
// if any) on a loopback port, until the test ends; it returns the base URL.
func startServer(t testing.TB, repo string) string {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	m, err := lifecycle.New(ctx, memory.New(), &lifecycle.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	plugins, err := plugin.New(ctx, memory.New(), &plugin.Options{Repository: repo, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(m, server.WithLogger(log), server.WithPlugins(plugins))
	go srv.Serve(ln)
	t.Cleanup(func() {
		// Shutdown, not Close: a stream the client left open would keep it waiting.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Errorf("server shutdown: %v: a client left a stream open\n%s", err, b.String())
		}
		m.Close()
		plugins.Close()
	})
	return "http://" + ln.Addr().String()
}

// startStoppableServer is startServer with a function that stops the server at once.
func startStoppableServer(t testing.TB) (string, func()) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	m, err := lifecycle.New(ctx, memory.New(), &lifecycle.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(m, server.WithLogger(log))
	go srv.Serve(ln)
	stop := func() { srv.Close(); m.Close() } // abruptly, as a killed server
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
