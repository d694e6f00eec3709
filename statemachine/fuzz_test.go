package statemachine

import (
	"testing"
)

// FuzzParseDefinition feeds arbitrary bytes to the definition decoder and compiler: they
// must return an error or a machine whose answers are consistent, never panic.
// Run longer with: go test -fuzz FuzzParseDefinition ./statemachine
func FuzzParseDefinition(f *testing.F) {
	f.Add(agentJSON)
	f.Add(pluginJSON)
	f.Add([]byte(`{"name":"x","states":["A","B"],"initial":"A","terminal":["B"],"transitions":[{"from":"A","to":"B","event":"go"}]}`))
	f.Add([]byte(`{"name":"x","states":[],"transitions":[{"from":"A"}]}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		def, err := ParseDefinition(data)
		if err != nil {
			return
		}
		m, err := Compile(def)
		if err != nil {
			return
		}
		for s := range m.NumStates() {
			from := State(s)
			for _, to := range m.Next(from) {
				if !m.Allowed(from, to) || m.IsTerminal(from) {
					t.Fatalf("Next(%s) lists %s but Allowed says no or the state is terminal", m.StateName(from), m.StateName(to))
				}
			}
			for _, ev := range m.Events(from) {
				if to, ok := m.Fire(from, ev); !ok || !m.Allowed(from, to) {
					t.Fatalf("event %s from %s fires to a disallowed state", ev, m.StateName(from))
				}
			}
		}
	})
}
