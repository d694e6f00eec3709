package sqlite_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
)

func register(t *testing.T, s lifecycle.Store, prefix string, n int) {
	t.Helper()
	m, err := lifecycle.New(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range n {
		if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("%s-%d", prefix, i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func newest(t *testing.T, dir string) uint64 {
	t.Helper()
	s := open(t, dir, nil)
	_, n, err := s.Sequences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return n
}

// A mistyped directory is an error, and Snapshot creates nothing, not even the directory.
func TestSnapshotOfNoDatabase(t *testing.T) {
	empty := t.TempDir()
	for _, dir := range []string{filepath.Join(empty, "typo"), empty} {
		err := sqlite.Snapshot(ctx, dir, filepath.Join(t.TempDir(), "snap.db"))
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no database") {
			t.Errorf("Snapshot of %s: %v", dir, err)
		}
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("Snapshot created %v", entries)
	}
}

// Snapshot reads a database another Store has open and is writing to.
func TestSnapshotWhileInUse(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	register(t, s, "a", 30)
	snap := filepath.Join(t.TempDir(), "snap", sqlite.FileName)
	os.Mkdir(filepath.Dir(snap), 0o755)
	done := make(chan struct{})
	go func() { defer close(done); register(t, s, "b", 30) }()
	if err := sqlite.Snapshot(ctx, dir, snap); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := sqlite.Snapshot(ctx, dir, snap); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("snapshot over an existing file: %v", err)
	}
	if n := newest(t, filepath.Dir(snap)); n < 30 || n > 60 {
		t.Errorf("snapshot holds %d events, want 30 to 60", n)
	}
}

// Restore replaces a database whose log still holds commits: the old log must not be
// replayed into the restored database.
func TestRestoreReplacesDatabaseAndLog(t *testing.T) {
	src := t.TempDir()
	s := open(t, src, nil)
	register(t, s, "kept", 50)
	snap := filepath.Join(t.TempDir(), "snap.db")
	if err := s.Backup(ctx, snap); err != nil {
		t.Fatal(err)
	}

	// A database crashed with commits only in its log: copied while still open.
	old, target := t.TempDir(), t.TempDir()
	o := open(t, old, nil)
	register(t, o, "replaced", 7)
	for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal"} {
		b, err := os.ReadFile(filepath.Join(old, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(target, name), b, 0o600)
	}
	if fi, _ := os.Stat(filepath.Join(target, sqlite.FileName+"-wal")); fi == nil || fi.Size() == 0 {
		t.Fatal("the copied database has no log to replay; the test proves nothing")
	}

	if err := sqlite.Restore(ctx, snap, target); err != nil {
		t.Fatal(err)
	}
	r := open(t, target, nil)
	if _, n, err := r.Sequences(ctx); err != nil || n != 50 {
		t.Fatalf("restored database holds %d events (%v), want 50", n, err)
	}
	if _, err := r.GetAgent(ctx, "replaced-0"); lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
		t.Errorf("an agent of the replaced database survived: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Remove(target); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(target); len(entries) != 0 {
		t.Errorf("Remove left %v", entries)
	}
}

func TestRestoreRefusesDamage(t *testing.T) {
	src := t.TempDir()
	s := open(t, src, nil)
	register(t, s, "a", 20)
	snap := filepath.Join(t.TempDir(), "snap.db")
	if err := s.Backup(ctx, snap); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(snap)
	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, []byte(strings.Repeat("not a database ", 500)), 0o600)
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	for i := 4096; i < len(b); i++ { // every page but the first
		b[i] ^= 0x5a
	}
	os.WriteFile(damaged, b, 0o600)
	for _, path := range []string{junk, damaged, filepath.Join(src, "missing.db")} {
		target := t.TempDir()
		if err := sqlite.Restore(ctx, path, target); err == nil {
			t.Errorf("Restore of %s succeeded", filepath.Base(path))
		} else {
			t.Logf("%s: %v", filepath.Base(path), err)
		}
		if entries, _ := os.ReadDir(target); len(entries) != 0 {
			t.Errorf("a failed Restore left %v", entries)
		}
	}
}
