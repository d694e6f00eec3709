package lifecycle

import (
	"context"
	"time"
)

// pollInterval is how often a Manager over a SharedStore checks for other processes' work
// even without a signal, since signals can be lost.
const pollInterval = time.Second

// follow keeps a Manager over a shared store up to date with the other processes: their
// events reach this process's watchers (and non-blocking hooks) in sequence order, and
// their hook registrations take effect here.
func (m *Manager) follow(ctx context.Context, shared SharedStore) {
	defer m.workers.Done()
	ch := shared.Changes(ctx)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch.Events:
			m.catchUp(ctx)
		case <-ch.Hooks:
			m.reloadHooks(ctx)
		case id := <-ch.Policies:
			if m.sup == nil {
				continue
			}
			if id == "" {
				m.sup.resync.Store(true)
			} else if err := m.sup.reload(ctx, id); err != nil && ctx.Err() == nil {
				m.log.Error("reload supervision policy", "agent", id, "err", err)
			}
		case <-t.C:
			m.catchUp(ctx)
			m.reloadHooks(ctx)
		}
	}
}

// catchUp publishes the stored events this process has not published yet, in order (the
// store hands out sequences in commit order with no gaps, so what it returns continues
// exactly). Only follow calls it.
func (m *Manager) catchUp(ctx context.Context) {
	const batch = 1024
	for ctx.Err() == nil {
		// This process's own events are published by their committers: pass over them.
		m.followed = max(m.followed, m.hub.newestFrom(m.followed))
		evs, err := m.store.ReadEvents(ctx, EventFilter{FromSequence: m.followed + 1, Limit: batch})
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("catch up with other replicas", "from", m.followed+1, "err", err)
			}
			return
		}
		for i := range evs {
			m.hub.publish(&evs[i])
			m.followed = evs[i].Sequence
		}
		if len(evs) < batch {
			return
		}
	}
}

// reloadHooks makes this process's hooks those of the store: hooks registered or removed
// by other processes are added or dropped; the others keep their statistics.
func (m *Manager) reloadHooks(ctx context.Context) {
	stored, err := m.store.ListHooks(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("reload hooks", "err", err)
		}
		return
	}
	m.hookMu.Lock()
	defer m.hookMu.Unlock()
	want := make(map[string]Hook, len(stored))
	for _, h := range stored {
		want[h.ID] = h
	}
	for id := range m.hooks.Load().byID {
		if _, ok := want[id]; !ok {
			m.installHooks(m.hooks.Load(), nil, id)
		}
	}
	for id, h := range want {
		if _, ok := m.hooks.Load().byID[id]; ok {
			continue
		}
		m.installHooks(m.hooks.Load(), m.storedHookEntry(h), "")
	}
}
