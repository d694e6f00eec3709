package lifecycle

import (
	"fmt"
	"strings"

	"github.com/hms-lifecycle/lifecycle/statemachine"
)

const numStates = int(StateRecovering) + 1

// agentMachine runs a statemachine.Machine whose state names are the agent states' short
// names (statemachine.AgentDefinition, or a custom table), translating to the enum.
type agentMachine struct {
	m        *statemachine.Machine
	index    [numStates]statemachine.State
	known    [numStates]bool
	next     [numStates][]State
	nextText [numStates]string
	// recoveryActions are the exits from ERROR: the default ErrorInfo.RecoveryActions.
	recoveryActions []string
}

func newAgentMachine(m *statemachine.Machine) (*agentMachine, error) {
	am := &agentMachine{m: m}
	for i := range m.NumStates() {
		name := m.StateName(statemachine.State(i))
		v, ok := lifecycleStateValue(name)
		if !ok {
			return nil, fmt.Errorf("agent state machine %q: %q is not an agent state", m.Name(), name)
		}
		am.index[v] = statemachine.State(i)
		am.known[v] = true
	}
	if !am.known[StateInitialized] || m.StateName(m.Initial()) != StateName(StateInitialized) {
		return nil, fmt.Errorf("agent state machine %q: agents are registered in INITIALIZED, so it must be the initial state", m.Name())
	}
	for s := range numStates {
		if !am.known[s] {
			continue
		}
		var names []string
		for _, n := range m.Next(am.index[s]) {
			v, _ := lifecycleStateValue(m.StateName(n))
			am.next[s] = append(am.next[s], v)
			names = append(names, StateName(v))
		}
		am.nextText[s] = strings.Join(names, ", ")
		if am.nextText[s] == "" {
			am.nextText[s] = "none"
		}
		if State(s) == StateError {
			am.recoveryActions = names
		}
	}
	return am, nil
}

func lifecycleStateValue(name string) (State, bool) {
	for s := StateInitialized; s <= StateRecovering; s++ {
		if StateName(s) == name {
			return s, true
		}
	}
	return 0, false
}

func (am *agentMachine) allowed(from, to State) bool {
	return am.known[from] && am.known[to] && am.m.Allowed(am.index[from], am.index[to])
}

func (am *agentMachine) terminal(s State) bool { return am.known[s] && am.m.IsTerminal(am.index[s]) }

// allowedNext lists the states reachable from s in one step; the slice is shared.
func (am *agentMachine) allowedNext(s State) []State {
	if int(s) >= numStates {
		return nil
	}
	return am.next[s]
}

// classify decides a transition's type: forced edge → FORCED; into ERROR →
// ERROR_TRIGGERED; into or out of MAINTENANCE → MAINTENANCE; initiated by the system →
// AUTOMATIC; otherwise NORMAL.
func classify(forced bool, from, to State, initiator string) TransitionType {
	switch {
	case forced:
		return TypeForced
	case to == StateError:
		return TypeErrorTriggered
	case to == StateMaintenance || from == StateMaintenance:
		return TypeMaintenance
	case strings.HasPrefix(initiator, SystemPrefix):
		return TypeAutomatic
	}
	return TypeNormal
}
