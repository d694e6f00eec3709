package sqlite_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
)

// mount runs mount(8); these tests need root, as `make test` runs on CI.
func mount(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v: %s (the file-system failure tests need root)", strings.Join(args, " "), err, out)
	}
}

func umountAtCleanup(t *testing.T, dir string) {
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
}

func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	mount(t, "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir)
	umountAtCleanup(t, dir)
	s, err := sqlite.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, _ := lifecycle.New(ctx, s, nil)
	defer m.Close()
	meta := map[string]string{"padding": strings.Repeat("x", 4000)}
	var full error
	for i := 0; full == nil && i < 10000; i++ {
		_, _, full = m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: fmt.Sprintf("agent-%d", i), Metadata: meta})
	}
	if lifecycle.ErrorCode(full) != lifecycle.CodeUnavailable || !strings.Contains(full.Error(), "full") {
		t.Fatalf("on a full disk: %v", full)
	}
	_, before, _ := s.Sequences(ctx)
	// Nothing partial: every agent stored has exactly its registration event.
	page, _ := m.ListAgents(ctx, lifecycle.ListAgentsRequest{PageSize: 1000})
	if uint64(len(page.Agents)) != before {
		t.Fatalf("%d agents but %d events after the disk filled up", len(page.Agents), before)
	}
	// Make room: the store carries on, with no gap in the sequence.
	mount(t, "-o", "remount,size=64m", dir)
	_, ev, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "after", Metadata: meta})
	if err != nil || ev.Sequence != before+1 {
		t.Fatalf("after making room: sequence %d (want %d), %v", ev.Sequence, before+1, err)
	}
}

func TestReadOnlyDirectory(t *testing.T) {
	src := t.TempDir()
	s := open(t, src, nil)
	m, _ := lifecycle.New(ctx, s, nil)
	m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: "a"})
	m.Close()
	s.Close()
	os.Remove(filepath.Join(src, sqlite.FileName+"-shm"))

	dir := t.TempDir()
	mount(t, "--bind", src, dir)
	umountAtCleanup(t, dir)
	mount(t, "-o", "remount,bind,ro", dir)
	_, err := sqlite.Open(ctx, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "the data directory "+dir+" is not writable") ||
		!strings.Contains(err.Error(), "read-only file system") {
		t.Fatalf("open on a read-only file system: %v", err)
	}
	mount(t, "-o", "remount,bind,rw", dir)
	s = open(t, dir, nil)
	if a, err := s.GetAgent(ctx, "a"); err != nil || a.Revision != 1 {
		t.Fatalf("after the file system is writable again: %+v, %v", a, err)
	}
}
