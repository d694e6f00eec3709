package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/jackc/pgx/v5"

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

// Each request is one statement: the compare-and-swap on the agent, the counter bumped
// only if it succeeded, and the event inserted with the new sequence. The counter is
// locked at the start of the transaction, so the statements' snapshots agree on it.
const (
	transitionSQL = `WITH upd AS (
		UPDATE agents SET state = $1, previous_state = $2, revision = $3, entered_at = $4, error = $5,
			last_sequence = (SELECT last + 1 FROM lifecycle_sequence)
		WHERE id = $6 AND revision = $7 AND state <> 0 RETURNING id),
	seq AS (UPDATE lifecycle_sequence SET last = last + 1 WHERE EXISTS (SELECT 1 FROM upd) RETURNING last)
	INSERT INTO events (sequence, id, agent_id, from_state, to_state, type, time, initiated_by, reason, revision, metadata, error, hooks)
	SELECT seq.last, $8, $6, $2, $1, $9, $4, $10, $11, $3, $12, $5, $13 FROM seq
	RETURNING sequence`

	// A deleted agent's row keeps its id and revision only: state 0 (UNSPECIFIED) marks it.
	deleteSQL = `WITH upd AS (
		UPDATE agents SET state = 0, previous_state = $1, revision = $2, entered_at = $3, metadata = NULL, labels = NULL,
			error = NULL, policy = NULL, last_sequence = (SELECT last + 1 FROM lifecycle_sequence)
		WHERE id = $4 AND revision = $5 AND state <> 0 RETURNING id),
	seq AS (UPDATE lifecycle_sequence SET last = last + 1 WHERE EXISTS (SELECT 1 FROM upd) RETURNING last)
	INSERT INTO events (sequence, id, agent_id, from_state, to_state, type, time, initiated_by, reason, revision, metadata, error, hooks)
	SELECT seq.last, $6, $4, $1, 0, $7, $3, $8, $9, $2, $10, NULL, NULL FROM seq
	RETURNING sequence`

	createSQL = `WITH ins AS (
		INSERT INTO agents (id, state, previous_state, revision, metadata, labels, created_at, entered_at, error, last_sequence, policy)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, (SELECT last + 1 FROM lifecycle_sequence), $16)
		ON CONFLICT (id) DO NOTHING RETURNING id),
	seq AS (UPDATE lifecycle_sequence SET last = last + 1 WHERE EXISTS (SELECT 1 FROM ins) RETURNING last)
	INSERT INTO events (sequence, id, agent_id, from_state, to_state, type, time, initiated_by, reason, revision, metadata, error, hooks)
	SELECT seq.last, $9, $1, $10, $2, $11, $8, $12, $13, $4, $14, NULL, $15 FROM seq
	RETURNING sequence`
)

// commitBatch commits a batch in one pipelined transaction.
func (s *Store) commitBatch(batch []*groupcommit.Request) {
	ctx := context.Background()
	b := &pgx.Batch{}
	b.Queue(`SELECT last FROM lifecycle_sequence FOR UPDATE`)
	for _, c := range batch {
		ev := &c.Event
		if c.Create {
			a := &c.Agent
			b.Queue(createSQL, a.ID, int16(a.State), int16(a.PreviousState), a.Revision, jsonb(a.Metadata), jsonb(a.Labels),
				a.CreatedAt.UnixNano(), a.EnteredAt.UnixNano(), [16]byte(ev.ID), int16(ev.From), int16(ev.Type),
				ev.InitiatedBy, ev.Reason, jsonb(ev.Metadata), jsonb(ev.Hooks), jsonb(a.Policy))
		} else if c.Delete {
			b.Queue(deleteSQL, int16(ev.From), ev.Revision, ev.Time.UnixNano(),
				ev.AgentID, c.Expected, [16]byte(ev.ID), int16(ev.Type), ev.InitiatedBy, ev.Reason, jsonb(ev.Metadata))
		} else {
			b.Queue(transitionSQL, int16(ev.To), int16(ev.From), ev.Revision, ev.Time.UnixNano(), jsonb(ev.Error),
				ev.AgentID, c.Expected, [16]byte(ev.ID), int16(ev.Type), ev.InitiatedBy, ev.Reason, jsonb(ev.Metadata), jsonb(ev.Hooks))
		}
	}
	b.Queue(`SELECT pg_notify('` + s.channel + `', 'events')`)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		for _, c := range batch {
			var seq int64
			switch err := br.QueryRow().Scan(&seq); {
			case err == nil:
				c.Seq = uint64(seq)
			case errors.Is(err, pgx.ErrNoRows):
				c.Err = errRefused
			default:
				br.Close()
				return err
			}
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		return br.Close()
	})
	if err != nil {
		for _, c := range batch {
			c.Seq, c.Err = 0, unavailable(fmt.Errorf("commit: %w", err))
		}
		return
	}
	for _, c := range batch {
		if c.Err == errRefused {
			c.Err = s.whyRefused(ctx, c)
		}
	}
}

var errRefused = errors.New("refused")

// whyRefused tells a taken id, a stale revision and a missing agent apart, after the fact.
func (s *Store) whyRefused(ctx context.Context, c *groupcommit.Request) error {
	id := c.Event.AgentID
	var rev int64
	var st int16
	err := s.pool.QueryRow(ctx, `SELECT revision, state FROM agents WHERE id = $1`, id).Scan(&rev, &st)
	deleted := err == nil && st == 0
	switch {
	case c.Create && deleted:
		return lifecycle.Errorf(lifecycle.CodeAlreadyExists, "agent %s was deleted, and an agent id is never used again", id)
	case c.Create:
		return lifecycle.Errorf(lifecycle.CodeAlreadyExists, "agent %s already exists", id)
	case deleted:
		return lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s was deleted", id)
	case err == nil:
		return lifecycle.Errorf(lifecycle.CodeAborted, "agent %s is at revision %d, not %d", id, rev, c.Expected)
	case errors.Is(err, pgx.ErrNoRows):
		return lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", id)
	default:
		return unavailable(err)
	}
}

// jsonb encodes v as JSON text for a JSONB column, or NULL when v is nil or empty.
func jsonb(v any) any {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice:
		if rv.Len() == 0 {
			return nil
		}
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err)) // maps of strings and plain structs always encode
	}
	return string(b)
}

// CommitStats implements lifecycle.CommitStatser: the group commits so far.
func (s *Store) CommitStats() lifecycle.CommitStats { return s.writer.Stats() }
