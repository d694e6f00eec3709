package lifecycle

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the spans' instrumentation scope.
const tracerName = "github.com/hms-lifecycle/lifecycle"

// The transition's spans. Each is made only when m.tracer is set (Options.TracerProvider):
// without it a step costs one nil check, and no attributes are built.

// traceTransition runs the pipeline inside a "lifecycle.Transition" span that records
// its outcome.
func (m *Manager) traceTransition(ctx context.Context, req TransitionRequest) (TransitionResult, error) {
	ctx, span := m.tracer.Start(ctx, "lifecycle.Transition", trace.WithAttributes(
		attribute.String("hms.agent_id", req.AgentID),
		attribute.String("hms.target_state", StateName(req.Target)),
		attribute.Bool("hms.force", req.Force)))
	res, err := m.transitionPipeline(ctx, req)
	switch {
	case err != nil:
	case res.Success:
		span.SetAttributes(attribute.String("hms.previous_state", StateName(res.Previous)),
			attribute.Int64("hms.sequence", int64(res.Event.Sequence)), attribute.Int64("hms.revision", res.Revision))
	default:
		span.SetAttributes(attribute.String("hms.refusal", res.Refusal.String()), attribute.String("hms.refusal_message", res.Message))
	}
	finishSpan(span, err) // the error, if any, as its status
	return res, err
}

// span starts a child span of ctx's named name. Call it only when m.tracer is set: the
// check stays at the call site, inlined, so that with tracing off a step costs a nil check
// and no call.
func (m *Manager) span(ctx context.Context, name string) (context.Context, trace.Span) {
	return m.tracer.Start(ctx, name)
}

// endSpan ends span (nil: tracing is off) with err as its status; it inlines.
func endSpan(span trace.Span, err error) {
	if span != nil {
		finishSpan(span, err)
	}
}

func finishSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceHook records a blocking hook's outcome on its span and ends it.
func traceHook(span trace.Span, h *hookEntry, out *HookOutcome) {
	span.SetAttributes(attribute.String("hms.hook_name", h.Spec.Name), attribute.String("hms.hook_id", h.ID),
		attribute.String("hms.hook_result", out.Result.String()), attribute.Bool("hms.hook_enforced", out.Enforced))
	if out.Result != HookAllowed {
		span.SetAttributes(attribute.String("hms.hook_message", out.Message))
	}
	if out.Result == HookFailed || out.Result == HookTimedOut {
		span.SetStatus(codes.Error, out.Message)
	}
	span.End()
}
