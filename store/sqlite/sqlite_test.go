package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

var ctx = context.Background()

func open(t *testing.T, dir string, opts *sqlite.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) lifecycle.Store { return open(t, t.TempDir(), nil) })
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lifecycle.New(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a", Labels: map[string]string{"zone": "eu"}}); err != nil {
		t.Fatal(err)
	}
	res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateError,
		Error: &lifecycle.ErrorInfo{Code: 3, Message: "boom"}})
	if err != nil || !res.Success {
		t.Fatal(res, err)
	}
	m.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir, nil)
	m, err = lifecycle.New(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := m.GetState(ctx, "a", true)
	if err != nil || st.State != lifecycle.StateError || st.Revision != 2 || st.Labels["zone"] != "eu" ||
		st.Error == nil || st.Error.Message != "boom" || st.LastSequence != 2 {
		t.Fatalf("after reopen: %+v, %v", st, err)
	}
	res, err = m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: lifecycle.StateRecovering})
	if err != nil || !res.Success || res.Event.Sequence != 3 {
		t.Fatalf("sequence does not continue after reopen: %+v, %v", res.Event, err)
	}
	w, err := m.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for want := uint64(1); want <= 3; want++ {
		if ev, err := w.Next(ctx); err != nil || ev.Sequence != want {
			t.Fatalf("replay from the database: %+v, %v", ev, err)
		}
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	s.Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlite.Open(ctx, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "schema version 99, newer than this binary knows") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

func TestForeignFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, sqlite.FileName), bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(ctx, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "not a SQLite database") {
		t.Fatalf("Open of a foreign file: %v", err)
	}
}

func TestBackup(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	m, _ := lifecycle.New(ctx, s, nil)
	defer m.Close()
	for i := range 50 {
		m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("agent-%d", i)})
	}
	backupDir := t.TempDir()
	if err := s.Backup(ctx, filepath.Join(backupDir, sqlite.FileName)); err != nil {
		t.Fatal(err)
	}
	if err := s.Backup(ctx, filepath.Join(backupDir, sqlite.FileName)); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("backup over an existing file: %v", err)
	}
	b := open(t, backupDir, nil)
	if _, newest, err := b.Sequences(ctx); err != nil || newest != 50 {
		t.Fatalf("backup holds %d events, %v", newest, err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := sqlite.Open(ctx, t.TempDir(), &sqlite.Options{Synchronous: "off"}); err == nil || !strings.Contains(err.Error(), `synchronous "off"`) {
		t.Errorf("bad synchronous: %v", err)
	}
	s := open(t, t.TempDir(), &sqlite.Options{Synchronous: "normal", MaxBatch: 2})
	storetestQuick(t, s)
}

// storetestQuick commits concurrently through a tiny batch size.
func storetestQuick(t *testing.T, s lifecycle.Store) {
	m, _ := lifecycle.New(ctx, s, nil)
	defer m.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("agent-%d", i)
			if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id}); err != nil {
				t.Error(err)
			}
			if res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateActive}); err != nil || !res.Success {
				t.Error(res, err)
			}
		}()
	}
	wg.Wait()
	if oldest, newest, _ := s.Sequences(ctx); oldest != 1 || newest != 40 {
		t.Errorf("sequences %d..%d, want 1..40", oldest, newest)
	}
}

func TestRetention(t *testing.T) {
	storetest.RunRetention(t, func(t *testing.T, r lifecycle.Retention) storetest.Pruner {
		return open(t, t.TempDir(), &sqlite.Options{Retention: r})
	})
}

func TestResumeOlderThanRetention(t *testing.T) {
	s := open(t, t.TempDir(), &sqlite.Options{Retention: lifecycle.Retention{MaxPerAgent: 2, Every: time.Hour}})
	m, _ := lifecycle.New(ctx, s, nil)
	defer m.Close()
	m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a"})
	for i := range 6 {
		m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "a", Target: []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}[i%2]})
	}
	page, err := m.History(ctx, lifecycle.HistoryRequest{AgentID: "a", Limit: 1})
	if err != nil || page.NextPageToken == "" {
		t.Fatal(page, err)
	}
	if n, err := s.Prune(ctx, time.Now()); err != nil || n != 5 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	_, err = m.Watch(ctx, lifecycle.WatchRequest{FromSequence: 3})
	if e, ok := err.(*lifecycle.Error); !ok || e.Code != lifecycle.CodeOutOfRange || e.ResumeSequence != 6 || !strings.Contains(e.Message, "oldest retained event 6") {
		t.Errorf("watch from a pruned sequence: %v", err)
	}
	_, err = m.History(ctx, lifecycle.HistoryRequest{AgentID: "a", Limit: 1, PageToken: page.NextPageToken})
	if lifecycle.ErrorCode(err) != lifecycle.CodeOutOfRange {
		t.Errorf("page token into pruned history: %v", err)
	}
	w, err := m.Watch(ctx, lifecycle.WatchRequest{FromSequence: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if ev, err := w.Next(ctx); err != nil || ev.Sequence != 6 {
		t.Errorf("watch from the oldest retained event: %+v, %v", ev, err)
	}
}
