package lifecycle

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// newEventID returns a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, 12 bits of
// sub-millisecond time (the RFC's method 3), then 62 random bits from the runtime's
// per-thread ChaCha8 generator, which needs no lock and no system call, unlike uuid.NewV7.
// Ordering comes from the sequence, so the id only has to be unique.
func newEventID(t time.Time) uuid.UUID {
	var u uuid.UUID
	ns := t.UnixNano()
	ms, frac := uint64(ns/1e6), uint64(ns%1e6)<<12/1e6
	binary.BigEndian.PutUint64(u[0:8], ms<<16|0x7000|frac)
	binary.BigEndian.PutUint64(u[8:16], rand.Uint64()&0x3fff_ffff_ffff_ffff|0x8000_0000_0000_0000)
	return u
}
