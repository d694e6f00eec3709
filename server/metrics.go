package server

import (
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hms-lifecycle/lifecycle"
)

// metrics are recorded at the server's edge, so the core and the C library need no
// exporter. Each server has its own registry (no package globals).
type metrics struct {
	registry    *prometheus.Registry
	transitions *prometheus.CounterVec
	latency     prometheus.Histogram
	hooks       *prometheus.HistogramVec
	watchers    prometheus.Gauge
	errors      *prometheus.CounterVec
	red         red
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hms_transitions_total",
			Help: "Transitions asked for, by current state, target state, transition type and result (ok or the refusal reason).",
		}, []string{"from", "to", "type", "result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hms_transition_duration_seconds",
			Help:    "Time to answer a transition, including waiting for the agent and blocking hooks.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		hooks: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hms_hook_duration_seconds",
			Help:    "Blocking hook invocations, by hook and result.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"hook", "result"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hms_watchers",
			Help: "Open WatchEvents streams.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hms_rpc_errors_total",
			Help: "Requests answered with an error status, by method and code.",
		}, []string{"method", "code"}),
	}
	m.red = newRED(m.registry)
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hms_build_info",
		Help: "Always 1; the labels say which version of the server this is and the Go release it was built with.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(Version(), runtime.Version()).Set(1)
	m.registry.MustRegister(m.transitions, m.latency, m.hooks, m.watchers, m.errors, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	// OpenMetrics when the scraper asks for it (Accept: application/openmetrics-text),
	// Prometheus' text format otherwise.
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry, EnableOpenMetrics: true})
}

func lower(s string, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

func (m *metrics) transition(res *lifecycle.TransitionResult, target lifecycle.State, took time.Duration) {
	m.latency.Observe(took.Seconds())
	result, typ := "ok", res.Event.Type
	if !res.Success {
		result = lower(res.Refusal.String(), "REFUSAL_REASON_")
	}
	from := res.Previous
	m.transitions.WithLabelValues(lower(lifecycle.StateName(from), ""), lower(lifecycle.StateName(target), ""),
		lower(lifecycle.TypeName(typ), ""), result).Inc()
	for _, h := range res.Hooks {
		m.hooks.WithLabelValues(h.HookName, lower(h.Result.String(), "RESULT_")).Observe(h.Latency.Seconds())
	}
}
