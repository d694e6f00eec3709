package postgres_test

import (
	"os"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/postgres"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

// TestCrashChild is the process TestCrash kills; run alone, it does nothing.
func TestCrashChild(t *testing.T) {
	if os.Getenv(storetest.CrashChildEnv) == "" {
		return
	}
	storetest.CrashChild(func() (lifecycle.Store, error) { return postgres.Open(ctx, os.Getenv("HMS_CRASH_DSN"), nil) })
}

func TestCrash(t *testing.T) {
	dsn := newDatabase(t)
	storetest.Crash(t, []string{"HMS_CRASH_DSN=" + dsn}, 5, func(t *testing.T) lifecycle.Store { return open(t, dsn) })
}
