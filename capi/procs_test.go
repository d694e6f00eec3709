package main

import (
	"runtime"
	"testing"
)

func TestExtraProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(3)
	p := &extraProcs{base: 3}
	// Only memory-store managers so far: threads are counted, GOMAXPROCS left alone.
	for range 4 {
		p.arrived()
	}
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("GOMAXPROCS %d before a manager that waits was opened, want 3", got)
	}
	p.wait()
	for i := 4; i <= maxExtraProcs+5; i++ {
		if want := 3 + min(i, maxExtraProcs); runtime.GOMAXPROCS(0) != want {
			t.Fatalf("with %d threads GOMAXPROCS is %d, want %d", i, runtime.GOMAXPROCS(0), want)
		}
		p.arrived()
	}
	// Set by the user: left alone.
	runtime.GOMAXPROCS(5)
	t.Setenv("GOMAXPROCS", "5")
	p = newExtraProcs()
	p.arrived()
	p.wait()
	if runtime.GOMAXPROCS(0) != 5 {
		t.Fatalf("GOMAXPROCS set by the user changed to %d", runtime.GOMAXPROCS(0))
	}
}
