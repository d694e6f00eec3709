// Command hms-lifecycle runs the HMS lifecycle manager and talks to it: `serve` is the
// server (gRPC, gRPC-Web and Connect on one port, on the embedded SQLite store by
// default); `agents` and `hooks` manage a running server; `backup` snapshots its databases
// and `restore` puts them back; `demo` walks an agent through its lifecycle in memory.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hms-lifecycle/lifecycle"
)

// Exit codes scripts can rely on (docs/cli.md).
const (
	exitOK          = 0
	exitError       = 1 // anything else: internal, unauthenticated, permission denied…
	exitUsage       = 2 // bad flags or arguments, or INVALID_ARGUMENT from the server
	exitRefused     = 3 // the lifecycle refused the transition (or hook registration)
	exitNotFound    = 4
	exitUnavailable = 5 // the server cannot be reached, or its store
	exitConflict    = 6 // ALREADY_EXISTS, precondition or concurrent change
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hms-lifecycle:", err)
	}
	os.Exit(exitCode(err))
}

func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(errOut)
	if len(args) == 0 {
		return usageError{errors.New("no command given: try hms-lifecycle --help")}
	}
	if _, _, err := root.Find(args); err != nil {
		return usageError{err}
	}
	err := root.ExecuteContext(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "required flag") { // cobra's MarkFlagRequired
		return usageError{err}
	}
	return err
}

// newRoot is the command tree.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "hms-lifecycle",
		Short:         "The HMS lifecycle manager: agents' and plugins' states, transitions, events and hooks",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.Version = version()
	root.SetVersionTemplate("hms-lifecycle {{.Version}}\n")
	var g globals
	// The client flags (--server, --token, …) belong to the commands that talk to a server,
	// so that serve, backup, restore and demo neither list nor accept them.
	clients := []*cobra.Command{agentsCommand(&g), hooksCommand(&g), pluginsCommand(&g), serverCommand(&g), benchCommand(&g)}
	for _, c := range clients {
		g.register(c)
	}
	root.AddCommand(serveCommand(), backupCommand(), restoreCommand(), demoCommand(), versionCommand())
	root.AddCommand(clients...)
	// help and completion are added by Execute; added now, Find knows them too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	return root
}

// args wraps cobra's argument checks so that a wrong count is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}

// usageError marks a mistake in the command line.
type usageError struct{ error }

// refusedError: the lifecycle said no; the message says why.
type refusedError struct{ msg string }

func (e refusedError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	var re refusedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &re):
		return exitRefused
	}
	switch lifecycle.ErrorCode(err) {
	case lifecycle.CodeInvalidArgument:
		return exitUsage
	case lifecycle.CodeNotFound:
		return exitNotFound
	case lifecycle.CodeUnavailable:
		return exitUnavailable
	case lifecycle.CodeAlreadyExists, lifecycle.CodeAborted, lifecycle.CodeFailedPrecondition:
		return exitConflict
	}
	return exitError
}

func demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Walk an agent through its lifecycle on the in-memory store",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return demo(cmd.Context(), cmd.OutOrStdout()) },
	}
}
