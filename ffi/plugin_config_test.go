package ffi_test

import (
	"strings"
	"testing"

	"github.com/hms-lifecycle/lifecycle/ffi"
)

// TestOpenPluginPolicyConfig: the plugin_failover… and plugin_pressure… keys are read,
// and a bad value is INVALID_ARGUMENT naming it.
func TestOpenPluginPolicyConfig(t *testing.T) {
	lib := ffi.New()
	for _, c := range []struct{ config, want string }{
		{`{"plugin_failover_rate":"often"}`, "plugin_failover_rate"},
		{`{"plugin_failover":true,"plugin_failover_constraint":"not a constraint"}`, "failover constraint"},
		{`{"plugin_pressure_threshold":-1}`, "plugin_pressure_threshold"},
		{`{"plugin_pressure_wait":"soon"}`, "plugin_pressure_wait"},
		{`{"plugin_pressure_idle_timeout":"-1m"}`, "plugin_pressure_idle_timeout"},
		{`{"endpoint":"http://127.0.0.1:1","plugin_failover":true}`, "remote mode"},
	} {
		_, err := lib.Open([]byte(c.config))
		if code, msg, _ := status(err); code != "INVALID_ARGUMENT" || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %s %q, want INVALID_ARGUMENT naming %q", c.config, code, msg, c.want)
		}
	}
	h, err := lib.Open([]byte(`{"plugin_failover":true,"plugin_failover_constraint":"^1","plugin_failover_rate":"2/1m",
		"plugin_pressure_threshold":85,"plugin_pressure_wait":"2s","plugin_pressure_idle_timeout":"1m","plugin_idle_timeout":"10m"}`))
	if err != nil {
		t.Fatal(err)
	}
	lib.Close(h)
	if n := lib.Handles(); n != 0 {
		t.Fatalf("%d handles left", n)
	}
}
