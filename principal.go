package lifecycle

import "context"

// SystemPrefix starts the initiator of transitions the system makes by itself
// ("system:recovery"); such transitions are AUTOMATIC unless a stronger type applies.
const SystemPrefix = "system:"

// DefaultInitiator is recorded as initiated_by when the context names no principal.
const DefaultInitiator = "local"

type initiatorKey struct{}

// WithInitiator returns a context whose transitions are recorded as initiated by
// principal. Transports set it to the authenticated caller; it is never taken from the
// request itself.
func WithInitiator(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, initiatorKey{}, principal)
}

// InitiatorFrom returns the principal set by WithInitiator, or DefaultInitiator.
func InitiatorFrom(ctx context.Context) string {
	if p, ok := ctx.Value(initiatorKey{}).(string); ok && p != "" {
		return p
	}
	return DefaultInitiator
}
