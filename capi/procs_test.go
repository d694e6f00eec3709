package main

import (
	"runtime"
	"testing"
)

func TestExtraProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	p := &extraProcs{base: 3}
	for i := 1; i <= maxExtraProcs+5; i++ {
		p.arrived()
		if want := 3 + min(i, maxExtraProcs); runtime.GOMAXPROCS(0) != want {
			t.Fatalf("after %d threads GOMAXPROCS is %d, want %d", i, runtime.GOMAXPROCS(0), want)
		}
	}
	// Set by the user: left alone.
	runtime.GOMAXPROCS(5)
	t.Setenv("GOMAXPROCS", "5")
	p = newExtraProcs()
	p.arrived()
	if runtime.GOMAXPROCS(0) != 5 {
		t.Fatalf("GOMAXPROCS set by the user changed to %d", runtime.GOMAXPROCS(0))
	}
}
