package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// demo registers an agent, watches it, and takes it through its lifecycle: normal steps,
// a refused edge, a hook's veto, an error and its recovery, shutdown, and a forced
// transition that not even force can make.
func demo(ctx context.Context, out io.Writer) error {
	store := memory.New()
	defer store.Close()
	m, err := lifecycle.New(ctx, store, nil)
	if err != nil {
		return err
	}
	defer m.Close()

	events, err := m.Watch(ctx, lifecycle.WatchRequest{FromSequence: 1})
	if err != nil {
		return err
	}
	defer events.Close()

	m.HandleCallback("maintenance-window", func(ctx context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
		if c.Event.Metadata["ticket"] == "" {
			return lifecycle.HookDecision{Veto: true, Reason: "maintenance needs a change ticket in metadata"}, nil
		}
		return lifecycle.HookDecision{}, nil
	})
	if _, err := m.RegisterHook(ctx, lifecycle.HookSpec{
		Name: "maintenance-window", Blocking: true,
		TriggerStates: []lifecycle.State{lifecycle.StateMaintenance},
		Config:        map[string]string{"type": "callback", "callback": "maintenance-window"},
	}); err != nil {
		return err
	}

	const id = "agent-001"
	if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id, Labels: map[string]string{"pool": "demo"}}); err != nil {
		return err
	}
	fmt.Fprintf(out, "registered %s\n", id)

	operator := lifecycle.WithInitiator(ctx, "operator:alice")
	steps := []lifecycle.TransitionRequest{
		{Target: lifecycle.StateActive, Reason: "Starting agent for task processing"},
		{Target: lifecycle.StateInitialized, Reason: "not an allowed edge"},
		{Target: lifecycle.StateMaintenance, Reason: "kernel upgrade"},
		{Target: lifecycle.StateMaintenance, Reason: "kernel upgrade", Metadata: map[string]string{"ticket": "CHG-42"}},
		{Target: lifecycle.StateActive, Reason: "upgrade done"},
		{Target: lifecycle.StateError, Reason: "lost its database", Error: &lifecycle.ErrorInfo{Code: 503, Message: "database unreachable", Recoverable: true}},
		{Target: lifecycle.StateRecovering, Reason: "database is back"},
		{Target: lifecycle.StateActive, Reason: "recovered"},
		{Target: lifecycle.StateShuttingDown, Reason: "scale down"},
		{Target: lifecycle.StateTerminated, Reason: "done"},
		{Target: lifecycle.StateActive, Reason: "resurrect", Force: true},
	}
	for _, req := range steps {
		req.AgentID = id
		res, err := m.Transition(operator, req)
		if err != nil {
			return err
		}
		force := ""
		if req.Force {
			force = " (forced)"
		}
		if res.Success {
			fmt.Fprintf(out, "%-13s → %-13s ok%s, %s\n", lifecycle.StateName(res.Previous), lifecycle.StateName(res.Current), force,
				lifecycle.TypeName(res.Event.Type))
		} else {
			fmt.Fprintf(out, "%-13s → %-13s refused%s: %s\n", lifecycle.StateName(res.Current), lifecycle.StateName(req.Target), force, res.Message)
		}
	}

	st, err := m.GetState(ctx, id, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s is %s at revision %d\n\nwatched events:\n", id, lifecycle.StateName(st.State), st.Revision)
	for range st.Revision {
		ev, err := events.Next(ctx)
		if err != nil {
			return err
		}
		var hooks []string
		for _, h := range ev.Hooks {
			hooks = append(hooks, h.HookName+"="+strings.TrimPrefix(h.Result.String(), "RESULT_"))
		}
		fmt.Fprintf(out, "  #%d %-13s → %-13s %-15s by %-15s %q %s\n", ev.Sequence, lifecycle.StateName(ev.From),
			lifecycle.StateName(ev.To), lifecycle.TypeName(ev.Type), ev.InitiatedBy, ev.Reason, strings.Join(hooks, " "))
	}
	return nil
}
