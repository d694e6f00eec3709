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
	"github.com/hms-lifecycle/lifecycle/plugin"
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

// pluginPolicies is what the plugin metrics read: the embedded plugin manager's policy
// counters (a remote plugin service has none here).
type pluginPolicies interface{ PolicyStats() plugin.PolicyStats }

// pluginCollector exports the plugin policies' decisions and the host's pressure as
// their manager last read it, at scrape time.
type pluginCollector struct {
	svc         pluginPolicies
	failovers   *prometheus.Desc
	refusals    *prometheus.Desc
	deactivated *prometheus.Desc
	pressure    *prometheus.Desc
	activations *prometheus.Desc
	runtime     *prometheus.Desc
	starts      *prometheus.Desc
	states      *prometheus.Desc
}

// watchPlugins adds the plugin policy metrics for svc, when it is an embedded manager.
func (m *metrics) watchPlugins(svc plugin.Service) {
	p, ok := svc.(pluginPolicies)
	if !ok {
		return
	}
	m.registry.MustRegister(&pluginCollector{svc: p,
		failovers: prometheus.NewDesc("hms_plugin_failovers_total",
			"Plugin failovers decided by the failover policy, by result (activated, rate_limited, no_candidate, activation_failed).", []string{"result"}, nil),
		refusals: prometheus.NewDesc("hms_plugin_pressure_refusals_total",
			"On-demand plugin activations refused because the host was under pressure.", nil, nil),
		deactivated: prometheus.NewDesc("hms_plugin_policy_deactivations_total",
			"Plugins deactivated by a policy, by policy (idle-deactivation, idle-deactivation-under-pressure).", []string{"policy"}, nil),
		pressure: prometheus.NewDesc("hms_plugin_pressure",
			"The host's pressure in percent as the plugin policies last read it (PSI some avg10, or load average per core), by resource; and the threshold.", []string{"resource"}, nil),
		activations: prometheus.NewDesc("hms_plugin_activations_total",
			"Plugin activations, by result (ok: Active; failed: the process did not start or never became healthy).", []string{"result"}, nil),
		runtime: prometheus.NewDesc("hms_plugin_runtime_failures_total",
			"Active plugins that failed, by cause (exit: the process ended; health: its health check failed too often).", []string{"cause"}, nil),
		starts: prometheus.NewDesc("hms_plugin_process_starts_total", "Plugin processes started.", nil, nil),
		states: prometheus.NewDesc("hms_plugins", "Plugin versions in the registry, by state.", []string{"state"}, nil),
	})
}

func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.failovers, c.refusals, c.deactivated, c.pressure, c.activations, c.runtime, c.starts, c.states} {
		ch <- d
	}
}

func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.svc.PolicyStats()
	for _, r := range []string{"activated", "rate_limited", "no_candidate", "activation_failed"} {
		ch <- prometheus.MustNewConstMetric(c.failovers, prometheus.CounterValue, float64(s.Failovers[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(c.refusals, prometheus.CounterValue, float64(s.PressureRefusals))
	for _, r := range []string{"ok", "failed"} {
		ch <- prometheus.MustNewConstMetric(c.activations, prometheus.CounterValue, float64(s.Activations[r]), r)
	}
	for _, r := range []string{"exit", "health"} {
		ch <- prometheus.MustNewConstMetric(c.runtime, prometheus.CounterValue, float64(s.RuntimeFailures[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(c.starts, prometheus.CounterValue, float64(s.ProcessStarts))
	for st, n := range s.States {
		ch <- prometheus.MustNewConstMetric(c.states, prometheus.GaugeValue, float64(n), st)
	}
	for _, p := range []string{"idle-deactivation", "idle-deactivation-under-pressure"} {
		ch <- prometheus.MustNewConstMetric(c.deactivated, prometheus.CounterValue, float64(s.Deactivations[p]), p)
	}
	if s.Threshold > 0 {
		ch <- prometheus.MustNewConstMetric(c.pressure, prometheus.GaugeValue, s.Threshold, "threshold")
		if !s.Pressure.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.pressure, prometheus.GaugeValue, s.Pressure.CPU, "cpu")
			ch <- prometheus.MustNewConstMetric(c.pressure, prometheus.GaugeValue, s.Pressure.Memory, "memory")
		}
	}
}

// managerCollector exports what an embedded Manager has done (lifecycle.Stats), read at
// scrape time: watch cut-offs and lag, non-blocking hook delivery, supervision actions and
// the store's group commits.
type managerCollector struct {
	svc                                              interface{ Stats() lifecycle.Stats }
	cutoffs, lag, retries, giveUps, backlog, actions *prometheus.Desc
	commits, batch, commitTime                       *prometheus.Desc
}

// watchManager adds the Manager's metrics, when svc is an embedded one.
func (m *metrics) watchManager(svc lifecycle.AgentService) {
	s, ok := svc.(interface{ Stats() lifecycle.Stats })
	if !ok {
		return
	}
	m.registry.MustRegister(&managerCollector{svc: s,
		cutoffs: prometheus.NewDesc("hms_watch_cutoffs_total", "Watchers cut off for falling a whole watch buffer behind (they resume from the store).", nil, nil),
		lag:     prometheus.NewDesc("hms_watch_lag_events", "The most events one open watcher has yet to read.", nil, nil),
		retries: prometheus.NewDesc("hms_hook_retries_total", "Repeated deliveries to non-blocking hooks.", nil, nil),
		giveUps: prometheus.NewDesc("hms_hook_give_ups_total", "Events a non-blocking hook gave up on after max_attempts.", nil, nil),
		backlog: prometheus.NewDesc("hms_hook_backlog_events", "Published events a non-blocking hook's delivery has not read yet, by hook.", []string{"hook"}, nil),
		actions: prometheus.NewDesc("hms_supervision_actions_total",
			"Automatic transitions the supervisor made, by action (recover, give_up, liveness, time_limit).", []string{"action"}, nil),
		commits: prometheus.NewDesc("hms_store_commits_total", "The store's group commits (transactions).", nil, nil),
		batch: prometheus.NewDesc("hms_store_commit_batch_size",
			"Requests per group commit: _sum/_count is the mean batch size.", nil, nil),
		commitTime: prometheus.NewDesc("hms_store_commit_duration_seconds",
			"Time spent in group commits: _sum/_count is the mean commit latency.", nil, nil),
	})
}

func (c *managerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cutoffs, c.lag, c.retries, c.giveUps, c.backlog, c.actions, c.commits, c.batch, c.commitTime} {
		ch <- d
	}
}

func (c *managerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.svc.Stats()
	ch <- prometheus.MustNewConstMetric(c.cutoffs, prometheus.CounterValue, float64(s.WatchCutoffs))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.WatchLag))
	ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(s.HookRetries))
	ch <- prometheus.MustNewConstMetric(c.giveUps, prometheus.CounterValue, float64(s.HookGiveUps))
	for hook, n := range s.HookBacklog {
		ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(n), hook)
	}
	for action, n := range s.Supervision {
		ch <- prometheus.MustNewConstMetric(c.actions, prometheus.CounterValue, float64(n), action)
	}
	if cs := s.Commits; cs != nil {
		ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(cs.Commits))
		ch <- prometheus.MustNewConstSummary(c.batch, cs.Commits, float64(cs.Requests), nil)
		ch <- prometheus.MustNewConstSummary(c.commitTime, cs.Commits, cs.Duration.Seconds(), nil)
	}
}
