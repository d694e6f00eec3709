package lifecycle

import (
	"context"
	"math"
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
			m.catchUp(ctx, math.MaxUint64)
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
			m.catchUp(ctx, math.MaxUint64)
			m.reloadHooks(ctx)
		}
	}
}

// catchUp publishes the stored events after the hub's head, up to until at least (or as
// far as the store goes). The store hands out sequences in commit order with no gaps, so
// what it returns continues the head exactly.
func (m *Manager) catchUp(ctx context.Context, until uint64) {
	const batch = 1024
	for ctx.Err() == nil {
		head := m.hub.head.Load()
		if head >= until {
			return
		}
		evs, err := m.store.ReadEvents(ctx, EventFilter{FromSequence: head + 1, Limit: batch})
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("catch up with other replicas", "from", head+1, "err", err)
			}
			return
		}
		for i := range evs {
			m.hub.publish(&evs[i])
		}
		if len(evs) < batch {
			return
		}
	}
}

// publish hands the committed event ev to the watchers. When its committer ran ahead of
// earlier committers (descheduled between their commit and their publish) by more than
// the hub's ring, the hub cannot hold it; since every event up to ev is committed, they
// are published from the store instead, so that the hub's head never stops at a gap.
func (m *Manager) publish(ctx context.Context, ev *Event) {
	if !m.hub.publish(ev) {
		m.catchUp(context.WithoutCancel(ctx), ev.Sequence)
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
