package memory_test

import (
	"testing"

	"github.com/hms-lifecycle/lifecycle"
	"github.com/hms-lifecycle/lifecycle/store/memory"
	"github.com/hms-lifecycle/lifecycle/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) lifecycle.Store {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
