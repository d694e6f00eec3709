package plugin

import (
	"context"
	"time"

	"github.com/hms-lifecycle/lifecycle"
)

// sharedStore presents the registry's store to the engine as shared with other processes.
//
// The engine keeps each record as it last wrote it and trusts that copy unless its store is
// a lifecycle.SharedStore. The plugin registry's store is written by other processes too —
// a second server starting on the same data, an older one — and every plugin operation
// names the revision it read from the store, so one write from elsewhere left the engine's
// copy behind for good and every later operation on that plugin was refused as "changed
// meanwhile". As shared, the engine checks a refusal against a fresh read and follows the
// events other processes commit (polling: this store sends no signals).
type sharedStore struct{ lifecycle.Store }

var _ lifecycle.SharedStore = sharedStore{}

func (sharedStore) Changes(context.Context) lifecycle.Changes { return lifecycle.Changes{} }

// RecordHeartbeats and Lease serve agent supervision, which the plugin table does not have.
func (sharedStore) RecordHeartbeats(context.Context, map[string]time.Time) error { return nil }

func (sharedStore) Lease(context.Context, string, string, time.Time, time.Time) (bool, error) {
	return true, nil
}

// asShared returns store as a lifecycle.SharedStore.
func asShared(store lifecycle.Store) lifecycle.SharedStore {
	if s, ok := store.(lifecycle.SharedStore); ok {
		return s
	}
	return sharedStore{store}
}
