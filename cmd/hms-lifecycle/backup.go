package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/datadir"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
)

// pluginsDir is where the plugin registry's database lives in a data directory.
const pluginsDir = "plugins"

// databases are the directories of a data directory's SQLite databases, relative to it:
// the plugin registry and the agents'. A backup has the same layout. The registry comes
// first: it is small, so the agents' snapshot starts moments after it (docs/backup.md).
func databases() []string { return []string{pluginsDir, "."} }

func backupCommand() *cobra.Command {
	var dataDir, out string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write a consistent snapshot of every database of a data directory, while it is in use",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return backup(cmd.Context(), dataDir, out, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", env("HMS_DATA_DIR", "hms-data"), "the server's data directory [HMS_DATA_DIR]")
	cmd.Flags().StringVar(&out, "out", "", "directory to write the backup to (must not exist)")
	cmd.MarkFlagRequired("out")
	return cmd
}

func restoreCommand() *cobra.Command {
	var from, dataDir string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Make a backup the databases of a data directory; no server may be using it",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return restore(cmd.Context(), from, dataDir, force, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup directory (written by backup)")
	cmd.Flags().StringVar(&dataDir, "data-dir", env("HMS_DATA_DIR", "hms-data"), "the data directory to restore into (created if needed) [HMS_DATA_DIR]")
	cmd.Flags().BoolVar(&force, "force", false, "replace the databases of a data directory that is not empty")
	cmd.MarkFlagRequired("from")
	return cmd
}

// backup snapshots each database of dataDir into a new directory out. It is written
// beside out and renamed at the end, so a failed backup leaves no directory that looks
// like one.
func backup(ctx context.Context, dataDir, out string, w io.Writer) error {
	if err := hasDatabase("--data-dir", dataDir, "nothing to back up"); err != nil {
		return err
	}
	if _, err := os.Lstat(out); err == nil {
		return usageError{fmt.Errorf("--out %s exists: a backup goes to a new directory", out)}
	}
	parent := filepath.Dir(out)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".partial-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	var written []string
	for _, sub := range databases() {
		src := filepath.Join(dataDir, sub)
		if sub != "." && !exists(filepath.Join(src, sqlite.FileName)) {
			continue // a data directory no server with plugins has used yet
		}
		if err := os.MkdirAll(filepath.Join(tmp, sub), 0o700); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := sqlite.Snapshot(ctx, src, filepath.Join(tmp, sub, sqlite.FileName)); err != nil {
			return fmt.Errorf("backup of %s: %w", dataDir, err)
		}
		written = append(written, filepath.Join(sub, sqlite.FileName))
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	done = true
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(w, "backed up %s to %s: %s\n", dataDir, out, strings.Join(written, ", "))
	return nil
}

// restore makes the databases of the backup from those of dataDir, holding dataDir's
// lock: no server can be using it, nor start on it meanwhile.
func restore(ctx context.Context, from, dataDir string, force bool, w io.Writer) error {
	// The backup is read through before anything is created or replaced.
	if err := hasDatabase("--from", from, "not a backup"); err != nil {
		return err
	}
	var restored []string
	for _, sub := range databases() {
		path := filepath.Join(from, sub, sqlite.FileName)
		if !exists(path) {
			continue
		}
		if err := sqlite.Check(ctx, path); err != nil {
			return fmt.Errorf("restore: the backup's %s: %w", path, err)
		}
		restored = append(restored, filepath.Join(sub, sqlite.FileName))
	}
	lock, err := datadir.Lock(dataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var present []string
	for _, e := range entries {
		if e.Name() != datadir.FileName {
			present = append(present, e.Name())
		}
	}
	if len(present) > 0 && !force {
		return lifecycle.Errorf(lifecycle.CodeFailedPrecondition,
			"data directory %s is not empty (%s): restore over it with --force, which replaces its databases",
			dataDir, strings.Join(present, ", "))
	}
	for _, sub := range databases() {
		path, dir := filepath.Join(from, sub, sqlite.FileName), filepath.Join(dataDir, sub)
		if !exists(path) {
			// Not in the backup: not left behind either, or it would go with the wrong data.
			if err := sqlite.Remove(dir); err != nil {
				return fmt.Errorf("restore into %s: %w", dataDir, err)
			}
			continue
		}
		if err := sqlite.Restore(ctx, path, dir); err != nil {
			return fmt.Errorf("restore into %s: %w", dataDir, err)
		}
	}
	fmt.Fprintf(w, "restored %s into %s: %s\n", from, dataDir, strings.Join(restored, ", "))
	return nil
}

// hasDatabase is a usage error naming the flag when dir holds no agents' database: most
// likely a mistyped path.
func hasDatabase(flag, dir, what string) error {
	_, err := os.Stat(filepath.Join(dir, sqlite.FileName))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return usageError{fmt.Errorf("%s %s holds no database (%s): %s; is the path right?", flag, dir, sqlite.FileName, what)}
	}
	return fmt.Errorf("%s %s: %w", flag, dir, err)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// syncDir makes a directory's new entries durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
