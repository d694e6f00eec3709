package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Prune deletes the events the retention policy no longer keeps, as of now, and moves the
// oldest retained sequence past them. It returns how many events it deleted.
func (s *Store) Prune(ctx context.Context, now time.Time) (int64, error) {
	r := s.retention
	if !r.Enabled() {
		return 0, nil
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback()
	var pruned, newest int64
	deleteReturning := func(q string, args ...any) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				return err
			}
			pruned, newest = pruned+1, max(newest, seq)
		}
		return rows.Err()
	}
	if r.MaxAge > 0 {
		if err := deleteReturning(`DELETE FROM events WHERE time < ? AND sequence NOT IN (SELECT last_sequence FROM agents WHERE state <> 0)
			RETURNING sequence`, now.Add(-r.MaxAge).UnixNano()); err != nil {
			return 0, unavailable(fmt.Errorf("prune by age: %w", err))
		}
	}
	if r.MaxPerAgent > 0 {
		if err := deleteReturning(`DELETE FROM events WHERE sequence IN (
				SELECT sequence FROM (SELECT sequence, ROW_NUMBER() OVER (PARTITION BY agent_id ORDER BY sequence DESC) AS n FROM events)
				WHERE n > ?) RETURNING sequence`, r.MaxPerAgent); err != nil {
			return 0, unavailable(fmt.Errorf("prune by count: %w", err))
		}
	}
	if pruned > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE retention SET retained_from = MAX(retained_from, ?)`, newest+1); err != nil {
			return 0, unavailable(err)
		}
	}
	return pruned, unavailable(tx.Commit())
}

// retainedFrom is the oldest retained sequence: every event from it on is retained.
func retainedFrom(ctx context.Context, db *sql.DB) (uint64, error) {
	var from int64
	err := db.QueryRowContext(ctx, `SELECT retained_from FROM retention`).Scan(&from)
	return uint64(from), unavailable(err)
}
