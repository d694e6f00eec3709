package lifecycle

import (
	"context"
	"strings"
	"sync/atomic"
	"time"
)

// Stats are what a Manager has done since it started, for metrics (the server exports
// them; the core imports no metrics library).
type Stats struct {
	// WatchCutoffs counts watchers cut off for falling a whole watch buffer behind.
	WatchCutoffs uint64
	// WatchLag is the most events one open watcher has yet to read.
	WatchLag uint64
	// HookRetries counts repeated deliveries to non-blocking hooks; HookGiveUps the events
	// given up after max_attempts.
	HookRetries, HookGiveUps uint64
	// HookBacklog is, by non-blocking hook name, how many published events its delivery has
	// not taken up yet (matching or not: its filter is applied as it reads them).
	HookBacklog map[string]uint64
	// Supervision counts the supervisor's automatic transitions made, by action: recover,
	// give_up, liveness, time_limit.
	Supervision map[string]uint64
	// Commits describes the store's group commits; nil for a store without them.
	Commits *CommitStats
}

// CommitStats describe a store's group commits: transactions that each commit a batch of
// requests (transitions, registrations) together.
type CommitStats struct {
	Commits  uint64        // transactions committed or failed
	Requests uint64        // requests in them: Requests/Commits is the mean batch size
	Duration time.Duration // time spent in them: Duration/Commits is the mean commit latency
}

// CommitStatser is a Store that reports its group commits.
type CommitStatser interface {
	CommitStats() CommitStats
}

// counters are the Manager's running counts behind Stats.
type counters struct {
	watchCutoffs, hookRetries, hookGiveUps atomic.Uint64
	supervision                            [8]atomic.Uint64 // by AutomaticAction
}

// Stats returns what the Manager has done since it started.
func (m *Manager) Stats() Stats {
	st := Stats{
		WatchCutoffs: m.counts.watchCutoffs.Load(),
		HookRetries:  m.counts.hookRetries.Load(), HookGiveUps: m.counts.hookGiveUps.Load(),
		HookBacklog: map[string]uint64{}, Supervision: map[string]uint64{},
	}
	// Lag is counted to the newest committed event: the hub keeps no such counter, which
	// every publisher would write. On a store error there is no lag to report.
	ctx, cancel := context.WithTimeout(m.ctx, time.Second)
	_, head, _ := m.store.Sequences(ctx)
	cancel()
	for _, w := range *m.hub.watchers.Load() {
		if c := w.cursor.Load(); c <= head {
			st.WatchLag = max(st.WatchLag, head+1-c)
		}
	}
	for _, e := range m.hooks.Load().byID {
		if e.Spec.Blocking {
			continue
		}
		e.mu.Lock()
		next, buffered := e.Cursor+1, uint64(0)
		if w := e.delivery; w != nil {
			next, buffered = w.cursor.Load(), uint64(max(e.buffered.Load(), 0))
		}
		e.mu.Unlock()
		st.HookBacklog[e.Spec.Name] = buffered
		if next <= head {
			st.HookBacklog[e.Spec.Name] += head + 1 - next
		}
	}
	for _, a := range []AutomaticAction{ActionRecover, ActionGiveUp, ActionLiveness, ActionTimeLimit} {
		st.Supervision[actionName(a)] = m.counts.supervision[a].Load()
	}
	if cs, ok := m.store.(CommitStatser); ok {
		c := cs.CommitStats()
		st.Commits = &c
	}
	return st
}

// actionName is "recover", "give_up", "liveness" or "time_limit".
func actionName(a AutomaticAction) string {
	return strings.ToLower(strings.TrimPrefix(a.String(), "AUTOMATIC_ACTION_"))
}
