package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/hms-lifecycle/lifecycle"
)

// jsonColumn encodes v as JSON text, or NULL when v is nil or empty.
func jsonColumn(v any) (any, error) {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice) && (rv.IsNil() || rv.Kind() != reflect.Pointer && rv.Len() == 0) {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return string(b), nil
}

func fromJSON(col sql.NullString, v any) error {
	if !col.Valid {
		return nil
	}
	if err := json.Unmarshal([]byte(col.String), v); err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeInternal, Message: fmt.Sprintf("decode stored %T", v), Err: err}
	}
	return nil
}

func agentColumns(a *lifecycle.Agent) (meta, labels, errInfo, policy any, err error) {
	if meta, err = jsonColumn(a.Metadata); err != nil {
		return
	}
	if labels, err = jsonColumn(a.Labels); err != nil {
		return
	}
	if errInfo, err = jsonColumn(a.Error); err != nil {
		return
	}
	policy, err = jsonColumn(a.Policy)
	return
}

const agentCols = `id, state, previous_state, revision, metadata, labels, created_at, entered_at, error, last_sequence, policy`

func scanAgent(row interface{ Scan(...any) error }) (lifecycle.Agent, error) {
	var a lifecycle.Agent
	var meta, labels, errInfo, policy sql.NullString
	var created, entered int64
	if err := row.Scan(&a.ID, &a.State, &a.PreviousState, &a.Revision, &meta, &labels, &created, &entered, &errInfo, &a.LastSequence, &policy); err != nil {
		return a, err
	}
	if err := fromJSON(policy, &a.Policy); err != nil {
		return a, err
	}
	a.CreatedAt, a.EnteredAt = time.Unix(0, created).UTC(), time.Unix(0, entered).UTC()
	if err := fromJSON(meta, &a.Metadata); err != nil {
		return a, err
	}
	if err := fromJSON(labels, &a.Labels); err != nil {
		return a, err
	}
	return a, fromJSON(errInfo, &a.Error)
}

const eventCols = `sequence, id, agent_id, from_state, to_state, type, time, initiated_by, reason, revision, metadata, error, hooks`

func scanEvent(row interface{ Scan(...any) error }) (lifecycle.Event, error) {
	var ev lifecycle.Event
	var id []byte
	var at int64
	var meta, errInfo, hooks sql.NullString
	if err := row.Scan(&ev.Sequence, &id, &ev.AgentID, &ev.From, &ev.To, &ev.Type, &at, &ev.InitiatedBy, &ev.Reason,
		&ev.Revision, &meta, &errInfo, &hooks); err != nil {
		return ev, err
	}
	copy(ev.ID[:], id)
	ev.Time = time.Unix(0, at).UTC()
	if err := fromJSON(meta, &ev.Metadata); err != nil {
		return ev, err
	}
	if err := fromJSON(errInfo, &ev.Error); err != nil {
		return ev, err
	}
	return ev, fromJSON(hooks, &ev.Hooks)
}

// GetAgent implements lifecycle.Store.
func (s *Store) GetAgent(ctx context.Context, id string) (lifecycle.Agent, error) {
	a, err := scanAgent(s.read.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE id = ? AND state <> 0`, id))
	if err == sql.ErrNoRows {
		return a, lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", id)
	}
	return a, unavailable(err)
}

// SetPolicy implements lifecycle.Store.
func (s *Store) SetPolicy(ctx context.Context, id string, p *lifecycle.SupervisionPolicy) error {
	policy, err := jsonColumn(p)
	if err != nil {
		return err
	}
	res, err := s.write.ExecContext(ctx, `UPDATE agents SET policy = ? WHERE id = ? AND state <> 0`, policy, id)
	if err != nil {
		return unavailable(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return lifecycle.Errorf(lifecycle.CodeNotFound, "agent %s not found", id)
	}
	return nil
}

// ListAgents implements lifecycle.Store. Labels are matched as the rows stream by.
func (s *Store) ListAgents(ctx context.Context, f lifecycle.AgentFilter) ([]lifecycle.Agent, error) {
	q := `SELECT ` + agentCols + ` FROM agents WHERE id > ? AND state <> 0`
	args := []any{f.AfterID}
	if len(f.States) > 0 {
		q += ` AND state IN (?` + strings.Repeat(`, ?`, len(f.States)-1) + `)`
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	q += ` ORDER BY id`
	if len(f.Labels) == 0 && f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []lifecycle.Agent
	for rows.Next() && (f.Limit <= 0 || len(out) < f.Limit) {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, unavailable(err)
		}
		if f.Matches(&a) {
			out = append(out, a)
		}
	}
	return out, unavailable(rows.Err())
}

// ReadEvents implements lifecycle.Store.
func (s *Store) ReadEvents(ctx context.Context, f lifecycle.EventFilter) ([]lifecycle.Event, error) {
	if f.FromSequence != 0 {
		oldest, err := retainedFrom(ctx, s.read)
		if err != nil {
			return nil, err
		}
		if f.FromSequence < oldest {
			return nil, &lifecycle.Error{Code: lifecycle.CodeOutOfRange, ResumeSequence: oldest,
				Message: fmt.Sprintf("sequence %d is older than the oldest retained event %d", f.FromSequence, oldest)}
		}
	}
	q := `SELECT ` + eventCols + ` FROM events WHERE sequence >= ?`
	args := []any{f.FromSequence}
	if f.AgentID != "" {
		q += ` AND agent_id = ?`
		args = append(args, f.AgentID)
	}
	if f.Type != lifecycle.TypeUnspecified {
		q += ` AND type = ?`
		args = append(args, f.Type)
	}
	if !f.Start.IsZero() {
		q += ` AND time >= ?`
		args = append(args, f.Start.UnixNano())
	}
	if !f.End.IsZero() {
		q += ` AND time < ?`
		args = append(args, f.End.UnixNano())
	}
	q += ` ORDER BY sequence`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
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
	var hi sql.NullInt64
	if err := s.read.QueryRowContext(ctx, `SELECT retained_from, (SELECT MAX(sequence) FROM events) FROM retention`).Scan(&oldest, &hi); err != nil {
		return 0, 0, unavailable(err)
	}
	if !hi.Valid {
		return 0, 0, nil
	}
	return oldest, uint64(hi.Int64), nil
}

// CreateHook implements lifecycle.Store.
func (s *Store) CreateHook(ctx context.Context, h lifecycle.Hook) error {
	spec, err := json.Marshal(h.Spec)
	if err != nil {
		return fmt.Errorf("encode hook spec: %w", err)
	}
	res, err := s.write.ExecContext(ctx, `INSERT INTO hooks (id, name, spec, created_at, cursor) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, h.ID, h.Spec.Name, string(spec), h.CreatedAt.UnixNano(), h.Cursor)
	if err != nil {
		return unavailable(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return lifecycle.Errorf(lifecycle.CodeAlreadyExists, "hook %s (%s) already exists", h.Spec.Name, h.ID)
	}
	return nil
}

// DeleteHook implements lifecycle.Store.
func (s *Store) DeleteHook(ctx context.Context, id string) error {
	return s.updateHook(ctx, `DELETE FROM hooks WHERE id = ?`, id)
}

// SetHookCursor implements lifecycle.Store.
func (s *Store) SetHookCursor(ctx context.Context, id string, seq uint64) error {
	return s.updateHook(ctx, `UPDATE hooks SET cursor = ? WHERE id = ?`, seq, id)
}

func (s *Store) updateHook(ctx context.Context, q string, args ...any) error {
	res, err := s.write.ExecContext(ctx, q, args...)
	if err != nil {
		return unavailable(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return lifecycle.Errorf(lifecycle.CodeNotFound, "hook %s not found", args[len(args)-1])
	}
	return nil
}

const hookCols = `id, spec, created_at, cursor, lease_owner, lease_until`

func scanHook(row interface{ Scan(...any) error }) (lifecycle.Hook, error) {
	var h lifecycle.Hook
	var spec string
	var created int64
	var owner sql.NullString
	var until sql.NullInt64
	if err := row.Scan(&h.ID, &spec, &created, &h.Cursor, &owner, &until); err != nil {
		return h, err
	}
	if err := json.Unmarshal([]byte(spec), &h.Spec); err != nil {
		return h, &lifecycle.Error{Code: lifecycle.CodeInternal, Message: "decode stored hook " + h.ID, Err: err}
	}
	h.CreatedAt, h.LeaseOwner = time.Unix(0, created).UTC(), owner.String
	if until.Valid {
		h.LeaseUntil = time.Unix(0, until.Int64).UTC()
	}
	return h, nil
}

// ListHooks implements lifecycle.Store.
func (s *Store) ListHooks(ctx context.Context) ([]lifecycle.Hook, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+hookCols+` FROM hooks ORDER BY name`)
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
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return lifecycle.Hook{}, false, unavailable(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE hooks SET lease_owner = ?, lease_until = ?
		WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?)`,
		owner, until.UnixNano(), id, owner, now.UnixNano())
	if err != nil {
		return lifecycle.Hook{}, false, unavailable(err)
	}
	n, _ := res.RowsAffected()
	h, err := scanHook(tx.QueryRowContext(ctx, `SELECT `+hookCols+` FROM hooks WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return h, false, lifecycle.Errorf(lifecycle.CodeNotFound, "hook %s not found", id)
	}
	if err != nil {
		return h, false, unavailable(err)
	}
	return h, n == 1, unavailable(tx.Commit())
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
