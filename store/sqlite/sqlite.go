// Package sqlite is the embedded lifecycle.Store: one SQLite database file in WAL mode,
// through the pure-Go modernc.org/sqlite driver (no cgo, so the C-ABI library and cross
// builds stay simple).
//
// Writes of agents and events go through one writer goroutine that groups concurrent
// commits into one transaction (group commit): durable throughput is not bound to one
// fsync per transition. Sequences are assigned by that writer, so they are gap-free and in
// commit order.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/internal/groupcommit"
)

// Options configure a Store. The zero value gives the defaults documented on each field.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "full" (the default) makes every
	// commit durable before it is acknowledged; "normal" can lose the last commits on a
	// power failure (not on a process crash) in exchange for fewer fsyncs.
	Synchronous string
	// MaxBatch bounds how many commits share one transaction. Zero means 256.
	MaxBatch int
	// BusyTimeout is how long to wait for a lock held by another connection or process.
	// Zero means 5s.
	BusyTimeout time.Duration
	// Retention prunes old events; the zero value keeps every event.
	Retention lifecycle.Retention
	// Logger receives pruning problems. Nil means slog.Default().
	Logger *slog.Logger
}

// FileName is the database file's name inside the data directory.
const FileName = "lifecycle.db"

// Store is a lifecycle.Store in a SQLite database.
type Store struct {
	dsn   string
	write *sql.DB // one connection: the writer goroutine and hook updates
	read  *sql.DB // readers; WAL lets them run beside the writer

	writer *groupcommit.Writer
	next   uint64 // next sequence; owned by the writer goroutine
	stmts  map[string]*sql.Stmt
	once   sync.Once

	retention   lifecycle.Retention
	log         *slog.Logger
	stopPruning chan struct{}
	pruned      chan struct{} // closed when the pruner has stopped
}

var _ lifecycle.Store = (*Store)(nil)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the database in dir and brings its schema up to date.
// A database whose schema is newer than this binary knows is refused.
func Open(ctx context.Context, dir string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	sync := opts.Synchronous
	switch sync {
	case "":
		sync = "full"
	case "full", "normal":
	default:
		return nil, fmt.Errorf("open sqlite store: synchronous %q: use full or normal", opts.Synchronous)
	}
	busy := opts.BusyTimeout
	if busy == 0 {
		busy = 5 * time.Second
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open sqlite store: create data directory: %w", err)
	}
	// SQLite itself would only say "unable to open database file".
	if probe, err := os.CreateTemp(dir, ".write-test-*"); err != nil {
		return nil, fmt.Errorf("open sqlite store: the data directory %s is not writable: %w", dir, err)
	} else {
		probe.Close()
		os.Remove(probe.Name())
	}
	path := filepath.Join(dir, FileName)
	dsn := func(readOnly bool) string {
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous("+sync+")")
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
		q.Add("_pragma", "foreign_keys(on)")
		q.Set("_txlock", "immediate")
		if readOnly {
			q.Add("_pragma", "query_only(true)")
		}
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	s := &Store{dsn: dsn(false), retention: opts.Retention, log: opts.Logger,
		stopPruning: make(chan struct{}), pruned: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if err := s.open(ctx, dsn); err != nil {
		if s.read != nil {
			s.read.Close()
		}
		if s.write != nil {
			s.write.Close()
		}
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s.writer = groupcommit.Start("sqlite", opts.MaxBatch, s.commitBatch)
	if s.retention.Enabled() {
		go groupcommit.Prune(s.stopPruning, s.pruned, s.retention.Every, s.log, s.Prune)
	} else {
		close(s.pruned)
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, dsn func(readOnly bool) string) error {
	var err error
	if s.write, err = sql.Open("sqlite", dsn(false)); err != nil {
		return err
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetConnMaxIdleTime(0)
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if s.read, err = sql.Open("sqlite", dsn(true)); err != nil {
		return err
	}
	var last sql.NullInt64
	if err := s.write.QueryRowContext(ctx, `SELECT MAX(sequence) FROM events`).Scan(&last); err != nil {
		return err
	}
	s.next = uint64(last.Int64) + 1
	s.stmts = map[string]*sql.Stmt{}
	for _, q := range []string{insertAgentSQL, updateAgentSQL, deleteAgentSQL, insertEventSQL} {
		if s.stmts[q], err = s.write.PrepareContext(ctx, q); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return describe(err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.write, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", describe(err))
	}
	sources := p.ListSources()
	if known := sources[len(sources)-1].Version; current > known {
		return fmt.Errorf("the database has schema version %d, newer than this binary knows (%d): upgrade hms-lifecycle", current, known)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate schema: %w", describe(err))
	}
	return nil
}

// describe turns SQLite's terse "file is not a database" into advice.
func describe(err error) error {
	if err != nil && (containsAny(err.Error(), "file is not a database", "SQLITE_NOTADB")) {
		return fmt.Errorf("not a SQLite database (corrupt, or another program's file): %w", err)
	}
	return err
}

// Close commits what is queued, stops the writer and the pruner, and closes the database.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.writer.Close()
		close(s.stopPruning)
		<-s.pruned
		err = errors.Join(s.read.Close(), s.write.Close())
	})
	return err
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var le *lifecycle.Error
	if errors.As(err, &le) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "sqlite store", Err: describe(err)}
}
