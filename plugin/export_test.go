package plugin

import "context"

// DeactivateIdleNow runs one idle-deactivation pass now, rather than at the next tick.
func (m *Manager) DeactivateIdleNow(ctx context.Context) { m.deactivateIdle(ctx) }
