package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/hms-lifecycle/lifecycle"
	pluginv1 "github.com/hms-lifecycle/lifecycle/gen/hms/plugin/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/plugin/manifest"
	"github.com/hms-lifecycle/lifecycle/plugin/pluginpb"
)

func pluginsCommand(g *globals) *cobra.Command {
	cmd := group("plugins", "Discover, validate, run, version and resolve plugins on a server")
	cmd.AddCommand(pluginsScan(g), pluginsList(g), pluginsGet(g), pluginsValidate(g),
		pluginsOp(g, "load", "Registered -> Inactive", plugin.Service.Load),
		pluginsOp(g, "activate", "Inactive -> Active: start the plugin and wait for its health check", plugin.Service.Activate),
		pluginsOp(g, "deactivate", "Active -> Inactive: stop the plugin gracefully", plugin.Service.Deactivate),
		pluginsOp(g, "reset", "Failed -> Inactive", plugin.Service.Reset),
		pluginsDeprecate(g), pluginsResolve(g), pluginsHistory(g), pluginsWatch(g))
	return cmd
}

func (g *globals) plugins() (plugin.Service, error) {
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	return c.Plugins(), nil
}

// parsePluginState accepts "active", "Active" or "PLUGIN_STATE_ACTIVE".
func parsePluginState(s string) (plugin.State, error) {
	name := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "PLUGIN_STATE_"))
	if v, ok := pluginv1.PluginState_value["PLUGIN_STATE_"+name]; ok && v != 0 {
		return plugin.State(v), nil
	}
	return 0, usageError{fmt.Errorf("%q is not a plugin state: use discovered, registered, inactive, activating, active, deactivating, failed or deprecated", s)}
}

// pluginState is a state as the CLI shows it: lower case, like agents' states ("active").
func pluginState(s plugin.State) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "PLUGIN_STATE_"))
}

func printPlugin(w *tabwriter.Writer, p *plugin.Plugin) {
	fmt.Fprintf(w, "plugin\t%s %s\nstate\t%s (since %s, revision %d)\npath\t%s\n", p.ID, p.Version, pluginState(p.State),
		p.StateSince.Format(time.RFC3339), p.Revision, p.Path)
	if p.Manifest != nil {
		fmt.Fprintf(w, "name\t%s (%s)\nports\timplements %s; consumes %s\n", p.Manifest.Name, p.Manifest.Type,
			orNone(p.Manifest.ImplementedPorts), orNone(p.Manifest.ConsumedCorePorts))
	}
	for _, e := range p.Errors {
		fmt.Fprintf(w, "error\t%s\n", e)
	}
	if p.PackageMissing {
		fmt.Fprintf(w, "package\tmissing from the repository\n")
	}
	if p.Endpoint != "" {
		fmt.Fprintf(w, "endpoint\t%s (generation %d)\n", p.Endpoint, p.Generation)
	}
	if p.ReplacedBy != "" {
		fmt.Fprintf(w, "replaced by\t%s\n", p.ReplacedBy)
	}
	if p.LastError != "" {
		fmt.Fprintf(w, "last error\t%s\n", p.LastError)
	}
	if p.Policy.FailoverTarget != "" {
		fmt.Fprintf(w, "failover\tto %s %s (by system:plugin-policy)\n", p.ID, p.Policy.FailoverTarget)
	}
	if p.Policy.FailoverNote != "" {
		fmt.Fprintf(w, "failover\t%s\n", p.Policy.FailoverNote)
	}
	if p.Policy.Deactivation != "" {
		fmt.Fprintf(w, "deactivated\t%s\n", p.Policy.Deactivation)
	}
	if pr := pressureLine(&p.Policy); pr != "" {
		fmt.Fprintf(w, "pressure\t%s\n", pr)
	}
	fmt.Fprintf(w, "operations\t%s\n", orNone(p.AllowedOperations))
}

// pressureLine is the host's pressure as the policies last read it, with the threshold;
// "" when the pressure policies are off.
func pressureLine(s *plugin.PolicyState) string {
	if s.PressureThreshold <= 0 {
		return ""
	}
	line := fmt.Sprintf("%s; threshold %g%%", s.Pressure, s.PressureThreshold)
	if !s.Pressure.IsZero() && s.Pressure.Max() > s.PressureThreshold {
		line += " (under pressure)"
	}
	if !s.Pressure.Time.IsZero() {
		line += ", read " + s.Pressure.Time.Format(time.RFC3339)
	}
	return line
}

// policySummary is a plugin's policy state in a few words, for tables.
func policySummary(s *plugin.PolicyState) string {
	var parts []string
	if s.FailoverTarget != "" {
		parts = append(parts, "failed over to "+s.FailoverTarget)
	}
	if s.FailoverNote != "" {
		note := s.FailoverNote
		if i := strings.IndexByte(note, '('); i > 0 {
			note = strings.TrimSpace(note[:i])
		}
		parts = append(parts, note)
	}
	if s.Deactivation != "" {
		d := s.Deactivation
		if i := strings.IndexByte(d, ':'); i > 0 && i+1 < len(d) {
			if j := strings.IndexByte(d[i+1:], ':'); j > 0 {
				d = d[:i+1+j] // "system:plugin-policy: idle under pressure"
			}
		}
		parts = append(parts, "deactivated by "+d)
	}
	return strings.Join(parts, "; ")
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func (g *globals) printPluginResult(out io.Writer, p *plugin.Plugin) {
	g.print(out, &pluginv1.PluginOperationResponse{Plugin: pluginpb.Plugin(p)}, func(w *tabwriter.Writer) { printPlugin(w, p) })
}

func pluginsScan(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "scan",
		Short: "Scan the server's plugin repository now",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := g.plugins()
			if err != nil {
				return err
			}
			rep, err := svc.Scan(cmd.Context())
			if err != nil {
				return err
			}
			g.print(cmd.OutOrStdout(), pluginpb.ScanReport(&rep), func(w *tabwriter.Writer) {
				for _, l := range []struct {
					what string
					ps   []plugin.Plugin
				}{{"added", rep.Added}, {"changed", rep.Changed}, {"removed", rep.Removed}} {
					for _, p := range l.ps {
						fmt.Fprintf(w, "%s\t%s %s\t%s\n", l.what, p.ID, p.Version, pluginState(p.State))
					}
				}
				for _, r := range rep.Rejected {
					for _, e := range r.Errors {
						fmt.Fprintf(w, "rejected\t%s\t%s\n", r.Path, e)
					}
				}
				if len(rep.Added)+len(rep.Changed)+len(rep.Removed)+len(rep.Rejected) == 0 {
					fmt.Fprintln(w, "nothing new")
				}
			})
			return nil
		},
	}
}

func pluginsList(g *globals) *cobra.Command {
	var states []string
	var req plugin.ListRequest
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List plugin versions",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range states {
				st, err := parsePluginState(s)
				if err != nil {
					return err
				}
				req.States = append(req.States, st)
			}
			svc, err := g.plugins()
			if err != nil {
				return err
			}
			req.PageSize = lifecycle.MaxPageSize
			res := &pluginv1.ListPluginsResponse{}
			var all []plugin.Plugin
			for {
				page, err := svc.List(cmd.Context(), req)
				if err != nil {
					return err
				}
				all = append(all, page.Plugins...)
				if page.NextPageToken == "" {
					break
				}
				req.PageToken = page.NextPageToken
			}
			for i := range all {
				res.Plugins = append(res.Plugins, pluginpb.Plugin(&all[i]))
			}
			g.print(cmd.OutOrStdout(), res, func(w *tabwriter.Writer) {
				if len(all) > 0 {
					if pr := pressureLine(&all[0].Policy); pr != "" {
						fmt.Fprintf(w, "pressure: %s\n", pr)
					}
				}
				fmt.Fprintln(w, "ID\tVERSION\tSTATE\tENDPOINT\tPATH\tPOLICY")
				for _, p := range all {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Version, pluginState(p.State), p.Endpoint, p.Path, policySummary(&p.Policy))
				}
			})
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only plugins in these states")
	cmd.Flags().StringVar(&req.ID, "id", "", "only versions of this plugin")
	cmd.Flags().StringVar(&req.Type, "type", "", "only plugins of this type (L2-Orchestrator, L3-Capability)")
	cmd.Flags().StringVar(&req.Port, "port", "", "only plugins implementing or consuming this port")
	return cmd
}

func pluginsGet(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get ID VERSION",
		Short: "Show a plugin version: state, manifest, errors, endpoint, what the policies decided",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			svc, err := g.plugins()
			if err != nil {
				return err
			}
			p, err := svc.Get(cmd.Context(), plugin.Ref{ID: a[0], Version: a[1]})
			if err != nil {
				return err
			}
			g.printPluginResult(cmd.OutOrStdout(), &p)
			return nil
		},
	}
}

func pluginsValidate(g *globals) *cobra.Command {
	var reason string
	var corePorts []string
	cmd := &cobra.Command{
		Use:   "validate (PATH | ID VERSION)",
		Short: "Check a manifest offline (PATH: a plugin-manifest.json or its package), or validate a Discovered plugin on the server",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) == 2 {
				svc, err := g.plugins()
				if err != nil {
					return err
				}
				p, err := svc.Validate(cmd.Context(), plugin.Ref{ID: a[0], Version: a[1]}, reason)
				if err != nil {
					return err
				}
				g.printPluginResult(cmd.OutOrStdout(), &p)
				return nil
			}
			return validateOffline(cmd.OutOrStdout(), a[0], corePorts)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the event)")
	cmd.Flags().StringSliceVar(&corePorts, "core-ports", nil, "the core's port catalogue (default: "+strings.Join(manifest.DefaultCorePorts, ", ")+")")
	return cmd
}

// validateOffline checks a manifest file (or a package's) without a server.
func validateOffline(out io.Writer, path string, corePorts []string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, manifest.FileName)
	}
	v, err := manifest.NewValidator(corePorts)
	if err != nil {
		return err
	}
	m, err := v.ReadFile(path)
	var me *manifest.Error
	if errors.As(err, &me) {
		for _, f := range me.Fields {
			fmt.Fprintln(out, f)
		}
		return refusedError{fmt.Sprintf("%s is not valid: %d problem(s)", path, len(me.Fields))}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s is valid: %s %s (%s)\n", path, m.ID, m.Version, m.Type)
	return nil
}

func pluginsOp(g *globals, name, short string, op func(plugin.Service, context.Context, plugin.Ref, string) (plugin.Plugin, error)) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   name + " ID VERSION",
		Short: short,
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			svc, err := g.plugins()
			if err != nil {
				return err
			}
			p, err := op(svc, cmd.Context(), plugin.Ref{ID: a[0], Version: a[1]}, reason)
			if err != nil {
				return err
			}
			g.printPluginResult(cmd.OutOrStdout(), &p)
			if p.State == plugin.StateFailed {
				return refusedError{fmt.Sprintf("%s %s failed: %s", p.ID, p.Version, p.LastError)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the event)")
	return cmd
}

func pluginsDeprecate(g *globals) *cobra.Command {
	var reason, replacement string
	cmd := &cobra.Command{
		Use:   "deprecate ID VERSION",
		Short: "Retire a Registered or Inactive version (admin): it is never activated again",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			svc, err := g.plugins()
			if err != nil {
				return err
			}
			p, err := svc.Deprecate(cmd.Context(), plugin.Ref{ID: a[0], Version: a[1]}, replacement, reason)
			if err != nil {
				return err
			}
			g.printPluginResult(cmd.OutOrStdout(), &p)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the event)")
	cmd.Flags().StringVar(&replacement, "replacement", "", "what replaces it, e.g. AOS-WardleyMapPlugin@^2")
	return cmd
}

func pluginsResolve(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resolve ID [CONSTRAINT]",
		Short: "The preferred running version of a plugin for a version constraint, and its endpoint",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			svc, err := g.plugins()
			if err != nil {
				return err
			}
			constraint := ""
			if len(a) == 2 {
				constraint = a[1]
			}
			p, err := svc.Resolve(cmd.Context(), a[0], constraint)
			if err != nil {
				return err
			}
			g.print(cmd.OutOrStdout(), &pluginv1.ResolvePluginResponse{Plugin: pluginpb.Plugin(&p), Endpoint: p.Endpoint, Generation: p.Generation},
				func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "%s %s\t%s\tgeneration %d\n", p.ID, p.Version, orDash(p.Endpoint), p.Generation)
				})
			return nil
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pluginRefArgs(a []string) plugin.Ref {
	var r plugin.Ref
	if len(a) > 0 {
		r.ID = a[0]
	}
	if len(a) > 1 {
		r.Version = a[1]
	}
	return r
}

func printPluginEvent(w io.Writer, ev *plugin.Event) {
	if ev.Bookmark {
		fmt.Fprintf(w, "#%d\t(bookmark)\n", ev.Sequence)
		return
	}
	from := "-"
	if ev.From != plugin.StateUnspecified {
		from = pluginState(ev.From)
	}
	fmt.Fprintf(w, "#%d\t%s\t%s %s\t%s\t%s → %s\t%s\t%s\n", ev.Sequence, ev.Time.Format(time.RFC3339Nano), ev.ID, ev.Version,
		ev.Operation, from, pluginState(ev.To), ev.InitiatedBy, ev.Reason)
}

func pluginsHistory(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history [ID [VERSION]]",
		Short: "Plugin events, oldest first",
		Args:  args(cobra.MaximumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkLimit("limit", limit); err != nil {
				return err
			}
			svc, err := g.plugins()
			if err != nil {
				return err
			}
			req := plugin.HistoryRequest{Ref: pluginRefArgs(a), Limit: min(limit, lifecycle.MaxPageSize)}
			var evs []plugin.Event
			for len(evs) < limit {
				page, err := svc.History(cmd.Context(), req)
				if err != nil {
					return err
				}
				evs = append(evs, page.Events...)
				if page.NextPageToken == "" {
					break
				}
				req.PageToken = page.NextPageToken
			}
			evs = evs[:min(len(evs), limit)]
			res := &pluginv1.GetPluginHistoryResponse{}
			for i := range evs {
				res.Events = append(res.Events, pluginpb.Event(&evs[i]))
			}
			g.print(cmd.OutOrStdout(), res, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "SEQ\tTIME\tPLUGIN\tOPERATION\tTRANSITION\tBY\tREASON")
				for i := range evs {
					printPluginEvent(w, &evs[i])
				}
			})
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many events")
	return cmd
}

func pluginsWatch(g *globals) *cobra.Command {
	var states []string
	var from uint64
	cmd := &cobra.Command{
		Use:   "watch [ID [VERSION]]",
		Short: "Print plugin events as they happen (resuming after interruptions)",
		Args:  args(cobra.MaximumNArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			req := plugin.WatchRequest{Ref: pluginRefArgs(a), FromSequence: from}
			for _, s := range states {
				st, err := parsePluginState(s)
				if err != nil {
					return err
				}
				req.States = append(req.States, st)
			}
			svc, err := g.plugins()
			if err != nil {
				return err
			}
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			return follow(ctx, req.FromSequence, cmd.ErrOrStderr(),
				func(from uint64) (stream[plugin.Event], error) {
					req.FromSequence = from
					return svc.Watch(ctx, req)
				},
				func(ev plugin.Event) uint64 {
					if g.output == "json" {
						b, _ := protojson.Marshal(pluginpb.Event(&ev))
						fmt.Fprintln(out, string(b))
					} else {
						tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
						printPluginEvent(tw, &ev)
						tw.Flush()
					}
					return ev.Sequence
				})
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only events into these states")
	cmd.Flags().Uint64Var(&from, "from", 0, "replay from this sequence first (0: only new events)")
	return cmd
}
