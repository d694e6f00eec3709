package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hms-lifecycle/lifecycle"
)

// commit is one CreateAgent or CommitTransition waiting for the writer.
type commit struct {
	create   bool
	agent    lifecycle.Agent // create only
	ev       lifecycle.Event
	expected int64
	seq      uint64
	err      error
	done     chan struct{}
}

// submit hands c to the writer and waits for its outcome. Once handed over, it waits even
// if ctx ends: the caller must learn whether the event was committed, or watchers would
// wait for a sequence that nobody publishes.
func (s *Store) submit(ctx context.Context, c *commit) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c.done = make(chan struct{})
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return 0, lifecycle.Errorf(lifecycle.CodeUnavailable, "sqlite store is closed")
	}
	s.reqs <- c
	s.closeMu.RUnlock()
	<-c.done
	return c.seq, c.err
}

// CreateAgent implements lifecycle.Store.
func (s *Store) CreateAgent(ctx context.Context, a lifecycle.Agent, ev lifecycle.Event) (uint64, error) {
	return s.submit(ctx, &commit{create: true, agent: a, ev: ev})
}

// CommitTransition implements lifecycle.Store.
func (s *Store) CommitTransition(ctx context.Context, ev lifecycle.Event, expectedRevision int64) (uint64, error) {
	return s.submit(ctx, &commit{ev: ev, expected: expectedRevision})
}

// writer commits queued requests, as many as are waiting (up to maxBatch) per transaction.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*commit, 0, s.maxBatch)
	for c := range s.reqs {
		batch = append(batch[:0], c)
	drain:
		for len(batch) < s.maxBatch {
			select {
			case c, ok := <-s.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, c)
			default:
				break drain
			}
		}
		s.commitBatch(batch)
		for _, c := range batch {
			close(c.done)
		}
	}
}

func (s *Store) commitBatch(batch []*commit) {
	ctx := context.Background()
	first := s.next
	err := func() error {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, c := range batch {
			c.err = s.apply(ctx, tx, c) // sets c.seq on success
		}
		return tx.Commit()
	}()
	if err != nil {
		// Nothing of the batch is stored: its sequences are handed out again.
		s.next = first
		for _, c := range batch {
			c.seq, c.err = 0, unavailable(fmt.Errorf("commit: %w", err))
		}
	}
}

// apply writes one request inside the batch's transaction. A refused request (taken id,
// stale revision) writes nothing and does not disturb the others.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, c *commit) error {
	ev := &c.ev
	ev.Sequence = s.next
	if c.create {
		a := &c.agent
		a.LastSequence = ev.Sequence
		meta, labels, errInfo, err := agentColumns(a)
		if err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.stmts[insertAgentSQL]).ExecContext(ctx,
			a.ID, a.State, a.PreviousState, a.Revision, meta, labels, a.CreatedAt.UnixNano(), a.EnteredAt.UnixNano(), errInfo, a.LastSequence)
		if err != nil {
			return unavailable(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return lifecycle.Errorf(lifecycle.CodeAlreadyExists, "agent %s already exists", a.ID)
		}
	} else {
		errInfo, err := jsonColumn(ev.Error)
		if err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.stmts[updateAgentSQL]).ExecContext(ctx,
			ev.To, ev.From, ev.Revision, ev.Time.UnixNano(), errInfo, ev.Sequence, ev.AgentID, c.expected)
		if err != nil {
			return unavailable(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var rev int64
			switch err := tx.QueryRowContext(ctx, `SELECT revision FROM agents WHERE id = ?`, ev.AgentID).Scan(&rev); err {
			case nil:
				return lifecycle.Errorf(lifecycle.CodeAborted, "agent %s is at revision %d, not %d", ev.AgentID, rev, c.expected)
			case sql.ErrNoRows:
				return lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", ev.AgentID)
			default:
				return unavailable(err)
			}
		}
	}
	if err := insertEvent(ctx, tx.StmtContext(ctx, s.stmts[insertEventSQL]), ev); err != nil {
		return err
	}
	c.seq = ev.Sequence
	s.next++
	return nil
}

const (
	insertAgentSQL = `INSERT INTO agents (` + agentCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	updateAgentSQL = `UPDATE agents SET state = ?, previous_state = ?, revision = ?, entered_at = ?,
		error = ?, last_sequence = ? WHERE id = ? AND revision = ?`
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
