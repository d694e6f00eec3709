package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/client"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
)

// globals are the flags every client command takes.
type globals struct {
	server, output, protocol, encoding, token string
	tls                                       tlsFlags
}

func (g *globals) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&g.server, "server", env("HMS_SERVER", "http://"+DefaultListen), "server URL [HMS_SERVER]")
	f.StringVarP(&g.output, "output", "o", "table", "table or json")
	f.StringVar(&g.protocol, "protocol", "connect", "connect, grpc or grpcweb")
	f.StringVar(&g.encoding, "encoding", "proto", "on the wire: proto, json or cbor")
	f.StringVar(&g.token, "token", env("HMS_TOKEN", ""), "bearer token [HMS_TOKEN]")
	f.StringVar(&g.tls.ca, "tls-ca", env("HMS_TLS_CA", ""), "CA certificates (PEM) to verify an https:// server with [HMS_TLS_CA]")
	f.StringVar(&g.tls.cert, "tls-cert", env("HMS_TLS_CERT", ""), "client certificate (PEM) for mutual TLS [HMS_TLS_CERT]")
	f.StringVar(&g.tls.key, "tls-key", env("HMS_TLS_KEY", ""), "the client certificate's key (PEM) [HMS_TLS_KEY]")
}

func (g *globals) client() (*client.Client, error) {
	if g.output != "table" && g.output != "json" {
		return nil, usageError{fmt.Errorf("--output %q: use table or json", g.output)}
	}
	tc, err := g.tls.client()
	if err != nil {
		return nil, err
	}
	c, err := client.New(g.server, &client.Options{Protocol: client.Protocol(g.protocol), Encoding: g.encoding, Token: g.token, TLS: tc})
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// print writes a message as protojson (--output json) or calls table.
func (g *globals) print(w io.Writer, m proto.Message, table func(*tabwriter.Writer)) {
	if g.output == "json" {
		b, _ := protojson.MarshalOptions{Multiline: true}.Marshal(m)
		fmt.Fprintln(w, string(b))
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	tw.Flush()
}

// parseState accepts "active", "ACTIVE", "shutting-down" or "LIFECYCLE_STATE_ACTIVE".
func parseState(s string) (lifecycle.State, error) {
	name := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(strings.ToUpper(s), "LIFECYCLE_STATE_"), "-", "_"))
	if v, ok := v1.LifecycleState_value["LIFECYCLE_STATE_"+name]; ok && v != 0 {
		return lifecycle.State(v), nil
	}
	return 0, usageError{fmt.Errorf("%q is not a lifecycle state: use one of %s", s, stateNames)}
}

func parseType(s string) (lifecycle.TransitionType, error) {
	name := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(strings.ToUpper(s), "TRANSITION_TYPE_"), "-", "_"))
	if v, ok := v1.TransitionType_value["TRANSITION_TYPE_"+name]; ok && v != 0 {
		return lifecycle.TransitionType(v), nil
	}
	return 0, usageError{fmt.Errorf("%q is not a transition type: use normal, forced, automatic, error-triggered or maintenance", s)}
}

func parseStates(ss []string) ([]lifecycle.State, error) {
	var out []lifecycle.State
	for _, s := range ss {
		st, err := parseState(s)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func parseTypes(ss []string) ([]lifecycle.TransitionType, error) {
	var out []lifecycle.TransitionType
	for _, s := range ss {
		t, err := parseType(s)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func state(s lifecycle.State) string { return strings.ToLower(lifecycle.StateName(s)) }

// stateNames are the lifecycle states as the CLI writes them, for help texts.
const stateNames = "initialized, active, paused, suspended, shutting_down, terminated, maintenance, error, upgrading, recovering"

// checkLimit refuses a --limit that is not positive.
func checkLimit(flag string, n int) error {
	if n <= 0 {
		return usageError{fmt.Errorf("--%s %d: give a positive number", flag, n)}
	}
	return nil
}

// printMap writes one row per key, in key order.
func printMap(w io.Writer, what string, m map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(w, "%s\t%s=%s\n", what, k, m[k])
	}
}

func age(d time.Duration) string { return d.Truncate(time.Second).String() }

// group is a command that only holds subcommands: anything else is a usage error.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", a[0], cmd.CommandPath())}
			}
			return usageError{fmt.Errorf("%s needs a command: try %s --help", cmd.CommandPath(), cmd.CommandPath())}
		},
	}
}

func agentsCommand(g *globals) *cobra.Command {
	cmd := group("agents", "Register, inspect, transition and watch agents on a server")
	cmd.AddCommand(agentsRegister(g), agentsGet(g), agentsList(g), agentsTransition(g), agentsHistory(g), agentsWatch(g),
		agentsPolicy(g), agentsHeartbeat(g), agentsDelete(g))
	return cmd
}

func agentsDelete(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "delete AGENT_ID",
		Short: "Delete a TERMINATED agent: its record goes, its history stays until retention, its id is never used again",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ev, err := c.DeleteAgent(cmd.Context(), lifecycle.DeleteRequest{AgentID: args[0], Reason: reason})
			if err != nil {
				return err
			}
			g.print(cmd.OutOrStdout(), &v1.DeleteAgentResponse{Event: lifecyclepb.Event(&ev)}, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "deleted %s (sequence %d)\n", ev.AgentID, ev.Sequence)
			})
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the deletion event")
	return cmd
}

func agentsRegister(g *globals) *cobra.Command {
	var labels, meta map[string]string
	var pf policyFlags
	cmd := &cobra.Command{
		Use:   "register AGENT_ID",
		Short: "Register a new agent (state initialized)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := lifecycle.RegisterRequest{AgentID: args[0], Labels: labels, Metadata: meta}
			if pf.given() {
				var err error
				if req.Policy, err = pf.policy(); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			st, ev, err := c.RegisterAgent(cmd.Context(), req)
			if err != nil {
				return err
			}
			g.print(cmd.OutOrStdout(), &v1.RegisterAgentResponse{Agent: lifecyclepb.AgentState(&st), Event: lifecyclepb.Event(&ev)}, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "registered %s: %s (sequence %d)\n", st.ID, state(st.State), ev.Sequence)
			})
			return nil
		},
	}
	cmd.Flags().StringToStringVar(&labels, "label", nil, "label key=value (repeatable)")
	cmd.Flags().StringToStringVar(&meta, "meta", nil, "metadata key=value (repeatable)")
	pf.register(cmd.Flags()) // none given: the server's default policy
	return cmd
}

func agentsGet(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get AGENT_ID",
		Short: "Show an agent's state, labels, metadata and supervision",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.GetState(cmd.Context(), args[0], true)
			if err != nil {
				return err
			}
			g.print(cmd.OutOrStdout(), lifecyclepb.AgentState(&st), func(w *tabwriter.Writer) {
				next := make([]string, len(st.AllowedNext))
				for i, s := range st.AllowedNext {
					next[i] = state(s)
				}
				fmt.Fprintf(w, "agent\t%s\nstate\t%s (for %s, since %s)\nprevious\t%s\nrevision\t%d\ntransitioning\t%v\nnext\t%s\n",
					st.ID, state(st.State), age(st.TimeInState), st.EnteredAt.Format(time.RFC3339), state(st.PreviousState),
					st.Revision, st.Transitioning, strings.Join(next, ", "))
				if st.Error != nil {
					fmt.Fprintf(w, "error\t%d: %s (recoverable: %v)\n", st.Error.Code, st.Error.Message, st.Error.Recoverable)
				}
				printMap(w, "label", st.Labels)
				printMap(w, "metadata", st.Metadata)
				if st.Supervision != nil {
					printSupervision(w, st.Supervision, time.Now())
				}
			})
			return nil
		},
	}
}

func agentsList(g *globals) *cobra.Command {
	var states []string
	var labels map[string]string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List agents, in id order",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit("limit", limit); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			sts, err := parseStates(states)
			if err != nil {
				return err
			}
			req := lifecycle.ListAgentsRequest{States: sts, Labels: labels, PageSize: min(limit, lifecycle.MaxPageSize)}
			var all lifecycle.AgentPage
			for len(all.Agents) < limit {
				page, err := c.ListAgents(cmd.Context(), req)
				if err != nil {
					return err
				}
				all.Agents = append(all.Agents, page.Agents...)
				if req.PageToken = page.NextPageToken; req.PageToken == "" {
					break
				}
			}
			all.Agents = all.Agents[:min(len(all.Agents), limit)]
			g.print(cmd.OutOrStdout(), lifecyclepb.AgentPage(&all), func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "AGENT\tSTATE\tREVISION\tSINCE")
				for _, a := range all.Agents {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", a.ID, state(a.State), a.Revision, a.EnteredAt.Format(time.RFC3339))
				}
			})
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only agents in these states")
	cmd.Flags().StringToStringVar(&labels, "label", nil, "only agents with this label key=value (repeatable)")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many agents")
	return cmd
}

func agentsTransition(g *globals) *cobra.Command {
	var reason, expectState, errMsg string
	var force bool
	var timeout time.Duration
	var expectRev int64
	var meta map[string]string
	cmd := &cobra.Command{
		Use:   "transition AGENT_ID STATE",
		Short: "Move an agent to another state (exit code 3 if the lifecycle refuses)",
		Long: "Move an agent to another state (exit code 3 if the lifecycle refuses).\n\n" +
			"STATE is one of " + stateNames + "\n" +
			"(any case, with - or _). `hms-lifecycle agents get AGENT_ID` shows the states the agent may go to next.",
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			target, err := parseState(args[1])
			if err != nil {
				return err
			}
			req := lifecycle.TransitionRequest{AgentID: args[0], Target: target, Force: force, Reason: reason, Timeout: timeout,
				Metadata: meta, ExpectedRevision: expectRev}
			if expectState != "" {
				if req.ExpectedState, err = parseState(expectState); err != nil {
					return err
				}
			}
			if errMsg != "" {
				req.Error = &lifecycle.ErrorInfo{Message: errMsg, Recoverable: true}
			}
			res, err := c.Transition(cmd.Context(), req)
			if err != nil {
				return err
			}
			g.print(cmd.OutOrStdout(), lifecyclepb.TransitionResult(&res), func(w *tabwriter.Writer) {
				if res.Success {
					fmt.Fprintf(w, "%s: %s → %s (%s, revision %d, sequence %d)\n", args[0], state(res.Previous), state(res.Current),
						strings.ToLower(lifecycle.TypeName(res.Event.Type)), res.Revision, res.Event.Sequence)
				}
			})
			if !res.Success {
				return refusedError{fmt.Sprintf("refused (%s): %s", strings.ToLower(strings.TrimPrefix(res.Refusal.String(), "REFUSAL_REASON_")), res.Message)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "why (recorded in the event)")
	f.BoolVar(&force, "force", false, "take an edge the table does not allow (never out of terminated)")
	f.DurationVar(&timeout, "timeout", 0, "how long to wait for a busy agent and blocking hooks (default 30s)")
	f.StringVar(&expectState, "expect-state", "", "only if the agent is in this state (one of the STATEs above)")
	f.Int64Var(&expectRev, "expect-revision", 0, "only if the agent is at this revision")
	f.StringVar(&errMsg, "error-message", "", "error details, for a transition into error")
	f.StringToStringVar(&meta, "meta", nil, "event metadata key=value (repeatable)")
	return cmd
}

// hookTarget says what serves a hook, and for a callback whether a worker is connected.
func hookTarget(h *v1.Hook) string {
	cfg := h.GetSpec().GetConfig()
	switch t := cfg["type"]; t {
	case "", "callback":
		if h.GetWorkerConnected() {
			return "callback " + cfg["callback"] + " (worker connected)"
		}
		return "callback " + cfg["callback"] + " (NO WORKER: fails each time)"
	case "webhook":
		return "webhook " + cfg["url"]
	default:
		return t
	}
}

// eventHeader heads the columns printEvent writes.
const eventHeader = "SEQ\tTIME\tAGENT\tTRANSITION\tTYPE\tBY\tREASON"

func printEvent(w io.Writer, ev *lifecycle.Event) {
	if ev.Bookmark {
		fmt.Fprintf(w, "#%d\t(bookmark)\n", ev.Sequence)
		return
	}
	fmt.Fprintf(w, "#%d\t%s\t%s\t%s → %s\t%s\t%s\t%s\n", ev.Sequence, ev.Time.Format(time.RFC3339Nano), ev.AgentID,
		state(ev.From), state(ev.To), strings.ToLower(lifecycle.TypeName(ev.Type)), ev.InitiatedBy, ev.Reason)
}

// historyFlags choose which part of a history to show: the first --limit events, or with
// --tail N the last N, or with --newest-first the last --limit events, newest first.
type historyFlags struct {
	limit, tail int
	newestFirst bool
}

func (h *historyFlags) register(cmd *cobra.Command) {
	cmd.Flags().IntVar(&h.limit, "limit", 100, "at most this many events")
	cmd.Flags().IntVar(&h.tail, "tail", 0, "the last N events instead of the first ones (reads the whole filtered history)")
	cmd.Flags().BoolVar(&h.newestFirst, "newest-first", false, "the last --limit (or --tail) events, newest first")
}

func (h *historyFlags) check(cmd *cobra.Command) error {
	if err := checkLimit("limit", h.limit); err != nil {
		return err
	}
	if h.tail < 0 {
		return usageError{fmt.Errorf("--tail %d: give a positive number", h.tail)}
	}
	if h.tail > 0 && cmd.Flags().Changed("limit") {
		return usageError{errors.New("give --limit or --tail, not both")}
	}
	return nil
}

// pageSize is the page size to ask for.
func (h *historyFlags) pageSize() int {
	if h.tail > 0 || h.newestFirst {
		return lifecycle.MaxPageSize
	}
	return min(h.limit, lifecycle.MaxPageSize)
}

// collect pages through a history with next (which returns a page and the next page's
// token) and keeps the events the flags ask for, in the order they ask for.
func collect[E any](h *historyFlags, next func(token string) ([]E, string, error)) ([]E, error) {
	n, fromEnd := h.limit, h.tail > 0 || h.newestFirst
	if h.tail > 0 {
		n = h.tail
	}
	var all []E
	token := ""
	for fromEnd || len(all) < n {
		page, nextToken, err := next(token)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if fromEnd && len(all) > n {
			all = append(all[:0:0], all[len(all)-n:]...)
		}
		if token = nextToken; token == "" {
			break
		}
	}
	all = all[:min(len(all), n)]
	if h.newestFirst {
		slices.Reverse(all)
	}
	return all, nil
}

func agentsHistory(g *globals) *cobra.Command {
	var typ, since, until string
	var hf historyFlags
	cmd := &cobra.Command{
		Use:   "history [AGENT_ID]",
		Short: "Show recorded transitions, oldest first (all agents without an id)",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := hf.check(cmd); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			req := lifecycle.HistoryRequest{Limit: hf.pageSize()}
			if len(args) == 1 {
				req.AgentID = args[0]
			}
			if typ != "" {
				if req.Type, err = parseType(typ); err != nil {
					return err
				}
			}
			for _, t := range []struct {
				flag, v string
				to      *time.Time
			}{{"since", since, &req.Start}, {"until", until, &req.End}} {
				if t.v != "" {
					if *t.to, err = time.Parse(time.RFC3339, t.v); err != nil {
						return usageError{fmt.Errorf("--%s %q: use RFC 3339, like 2026-11-22T09:00:00Z", t.flag, t.v)}
					}
				}
			}
			events, err := collect(&hf, func(token string) ([]lifecycle.Event, string, error) {
				req.PageToken = token
				page, err := c.History(cmd.Context(), req)
				return page.Events, page.NextPageToken, err
			})
			if err != nil {
				return err
			}
			all := lifecycle.HistoryPage{Events: events}
			g.print(cmd.OutOrStdout(), lifecyclepb.HistoryPage(&all), func(w *tabwriter.Writer) {
				fmt.Fprintln(w, eventHeader)
				for i := range all.Events {
					printEvent(w, &all.Events[i])
				}
			})
			return nil
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "only this transition type")
	cmd.Flags().StringVar(&since, "since", "", "from this time (RFC 3339)")
	cmd.Flags().StringVar(&until, "until", "", "before this time (RFC 3339)")
	hf.register(cmd)
	return cmd
}

// agentsWatch prints events as they happen and, when the stream ends or the server goes
// away, watches again from the event after the last one printed, so nothing is missed or
// printed twice.
func agentsWatch(g *globals) *cobra.Command {
	var states, types []string
	var from uint64
	cmd := &cobra.Command{
		Use:   "watch [AGENT_ID]",
		Short: "Print events live, resuming after reconnects (Ctrl-C to stop)",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			req := lifecycle.WatchRequest{FromSequence: from}
			if len(args) == 1 {
				req.AgentID = args[0]
			}
			if req.States, err = parseStates(states); err != nil {
				return err
			}
			if req.Types, err = parseTypes(types); err != nil {
				return err
			}
			return watch(cmd.Context(), c, req, g, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only events into these states")
	cmd.Flags().StringSliceVar(&types, "type", nil, "only these transition types")
	cmd.Flags().Uint64Var(&from, "from", 0, "replay from this sequence first (0: only new events)")
	return cmd
}

func watch(ctx context.Context, c *client.Client, req lifecycle.WatchRequest, g *globals, out, errOut io.Writer) error {
	return follow(ctx, req.FromSequence, errOut,
		func(from uint64) (stream[lifecycle.Event], error) {
			req.FromSequence = from
			return c.Watch(ctx, req)
		},
		func(ev lifecycle.Event) uint64 {
			if g.output == "json" {
				b, _ := protojson.Marshal(lifecyclepb.Event(&ev))
				fmt.Fprintln(out, string(b))
			} else {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				printEvent(tw, &ev)
				tw.Flush()
			}
			return ev.Sequence
		})
}

// stream is an agent or a plugin event stream.
type stream[E any] interface {
	Next(ctx context.Context) (E, error)
	Close() error
}

// follow prints a watch's events until ctx ends. When the stream ends for a reason worth
// retrying (server restart, a lagging watcher cut off), it watches again from the event
// after the last one printed, so nothing is missed or printed twice. While the server is
// away it tries again after 100ms, doubling up to 5s; it says so once, and says when the
// watch is back (an event, or a stream that has stayed open for a second).
func follow[E any](ctx context.Context, from uint64, errOut io.Writer, open func(from uint64) (stream[E], error), print func(E) uint64) error {
	const firstBackoff, maxBackoff, settled = 100 * time.Millisecond, 5 * time.Second, time.Second
	backoff := firstBackoff
	down := false // said the watch was interrupted, not yet that it is back
	back := func() {
		if down {
			fmt.Fprintf(errOut, "watch resumed from sequence %d\n", from)
			down = false
		}
		backoff = firstBackoff
	}
	for {
		w, err := open(from)
		if err == nil {
			for {
				nctx, cancel := ctx, context.CancelFunc(func() {})
				if down { // a stream still open after a while is a server that is back
					nctx, cancel = context.WithTimeout(ctx, settled)
				}
				var ev E
				ev, err = w.Next(nctx)
				cancel()
				if err != nil && down && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
					back()
					continue
				}
				if err != nil {
					break
				}
				back()
				from = print(ev) + 1
			}
			w.Close()
		}
		if ctx.Err() != nil {
			return nil
		}
		var le *lifecycle.Error
		if errors.As(err, &le) && le.ResumeSequence != 0 {
			from = le.ResumeSequence
		}
		switch lifecycle.ErrorCode(err) {
		case lifecycle.CodeUnavailable, lifecycle.CodeResourceExhausted, lifecycle.CodeInternal:
			if !down {
				fmt.Fprintf(errOut, "watch interrupted (%v); trying again every few seconds to resume from sequence %d\n", err, max(from, 1))
				down = true
			}
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
			backoff = min(2*backoff, maxBackoff)
		}
		if from == 0 {
			from = 1 // nothing seen yet: replay whatever happened meanwhile
		}
	}
}

func hooksCommand(g *globals) *cobra.Command {
	cmd := group("hooks", "Register, list and remove hooks on a server")
	var spec lifecycle.HookSpec
	var states, types []string
	var callback, url, policy string
	register := &cobra.Command{
		Use:   "register NAME",
		Short: "Register a hook (exit code 3 if the lifecycle refuses it)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			spec.Name = args[0]
			if spec.TriggerStates, err = parseStates(states); err != nil {
				return err
			}
			if spec.TriggerTypes, err = parseTypes(types); err != nil {
				return err
			}
			switch {
			case url != "" && callback != "":
				return usageError{errors.New("give --callback or --url, not both")}
			case url != "":
				spec.Config = map[string]string{"type": "webhook", "url": url}
			default:
				spec.Config = map[string]string{"type": "callback", "callback": callback}
			}
			if policy != "" {
				spec.Config["failure_policy"] = policy
			}
			res, err := c.RegisterHook(cmd.Context(), spec)
			if err != nil {
				return err
			}
			pb := &v1.RegisterHookResponse{Success: res.Success, HookId: res.HookID, ErrorMessage: res.Message, Warnings: res.Warnings}
			g.print(cmd.OutOrStdout(), pb, func(w *tabwriter.Writer) {
				if res.Success {
					fmt.Fprintf(w, "registered hook %s: %s\n", spec.Name, res.HookID)
				}
			})
			if g.output != "json" {
				for _, warning := range res.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", warning)
				}
			}
			if !res.Success {
				return refusedError{"refused: " + res.Message}
			}
			return nil
		},
	}
	f := register.Flags()
	f.StringVar(&callback, "callback", "", "name of the in-process callback that serves it")
	f.StringVar(&url, "url", "", "webhook endpoint to POST to (encoding json; see docs for more)")
	f.BoolVar(&spec.Blocking, "blocking", false, "run before the transition, able to veto it")
	f.DurationVar(&spec.Timeout, "timeout", 0, "per invocation (default 30s)")
	f.StringSliceVar(&states, "state", nil, "only transitions into these states")
	f.StringSliceVar(&types, "type", nil, "only these transition types")
	f.StringSliceVar(&spec.AgentIDs, "agent", nil, "only these agents")
	f.StringVar(&policy, "failure-policy", "", "fail (default) or ignore")
	list := &cobra.Command{
		Use:   "list",
		Short: "List hooks with their statistics",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			hooks, err := c.ListHooks(cmd.Context())
			if err != nil {
				return err
			}
			pb := &v1.ListHooksResponse{}
			for i := range hooks {
				pb.Hooks = append(pb.Hooks, lifecyclepb.HookStatus(&hooks[i]))
			}
			g.print(cmd.OutOrStdout(), pb, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "NAME\tID\tTARGET\tBLOCKING\tCALLS\tALLOWED\tVETOED\tFAILED\tTIMED OUT")
				for _, h := range pb.GetHooks() {
					fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%d\t%d\t%d\t%d\t%d\n", h.GetSpec().GetHookName(), h.GetHookId(), hookTarget(h),
						h.GetSpec().GetIsBlocking(), h.GetInvocations(), h.GetAllowed(), h.GetVetoed(), h.GetFailed(), h.GetTimedOut())
				}
			})
			return nil
		},
	}
	unregister := &cobra.Command{
		Use:   "unregister NAME|HOOK_ID",
		Short: "Remove a hook, named as it was registered or by its id",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			id, name := args[0], ""
			hooks, err := c.ListHooks(cmd.Context())
			if err != nil {
				return err
			}
			for _, h := range hooks {
				if h.Spec.Name == args[0] || h.ID == args[0] {
					id, name = h.ID, h.Spec.Name
					break
				}
			}
			if err := c.UnregisterHook(cmd.Context(), id); err != nil {
				if code := lifecycle.ErrorCode(err); name == "" && (code == lifecycle.CodeNotFound || code == lifecycle.CodeInvalidArgument) {
					return &lifecycle.Error{Code: lifecycle.CodeNotFound, Message: fmt.Sprintf("no hook is named %q or has that id (hms-lifecycle hooks list shows them)", args[0])}
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unregistered hook %s (%s)\n", name, id)
			return nil
		},
	}
	cmd.AddCommand(register, list, unregister)
	return cmd
}
