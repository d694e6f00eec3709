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
// HTTP health check), deactivating between runs. It reports medians and p99s of: the whole
// activation (total); from the call to the plugin's main (start, mostly creating the
// process and the plugin's Go runtime starting); from its main to listening (plugin, its
// own start-up); and from listening to Active returned (ready: the manager noticing the
// health check pass and recording it).
func BenchmarkActivation(b *testing.B) {
	repo := b.TempDir()
	ready := filepath.Join(b.TempDir(), "ready")
	writePackage(b, repo, "a", manifestOf("AOS-Fast", "1.0.0", run(map[string]any{"TESTPLUGIN_READY_FILE": ready})))
	m, _ := newManager(b, &plugin.Options{Repository: repo})
	ref := plugin.Ref{ID: "AOS-Fast", Version: "1.0.0"}
	if _, err := m.Load(ctx, ref, ""); err != nil {
		b.Fatal(err)
	}
	var total, start, own, readyLat []time.Duration
	for b.Loop() {
		os.Remove(ready)
		t0 := time.Now()
		p, err := m.Activate(ctx, ref, "")
		if err != nil || p.State != plugin.StateActive {
			b.Fatal(p.LastError, err)
		}
		t1 := time.Now()
		b.StopTimer()
		data, _ := os.ReadFile(ready)
		f := strings.Fields(string(data))
		began, _ := strconv.ParseInt(f[0], 10, 64)
		listening, _ := strconv.ParseInt(f[1], 10, 64)
		total = append(total, t1.Sub(t0))
		start = append(start, time.Unix(0, began).Sub(t0))
		own = append(own, time.Duration(listening-began))
		readyLat = append(readyLat, t1.Sub(time.Unix(0, listening)))
		if _, err := m.Deactivate(ctx, ref, ""); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"total", total}, {"start", start}, {"plugin", own}, {"ready", readyLat}} {
		slices.Sort(s.d)
		b.ReportMetric(float64(s.d[len(s.d)/2].Microseconds())/1000, s.name+"-p50-ms")
		b.ReportMetric(float64(s.d[len(s.d)*99/100].Microseconds())/1000, s.name+"-p99-ms")
	}
}
