package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Backup writes a consistent snapshot of the database to path (which must not exist),
// while the store stays in use.
func (s *Store) Backup(ctx context.Context, path string) error {
	// A connection of its own: the reader pool is query-only, and the writer's one
	// connection must keep committing while the snapshot is written.
	return vacuumInto(ctx, s.dsn, path)
}

// Snapshot writes a consistent snapshot of the database in dir to path (which must not
// exist), whether a Store in this or another process has it open or not. Unlike Open it
// neither creates nor migrates anything: a directory without a database is an error
// wrapping fs.ErrNotExist.
//
// The snapshot is one point in time of this database: VACUUM INTO reads it in one
// transaction while writers go on committing.
func Snapshot(ctx context.Context, dir, path string) error {
	src := filepath.Join(dir, FileName)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("snapshot of %s: no database: %w", dir, err)
	}
	q := url.Values{}
	q.Set("mode", "rw") // never create one
	q.Add("_pragma", "busy_timeout(5000)")
	return vacuumInto(ctx, "file:"+(&url.URL{Path: src}).EscapedPath()+"?"+q.Encode(), path)
}

func vacuumInto(ctx context.Context, dsn, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("backup to %s: the file exists", path)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path) // a partial file is no backup
		return fmt.Errorf("backup to %s: %w", path, describe(err))
	}
	// SQLite does not fsync what VACUUM INTO writes.
	if err := errors.Join(syncFile(path), syncFile(filepath.Dir(path))); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}

// Restore makes the snapshot at path (written by Backup or Snapshot) the database in dir,
// creating dir if needed, after checking it. It replaces an existing database and removes
// that one's write-ahead log. Nothing may have dir's database open meanwhile: hold the
// data directory's lock (package datadir).
func Restore(ctx context.Context, path, dir string) error {
	if err := Check(ctx, path); err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	tmp, err := copyInto(path, dir)
	if err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	// The old log goes first: beside the new database SQLite would replay it into it.
	if err := removeLog(dir); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore %s: %w", path, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, FileName)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore %s: %w", path, err)
	}
	if err := syncFile(dir); err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	return nil
}

// Remove deletes the database in dir, with its write-ahead log; no database is no error.
// Nothing may have it open.
func Remove(dir string) error {
	if err := removeLog(dir); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, FileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove database: %w", err)
	}
	return nil
}

func removeLog(dir string) error {
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(filepath.Join(dir, FileName+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove the old database's log: %w", err)
		}
	}
	return nil
}

// Check reads a snapshot through: it must be a SQLite database whose pages are intact.
// It changes nothing and creates nothing beside it.
func Check(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	header := make([]byte, 16)
	_, err = io.ReadFull(f, header)
	f.Close()
	if err != nil || !bytes.Equal(header, []byte("SQLite format 3\x00")) {
		return errors.New("not a SQLite database")
	}
	// Read-only and immutable: checking a snapshot creates no journal beside it.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&immutable=1")
	if err != nil {
		return err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&result); err != nil {
		return describe(err)
	}
	if result != "ok" {
		first, _, more := strings.Cut(result, "\n")
		if more {
			first += " …"
		}
		return fmt.Errorf("damaged: %s", first)
	}
	return nil
}

// copyInto copies the file at path to a new temporary file in dir, synced, and names it.
func copyInto(path, dir string) (string, error) {
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.CreateTemp(dir, "."+FileName+".restore-*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst.Name())
		return "", err
	}
	return dst.Name(), nil
}

// syncFile flushes a file or a directory (its entries) to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
