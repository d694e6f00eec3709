package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hms-lifecycle/lifecycle"
)

func fromJSON(b []byte, v any) error {
	if b == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeInternal, Message: fmt.Sprintf("decode stored %T", v), Err: err}
	}
	return nil
}

const agentCols = `id, state, previous_state, revision, metadata, labels, created_at, entered_at, error, last_sequence, policy, heartbeat_at`

func scanAgent(row pgx.Row) (lifecycle.Agent, error) {
	var a lifecycle.Agent
	var state, prev int16
	var meta, labels, errInfo, policy []byte
	var created, entered, last int64
	var beat *int64
	if err := row.Scan(&a.ID, &state, &prev, &a.Revision, &meta, &labels, &created, &entered, &errInfo, &last, &policy, &beat); err != nil {
		return a, err
	}
	a.State, a.PreviousState, a.LastSequence = lifecycle.State(state), lifecycle.State(prev), uint64(last)
	a.CreatedAt, a.EnteredAt = time.Unix(0, created).UTC(), time.Unix(0, entered).UTC()
	if beat != nil {
		a.HeartbeatAt = time.Unix(0, *beat).UTC()
	}
	return a, errors.Join(fromJSON(meta, &a.Metadata), fromJSON(labels, &a.Labels), fromJSON(errInfo, &a.Error), fromJSON(policy, &a.Policy))
}

const eventCols = `sequence, id, agent_id, from_state, to_state, type, time, initiated_by, reason, revision, metadata, error, hooks`

func scanEvent(row pgx.Row) (lifecycle.Event, error) {
	var ev lifecycle.Event
	var seq, at int64
	var from, to, typ int16
	var meta, errInfo, hooks []byte
	if err := row.Scan(&seq, (*[16]byte)(&ev.ID), &ev.AgentID, &from, &to, &typ, &at, &ev.InitiatedBy, &ev.Reason,
		&ev.Revision, &meta, &errInfo, &hooks); err != nil {
		return ev, err
	}
	ev.Sequence, ev.From, ev.To, ev.Type = uint64(seq), lifecycle.State(from), lifecycle.State(to), lifecycle.TransitionType(typ)
	ev.Time = time.Unix(0, at).UTC()
	return ev, errors.Join(fromJSON(meta, &ev.Metadata), fromJSON(errInfo, &ev.Error), fromJSON(hooks, &ev.Hooks))
}

// GetAgent implements lifecycle.Store.
func (s *Store) GetAgent(ctx context.Context, id string) (lifecycle.Agent, error) {
	a, err := scanAgent(s.pool.QueryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE id = $1 AND state <> 0`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", id)
	}
	return a, unavailable(err)
}

// ListAgents implements lifecycle.Store. Labels are matched in SQL with JSONB containment.
func (s *Store) ListAgents(ctx context.Context, f lifecycle.AgentFilter) ([]lifecycle.Agent, error) {
	q := `SELECT ` + agentCols + ` FROM agents WHERE id > $1 AND state <> 0`
	args := []any{f.AfterID}
	if len(f.States) > 0 {
		states := make([]int16, len(f.States))
		for i, st := range f.States {
			states[i] = int16(st)
		}
		args = append(args, states)
		q += fmt.Sprintf(` AND state = ANY($%d)`, len(args))
	}
	if len(f.Labels) > 0 {
		args = append(args, jsonb(f.Labels))
		q += fmt.Sprintf(` AND labels @> $%d::jsonb`, len(args))
	}
	q += ` ORDER BY id`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []lifecycle.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, unavailable(err)
		}
		out = append(out, a)
	}
	return out, unavailable(rows.Err())
}

// ReadEvents implements lifecycle.Store.
func (s *Store) ReadEvents(ctx context.Context, f lifecycle.EventFilter) ([]lifecycle.Event, error) {
	if f.FromSequence != 0 {
		var oldest int64
		if err := s.pool.QueryRow(ctx, `SELECT retained_from FROM retention`).Scan(&oldest); err != nil {
			return nil, unavailable(err)
		}
		if f.FromSequence < uint64(oldest) {
			return nil, &lifecycle.Error{Code: lifecycle.CodeOutOfRange, ResumeSequence: uint64(oldest),
				Message: fmt.Sprintf("sequence %d is older than the oldest retained event %d", f.FromSequence, oldest)}
		}
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	add(`sequence >= $%d`, int64(f.FromSequence))
	if f.AgentID != "" {
		add(`agent_id = $%d`, f.AgentID)
	}
	if f.Type != lifecycle.TypeUnspecified {
		add(`type = $%d`, int16(f.Type))
	}
	if !f.Start.IsZero() {
		add(`time >= $%d`, f.Start.UnixNano())
	}
	if !f.End.IsZero() {
		add(`time < $%d`, f.End.UnixNano())
	}
	q := `SELECT ` + eventCols + ` FROM events WHERE ` + strings.Join(where, " AND ") + ` ORDER BY sequence`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []lifecycle.Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, unavailable(err)
		}
		out = append(out, ev)
	}
	return out, unavailable(rows.Err())
}

// Sequences implements lifecycle.Store.
func (s *Store) Sequences(ctx context.Context) (oldest, newest uint64, err error) {
	var lo int64
	var hi *int64
	if err := s.pool.QueryRow(ctx, `SELECT retained_from, (SELECT MAX(sequence) FROM events) FROM retention`).Scan(&lo, &hi); err != nil {
		return 0, 0, unavailable(err)
	}
	if hi == nil {
		return 0, 0, nil
	}
	return uint64(lo), uint64(*hi), nil
}

// CreateHook implements lifecycle.Store.
func (s *Store) CreateHook(ctx context.Context, h lifecycle.Hook) error {
	tag, err := s.pool.Exec(ctx, `WITH ins AS (INSERT INTO hooks (id, name, spec, created_at, cursor) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING RETURNING id) SELECT pg_notify('`+s.channel+`', 'hooks') FROM ins`,
		h.ID, h.Spec.Name, jsonb(h.Spec), h.CreatedAt.UnixNano(), int64(h.Cursor))
	if err != nil {
		return unavailable(err)
	}
	if tag.RowsAffected() == 0 {
		return lifecycle.Errorf(lifecycle.CodeAlreadyExists, "hook %s (%s) already exists", h.Spec.Name, h.ID)
	}
	return nil
}

// DeleteHook implements lifecycle.Store.
func (s *Store) DeleteHook(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `WITH del AS (DELETE FROM hooks WHERE id = $1 RETURNING id)
		SELECT pg_notify('`+s.channel+`', 'hooks') FROM del`, id)
	if err != nil {
		return unavailable(err)
	}
	if tag.RowsAffected() == 0 {
		return lifecycle.Errorf(lifecycle.CodeNotFound, "hook %s not found", id)
	}
	return nil
}

// SetHookCursor implements lifecycle.Store.
func (s *Store) SetHookCursor(ctx context.Context, id string, seq uint64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE hooks SET cursor = $1 WHERE id = $2`, int64(seq), id)
	if err != nil {
		return unavailable(err)
	}
	if tag.RowsAffected() == 0 {
		return lifecycle.Errorf(lifecycle.CodeNotFound, "hook %s not found", id)
	}
	return nil
}

const hookCols = `id, spec, created_at, cursor, lease_owner, lease_until`

func scanHook(row pgx.Row, extra ...any) (lifecycle.Hook, error) {
	var h lifecycle.Hook
	var spec []byte
	var created, cursor int64
	var owner *string
	var until *int64
	if err := row.Scan(append([]any{&h.ID, &spec, &created, &cursor, &owner, &until}, extra...)...); err != nil {
		return h, err
	}
	if err := fromJSON(spec, &h.Spec); err != nil {
		return h, err
	}
	h.CreatedAt, h.Cursor = time.Unix(0, created).UTC(), uint64(cursor)
	if owner != nil {
		h.LeaseOwner = *owner
	}
	if until != nil {
		h.LeaseUntil = time.Unix(0, *until).UTC()
	}
	return h, nil
}

// ListHooks implements lifecycle.Store.
func (s *Store) ListHooks(ctx context.Context) ([]lifecycle.Hook, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+hookCols+` FROM hooks ORDER BY name`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []lifecycle.Hook
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, unavailable(err)
		}
		out = append(out, h)
	}
	return out, unavailable(rows.Err())
}

// LeaseHook implements lifecycle.Store.
func (s *Store) LeaseHook(ctx context.Context, id, owner string, now, until time.Time) (lifecycle.Hook, bool, error) {
	var held bool
	h, err := scanHook(s.pool.QueryRow(ctx, `WITH upd AS (
			UPDATE hooks SET lease_owner = $2, lease_until = $3
			WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until <= $4) RETURNING id)
		SELECT `+hookCols+`, EXISTS (SELECT 1 FROM upd) FROM hooks WHERE id = $1`,
		id, owner, until.UnixNano(), now.UnixNano()), &held)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, false, lifecycle.Errorf(lifecycle.CodeNotFound, "hook %s not found", id)
	}
	if err != nil {
		return h, false, unavailable(err)
	}
	if held { // the row was read before the update
		h.LeaseOwner, h.LeaseUntil = owner, until.UTC()
	}
	return h, held, nil
}

// SetPolicy implements lifecycle.Store; the other replicas are notified ("policy:<id>").
func (s *Store) SetPolicy(ctx context.Context, id string, p *lifecycle.SupervisionPolicy) error {
	tag, err := s.pool.Exec(ctx, `WITH upd AS (UPDATE agents SET policy = $2 WHERE id = $1 AND state <> 0 RETURNING id)
		SELECT pg_notify('`+s.channel+`', 'policy:' || id) FROM upd`, id, jsonb(p))
	if err != nil {
		return unavailable(err)
	}
	if tag.RowsAffected() == 0 {
		return lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", id)
	}
	return nil
}

// RecordHeartbeats implements lifecycle.SharedStore in one statement.
func (s *Store) RecordHeartbeats(ctx context.Context, beats map[string]time.Time) error {
	ids, ats := make([]string, 0, len(beats)), make([]int64, 0, len(beats))
	for id, at := range beats {
		ids, ats = append(ids, id), append(ats, at.UnixNano())
	}
	_, err := s.pool.Exec(ctx, `UPDATE agents SET heartbeat_at = b.at
		FROM unnest($1::text[], $2::bigint[]) AS b(id, at)
		WHERE agents.id = b.id AND agents.state <> 0 AND (agents.heartbeat_at IS NULL OR agents.heartbeat_at < b.at)`, ids, ats)
	return unavailable(err)
}

// Lease implements lifecycle.SharedStore.
func (s *Store) Lease(ctx context.Context, name, owner string, now, until time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, owner, until) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = $2, until = $3
		WHERE leases.owner = $2 OR leases.until <= $4`, name, owner, until.UnixNano(), now.UnixNano())
	if err != nil {
		return false, unavailable(err)
	}
	return tag.RowsAffected() == 1, nil
}
