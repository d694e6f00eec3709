package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/datadir"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
	"github.com/hms-lifecycle/lifecycle/server"
	"github.com/hms-lifecycle/lifecycle/store/memory"
	"github.com/hms-lifecycle/lifecycle/store/postgres"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
	"github.com/hms-lifecycle/lifecycle/ui"
	"github.com/hms-lifecycle/lifecycle/webhook"
)

// DefaultListen is where the server listens without configuration: loopback only.
const DefaultListen = "127.0.0.1:7460"

// env returns the environment variable's value, or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

type storeFlags struct {
	store, dataDir, sync string
	retainAge            time.Duration
	retainPerAgent       int
}

func (f *storeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.store, "store", env("HMS_STORE", "sqlite"), "sqlite (in --data-dir), memory, or a postgres://… URL [HMS_STORE]")
	fs.StringVar(&f.dataDir, "data-dir", env("HMS_DATA_DIR", "hms-data"), "directory of the SQLite database [HMS_DATA_DIR]")
	fs.StringVar(&f.sync, "sqlite-sync", env("HMS_SQLITE_SYNC", "full"), "full: every acknowledged transition is on disk; normal: faster, may lose the last ones on power loss [HMS_SQLITE_SYNC]")
	fs.DurationVar(&f.retainAge, "retain-age", 0, "prune events older than this (0: keep); each agent keeps its last event")
	fs.IntVar(&f.retainPerAgent, "retain-per-agent", 0, "keep at most this many events per agent (0: all)")
}

// open opens the configured store and says which it is.
func (f *storeFlags) open(ctx context.Context, log *slog.Logger) (lifecycle.Store, io.Closer, string, error) {
	retention := lifecycle.Retention{MaxAge: f.retainAge, MaxPerAgent: f.retainPerAgent}
	switch {
	case f.store == "memory":
		s := memory.New()
		return s, s, "memory (nothing survives a restart)", nil
	case f.store == "sqlite":
		s, err := sqlite.Open(ctx, f.dataDir, &sqlite.Options{Synchronous: f.sync, Retention: retention, Logger: log})
		if err != nil {
			return nil, nil, "", err
		}
		return s, s, "sqlite in " + f.dataDir, nil
	case strings.HasPrefix(f.store, "postgres://") || strings.HasPrefix(f.store, "postgresql://"):
		s, err := postgres.Open(ctx, f.store, &postgres.Options{Retention: retention, Logger: log})
		if err != nil {
			return nil, nil, "", err
		}
		return s, s, "postgres", nil
	}
	return nil, nil, "", fmt.Errorf("--store %q: use sqlite, memory or a postgres:// URL", f.store)
}

// openPlugins opens the plugin registry's store beside the agents': a second SQLite
// database in <data-dir>/plugins, a "plugins" schema in PostgreSQL, or memory.
func (f *storeFlags) openPlugins(ctx context.Context, log *slog.Logger) (lifecycle.Store, io.Closer, error) {
	switch {
	case f.store == "memory":
		s := memory.New()
		return s, s, nil
	case f.store == "sqlite":
		s, err := sqlite.Open(ctx, filepath.Join(f.dataDir, pluginsDir), &sqlite.Options{Synchronous: f.sync, Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("plugin registry: %w", err)
		}
		return s, s, nil
	default:
		s, err := postgres.Open(ctx, f.store, &postgres.Options{Schema: "plugins", Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("plugin registry: %w", err)
		}
		return s, s, nil
	}
}

// pluginFlags configure the plugin lifecycle manager.
type pluginFlags struct {
	opts      plugin.Options
	corePorts []string
}

func (f *pluginFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.opts.Repository, "plugin-repo", env("HMS_PLUGIN_REPO", ""), "directory of plugin packages to discover and watch (empty: none) [HMS_PLUGIN_REPO]")
	fs.StringSliceVar(&f.corePorts, "core-ports", nil, "the core's port catalogue that manifests' consumedCorePorts are checked against (default: "+strings.Join(manifest.DefaultCorePorts, ", ")+")")
	fs.BoolVar(&f.opts.AutoActivate, "plugin-auto-activate", false, "activate plugins as soon as they are registered")
	fs.BoolVar(&f.opts.ActivateOnDemand, "plugin-activate-on-demand", false, "let resolve activate the best inactive version")
	fs.DurationVar(&f.opts.IdleTimeout, "plugin-idle-timeout", 0, "deactivate plugins not resolved for this long (0: never)")
	fs.DurationVar(&f.opts.Rescan, "plugin-rescan", 30*time.Second, "rescan the plugin repository this often, besides file-system notifications")
	fs.BoolVar(&f.opts.Failover, "plugin-failover", false, "when a plugin's active version fails at runtime, activate its highest inactive version")
	fs.StringVar(&f.opts.FailoverConstraint, "plugin-failover-constraint", "", "only fail over to versions satisfying this constraint, e.g. ^1 (empty: any)")
	fs.Var(&f.opts.FailoverRate, "plugin-failover-rate", "at most N failovers per plugin in any window D, as N/D (default 3/10m)")
	fs.Float64Var(&f.opts.PressureThreshold, "plugin-pressure-threshold", 0, "host pressure in percent (PSI some avg10, or load average per core) above which on-demand activation is refused (0: pressure not read)")
	fs.DurationVar(&f.opts.PressureWait, "plugin-pressure-wait", 0, "how long an on-demand activation under pressure waits for it to fall before it is refused")
	fs.DurationVar(&f.opts.PressureIdleTimeout, "plugin-pressure-idle-timeout", 0, "the idle timeout while the host is under pressure, least recently resolved first (0: --plugin-idle-timeout)")
}

func serveCommand() *cobra.Command {
	var listen, logFormat, tokensFile string
	var tf tlsFlags
	var allowRemote bool
	var webhookAllow []string
	var sf storeFlags
	var pf policyFlags
	var plf pluginFlags
	var configFile string
	var corsOrigins []string
	var otlpEndpoint string
	var console bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the lifecycle manager over gRPC, gRPC-Web and Connect on one port",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				if err := applyConfig(cmd.Flags(), configFile); err != nil {
					return err
				}
			}
			if err := checkServeFlags(listen, logFormat, tokensFile, allowRemote, &sf); err != nil {
				return err
			}
			var allow []netip.Prefix
			for _, a := range webhookAllow {
				p, err := netip.ParsePrefix(a)
				if err != nil {
					return usageError{fmt.Errorf("--webhook-allow %q: want a network like 10.0.0.0/8: %w", a, err)}
				}
				allow = append(allow, p)
			}
			tc, err := tf.server()
			if err != nil {
				return err
			}
			policy, err := pf.policy()
			if err != nil {
				return err
			}
			plf.opts.CorePorts = plf.corePorts
			tp, err := tracerProvider(cmd.Context(), otlpEndpoint)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), listen, logFormat, tokensFile, allowRemote, allow, tc, &sf, policy, &plf.opts, corsOrigins, console, tp, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&configFile, "config", env("HMS_CONFIG", ""), "JSON file of settings named like these flags; flags given on the command line win [HMS_CONFIG]")
	fs.StringVar(&listen, "listen", env("HMS_LISTEN", DefaultListen), "address to serve on [HMS_LISTEN]")
	fs.BoolVar(&allowRemote, "insecure-allow-remote", false, "listen beyond loopback without credentials")
	fs.StringVar(&tf.cert, "tls-cert", env("HMS_SERVE_TLS_CERT", ""), "serve TLS with this certificate (PEM) [HMS_SERVE_TLS_CERT]")
	fs.StringVar(&tf.key, "tls-key", env("HMS_SERVE_TLS_KEY", ""), "the certificate's private key (PEM) [HMS_SERVE_TLS_KEY]")
	fs.StringVar(&tf.ca, "tls-client-ca", env("HMS_SERVE_TLS_CLIENT_CA", ""), "verify client certificates against these CAs (PEM): mutual TLS [HMS_SERVE_TLS_CLIENT_CA]")
	fs.StringSliceVar(&webhookAllow, "webhook-allow", nil, "networks webhook endpoints may be in (default: loopback only)")
	fs.StringSliceVar(&corsOrigins, "cors-origin", nil, "let browser pages of these origins call the server (CORS: Connect, gRPC-Web), e.g. https://app.example.com, or * (default: none)")
	fs.StringVar(&otlpEndpoint, "otlp-endpoint", "", "export traces of every RPC and transition over OTLP/HTTP to this receiver, e.g. http://127.0.0.1:4318 (default: off, or OTEL_EXPORTER_OTLP_ENDPOINT)")
	fs.BoolVar(&console, "ui", true, "serve the web console at /ui/ (docs/console.md); --ui=false turns it off")
	fs.StringVar(&tokensFile, "auth-tokens", env("HMS_AUTH_TOKENS", ""), "file of bearer tokens, principals and roles (docs/auth.md) [HMS_AUTH_TOKENS]")
	fs.StringVar(&logFormat, "log-format", env("HMS_LOG_FORMAT", "text"), "text or json [HMS_LOG_FORMAT]")
	sf.register(fs)
	pf.register(fs) // the server-wide default supervision policy
	plf.register(fs)
	return cmd
}

func serve(ctx context.Context, listen, logFormat, tokensFile string, allowRemote bool, webhookAllow []netip.Prefix,
	tc *tls.Config, sf *storeFlags, policy *lifecycle.SupervisionPolicy, popts *plugin.Options, corsOrigins []string, console bool,
	tp *sdktrace.TracerProvider, stdout, stderr io.Writer) error {
	var log *slog.Logger
	switch logFormat {
	case "text":
		log = slog.New(slog.NewTextHandler(stderr, nil))
	case "json":
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	default:
		return fmt.Errorf("--log-format %q: use text or json", logFormat)
	}
	var tokens *server.Tokens
	if tokensFile != "" {
		var err error
		if tokens, err = server.LoadTokens(tokensFile); err != nil {
			return err
		}
	} else if err := checkLoopback(listen, allowRemote); err != nil {
		return err
	}

	// One server per data directory, decided before anything in it is read or written: a
	// second one would otherwise take over the first one's plugins before failing to listen.
	if sf.store == "sqlite" {
		lock, err := datadir.Lock(sf.dataDir)
		if err != nil {
			return err
		}
		defer lock.Close() // last, after the stores are closed
	}
	store, closeStore, what, err := sf.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeStore.Close()
	mopts := &lifecycle.Options{Logger: log, Supervision: policy,
		Targets: map[string]lifecycle.TargetType{"webhook": webhook.New(webhookAllow)}}
	if tp != nil {
		// Flushed last, once the server and the manager have stopped.
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(ctx); err != nil {
				log.Warn("exporting the last traces", "err", err)
			}
		}()
		mopts.TracerProvider = tp
	}
	m, err := lifecycle.New(ctx, store, mopts)
	if err != nil {
		return err
	}
	defer m.Close()
	pstore, closePlugins, err := sf.openPlugins(ctx, log)
	if err != nil {
		return err
	}
	defer closePlugins.Close()
	popts.Logger = log
	plugins, err := plugin.New(ctx, pstore, popts)
	if err != nil {
		return err
	}
	defer plugins.Close()

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	hopts := []server.Option{server.WithLogger(log), server.WithPlugins(plugins), server.WithCORS(corsOrigins...)}
	if tokens != nil {
		hopts = append(hopts, server.WithTokens(tokens))
	}
	if tp != nil {
		hopts = append(hopts, server.WithTracerProvider(tp))
	}
	if console {
		hopts = append(hopts, server.WithUI(ui.Handler()))
	}
	srv := server.New(m, hopts...)
	scheme := "http"
	if tc != nil {
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "address", ln.Addr().String(), "store", what, "plugin_repository", popts.Repository)
	if tokens == nil {
		log.Warn("no credentials are configured: every caller is anonymous; listening on loopback only unless --insecure-allow-remote")
	} else {
		log.Info("bearer tokens required", "file", tokensFile)
	}
	fmt.Fprintf(stdout, "listening on %s://%s\n", scheme, ln.Addr())
	nextSteps(stdout, fmt.Sprintf("%s://%s", scheme, ln.Addr()), listen)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new requests; finishing the ones in flight")
	shutdown, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(shutdown) }()
	m.Close()       // ends watch streams with the sequence to resume from
	plugins.Close() // stops the running plugins
	if err := <-stopped; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// checkLoopback refuses to listen beyond loopback without credentials unless allowed.
func checkLoopback(listen string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if allowRemote || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %s is not a loopback address and no credentials are configured: every caller would be anonymous; pass --auth-tokens FILE, or --insecure-allow-remote to do it anyway", listen)
}

// applyConfig sets, from a JSON object keyed by flag name, every flag not given on the
// command line. Values are strings, numbers, booleans or arrays (for list flags).
func applyConfig(fs *pflag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	var settings map[string]any
	if err := json.Unmarshal(data, &settings); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for key, v := range settings {
		f := fs.Lookup(key)
		if f == nil || key == "config" {
			return usageError{fmt.Errorf("config %s: unknown setting %q: settings are named like the serve flags (listen, store, data-dir, …)", path, key)}
		}
		if f.Changed {
			continue
		}
		var value string
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			value = strings.Join(parts, ",")
		default:
			value = fmt.Sprint(x)
		}
		if err := f.Value.Set(value); err != nil {
			return usageError{fmt.Errorf("config %s: %s: %w", path, key, err)}
		}
	}
	return nil
}
