// Command pgcluster starts a throw-away PostgreSQL cluster for the Python binding's tests
// (store/postgres/pgtest: initdb and pg_ctl in a folder under TMPDIR, named after the run
// marker HMS_TEST_RUN), creates a database in it, prints its connection string as one JSON
// line, then waits for the end of its standard input and removes the cluster.
//
// The test holds the other end of that pipe, so the cluster goes when the test closes it,
// or when the test's process dies; if this helper is killed instead, the cluster's reaper
// (which waits on a pipe only this process holds) removes it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hms-lifecycle/lifecycle/store/postgres/pgtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pgcluster:", err)
		os.Exit(1)
	}
}

func run() error {
	c, err := pgtest.Start()
	if err != nil {
		return fmt.Errorf("start the cluster: %w", err)
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		return fmt.Errorf("wait for the cluster: %w", err)
	}
	dsn, err := c.CreateDatabase(ctx, "hms")
	if err != nil {
		return fmt.Errorf("create the database: %w", err)
	}
	line, err := json.Marshal(map[string]string{"dsn": dsn, "dir": c.Dir})
	if err != nil {
		return err
	}
	if _, err := fmt.Println(string(line)); err != nil {
		return fmt.Errorf("print the connection string: %w", err)
	}
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		return fmt.Errorf("wait for the end of stdin: %w", err)
	}
	if err := c.Stop(); err != nil {
		return fmt.Errorf("stop the cluster: %w", err)
	}
	return nil
}
