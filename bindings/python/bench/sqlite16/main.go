// Command sqlite16 measures durable transitions/s of N goroutines on the SQLite store
// (synchronous=full) through the Go API, for the Python binding's benchmark to compare
// with N Python threads on the same store in the same run. It prints one JSON line.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
)

func main() {
	dir := flag.String("dir", "", "data directory (required)")
	workers := flag.Int("workers", 16, "goroutines")
	seconds := flag.Float64("seconds", 3, "duration")
	locked := flag.Bool("locked", false, "lock each worker to its own OS thread (runtime.LockOSThread), as the goroutine "+
		"of a call into the C library from a foreign thread (a Python thread) is: a diagnostic of what that costs")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "sqlite16: -dir is required")
		os.Exit(2)
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, *dir, &sqlite.Options{Synchronous: "full"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	m, err := lifecycle.New(ctx, store, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := 0; i < *workers; i++ {
		if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("g-%d", i)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	var done atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	start := time.Now()
	for i := 0; i < *workers; i++ {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			if *locked {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			targets := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}
			for n := 0; time.Now().Before(deadline); n++ {
				res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: targets[n%2]})
				if err != nil || !res.Success {
					fmt.Fprintln(os.Stderr, "transition failed:", err)
					os.Exit(1)
				}
				done.Add(1)
			}
		}(fmt.Sprintf("g-%d", i))
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	m.Close()
	_ = store.Close()
	out, _ := json.Marshal(map[string]any{"workers": *workers, "locked": *locked, "transitions": done.Load(), "seconds": elapsed,
		"per_second": float64(done.Load()) / elapsed})
	fmt.Println(string(out))
}
