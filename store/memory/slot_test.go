package memory

import (
	"testing"
	"unsafe"
)

// An event slot must stay whole cache lines: if Event grows, grow the padding with it.
func TestSlotIsWholeCacheLines(t *testing.T) {
	if n := unsafe.Sizeof(slot{}); n%64 != 0 || n-unsafe.Sizeof(slot{}.Event) >= 64 {
		t.Fatalf("slot is %d bytes for a %d-byte event: adjust its padding to the next multiple of 64", n, unsafe.Sizeof(slot{}.Event))
	}
}

func TestAgentRecordIsWholeCacheLines(t *testing.T) {
	if n := unsafe.Sizeof(agentRecord{}); n%64 != 0 {
		t.Fatalf("agentRecord is %d bytes: adjust its padding to the next multiple of 64", n)
	}
}
