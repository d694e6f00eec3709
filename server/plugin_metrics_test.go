package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/hms-lifecycle/lifecycle/client"
	"github.com/hms-lifecycle/lifecycle/plugin"
	"github.com/hms-lifecycle/lifecycle/server"
	"github.com/hms-lifecycle/lifecycle/store/memory"
)

// TestPluginPolicyMetricsAndState: the plugin policies' counters and the pressure reading
// are metrics, and a plugin's policy state reaches a client.
func TestPluginPolicyMetricsAndState(t *testing.T) {
	s := memory.New()
	src := plugin.PressureFunc(func() (plugin.Pressure, error) { return plugin.Pressure{CPU: 91.5, Memory: 2, Source: "psi"}, nil })
	pm, err := plugin.New(ctx, s, &plugin.Options{Repository: pluginRepo(t, 1), ActivateOnDemand: true, PressureThreshold: 80,
		Pressure: src, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pm.Close(); s.Close() })
	_, url := serveB(t, server.WithPlugins(pm))
	c, err := client.New(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ref := plugin.Ref{ID: "AOS-Map", Version: "1.0.0"}
	if _, err := c.Plugins().Load(ctx, ref, ""); err != nil {
		t.Fatal(err)
	}
	_, err = c.Plugins().Resolve(ctx, "AOS-Map", "")
	if err == nil || !strings.Contains(err.Error(), "cpu 91.5%, memory 2.0% (psi avg10), above the threshold of 80%") {
		t.Fatalf("resolve under pressure: %v", err)
	}
	p, err := c.Plugins().Get(ctx, ref)
	if err != nil || p.Policy.PressureThreshold != 80 || p.Policy.Pressure.CPU != 91.5 || p.Policy.Pressure.Source != "psi" || p.Policy.Pressure.Time.IsZero() {
		t.Fatalf("policy state over the API: %+v %v", p.Policy, err)
	}
	page, err := c.Plugins().List(ctx, plugin.ListRequest{})
	if err != nil || len(page.Plugins) != 1 || page.Plugins[0].Policy.Pressure.Memory != 2 {
		t.Fatalf("list: %+v %v", page, err)
	}
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`hms_plugin_pressure{resource="cpu"} 91.5`, `hms_plugin_pressure{resource="threshold"} 80`,
		`hms_plugin_pressure_refusals_total 1`, `hms_plugin_failovers_total{result="activated"} 0`,
		`hms_plugin_policy_deactivations_total{policy="idle-deactivation"} 0`,
		`hms_plugin_activations_total{result="ok"} 0`, `hms_plugin_activations_total{result="failed"} 0`,
		`hms_plugin_runtime_failures_total{cause="health"} 0`, `hms_plugin_process_starts_total 0`, `hms_plugins{state="inactive"} 1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
