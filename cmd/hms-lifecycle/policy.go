package main

import (
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/lifecyclepb"
)

// policyFlags describe a supervision policy (docs/supervision.md).
type policyFlags struct {
	fs                                                   *pflag.FlagSet
	restart, onGiveUp                                    string
	maxRecoveries                                        int
	period, backoffInitial, backoffMax, stable           time.Duration
	heartbeat, shuttingDownLimit, recoveringLimit, upLim time.Duration
}

var policyFlagNames = []string{"restart", "max-recoveries", "recovery-period", "backoff-initial", "backoff-max",
	"stable-period", "on-give-up", "heartbeat-timeout", "shutting-down-limit", "recovering-limit", "upgrading-limit"}

func (f *policyFlags) register(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.restart, "restart", "", "recover from ERROR automatically: on-error (default) or never")
	fs.IntVar(&f.maxRecoveries, "max-recoveries", 0, "restart intensity: at most this many recoveries per --recovery-period, then give up (0: 5)")
	fs.DurationVar(&f.period, "recovery-period", 0, "the restart intensity's window (0: 10m)")
	fs.DurationVar(&f.backoffInitial, "backoff-initial", 0, "delay before the first recovery, doubling per attempt (0: 1s)")
	fs.DurationVar(&f.backoffMax, "backoff-max", 0, "longest delay before a recovery (0: 1m)")
	fs.DurationVar(&f.stable, "stable-period", 0, "the backoff starts over after this long in ACTIVE (0: 5m)")
	fs.StringVar(&f.onGiveUp, "on-give-up", "", "when the intensity is exceeded: stay (in ERROR, the default) or terminate")
	fs.DurationVar(&f.heartbeat, "heartbeat-timeout", 0, "ACTIVE without a heartbeat this long goes to ERROR (0: off)")
	fs.DurationVar(&f.shuttingDownLimit, "shutting-down-limit", 0, "longest stay in SHUTTING_DOWN before TERMINATED (0: off)")
	fs.DurationVar(&f.recoveringLimit, "recovering-limit", 0, "longest stay in RECOVERING before ERROR (0: off)")
	fs.DurationVar(&f.upLim, "upgrading-limit", 0, "longest stay in UPGRADING before ERROR (0: off)")
}

// given reports whether any policy flag was set on the command line.
func (f *policyFlags) given() bool {
	for _, n := range policyFlagNames {
		if f.fs.Changed(n) {
			return true
		}
	}
	return false
}

// policy is the policy the flags describe; unset flags are zero (the defaults).
func (f *policyFlags) policy() (*lifecycle.SupervisionPolicy, error) {
	p := &lifecycle.SupervisionPolicy{MaxRecoveries: f.maxRecoveries, Period: f.period, BackoffInitial: f.backoffInitial,
		BackoffMax: f.backoffMax, StablePeriod: f.stable, HeartbeatTimeout: f.heartbeat,
		ShuttingDownLimit: f.shuttingDownLimit, RecoveringLimit: f.recoveringLimit, UpgradingLimit: f.upLim}
	switch f.restart {
	case "":
	case "on-error":
		p.Restart = lifecycle.RestartOnError
	case "never":
		p.Restart = lifecycle.RestartNever
	default:
		return nil, usageError{fmt.Errorf("--restart %q: use on-error or never", f.restart)}
	}
	switch f.onGiveUp {
	case "":
	case "stay":
		p.OnGiveUp = lifecycle.GiveUpStay
	case "terminate":
		p.OnGiveUp = lifecycle.GiveUpTerminate
	default:
		return nil, usageError{fmt.Errorf("--on-give-up %q: use stay or terminate", f.onGiveUp)}
	}
	if err := lifecycle.CheckPolicy("policy", p); err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

func agentsPolicy(g *globals) *cobra.Command {
	var pf policyFlags
	var useDefault bool
	cmd := &cobra.Command{
		Use:   "policy AGENT_ID",
		Short: "Set an agent's supervision policy (recovery, liveness, time limits)",
		Long: "Set an agent's supervision policy: the flags given make up the whole policy (the others take\n" +
			"their defaults). --default makes the agent follow the server's default policy again.",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p *lifecycle.SupervisionPolicy
			switch {
			case useDefault && pf.given():
				return usageError{fmt.Errorf("--default takes no policy flags")}
			case !useDefault && !pf.given():
				return usageError{fmt.Errorf("give policy flags (see --help) or --default")}
			case !useDefault:
				var err error
				if p, err = pf.policy(); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			sup, err := c.SetPolicy(cmd.Context(), args[0], p)
			if err != nil {
				return err
			}
			g.print(cmd.OutOrStdout(), &v1.SetSupervisionPolicyResponse{Supervision: lifecyclepb.Supervision(&sup)}, func(w *tabwriter.Writer) {
				printSupervision(w, &sup, time.Now())
			})
			return nil
		},
	}
	pf.register(cmd.Flags())
	cmd.Flags().BoolVar(&useDefault, "default", false, "follow the server's default policy")
	return cmd
}

func agentsHeartbeat(g *globals) *cobra.Command {
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "heartbeat AGENT_ID...",
		Short: "Report agents alive (once, or --every interval until interrupted)",
		Args:  args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			for {
				unknown, err := c.Heartbeat(ctx, args)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				if len(unknown) > 0 {
					return &lifecycle.Error{Code: lifecycle.CodeNotFound, Message: "unknown or terminated agents: " + strings.Join(unknown, ", ")}
				}
				if every <= 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "heartbeat sent for %d agents\n", len(args))
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(every):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&every, "every", 0, "keep sending at this interval until interrupted")
	return cmd
}

// printSupervision writes an agent's supervision as table rows.
func printSupervision(w *tabwriter.Writer, s *lifecycle.Supervision, now time.Time) {
	p := &s.Policy
	source := "own policy"
	if s.Default {
		source = "server default"
	}
	if p.Restart == lifecycle.RestartNever {
		fmt.Fprintf(w, "recovery\tnever (%s)\n", source)
	} else {
		giveUp := "stay in error"
		if p.OnGiveUp == lifecycle.GiveUpTerminate {
			giveUp = "terminate"
		}
		fmt.Fprintf(w, "recovery\ton error, at most %d per %v, backoff %v to %v, reset after %v stable, then %s (%s)\n",
			p.MaxRecoveries, p.Period, p.BackoffInitial, p.BackoffMax, p.StablePeriod, giveUp, source)
		fmt.Fprintf(w, "recoveries\t%d in the last %v\n", s.RecoveriesInWindow, p.Period)
	}
	if p.HeartbeatTimeout > 0 {
		last := "none yet"
		if !s.LastHeartbeat.IsZero() {
			last = s.LastHeartbeat.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "liveness\theartbeat within %v (last: %s)\n", p.HeartbeatTimeout, last)
	}
	var limits []string
	for _, l := range []struct {
		name string
		d    time.Duration
	}{{"shutting_down", p.ShuttingDownLimit}, {"recovering", p.RecoveringLimit}, {"upgrading", p.UpgradingLimit}} {
		if l.d > 0 {
			limits = append(limits, fmt.Sprintf("%s %v", l.name, l.d))
		}
	}
	if len(limits) > 0 {
		fmt.Fprintf(w, "time limits\t%s\n", strings.Join(limits, ", "))
	}
	if n := s.Next; n.Action != lifecycle.ActionNone {
		fmt.Fprintf(w, "next action\t%s -> %s at %s (in %s): %s\n",
			strings.ToLower(strings.TrimPrefix(n.Action.String(), "AUTOMATIC_ACTION_")), state(n.Target),
			n.At.Format(time.RFC3339), age(max(n.At.Sub(now), 0)), n.Reason)
	}
}
