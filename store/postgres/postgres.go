// Package postgres is the lifecycle.Store for several server replicas sharing one
// PostgreSQL database, through pgx.
//
// Commits are grouped: one writer goroutine per process sends every waiting commit in one
// pipelined transaction. The transaction first locks the one-row sequence counter, so
// transactions hand out sequences one after another in commit order, across replicas, and a
// rolled-back transaction returns its numbers: sequences are gap-free. Every commit
// notifies the other replicas (LISTEN/NOTIFY on channel "lifecycle"), which then read the
// new events by sequence; a lost notification delays an event, never loses it.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/internal/groupcommit"
)

// Options configure a Store. The zero value gives the defaults documented on each field.
type Options struct {
	// MaxBatch bounds how many commits share one transaction. Zero means 256.
	MaxBatch int
	// MaxConns bounds the connection pool. Zero means pgxpool's default (the larger of 4
	// and the number of CPUs).
	MaxConns int32
	// Retention prunes old events; the zero value keeps every event. Replicas take turns.
	Retention lifecycle.Retention
	// Logger receives pruning problems. Nil means slog.Default().
	Logger *slog.Logger
	// Schema keeps the store's tables in this schema (created if missing) instead of the
	// connection's default, so that two stores — agents and the plugin registry — share
	// one database. Its replicas signal each other on channel "lifecycle_<schema>".
	Schema string
}

// Channel is the LISTEN/NOTIFY channel the replicas signal each other on (with no Schema).
const Channel = "lifecycle"

// Store is a lifecycle.Store in PostgreSQL.
type Store struct {
	dsn     string
	schema  string
	channel string
	pool    *pgxpool.Pool
	writer  *groupcommit.Writer
	once    sync.Once

	retention   lifecycle.Retention
	log         *slog.Logger
	stopPruning chan struct{}
	pruned      chan struct{} // closed when the pruner has stopped
}

var _ lifecycle.SharedStore = (*Store)(nil)

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

//go:embed migrations/*.sql
var migrations embed.FS

// Open connects to the database at dsn and brings its schema up to date (under an
// advisory lock, so replicas starting together migrate once). A schema newer than this
// binary knows is refused.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	channel := Channel
	if opts.Schema != "" {
		if !schemaName.MatchString(opts.Schema) {
			return nil, fmt.Errorf("open postgres store: schema %q: use lower-case letters, digits and _", opts.Schema)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
		channel += "_" + opts.Schema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if opts.Schema != "" {
		if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+opts.Schema); err != nil {
			pool.Close()
			return nil, fmt.Errorf("open postgres store: create schema %s: %w", opts.Schema, err)
		}
	}
	s := &Store{dsn: dsn, schema: opts.Schema, channel: channel, pool: pool, retention: opts.Retention, log: opts.Logger,
		stopPruning: make(chan struct{}), pruned: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s.writer = groupcommit.Start("postgres", opts.MaxBatch, s.commitBatch)
	if s.retention.Enabled() {
		go groupcommit.Prune(s.stopPruning, s.pruned, s.retention.Every, s.log, s.Prune)
	} else {
		close(s.pruned)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub, goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	sources := p.ListSources()
	if known := sources[len(sources)-1].Version; current > known {
		return fmt.Errorf("the database has schema version %d, newer than this binary knows (%d): upgrade hms-lifecycle", current, known)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	return nil
}

// Close commits what is queued, stops the writer and the pruner, and closes the pool.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.writer.Close()
		close(s.stopPruning)
		<-s.pruned
		s.pool.Close()
	})
	return nil
}

// Changes implements lifecycle.SharedStore: a dedicated connection LISTENs on the channel
// (payload "events", "hooks" or "policy:<agent id>") and reconnects with backoff; after a
// (re)connect it signals everything, since notifications sent meanwhile are lost.
func (s *Store) Changes(ctx context.Context) lifecycle.Changes {
	ev, hk, pol := make(chan struct{}, 1), make(chan struct{}, 1), make(chan string, 256)
	signal := func(c chan struct{}) {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	policy := func(id string) {
		select {
		case pol <- id:
		default: // full: ask for a reload of every policy instead
			select {
			case <-pol:
			default:
			}
			select {
			case pol <- "":
			default:
			}
		}
	}
	go func() {
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			conn, err := pgx.Connect(ctx, s.dsn)
			if err == nil {
				_, err = conn.Exec(ctx, "LISTEN "+s.channel)
			}
			if err == nil {
				backoff = 100 * time.Millisecond
				signal(ev)
				signal(hk)
				policy("")
				for err == nil {
					var n *pgconn.Notification
					if n, err = conn.WaitForNotification(ctx); err == nil {
						switch {
						case n.Payload == "hooks":
							signal(hk)
						case strings.HasPrefix(n.Payload, "policy:"):
							policy(strings.TrimPrefix(n.Payload, "policy:"))
						default:
							signal(ev)
						}
					}
				}
			}
			if conn != nil {
				conn.Close(context.Background())
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
				backoff = min(2*backoff, 5*time.Second)
			}
		}
	}()
	return lifecycle.Changes{Events: ev, Hooks: hk, Policies: pol}
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var le *lifecycle.Error
	if errors.As(err, &le) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "postgres store", Err: err}
}
