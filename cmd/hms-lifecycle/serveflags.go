package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// checkServeFlags refuses, as usage errors (exit 2), serve settings that cannot work,
// before anything is opened: an address that is not host:port, an unknown store or log
// format, a non-loopback address without credentials (unless allowed).
func checkServeFlags(listen, logFormat, tokensFile string, allowRemote bool, sf *storeFlags) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return usageError{fmt.Errorf("--listen %q: want HOST:PORT, like %s: %w", listen, DefaultListen, err)}
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usageError{fmt.Errorf("--listen %q: %q is not a port number", listen, port)}
	}
	switch {
	case sf.store == "sqlite", sf.store == "memory",
		strings.HasPrefix(sf.store, "postgres://"), strings.HasPrefix(sf.store, "postgresql://"):
	default:
		return usageError{fmt.Errorf("--store %q: use sqlite, memory or a postgres:// URL", sf.store)}
	}
	if sf.sync != "full" && sf.sync != "normal" {
		return usageError{fmt.Errorf("--sqlite-sync %q: use full or normal", sf.sync)}
	}
	if logFormat != "text" && logFormat != "json" {
		return usageError{fmt.Errorf("--log-format %q: use text or json", logFormat)}
	}
	if tokensFile == "" {
		if err := checkLoopback(listen, allowRemote); err != nil {
			return usageError{err}
		}
	}
	return nil
}

// nextSteps tells a person at a terminal what to do next; programs reading the first
// line ("listening on URL") get nothing more.
func nextSteps(w io.Writer, url, listen string) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return
	}
	writeNextSteps(w, url, listen, progName())
}

// writeNextSteps writes the commands to try against the server at url, calling this
// program prog.
func writeNextSteps(w io.Writer, url, listen, prog string) {
	server := ""
	if url != "http://"+DefaultListen && listen != DefaultListen {
		server = " --server " + url
	}
	fmt.Fprintf(w, `ready; in another terminal:
  %[3]s%[1]s agents register agent-001
  %[3]s%[1]s agents transition agent-001 active --reason start
  %[3]s%[1]s agents watch
  curl -s %[2]s/metrics
Ctrl-C stops the server.
`, server, url, prog)
}

// progName is how to call this program from the current directory: its name when the
// PATH finds this very file, else a path to it.
func progName() string {
	self, err := os.Executable()
	if err != nil {
		return "hms-lifecycle"
	}
	if p, err := exec.LookPath("hms-lifecycle"); err == nil {
		if a, err := filepath.Abs(p); err == nil && a == self {
			return "hms-lifecycle"
		}
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, self); err == nil && !strings.HasPrefix(rel, "..") {
			return "./" + rel
		}
	}
	return self
}
