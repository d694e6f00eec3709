// Package statemachine is the generic engine behind every lifecycle: a state machine is a
// Definition (plain data, loadable from JSON) compiled into a Machine that answers "is this
// edge allowed?" and "where does this operation lead?" without allocating.
//
// The agent lifecycle (section 4.1 of the agent specification) and the plugin lifecycle (the
// plugin specification's diagram) are two built-in definitions on this one engine.
package statemachine

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// MaxStates is the number of states a Definition may have: a state's allowed successors are
// kept in one 64-bit set.
const MaxStates = 64

// Definition describes a state machine as data.
type Definition struct {
	// Name identifies the machine in error messages ("agent", "plugin").
	Name string `json:"name"`
	// States lists every state; a state's index in this list is its State value.
	States []string `json:"states"`
	// Initial is the state new entities start in.
	Initial string `json:"initial"`
	// Terminal states have no way out, not even a forced one.
	Terminal []string `json:"terminal,omitempty"`
	// Transitions are the allowed edges.
	Transitions []Edge `json:"transitions"`
}

// Edge is one allowed transition. Event optionally names the operation that takes it
// ("validate", "activate"); one state may not have two edges with the same event.
type Edge struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Event string `json:"event,omitempty"`
}

// State is a state's index in its Definition's States.
type State uint8

// Machine is a compiled, immutable Definition; safe for concurrent use.
type Machine struct {
	def      Definition
	index    map[string]State
	next     []uint64 // next[s] has bit t set when s → t is allowed
	nextList [][]State
	terminal uint64
	initial  State
	events   map[eventKey]State
}

type eventKey struct {
	from  State
	event string
}

// Compile checks a Definition and builds its Machine. Every problem is reported, each
// naming the offending state or edge.
func Compile(def Definition) (*Machine, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if def.Name == "" {
		bad("name is empty")
	}
	if len(def.States) == 0 {
		bad("states is empty")
	}
	if len(def.States) > MaxStates {
		bad("%d states, at most %d allowed", len(def.States), MaxStates)
		return nil, fmt.Errorf("state machine %q: %w", def.Name, errors.Join(errs...))
	}
	m := &Machine{
		def:      def,
		index:    make(map[string]State, len(def.States)),
		next:     make([]uint64, len(def.States)),
		nextList: make([][]State, len(def.States)),
		events:   make(map[eventKey]State),
	}
	for i, s := range def.States {
		if strings.TrimSpace(s) == "" {
			bad("states[%d] is empty", i)
			continue
		}
		if _, dup := m.index[s]; dup {
			bad("state %q is listed twice", s)
			continue
		}
		m.index[s] = State(i)
	}
	lookup := func(field, name string) (State, bool) {
		s, ok := m.index[name]
		if !ok {
			bad("%s: unknown state %q", field, name)
		}
		return s, ok
	}
	if s, ok := lookup("initial", def.Initial); ok {
		m.initial = s
	}
	for i, name := range def.Terminal {
		if s, ok := lookup(fmt.Sprintf("terminal[%d]", i), name); ok {
			m.terminal |= 1 << s
		}
	}
	for i, e := range def.Transitions {
		field := fmt.Sprintf("transitions[%d]", i)
		from, ok1 := lookup(field+".from", e.From)
		to, ok2 := lookup(field+".to", e.To)
		if !ok1 || !ok2 {
			continue
		}
		switch {
		case m.terminal&(1<<from) != 0:
			bad("%s: %s is terminal and cannot have a way out", field, e.From)
		case from == to:
			bad("%s: %s → %s goes nowhere", field, e.From, e.To)
		case m.next[from]&(1<<to) != 0 && e.Event == "":
			bad("%s: %s → %s is listed twice", field, e.From, e.To)
		}
		if m.next[from]&(1<<to) == 0 {
			m.nextList[from] = append(m.nextList[from], to)
		}
		m.next[from] |= 1 << to
		if e.Event != "" {
			k := eventKey{from, e.Event}
			if prev, dup := m.events[k]; dup && prev != to {
				bad("%s: event %q from %s already leads to %s", field, e.Event, e.From, def.States[prev])
			}
			m.events[k] = to
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("state machine %q: %w", def.Name, errors.Join(errs...))
	}
	return m, nil
}

// MustCompile is Compile for definitions known to be valid, such as the built-in ones.
func MustCompile(def Definition) *Machine {
	m, err := Compile(def)
	if err != nil {
		panic(err)
	}
	return m
}

// ParseDefinition decodes a JSON definition, refusing unknown fields and trailing data.
func ParseDefinition(data []byte) (Definition, error) {
	var def Definition
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&def); err != nil {
		return Definition{}, fmt.Errorf("decode state machine definition: %w", err)
	}
	if dec.More() {
		return Definition{}, errors.New("decode state machine definition: trailing data after the JSON object")
	}
	return def, nil
}

// LoadFile reads, decodes and compiles a JSON definition file.
func LoadFile(path string) (*Machine, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load state machine %s: %w", path, err)
	}
	def, err := ParseDefinition(data)
	if err != nil {
		return nil, fmt.Errorf("load state machine %s: %w", path, err)
	}
	m, err := Compile(def)
	if err != nil {
		return nil, fmt.Errorf("load state machine %s: %w", path, err)
	}
	return m, nil
}

// Definition returns a copy of the definition the machine was compiled from.
func (m *Machine) Definition() Definition {
	d := m.def
	d.States = slices.Clone(d.States)
	d.Terminal = slices.Clone(d.Terminal)
	d.Transitions = slices.Clone(d.Transitions)
	return d
}

// Name is the definition's name.
func (m *Machine) Name() string { return m.def.Name }

// NumStates is the number of states.
func (m *Machine) NumStates() int { return len(m.def.States) }

// Initial is the state new entities start in.
func (m *Machine) Initial() State { return m.initial }

// StateName is the name of s.
func (m *Machine) StateName(s State) string { return m.def.States[s] }

// Lookup returns the state called name.
func (m *Machine) Lookup(name string) (State, bool) {
	s, ok := m.index[name]
	return s, ok
}

// Allowed reports whether the definition has the edge from → to.
func (m *Machine) Allowed(from, to State) bool {
	return int(from) < len(m.next) && m.next[from]&(1<<to) != 0
}

// IsTerminal reports whether s has no way out.
func (m *Machine) IsTerminal(s State) bool { return m.terminal&(1<<s) != 0 }

// Next lists the states reachable from s in one step, in the order of the definition's
// transitions. The slice is
// shared: do not modify it.
func (m *Machine) Next(s State) []State { return m.nextList[s] }

// Fire returns the state that event leads to from s.
func (m *Machine) Fire(s State, event string) (State, bool) {
	to, ok := m.events[eventKey{s, event}]
	return to, ok
}

// Events lists the operations allowed from s, sorted.
func (m *Machine) Events(s State) []string {
	var out []string
	for k := range m.events {
		if k.from == s {
			out = append(out, k.event)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

//go:embed definitions/agent.json
var agentJSON []byte

//go:embed definitions/plugin.json
var pluginJSON []byte

// AgentDefinition is the agent lifecycle of section 4.1 of the agent specification: the
// built-in default. UPGRADING has no way in but a forced transition.
func AgentDefinition() Definition { return mustParse(agentJSON) }

// PluginDefinition is the plugin lifecycle of the plugin specification's diagram.
func PluginDefinition() Definition { return mustParse(pluginJSON) }

func mustParse(data []byte) Definition {
	def, err := ParseDefinition(data)
	if err != nil {
		panic(err)
	}
	return def
}
