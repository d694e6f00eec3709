package ffi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/client"
	"github.com/hms-lifecycle/lifecycle/datadir"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/rpc"
	"github.com/hms-lifecycle/lifecycle/store/memory"
	"github.com/hms-lifecycle/lifecycle/store/postgres"
	"github.com/hms-lifecycle/lifecycle/store/sqlite"
	"github.com/hms-lifecycle/lifecycle/webhook"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// Config is hms_open's JSON configuration (documented in hms_lifecycle.h).
type Config struct {
	// Embedded.
	Store                     string          `json:"store"`
	DataDir                   string          `json:"data_dir"`
	SQLiteSync                string          `json:"sqlite_sync"`
	RetainAge                 string          `json:"retain_age"`
	RetainPerAgent            int             `json:"retain_per_agent"`
	Supervision               json.RawMessage `json:"supervision"`
	Initiator                 string          `json:"initiator"`
	PluginRepo                string          `json:"plugin_repo"`
	PluginAutoActivate        bool            `json:"plugin_auto_activate"`
	PluginActivateOnDemand    bool            `json:"plugin_activate_on_demand"`
	PluginIdleTimeout         string          `json:"plugin_idle_timeout"`
	PluginFailover            bool            `json:"plugin_failover"`
	PluginFailoverConstraint  string          `json:"plugin_failover_constraint"`
	PluginFailoverRate        string          `json:"plugin_failover_rate"`
	PluginPressureThreshold   float64         `json:"plugin_pressure_threshold"`
	PluginPressureWait        string          `json:"plugin_pressure_wait"`
	PluginPressureIdleTimeout string          `json:"plugin_pressure_idle_timeout"`
	CorePorts                 []string        `json:"core_ports"`
	// Remote.
	Endpoint string `json:"endpoint"`
	Token    string `json:"token"`
	TLSCA    string `json:"tls_ca"`
	TLSCert  string `json:"tls_cert"`
	TLSKey   string `json:"tls_key"`
	Protocol string `json:"protocol"`
	// Either.
	Log      string `json:"log"`
	LogLevel string `json:"log_level"`
}

// DefaultInitiator is recorded as initiated_by for embedded calls when the configuration
// names no initiator.
const DefaultInitiator = "ffi"

func invalid(format string, args ...any) error {
	return lifecycle.Errorf(lifecycle.CodeInvalidArgument, format, args...)
}

// parseConfig decodes the configuration strictly: an unknown key is an error naming it.
func parseConfig(data []byte) (*Config, error) {
	var c Config
	if len(bytes.TrimSpace(data)) == 0 {
		return &c, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, invalid("config: %s (see hms_lifecycle.h for the settings)", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, invalid("config: more than one JSON value")
	}
	remoteOnly := c.Token != "" || c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != "" || c.Protocol != ""
	embeddedOnly := c.Store != "" || c.DataDir != "" || c.SQLiteSync != "" || c.RetainAge != "" || c.RetainPerAgent != 0 ||
		len(c.Supervision) != 0 || c.Initiator != "" || c.PluginRepo != "" || c.PluginAutoActivate || c.PluginActivateOnDemand ||
		c.PluginIdleTimeout != "" || c.CorePorts != nil || c.PluginFailover || c.PluginFailoverConstraint != "" ||
		c.PluginFailoverRate != "" || c.PluginPressureThreshold != 0 || c.PluginPressureWait != "" || c.PluginPressureIdleTimeout != ""
	switch {
	case c.Endpoint == "" && remoteOnly:
		return nil, invalid("config: token, tls_* and protocol are settings of remote mode: give an endpoint too")
	case c.Endpoint != "" && embeddedOnly:
		return nil, invalid("config: endpoint selects remote mode, where the server has the store, supervision, retention and plugin settings; leave them out")
	}
	return &c, nil
}

// pluginPolicies are the plugin_failover… and plugin_pressure… settings.
func (c *Config) pluginPolicies() (plugin.Options, error) {
	o := plugin.Options{Failover: c.PluginFailover, FailoverConstraint: c.PluginFailoverConstraint, PressureThreshold: c.PluginPressureThreshold}
	if err := o.FailoverRate.Set(c.PluginFailoverRate); err != nil {
		return o, invalid("config: plugin_failover_rate: %v", err)
	}
	if o.PressureThreshold < 0 {
		return o, invalid("config: plugin_pressure_threshold %g: want a percentage, 0 (off) or more", o.PressureThreshold)
	}
	var err error
	if o.PressureWait, err = duration("plugin_pressure_wait", c.PluginPressureWait); err != nil {
		return o, err
	}
	if o.PressureIdleTimeout, err = duration("plugin_pressure_idle_timeout", c.PluginPressureIdleTimeout); err != nil {
		return o, err
	}
	return o, nil
}

func duration(name, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, invalid("config: %s %q: want a duration like \"90s\" or \"720h\"", name, v)
	}
	return d, nil
}

// logger builds the library's logger: off unless asked for; never stdout.
func (c *Config) logger() (*slog.Logger, io.Closer, error) {
	var level slog.Level
	switch c.LogLevel {
	case "", "info":
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, nil, invalid("config: log_level %q: use debug, info, warn or error", c.LogLevel)
	}
	switch c.Log {
	case "":
		return slog.New(slog.DiscardHandler), nil, nil
	case "stderr":
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil, nil
	case "stdout":
		return nil, nil, invalid("config: log \"stdout\": the library never writes to the host's stdout; use \"stderr\" or a file")
	}
	f, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, invalid("config: log %q: %v", c.Log, err)
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level})), f, nil
}

// closers closes in reverse order of addition.
type closers []func() error

func (cs closers) Close() error {
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		errs = append(errs, cs[i]())
	}
	return errors.Join(errs...)
}

// open builds the services a handle serves: embedded or remote.
func (c *Config) open(ctx context.Context) (agents lifecycle.AgentService, methods rpc.Methods, base context.Context, cl closers, err error) {
	defer func() {
		if err != nil {
			cl.Close()
		}
	}()
	log, logFile, err := c.logger()
	if err != nil {
		return nil, rpc.Methods{}, nil, nil, err
	}
	if logFile != nil {
		cl = append(cl, logFile.Close)
	}
	if c.Endpoint != "" {
		svc, err := c.remote()
		if err != nil {
			return nil, rpc.Methods{}, nil, cl, err
		}
		cl = append(cl, svc.Close)
		return svc, rpc.Merge(rpc.Agents(svc), rpc.Plugins(svc.Plugins())), context.Background(), cl, nil
	}

	retainAge, err := duration("retain_age", c.RetainAge)
	if err != nil {
		return nil, rpc.Methods{}, nil, cl, err
	}
	if c.RetainPerAgent < 0 {
		return nil, rpc.Methods{}, nil, cl, invalid("config: retain_per_agent %d: want 0 (keep all) or more", c.RetainPerAgent)
	}
	idle, err := duration("plugin_idle_timeout", c.PluginIdleTimeout)
	if err != nil {
		return nil, rpc.Methods{}, nil, cl, err
	}
	popts, err := c.pluginPolicies()
	if err != nil {
		return nil, rpc.Methods{}, nil, cl, err
	}
	var policy *lifecycle.SupervisionPolicy
	if len(c.Supervision) != 0 {
		var pb v1.SupervisionPolicy
		if err := wire.Unmarshal(wire.JSON, c.Supervision, &pb); err != nil {
			return nil, rpc.Methods{}, nil, cl, invalid("config: supervision: %v", err)
		}
		policy = lifecyclepb.FromSupervisionPolicy(&pb)
	}
	retention := lifecycle.Retention{MaxAge: retainAge, MaxPerAgent: c.RetainPerAgent}
	var store, pstore lifecycle.Store
	switch {
	case c.Store == "" || c.Store == "memory":
		if c.DataDir != "" || c.SQLiteSync != "" || c.RetainAge != "" || c.RetainPerAgent != 0 {
			return nil, rpc.Methods{}, nil, cl, invalid("config: data_dir, sqlite_sync and retain_* are settings of the durable stores; the memory store keeps the newest %d events", memory.DefaultMaxEvents)
		}
		ms, mps := memory.New(), memory.New()
		store, pstore = ms, mps
		cl = append(cl, ms.Close, mps.Close)
	case c.Store == "sqlite":
		if c.DataDir == "" {
			return nil, rpc.Methods{}, nil, cl, invalid("config: store \"sqlite\" needs data_dir, the directory of its database")
		}
		lock, err := datadir.Lock(c.DataDir)
		if err != nil {
			return nil, rpc.Methods{}, nil, cl, err
		}
		cl = append(cl, lock.Close)
		sync := c.SQLiteSync
		if sync == "" {
			sync = "full"
		}
		s, err := sqlite.Open(ctx, c.DataDir, &sqlite.Options{Synchronous: sync, Retention: retention, Logger: log})
		if err != nil {
			return nil, rpc.Methods{}, nil, cl, err
		}
		cl = append(cl, s.Close)
		ps, err := sqlite.Open(ctx, filepath.Join(c.DataDir, "plugins"), &sqlite.Options{Synchronous: sync, Logger: log})
		if err != nil {
			return nil, rpc.Methods{}, nil, cl, fmt.Errorf("plugin registry: %w", err)
		}
		cl = append(cl, ps.Close)
		store, pstore = s, ps
	case strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://"):
		s, err := postgres.Open(ctx, c.Store, &postgres.Options{Retention: retention, Logger: log})
		if err != nil {
			return nil, rpc.Methods{}, nil, cl, err
		}
		cl = append(cl, s.Close)
		ps, err := postgres.Open(ctx, c.Store, &postgres.Options{Schema: "plugins", Logger: log})
		if err != nil {
			return nil, rpc.Methods{}, nil, cl, fmt.Errorf("plugin registry: %w", err)
		}
		cl = append(cl, ps.Close)
		store, pstore = s, ps
	default:
		return nil, rpc.Methods{}, nil, cl, invalid("config: store %q: use memory, sqlite (with data_dir) or a postgres:// URL", c.Store)
	}
	m, err := lifecycle.New(ctx, store, &lifecycle.Options{Logger: log, Supervision: policy,
		Targets: map[string]lifecycle.TargetType{"webhook": webhook.New(nil)}})
	if err != nil {
		return nil, rpc.Methods{}, nil, cl, err
	}
	cl = append(cl, m.Close)
	popts.Repository, popts.CorePorts, popts.Logger = c.PluginRepo, c.CorePorts, log
	popts.AutoActivate, popts.ActivateOnDemand, popts.IdleTimeout = c.PluginAutoActivate, c.PluginActivateOnDemand, idle
	plugins, err := plugin.New(ctx, pstore, &popts)
	if err != nil {
		return nil, rpc.Methods{}, nil, cl, err
	}
	cl = append(cl, plugins.Close)
	initiator := c.Initiator
	if initiator == "" {
		initiator = DefaultInitiator
	}
	return m, rpc.Merge(rpc.Agents(m), rpc.Plugins(plugins)), lifecycle.WithInitiator(context.Background(), initiator), cl, nil
}

// remote is the Go client of a server.
func (c *Config) remote() (*client.Client, error) {
	opts := &client.Options{Protocol: client.Protocol(c.Protocol), Token: c.Token}
	if c.TLSCA != "" || c.TLSCert != "" || c.TLSKey != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCA != "" {
			pem, err := os.ReadFile(c.TLSCA)
			if err != nil {
				return nil, invalid("config: tls_ca: %v", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, invalid("config: tls_ca %s: no PEM certificate in it", c.TLSCA)
			}
		}
		if c.TLSCert != "" || c.TLSKey != "" {
			if c.TLSCert == "" || c.TLSKey == "" {
				return nil, invalid("config: tls_cert and tls_key go together")
			}
			kp, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
			if err != nil {
				return nil, invalid("config: tls_cert: %v", err)
			}
			tc.Certificates = []tls.Certificate{kp}
		}
		opts.TLS = tc
	}
	cl, err := client.New(c.Endpoint, opts)
	if err != nil {
		return nil, invalid("config: %v", strings.TrimPrefix(err.Error(), "client: "))
	}
	return cl, nil
}
