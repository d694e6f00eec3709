// Command hms-lifecycle runs the HMS lifecycle manager: `serve` is the server (gRPC,
// gRPC-Web and Connect on one port, on the embedded SQLite store by default), `backup`
// snapshots its database, `demo` walks an agent through its lifecycle in memory.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hms-lifecycle:", err)
		os.Exit(2)
	}
}

const usage = `usage: hms-lifecycle COMMAND [flags]

  serve    serve the lifecycle manager (hms-lifecycle serve -h for its flags)
  backup   write a consistent snapshot of the SQLite database
  demo     walk an agent through its lifecycle on the in-memory store`

func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command given\n" + usage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], out, errOut)
	case "backup":
		return backup(ctx, args[1:], out, errOut)
	case "demo":
		return demo(ctx, out)
	case "help", "-h", "--help":
		fmt.Fprintln(out, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
