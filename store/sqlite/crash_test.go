package sqlite_test

import (
	"os"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

// TestCrashChild is the process TestCrash kills; run alone, it does nothing.
func TestCrashChild(t *testing.T) {
	if os.Getenv(storetest.CrashChildEnv) == "" {
		return
	}
	storetest.CrashChild(func() (lifecycle.Store, error) { return sqlite.Open(ctx, os.Getenv("HMS_CRASH_DIR"), nil) })
}

func TestCrash(t *testing.T) {
	dir := t.TempDir()
	storetest.Crash(t, []string{"HMS_CRASH_DIR=" + dir}, 5, func(t *testing.T) lifecycle.Store { return open(t, dir, nil) })
}
