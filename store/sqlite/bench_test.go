package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

// BenchmarkRawCommit is the file system's durable single-commit rate: one one-row
// transaction per operation, synchronous=FULL, WAL — the bound that group commit lifts.
func BenchmarkRawCommit(b *testing.B) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "raw.db")+
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		tx, _ := db.Begin()
		if _, err := tx.Exec(`INSERT INTO t VALUES (?, 'x')`, i); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}

// BenchmarkTransitions drives durable transitions through the Manager from 1, 16 and 64
// concurrent callers (one agent each), reporting throughput and latency percentiles.
func BenchmarkTransitions(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		for _, callers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("sync=%s/callers=%d", sync, callers), func(b *testing.B) {
				s, err := Open(context.Background(), b.TempDir(), &Options{Synchronous: sync})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				m, err := lifecycle.New(context.Background(), s, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				storetest.BenchTransitions(b, []*lifecycle.Manager{m}, callers)
			})
		}
	}
}

// BenchmarkHistoryPage reads a filtered history page (agent + time range + type, up to
// 100 events) from a store holding 1,000,000 events of 1,000 agents.
func BenchmarkHistoryPage(b *testing.B) {
	const agents, perAgent = 1000, 1000
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), &Options{Synchronous: "normal"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := fillEvents(ctx, s, agents, perAgent, t0); err != nil {
		b.Fatal(err)
	}
	m, err := lifecycle.New(ctx, s, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	var lat []time.Duration
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		agent := fmt.Sprintf("agent-%04d", i*7919%agents)
		q0 := time.Now()
		page, err := m.History(ctx, lifecycle.HistoryRequest{
			AgentID: agent, Type: lifecycle.TypeMaintenance, Limit: 100,
			Start: t0.Add(perAgent * agents / 4 * time.Millisecond), End: t0.Add(perAgent * agents * 3 / 4 * time.Millisecond),
		})
		if err != nil || len(page.Events) == 0 {
			b.Fatal(len(page.Events), err)
		}
		lat = append(lat, time.Since(q0))
	}
	storetest.ReportLatency(b, lat, time.Since(start))
}

// fillEvents writes agents × perAgent events directly, in large transactions: setup for
// read benchmarks, not a measure of anything. Every fifth event is a MAINTENANCE one;
// events are 1 ms apart.
func fillEvents(ctx context.Context, s *Store, agents, perAgent int, t0 time.Time) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { tx.Rollback() }()
	for i := range agents {
		a := lifecycle.Agent{ID: fmt.Sprintf("agent-%04d", i), State: lifecycle.StateActive, Revision: int64(perAgent), CreatedAt: t0, EnteredAt: t0}
		meta, labels, errInfo, policy, _ := agentColumns(&a)
		if _, err := tx.ExecContext(ctx, `INSERT INTO agents (`+agentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.State, a.PreviousState, a.Revision, meta, labels, t0.UnixNano(), t0.UnixNano(), errInfo, 0, policy); err != nil {
			return err
		}
	}
	for n := range agents * perAgent {
		typ := lifecycle.TypeNormal
		if n/agents%5 == 0 { // every fifth event of each agent
			typ = lifecycle.TypeMaintenance
		}
		at := t0.Add(time.Duration(n) * time.Millisecond)
		ev := lifecycle.Event{Sequence: uint64(n + 1), ID: uuid.Must(uuid.NewV7()), AgentID: fmt.Sprintf("agent-%04d", n%agents),
			From: lifecycle.StateActive, To: lifecycle.StatePaused, Type: typ, Time: at, InitiatedBy: "bench", Reason: "fill", Revision: int64(n/agents + 1)}
		if err := insertEvent(ctx, tx.StmtContext(ctx, s.stmts[insertEventSQL]), &ev); err != nil {
			return err
		}
		if (n+1)%100_000 == 0 {
			if err := tx.Commit(); err != nil {
				return err
			}
			if tx, err = s.write.BeginTx(ctx, nil); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.next = uint64(agents*perAgent) + 1
	return nil
}
