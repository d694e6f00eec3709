package plugin_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/store/memory"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
)

// BenchmarkScan1000: a plugin manager starting on a repository of 1,000 valid packages:
// each is read, validated, registered (Discovered) and moved to Registered — two events
// each — on the memory store and on SQLite. It reports the time of the whole start and,
// on the memory store, the heap kept afterwards per plugin (registry, engine and events).
func BenchmarkScan1000(b *testing.B) {
	repo := b.TempDir()
	for i := range 1000 {
		writePackage(b, repo, fmt.Sprintf("p%04d", i), manifestOf(fmt.Sprintf("AOS-Plugin%04d", i), "1.0.0", nil))
	}
	stores := map[string]func(b *testing.B) lifecycle.Store{
		"memory": func(*testing.B) lifecycle.Store { return memory.New() },
		"sqlite": func(b *testing.B) lifecycle.Store {
			s, err := sqlite.Open(ctx, b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, name := range []string{"memory", "sqlite"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s := stores[name](b)
				heap := heapNow()
				b.StartTimer()
				start := time.Now()
				m, err := plugin.New(ctx, s, &plugin.Options{Repository: repo, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(elapsed.Milliseconds()), "ms/scan")
				if name == "memory" { // SQLite's own caches come and go with GC timing
					b.ReportMetric(float64(int64(heapNow())-int64(heap))/1000, "B/plugin")
				}
				if page, _ := m.List(ctx, plugin.ListRequest{States: []plugin.State{plugin.StateRegistered}, PageSize: 1000}); len(page.Plugins) != 1000 {
					b.Fatalf("%d plugins registered", len(page.Plugins))
				}
				m.Close()
				s.(interface{ Close() error }).Close()
				b.StartTimer()
			}
		})
	}
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkActivation: activate → Active for the test plugin (a Go program serving an
// HTTP health check), deactivating between runs. It reports the median and p99 of the
// whole activation, of the plugin's own start-up (from its main to listening, as it
// reports), and of the difference: the manager's share, which includes starting the
// process and the health-check polling.
func BenchmarkActivation(b *testing.B) {
	repo := b.TempDir()
	ready := filepath.Join(b.TempDir(), "ready")
	writePackage(b, repo, "a", manifestOf("AOS-Fast", "1.0.0", run(map[string]any{"TESTPLUGIN_READY_FILE": ready})))
	m, _ := newManager(b, &plugin.Options{Repository: repo})
	ref := plugin.Ref{ID: "AOS-Fast", Version: "1.0.0"}
	if _, err := m.Load(ctx, ref, ""); err != nil {
		b.Fatal(err)
	}
	var total, own, overhead []time.Duration
	for b.Loop() {
		os.Remove(ready)
		start := time.Now()
		p, err := m.Activate(ctx, ref, "")
		if err != nil || p.State != plugin.StateActive {
			b.Fatal(p.LastError, err)
		}
		t := time.Since(start)
		b.StopTimer()
		data, _ := os.ReadFile(ready)
		f := strings.Fields(string(data))
		began, _ := strconv.ParseInt(f[0], 10, 64)
		listening, _ := strconv.ParseInt(f[1], 10, 64)
		o := time.Duration(listening - began)
		total, own, overhead = append(total, t), append(own, o), append(overhead, t-o)
		if _, err := m.Deactivate(ctx, ref, ""); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"total", total}, {"plugin", own}, {"manager", overhead}} {
		slices.Sort(s.d)
		b.ReportMetric(float64(s.d[len(s.d)/2].Microseconds())/1000, s.name+"-p50-ms")
		b.ReportMetric(float64(s.d[len(s.d)*99/100].Microseconds())/1000, s.name+"-p99-ms")
	}
}
