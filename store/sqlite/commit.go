package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/internal/groupcommit"
)

// CreateAgent implements lifecycle.Store.
func (s *Store) CreateAgent(ctx context.Context, a lifecycle.Agent, ev lifecycle.Event) (uint64, error) {
	return s.writer.Submit(ctx, &groupcommit.Request{Create: true, Agent: a, Event: ev})
}

// CommitTransition implements lifecycle.Store.
func (s *Store) CommitTransition(ctx context.Context, ev lifecycle.Event, expectedRevision int64) (uint64, error) {
	return s.writer.Submit(ctx, &groupcommit.Request{Event: ev, Expected: expectedRevision})
}

// DeleteAgent implements lifecycle.Store. The row stays as a tombstone holding the id (so
// that it is never used again) with state UNSPECIFIED, which no live agent is in; the
// agent's data goes.
func (s *Store) DeleteAgent(ctx context.Context, ev lifecycle.Event, expectedRevision int64) (uint64, error) {
	return s.writer.Submit(ctx, &groupcommit.Request{Delete: true, Event: ev, Expected: expectedRevision})
}

// commitBatch commits a batch in one transaction; it runs on the writer's goroutine only.
func (s *Store) commitBatch(batch []*groupcommit.Request) {
	ctx := context.Background()
	first := s.next
	err := func() error {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, c := range batch {
			c.Err = s.apply(ctx, tx, c) // sets c.Seq on success
		}
		return tx.Commit()
	}()
	if err != nil {
		// Nothing of the batch is stored: its sequences are handed out again.
		s.next = first
		for _, c := range batch {
			c.Seq, c.Err = 0, unavailable(fmt.Errorf("commit: %w", err))
		}
	}
}

// apply writes one request inside the batch's transaction. A refused request (taken id,
// stale revision) writes nothing and does not disturb the others.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, c *groupcommit.Request) error {
	ev := &c.Event
	ev.Sequence = s.next
	if c.Create {
		a := &c.Agent
		a.LastSequence = ev.Sequence
		meta, labels, errInfo, policy, err := agentColumns(a)
		if err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.stmts[insertAgentSQL]).ExecContext(ctx,
			a.ID, a.State, a.PreviousState, a.Revision, meta, labels, a.CreatedAt.UnixNano(), a.EnteredAt.UnixNano(), errInfo, a.LastSequence, policy)
		if err != nil {
			return unavailable(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var st lifecycle.State
			if tx.QueryRowContext(ctx, `SELECT state FROM agents WHERE id = ?`, a.ID).Scan(&st) == nil && st == lifecycle.StateUnspecified {
				return lifecycle.Errorf(lifecycle.CodeAlreadyExists, "agent %s was deleted, and an agent id is never used again", a.ID)
			}
			return lifecycle.Errorf(lifecycle.CodeAlreadyExists, "agent %s already exists", a.ID)
		}
	} else {
		var res sql.Result
		var err error
		if c.Delete {
			res, err = tx.StmtContext(ctx, s.stmts[deleteAgentSQL]).ExecContext(ctx,
				ev.From, ev.Revision, ev.Time.UnixNano(), ev.Sequence, ev.AgentID, c.Expected)
		} else {
			var errInfo any
			if errInfo, err = jsonColumn(ev.Error); err != nil {
				return err
			}
			res, err = tx.StmtContext(ctx, s.stmts[updateAgentSQL]).ExecContext(ctx,
				ev.To, ev.From, ev.Revision, ev.Time.UnixNano(), errInfo, ev.Sequence, ev.AgentID, c.Expected)
		}
		if err != nil {
			return unavailable(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var rev int64
			var st lifecycle.State
			switch err := tx.QueryRowContext(ctx, `SELECT revision, state FROM agents WHERE id = ?`, ev.AgentID).Scan(&rev, &st); {
			case err == nil && st == lifecycle.StateUnspecified:
				return lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s was deleted", ev.AgentID)
			case err == nil:
				return lifecycle.Errorf(lifecycle.CodeAborted, "agent %s is at revision %d, not %d", ev.AgentID, rev, c.Expected)
			case err == sql.ErrNoRows:
				return lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", ev.AgentID)
			default:
				return unavailable(err)
			}
		}
	}
	if err := insertEvent(ctx, tx.StmtContext(ctx, s.stmts[insertEventSQL]), ev); err != nil {
		return err
	}
	c.Seq = ev.Sequence
	s.next++
	return nil
}

const (
	insertAgentSQL = `INSERT INTO agents (` + agentCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	updateAgentSQL = `UPDATE agents SET state = ?, previous_state = ?, revision = ?, entered_at = ?,
		error = ?, last_sequence = ? WHERE id = ? AND revision = ? AND state <> 0`
	// A deleted agent's row keeps its id and revision only: state 0 (UNSPECIFIED) marks it.
	deleteAgentSQL = `UPDATE agents SET state = 0, previous_state = ?, revision = ?, entered_at = ?,
		metadata = NULL, labels = NULL, error = NULL, policy = NULL, last_sequence = ? WHERE id = ? AND revision = ? AND state <> 0`
	insertEventSQL = `INSERT INTO events (` + eventCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

func insertEvent(ctx context.Context, stmt *sql.Stmt, ev *lifecycle.Event) error {
	meta, err := jsonColumn(ev.Metadata)
	if err != nil {
		return err
	}
	errInfo, err := jsonColumn(ev.Error)
	if err != nil {
		return err
	}
	hooks, err := jsonColumn(ev.Hooks)
	if err != nil {
		return err
	}
	_, err = stmt.ExecContext(ctx,
		ev.Sequence, ev.ID[:], ev.AgentID, ev.From, ev.To, ev.Type, ev.Time.UnixNano(), ev.InitiatedBy, ev.Reason,
		ev.Revision, meta, errInfo, hooks)
	return unavailable(err)
}

// CommitStats implements lifecycle.CommitStatser: the group commits so far.
func (s *Store) CommitStats() lifecycle.CommitStats { return s.writer.Stats() }
