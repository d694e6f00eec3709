package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/postgres"
	"github.com/hms-lifecycle/lifecycle/store/postgres/pgtest"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

var (
	ctx     = context.Background()
	cluster *pgtest.Cluster
	dbs     atomic.Int64
)

func TestMain(m *testing.M) {
	if os.Getenv(storetest.CrashChildEnv) != "" {
		// TestCrash's child, killed with SIGKILL: it works on the parent's cluster
		// (HMS_CRASH_DSN) and starts none, which it could never stop.
		os.Exit(m.Run())
	}
	var err error
	if cluster, err = pgtest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start PostgreSQL:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop PostgreSQL:", err)
	}
	os.Exit(code)
}

// newDatabase creates an empty database for one test.
func newDatabase(t testing.TB) string {
	t.Helper()
	dsn, err := cluster.CreateDatabase(ctx, fmt.Sprintf("test_%d", dbs.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) lifecycle.Store { return open(t, newDatabase(t)) })
	storetest.RunShared(t, func(t *testing.T) lifecycle.SharedStore { return open(t, newDatabase(t)) })
}

func TestRetention(t *testing.T) {
	storetest.RunRetention(t, func(t *testing.T, r lifecycle.Retention) storetest.Pruner {
		s, err := postgres.Open(ctx, newDatabase(t), &postgres.Options{Retention: r})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestSchema: a store in its own schema (the plugin registry's) shares the database with
// the default one without seeing its data or its notifications.
func TestSchema(t *testing.T) {
	dsn := newDatabase(t)
	plain := open(t, dsn)
	plugins, err := postgres.Open(ctx, dsn, &postgres.Options{Schema: "plugins"})
	if err != nil {
		t.Fatal(err)
	}
	defer plugins.Close()
	m, err := lifecycle.New(ctx, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := plugins.GetAgent(ctx, "a"); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Fatalf("the schema store sees the default store's agent: %v", err)
	}
	if _, newest, _ := plugins.Sequences(ctx); newest != 0 {
		t.Fatalf("the schema store has events: newest %d", newest)
	}
	if _, err := postgres.Open(ctx, dsn, &postgres.Options{Schema: "Bad-Name"}); err == nil || !strings.Contains(err.Error(), `schema "Bad-Name"`) {
		t.Fatalf("bad schema name: %v", err)
	}
	storetest.Run(t, func(t *testing.T) lifecycle.Store {
		s, err := postgres.Open(ctx, newDatabase(t), &postgres.Options{Schema: "plugins"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
