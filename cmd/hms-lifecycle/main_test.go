package main

import (
	"context"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"demo"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"INITIALIZED   → ACTIVE        ok, NORMAL",
		"refused: agent agent-001 cannot go from ACTIVE to INITIALIZED; allowed next states: PAUSED, SUSPENDED, SHUTTING_DOWN, ERROR, MAINTENANCE",
		"refused: agent agent-001 stays ACTIVE: hook maintenance-window vetoed the transition: maintenance needs a change ticket",
		"ACTIVE        → MAINTENANCE   ok, MAINTENANCE",
		"ACTIVE        → ERROR         ok, ERROR_TRIGGERED",
		"TERMINATED    → ACTIVE        refused (forced): agent agent-001 is TERMINATED, a terminal state",
		"agent-001 is TERMINATED at revision 9",
		"#9 SHUTTING_DOWN → TERMINATED",
		"by operator:alice",
		"maintenance-window=ALLOWED",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"fly"}} {
		if err := run(context.Background(), args, &strings.Builder{}, &strings.Builder{}); exitCode(err) != exitUsage {
			t.Errorf("run(%q) = %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
}
