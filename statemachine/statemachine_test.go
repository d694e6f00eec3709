package statemachine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// agentTable is section 4.1 of the agent specification, transcribed independently of
// definitions/agent.json so that a typo in either is caught.
var agentTable = map[string][]string{
	"INITIALIZED":   {"ACTIVE", "ERROR", "TERMINATED"},
	"ACTIVE":        {"PAUSED", "SUSPENDED", "SHUTTING_DOWN", "ERROR", "MAINTENANCE"},
	"PAUSED":        {"ACTIVE", "SUSPENDED", "SHUTTING_DOWN", "ERROR"},
	"SUSPENDED":     {"RECOVERING", "TERMINATED", "ERROR"},
	"SHUTTING_DOWN": {"TERMINATED", "ERROR"},
	"TERMINATED":    {},
	"MAINTENANCE":   {"ACTIVE", "ERROR", "SHUTTING_DOWN"},
	"ERROR":         {"RECOVERING", "TERMINATED"},
	"UPGRADING":     {"ACTIVE", "ERROR"},
	"RECOVERING":    {"ACTIVE", "ERROR", "TERMINATED"},
}

func TestAgentDefinitionIsSection41(t *testing.T) {
	m := MustCompile(AgentDefinition())
	if m.NumStates() != len(agentTable) {
		t.Fatalf("NumStates = %d, want %d", m.NumStates(), len(agentTable))
	}
	for fromName, allowed := range agentTable {
		from, ok := m.Lookup(fromName)
		if !ok {
			t.Fatalf("state %s missing", fromName)
		}
		for toName := range agentTable {
			to, _ := m.Lookup(toName)
			want := slices.Contains(allowed, toName)
			if got := m.Allowed(from, to); got != want {
				t.Errorf("Allowed(%s, %s) = %v, want %v", fromName, toName, got, want)
			}
		}
		if len(m.Next(from)) != len(allowed) {
			t.Errorf("Next(%s) = %d states, want %d", fromName, len(m.Next(from)), len(allowed))
		}
	}
	term, _ := m.Lookup("TERMINATED")
	if !m.IsTerminal(term) {
		t.Error("TERMINATED is not terminal")
	}
	up, _ := m.Lookup("UPGRADING")
	for s := range m.NumStates() {
		if m.Allowed(State(s), up) {
			t.Errorf("UPGRADING is reachable from %s without force", m.StateName(State(s)))
		}
	}
}

func TestPluginDefinitionIsTheDiagram(t *testing.T) {
	m := MustCompile(PluginDefinition())
	tests := []struct{ from, event, to string }{
		{"Discovered", "validate", "Registered"},
		{"Registered", "load", "Inactive"},
		{"Inactive", "activate", "Activating"},
		{"Activating", "on_success", "Active"},
		{"Activating", "on_error", "Failed"},
		{"Active", "deactivate", "Deactivating"},
		{"Deactivating", "on_success", "Inactive"},
		{"Deactivating", "on_error", "Failed"},
		{"Active", "on_runtime_error", "Failed"},
		{"Failed", "reset", "Inactive"},
		{"Registered", "deprecate", "Deprecated"},
		{"Inactive", "deprecate", "Deprecated"},
	}
	edges := 0
	for _, tt := range tests {
		from, _ := m.Lookup(tt.from)
		to, ok := m.Fire(from, tt.event)
		if !ok || m.StateName(to) != tt.to {
			t.Errorf("Fire(%s, %s) = %s, %v; want %s", tt.from, tt.event, m.StateName(to), ok, tt.to)
		}
	}
	for s := range m.NumStates() {
		edges += len(m.Next(State(s)))
	}
	if edges != len(tests) {
		t.Errorf("%d edges, want %d", edges, len(tests))
	}
	active, _ := m.Lookup("Active")
	if _, ok := m.Fire(active, "validate"); ok {
		t.Error("validate allowed from Active")
	}
	if got := m.Events(active); !slices.Equal(got, []string{"deactivate", "on_runtime_error"}) {
		t.Errorf("Events(Active) = %v", got)
	}
	if m.Initial() != 0 || m.StateName(m.Initial()) != "Discovered" {
		t.Errorf("Initial = %s", m.StateName(m.Initial()))
	}
}

func TestCompileRejectsBadDefinitions(t *testing.T) {
	tests := []struct {
		name string
		def  Definition
		want []string
	}{
		{"empty", Definition{}, []string{"name is empty", "states is empty"}},
		{"unknown state", Definition{Name: "x", States: []string{"A"}, Initial: "A",
			Transitions: []Edge{{From: "A", To: "B"}}}, []string{`transitions[0].to: unknown state "B"`}},
		{"duplicate state", Definition{Name: "x", States: []string{"A", "A"}, Initial: "A"},
			[]string{`state "A" is listed twice`}},
		{"terminal exit", Definition{Name: "x", States: []string{"A", "B"}, Initial: "A", Terminal: []string{"B"},
			Transitions: []Edge{{From: "B", To: "A"}}}, []string{"B is terminal"}},
		{"self loop", Definition{Name: "x", States: []string{"A"}, Initial: "A",
			Transitions: []Edge{{From: "A", To: "A"}}}, []string{"goes nowhere"}},
		{"ambiguous event", Definition{Name: "x", States: []string{"A", "B", "C"}, Initial: "A",
			Transitions: []Edge{{From: "A", To: "B", Event: "go"}, {From: "A", To: "C", Event: "go"}}},
			[]string{`event "go" from A already leads to B`}},
		{"bad initial", Definition{Name: "x", States: []string{"A"}, Initial: "Z"}, []string{`initial: unknown state "Z"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.def)
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "custom.json")
	if err := os.WriteFile(good, []byte(`{"name":"custom","states":["A","B"],"initial":"A","transitions":[{"from":"A","to":"B"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Allowed(0, 1) || m.Allowed(1, 0) {
		t.Error("custom table not honoured")
	}
	unknownField := filepath.Join(dir, "bad.json")
	os.WriteFile(unknownField, []byte(`{"name":"x","states":["A"],"initial":"A","edges":[]}`), 0o644)
	if _, err := LoadFile(unknownField); err == nil || !strings.Contains(err.Error(), `unknown field "edges"`) {
		t.Errorf("unknown field: err = %v", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: err = %v", err)
	}
}
