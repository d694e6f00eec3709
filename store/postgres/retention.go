package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// pruneLock is the advisory lock that lets one replica at a time prune.
const pruneLock = 0x686d736c69666500 // "hmslife\0"

// Prune deletes the events the retention policy no longer keeps, as of now, and moves the
// oldest retained sequence past them. It returns how many events it deleted; 0 without
// waiting if another replica is pruning.
func (s *Store) Prune(ctx context.Context, now time.Time) (int64, error) {
	r := s.retention
	if !r.Enabled() {
		return 0, nil
	}
	var pruned int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(pruneLock)).Scan(&locked); err != nil || !locked {
			return err
		}
		var newest int64
		prune := func(what, q string, arg any) error {
			var n, hi int64
			if err := tx.QueryRow(ctx, `WITH d AS (`+q+` RETURNING sequence) SELECT COUNT(*), COALESCE(MAX(sequence), 0) FROM d`, arg).Scan(&n, &hi); err != nil {
				return fmt.Errorf("prune by %s: %w", what, err)
			}
			pruned, newest = pruned+n, max(newest, hi)
			return nil
		}
		if r.MaxAge > 0 {
			if err := prune("age", `DELETE FROM events WHERE time < $1 AND sequence NOT IN (SELECT last_sequence FROM agents WHERE state <> 0)`,
				now.Add(-r.MaxAge).UnixNano()); err != nil {
				return err
			}
		}
		if r.MaxPerAgent > 0 {
			if err := prune("count", `DELETE FROM events WHERE sequence IN (
				SELECT sequence FROM (SELECT sequence, ROW_NUMBER() OVER (PARTITION BY agent_id ORDER BY sequence DESC) AS n FROM events) r
				WHERE n > $1)`, r.MaxPerAgent); err != nil {
				return err
			}
		}
		if pruned == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE retention SET retained_from = GREATEST(retained_from, $1)`, newest+1)
		return err
	})
	return pruned, unavailable(err)
}
