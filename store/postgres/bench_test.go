package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/postgres"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

// BenchmarkTransitions drives durable transitions from 1, 16 and 64 concurrent callers
// (one agent each), through one replica or spread over two replicas on one database.
func BenchmarkTransitions(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		for _, callers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("replicas=%d/callers=%d", replicas, callers), func(b *testing.B) {
				dsn := newDatabase(b)
				var ms []*lifecycle.Manager
				for range replicas {
					s, err := postgres.Open(ctx, dsn, &postgres.Options{MaxConns: 16})
					if err != nil {
						b.Fatal(err)
					}
					m, err := lifecycle.New(ctx, s, nil)
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					defer m.Close()
					ms = append(ms, m)
				}
				storetest.BenchTransitions(b, ms, callers)
			})
		}
	}
}

// BenchmarkHistoryPage reads a filtered history page (agent + time range + type, up to
// 100 events) from a database holding 1,000,000 events of 1,000 agents.
func BenchmarkHistoryPage(b *testing.B) {
	const agents, perAgent = 1000, 1000
	dsn := newDatabase(b)
	s, err := postgres.Open(ctx, dsn, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := fillEvents(ctx, dsn, agents, perAgent, t0); err != nil {
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
		q0 := time.Now()
		page, err := m.History(ctx, lifecycle.HistoryRequest{
			AgentID: fmt.Sprintf("agent-%04d", i*7919%agents), Type: lifecycle.TypeMaintenance, Limit: 100,
			Start: t0.Add(perAgent * agents / 4 * time.Millisecond), End: t0.Add(perAgent * agents * 3 / 4 * time.Millisecond),
		})
		if err != nil || len(page.Events) == 0 {
			b.Fatal(len(page.Events), err)
		}
		lat = append(lat, time.Since(q0))
	}
	storetest.ReportLatency(b, lat, time.Since(start))
}

// fillEvents bulk-loads agents × perAgent events with COPY: setup, not a measurement.
// Every fifth event of each agent is a MAINTENANCE one; events are 1 ms apart.
func fillEvents(ctx context.Context, dsn string, agents, perAgent int, t0 time.Time) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows := make([][]any, 0, agents)
	for i := range agents {
		rows = append(rows, []any{fmt.Sprintf("agent-%04d", i), int16(lifecycle.StateActive), int16(0), int64(perAgent), t0.UnixNano(), t0.UnixNano(), int64(0)})
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"agents"},
		[]string{"id", "state", "previous_state", "revision", "created_at", "entered_at", "last_sequence"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	n := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"sequence", "id", "agent_id", "from_state", "to_state", "type", "time", "initiated_by", "reason", "revision"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if n == agents*perAgent {
				return nil, nil
			}
			typ := lifecycle.TypeNormal
			if n/agents%5 == 0 {
				typ = lifecycle.TypeMaintenance
			}
			row := []any{int64(n + 1), [16]byte(uuid.Must(uuid.NewV7())), fmt.Sprintf("agent-%04d", n%agents), int16(lifecycle.StateActive),
				int16(lifecycle.StatePaused), int16(typ), t0.Add(time.Duration(n) * time.Millisecond).UnixNano(), "bench", "fill", int64(n/agents + 1)}
			n++
			return row, nil
		}))
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `UPDATE lifecycle_sequence SET last = $1`, int64(agents*perAgent)); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `ANALYZE`)
	return err
}
