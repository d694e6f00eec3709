package main

import "C"

import (
	"os"
	"runtime"
	"sync"
)

// procs gives the Go runtime one more processor (P) for each thread of the host program
// that calls into the library, once a manager whose calls wait for goroutines of their own
// is open (ffi.Library.Waits: a durable store, remote mode).
//
// Why: a call from a thread Go did not create returns to C in the runtime's system-call
// state, keeping its P (so that its next call re-enters cheaply) until the runtime's
// monitor takes it back, after 20 µs to 10 ms. With more calling threads than Ps, every P
// can be parked so, and the goroutines the callers wait for — the SQLite store's
// group-commit writer, the goroutines that wake the callers — wait for the monitor: sixteen
// Python threads on SQLite made about 10,500 transitions/s with GOMAXPROCS at 2 (the CPUs
// here) and about 13,500/s with a P per thread (bindings/python/README.md, "Speed"). On
// the memory store, where a call finishes on its caller's thread, the extra Ps only let
// more threads run Go code than there are CPUs (sixteen threads made about 25% fewer
// calls), so there the library leaves GOMAXPROCS alone. A package variable, as lib is:
// the C ABI has no context to carry it.
//
// A P is only the right to run Go code; the threads that hold these are outside Go. At
// most maxExtraProcs are added, for hosts that start a thread per task; the runtime's
// GOMAXPROCS variable, when set, is left as the user set it.
var procs = newExtraProcs()

const maxExtraProcs = 32

type extraProcs struct {
	mu      sync.Mutex
	base    int // GOMAXPROCS at load; 0 when the user set it
	threads int // calling threads seen, at most maxExtraProcs
	on      bool
}

func newExtraProcs() *extraProcs {
	p := &extraProcs{}
	if os.Getenv("GOMAXPROCS") == "" {
		p.base = runtime.GOMAXPROCS(0)
	}
	return p
}

// arrived counts a thread's first call.
func (p *extraProcs) arrived() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.threads < maxExtraProcs {
		p.threads++
		p.apply()
	}
}

// wait turns the extra Ps on, after a manager whose calls wait was opened.
func (p *extraProcs) wait() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		p.on = true
		p.apply()
	}
}

// apply sets GOMAXPROCS, which stops the world for a moment: once per calling thread at
// most. Call with mu held.
func (p *extraProcs) apply() {
	if p.on && p.base != 0 {
		runtime.GOMAXPROCS(p.base + p.threads)
	}
}

// hmsgo_thread_arrived is called by hms.c on a thread's first call into the library.
//
//export hmsgo_thread_arrived
func hmsgo_thread_arrived() { procs.arrived() }
