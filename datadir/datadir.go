// Package datadir keeps two processes from using one data directory at once.
//
// A server (`hms-lifecycle serve`) or a program embedding the library (the C library)
// calls Lock before it opens anything in the directory, and Close after it has closed
// everything:
//
//	l, err := datadir.Lock(dir) // before sqlite.Open(ctx, dir, …)
//	if err != nil {
//		return err // FAILED_PRECONDITION: "data directory … is in use by process N (…)"
//	}
//	defer l.Close()
//
// The lock is an exclusive flock(2) on <dir>/LOCK, which holds the holder's pid and
// command line so that the next one can say who has it. The kernel releases it when the
// holder closes it or dies, however it dies, so a crash never leaves a stale lock; the file
// itself stays (removing it would let two processes lock two different files).
//
// flock locks belong to an open file: a second Lock in the same process fails too. They
// work on local file systems; on NFS Linux emulates them with byte-range locks.
package datadir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hms-lifecycle/lifecycle"
)

// FileName is the lock file's name inside the data directory.
const FileName = "LOCK"

// Locked is a data directory held by this process until Close.
type Locked struct {
	dir string
	f   *os.File
}

// Lock creates dir if needed and locks it, or fails at once with a *lifecycle.Error of
// code CodeFailedPrecondition naming the process that holds it.
func Lock(dir string) (*Locked, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := readHolder(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &lifecycle.Error{Code: lifecycle.CodeFailedPrecondition,
				Message: fmt.Sprintf("data directory %s is in use by %s: stop it first, or use another directory", dir, holder)}
		}
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	// Ours now: say who holds it. A failure here only makes the next error less precise.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), strings.Join(os.Args, " "))), 0)
	}
	return &Locked{dir: dir, f: f}, nil
}

// Dir is the locked directory.
func (l *Locked) Dir() string { return l.dir }

// Close releases the lock. It leaves the file, emptied; calling it again does nothing.
func (l *Locked) Close() error {
	if l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	f.Truncate(0) // no stale pid for a reader; the lock, not the content, is what counts
	if err := f.Close(); err != nil {
		return fmt.Errorf("unlock data directory %s: %w", l.dir, err)
	}
	return nil
}

// flock retries when a signal interrupts the call.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// readHolder describes the process named in the lock file: "process N (command line)".
func readHolder(f *os.File) (string, error) {
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if n == 0 {
		// The holder has locked but not written yet (or wrote nothing).
		return "another process", err
	}
	line, _, _ := bytes.Cut(b[:n], []byte("\n"))
	pid, cmd, _ := strings.Cut(string(line), " ")
	if _, err := strconv.Atoi(pid); err != nil {
		return "another process", nil
	}
	desc := "process " + pid
	if pid == strconv.Itoa(os.Getpid()) {
		desc += " (this process)"
	} else if cmd != "" {
		desc += " (" + cmd + ")"
	}
	return desc, nil
}
