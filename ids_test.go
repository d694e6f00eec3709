package lifecycle_test

import (
	"strings"
	"testing"

	"github.com/hms-lifecycle/lifecycle"
)

// An id with a NUL (or any byte outside the id syntax) is INVALID_ARGUMENT naming the
// field, quoted, wherever an id is taken — never a NOT_FOUND echoing it raw.
func TestMalformedIDs(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, "a")
	for _, id := range []string{"a\x00", "\x00", "hook-1\x00; drop", "a b"} {
		checks := map[string]error{
			"UnregisterHook": m.UnregisterHook(ctx, id),
			"GetState":       second(m.GetState(ctx, id, false)),
			"SetPolicy":      second(m.SetPolicy(ctx, id, nil)),
			"Transition":     second(m.Transition(ctx, lifecycle.TransitionRequest{AgentID: id, Target: lifecycle.StateActive})),
			"History":        second(m.History(ctx, lifecycle.HistoryRequest{AgentID: id})),
		}
		for name, err := range checks {
			if lifecycle.ErrorCode(err) != lifecycle.CodeInvalidArgument || strings.Contains(err.Error(), "\x00") || !strings.Contains(err.Error(), "_id") {
				t.Errorf("%s(%q): %v, want INVALID_ARGUMENT naming the field, the id quoted", name, id, err)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }
