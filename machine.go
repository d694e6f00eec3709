package lifecycle

import (
	"fmt"
	"strings"

	"github.com/hms-lifecycle/lifecycle/statemachine"
)

// maxStates bounds a table's states: state values index fixed arrays and the watch and
// hook filters' bit masks.
const maxStates = 32

// agentMachine runs a statemachine.Machine for the Manager. An agent table
// (statemachine.AgentDefinition, or a custom one with the agent state names) uses the agent
// enum and the agent semantics: ERROR carries error details and cannot be vetoed,
// MAINTENANCE types its transitions, and the supervisor acts. A generic table (the plugin
// lifecycle) numbers its states 1, 2, … in the definition's order and has none of that.
type agentMachine struct {
	m        *statemachine.Machine
	agents   bool
	initial  State
	names    [maxStates]string
	index    [maxStates]statemachine.State
	known    [maxStates]bool
	next     [maxStates][]State
	nextText [maxStates]string
	// errorState and maintenanceState are ERROR and MAINTENANCE in an agent table, else 0.
	errorState, maintenanceState State
	// recoveryActions are the exits from ERROR: the default ErrorInfo.RecoveryActions.
	recoveryActions []string
}

func newAgentMachine(m *statemachine.Machine, generic bool) (*agentMachine, error) {
	if m.NumStates() >= maxStates {
		return nil, fmt.Errorf("state machine %q: %d states, at most %d allowed", m.Name(), m.NumStates(), maxStates-1)
	}
	am := &agentMachine{m: m, agents: !generic}
	value := func(i int) State {
		if am.agents {
			v, _ := lifecycleStateValue(m.StateName(statemachine.State(i)))
			return v
		}
		return State(i + 1)
	}
	for i := range m.NumStates() {
		if name := m.StateName(statemachine.State(i)); am.agents {
			if _, ok := lifecycleStateValue(name); !ok {
				return nil, fmt.Errorf("agent state machine %q: %q is not an agent state", m.Name(), name)
			}
		}
	}
	for i := range m.NumStates() {
		v := value(i)
		am.index[v], am.known[v], am.names[v] = statemachine.State(i), true, m.StateName(statemachine.State(i))
	}
	am.initial = value(int(m.Initial()))
	if am.agents {
		if am.initial != StateInitialized {
			return nil, fmt.Errorf("agent state machine %q: agents are registered in INITIALIZED, so it must be the initial state", m.Name())
		}
		am.errorState, am.maintenanceState = StateError, StateMaintenance
	}
	for s := range State(maxStates) {
		if !am.known[s] {
			continue
		}
		var names []string
		for _, n := range m.Next(am.index[s]) {
			v := value(int(n))
			am.next[s] = append(am.next[s], v)
			names = append(names, am.names[v])
		}
		am.nextText[s] = strings.Join(names, ", ")
		if am.nextText[s] == "" {
			am.nextText[s] = "none"
		}
		if am.agents && s == StateError {
			am.recoveryActions = names
		}
	}
	return am, nil
}

// name is the state's name in the table ("ACTIVE", "Discovered").
func (am *agentMachine) name(s State) string {
	if s >= 0 && s < maxStates && am.known[s] {
		return am.names[s]
	}
	if am.agents {
		return StateName(s)
	}
	return fmt.Sprintf("state(%d)", int32(s))
}

// check validates a state given in a request: one of the agent enum for agents, a state of
// the table otherwise.
func (am *agentMachine) check(field string, s State, allowUnspecified bool) error {
	if s == StateUnspecified && allowUnspecified {
		return nil
	}
	if am.agents {
		return checkState(field, s, allowUnspecified)
	}
	if s <= 0 || s >= maxStates || !am.known[s] {
		return invalid("%s: %d is not a state of %s", field, int32(s), am.m.Name())
	}
	return nil
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
	return am.has(from) && am.has(to) && am.m.Allowed(am.index[from], am.index[to])
}

func (am *agentMachine) has(s State) bool { return s >= 0 && s < maxStates && am.known[s] }

func (am *agentMachine) terminal(s State) bool { return am.has(s) && am.m.IsTerminal(am.index[s]) }

// allowedNext lists the states reachable from s in one step; the slice is shared.
func (am *agentMachine) allowedNext(s State) []State {
	if !am.has(s) {
		return nil
	}
	return am.next[s]
}

// classify decides a transition's type: forced edge → FORCED; into ERROR →
// ERROR_TRIGGERED; into or out of MAINTENANCE → MAINTENANCE; initiated by the system →
// AUTOMATIC; otherwise NORMAL. (Tables without ERROR or MAINTENANCE skip those.)
func (am *agentMachine) classify(forced bool, from, to State, initiator string) TransitionType {
	switch {
	case forced:
		return TypeForced
	case am.errorState != 0 && to == am.errorState:
		return TypeErrorTriggered
	case am.maintenanceState != 0 && (to == am.maintenanceState || from == am.maintenanceState):
		return TypeMaintenance
	case strings.HasPrefix(initiator, SystemPrefix):
		return TypeAutomatic
	}
	return TypeNormal
}
