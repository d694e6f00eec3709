package lifecycle_test

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hms-lifecycle/lifecycle"
)

// TestTracing: with a TracerProvider, a transition is a span with a child per step, under
// the caller's span; a veto is on the hook's span and the transition's.
func TestTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(ctx)
	m, _ := newManager(t, &lifecycle.Options{TracerProvider: tp, Callbacks: map[string]lifecycle.HookFunc{
		"freeze": func(_ context.Context, c lifecycle.HookCall) (lifecycle.HookDecision, error) {
			return lifecycle.HookDecision{Veto: c.Event.To == lifecycle.StatePaused, Reason: "change freeze"}, nil
		},
	}})
	register(t, m, "a-1")
	if _, err := m.RegisterHook(ctx, lifecycle.HookSpec{Name: "freeze", Blocking: true, Config: map[string]string{"callback": "freeze"}}); err != nil {
		t.Fatal(err)
	}
	cctx, caller := tp.Tracer("test").Start(ctx, "caller")
	transition(t, m, lifecycle.TransitionRequest{AgentID: "a-1", Target: lifecycle.StateActive})
	if res := transition(t, m, lifecycle.TransitionRequest{AgentID: "a-1", Target: lifecycle.StatePaused}); res.Success {
		t.Fatal("the hook did not veto")
	}
	if _, err := m.Transition(cctx, lifecycle.TransitionRequest{AgentID: "a-1", Target: lifecycle.StateMaintenance}); err != nil {
		t.Fatal(err)
	}
	caller.End()

	spans := exp.GetSpans()
	byID := map[string]tracetest.SpanStub{}
	var transitions []tracetest.SpanStub
	for _, s := range spans {
		byID[s.SpanContext.SpanID().String()] = s
		if s.Name == "lifecycle.Transition" {
			transitions = append(transitions, s)
		}
	}
	if len(transitions) != 3 {
		t.Fatalf("%d transition spans, want 3", len(transitions))
	}
	children := func(parent tracetest.SpanStub) []string {
		var out []string
		for _, s := range spans {
			if s.Parent.SpanID() == parent.SpanContext.SpanID() {
				out = append(out, s.Name)
			}
		}
		return out
	}
	attr := func(s tracetest.SpanStub, key attribute.Key) string {
		for _, kv := range s.Attributes {
			if kv.Key == key {
				return kv.Value.String()
			}
		}
		return ""
	}
	if got := strings.Join(children(transitions[0]), ","); got != "lifecycle.wait_agent,lifecycle.hook,lifecycle.store.commit,lifecycle.publish" {
		t.Errorf("steps of a transition: %s", got)
	}
	if got := strings.Join(children(transitions[1]), ","); got != "lifecycle.wait_agent,lifecycle.hook" {
		t.Errorf("steps of a vetoed transition: %s", got)
	}
	if r := attr(transitions[1], "hms.refusal"); r != "REFUSAL_REASON_HOOK_VETOED" {
		t.Errorf("vetoed transition's refusal attribute %q", r)
	}
	for _, s := range spans {
		if s.Name == "lifecycle.hook" && s.Parent.SpanID() == transitions[1].SpanContext.SpanID() &&
			(attr(s, "hms.hook_result") != "RESULT_VETOED" || attr(s, "hms.hook_message") != "change freeze") {
			t.Errorf("the vetoing hook's span: %v", s.Attributes)
		}
	}
	if p := byID[transitions[2].Parent.SpanID().String()]; p.Name != "caller" {
		t.Errorf("a transition under the caller's span has parent %q", p.Name)
	}
	if attr(transitions[2], "hms.sequence") == "" {
		t.Errorf("a successful transition's span lacks its sequence: %v", transitions[2].Attributes)
	}
}
