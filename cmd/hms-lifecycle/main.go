// Command hms-lifecycle runs the HMS lifecycle manager.
//
// Until the server lands, its one subcommand, demo, walks an agent through its lifecycle
// on the in-memory store, printing what the manager answers and what a watcher sees.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hms-lifecycle:", err)
		os.Exit(2)
	}
}

const usage = `usage: hms-lifecycle demo

  demo   walk an agent through its lifecycle on the in-memory store`

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command given\n" + usage)
	}
	switch args[0] {
	case "demo":
		return demo(ctx, out)
	case "help", "-h", "--help":
		fmt.Fprintln(out, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}
