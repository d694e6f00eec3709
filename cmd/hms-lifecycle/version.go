package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/server"
)

// version is this program's version: the module version it was built as, or the commit.
func version() string { return server.Version() }

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print this program's version (hms-lifecycle server version asks a server for its own)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "hms-lifecycle %s\n", version())
			return nil
		},
	}
}

// health asks the server's gRPC health check over the Connect protocol; it returns the
// server's version (its Hms-Server-Version header) when it is serving.
func (g *globals) health(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(g.server, "/")+"/grpc.health.v1.Health/Check", strings.NewReader("{}"))
	if err != nil {
		return "", usageError{fmt.Errorf("--server %q: %w", g.server, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	hc := http.DefaultClient
	if strings.HasPrefix(g.server, "https://") {
		tc, err := g.tls.client()
		if err != nil {
			return "", err
		}
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "cannot reach " + g.server + " (is `hms-lifecycle serve` running?)", Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "SERVING") {
		return "", &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: fmt.Sprintf("%s answered %s: %s", g.server, resp.Status, body)}
	}
	return resp.Header.Get(server.VersionHeader), nil
}

func serverCommand(g *globals) *cobra.Command {
	cmd := group("server", "Ask a server about itself")
	var timeout time.Duration
	wait := &cobra.Command{
		Use:   "wait",
		Short: "Wait until the server serves (exit 0), or --timeout passes (exit 5)",
		Long: "Wait until the server serves (exit 0), or --timeout passes (exit 5): asks its health check\n" +
			"every 200ms, so that a script can start `hms-lifecycle serve &` and go on once it listens.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %v: give a positive duration, like 30s", timeout)}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			for {
				_, err := g.health(ctx)
				if err == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%s is serving\n", g.server)
					return nil
				}
				if lifecycle.ErrorCode(err) != lifecycle.CodeUnavailable {
					return err
				}
				select {
				case <-ctx.Done():
					if cmd.Context().Err() != nil {
						return err
					}
					msg := err.Error()
					var le *lifecycle.Error
					if errors.As(err, &le) {
						msg = le.Message
					}
					return &lifecycle.Error{Code: lifecycle.CodeUnavailable,
						Message: fmt.Sprintf("%s is not serving after %v (last answer: %s)", g.server, timeout, msg)}
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
	wait.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	cmd.AddCommand(&cobra.Command{
		Use:   "health",
		Short: "Check that the server is serving (gRPC health check over the Connect protocol)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := g.health(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is serving\n", g.server)
			return nil
		},
	}, wait, &cobra.Command{
		Use:   "version",
		Short: "Print the server's version",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := g.health(cmd.Context())
			if err != nil {
				return err
			}
			if v == "" {
				return errors.New(g.server + " does not say its version (a server older than this client)")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", v)
			return nil
		},
	})
	return cmd
}
