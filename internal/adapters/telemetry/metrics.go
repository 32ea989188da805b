package telemetry

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/health"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/pool"
)

// Namespace prefixes every metric of the service.
const Namespace = "chatgpt_api"

// OtherModel is the model label of any model outside the configured set,
// which keeps the label's values bounded.
const OtherModel = "other"

// Metrics are the service's Prometheus metrics. Build them with
// NewMetrics on a registry of your own; the global registry is never used.
type Metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	firstToken      *prometheus.HistogramVec
	tokens          *prometheus.CounterVec
	attempts        *prometheus.CounterVec
	hostAttempts    *prometheus.CounterVec
	attemptDuration *prometheus.HistogramVec
	fallbacks       *prometheus.CounterVec
	openStreams     prometheus.Gauge
	models          map[string]bool
}

// latencyBuckets span a cached answer (5 ms) to a long generation (5 min).
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewMetrics registers the service's metrics on reg. models is the
// configured set of model names used as label values; backends report
// their state through reporter at scrape time.
func NewMetrics(reg prometheus.Registerer, version string, models []string, reporter HealthReporter, guards Guards) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "Time to serve an HTTP request (for streams, until the stream ended).",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		firstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "time_to_first_token_seconds",
			Help:    "Time from a streamed request's arrival to its first chunk reaching the client.",
			Buckets: latencyBuckets,
		}, []string{"backend", "model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tokens_total",
			Help: "Tokens processed, by backend, model and type (prompt or completion).",
		}, []string{"backend", "model", "type"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "upstream_attempts_total",
			Help: "Requests sent to backends, by backend and outcome.",
		}, []string{"backend", "outcome"}),
		hostAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "host_attempts_total",
			Help: "Requests sent to each host of a backend's pool, by outcome.",
		}, []string{"backend", "host", "outcome"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "upstream_duration_seconds",
			Help:    "Duration of backend attempts, by backend and outcome.",
			Buckets: latencyBuckets,
		}, []string{"backend", "outcome"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "fallbacks_total",
			Help: "Requests handed from one backend to the next, by reason.",
		}, []string{"from", "to", "reason"}),
		openStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "open_streams",
			Help: "Streamed responses currently open.",
		}),
		models: make(map[string]bool, len(models)),
	}
	for _, name := range models {
		m.models[name] = true
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	for _, c := range []prometheus.Collector{
		m.requests, m.requestDuration, m.firstToken, m.tokens, m.attempts, m.hostAttempts, m.attemptDuration,
		m.fallbacks, m.openStreams, build, &backendCollector{reporter: reporter, guards: guards},
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Model returns the label value for a model name: itself when configured,
// else OtherModel.
func (m *Metrics) Model(name string) string {
	if m.models[name] {
		return name
	}
	return OtherModel
}

// Request counts one served HTTP request.
func (m *Metrics) Request(route, method string, code int, elapsed time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.requestDuration.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// FirstToken records the time to the first streamed chunk.
func (m *Metrics) FirstToken(route domain.Route, model string, elapsed time.Duration) {
	m.firstToken.WithLabelValues(route.Backend, m.Model(model)).Observe(elapsed.Seconds())
}

// Tokens counts the tokens of one answer.
func (m *Metrics) Tokens(route domain.Route, model string, u domain.Usage) {
	label := m.Model(model)
	m.tokens.WithLabelValues(route.Backend, label, "prompt").Add(float64(u.PromptTokens))
	m.tokens.WithLabelValues(route.Backend, label, "completion").Add(float64(u.CompletionTokens))
}

// StreamOpened and StreamClosed track open streams.
func (m *Metrics) StreamOpened() { m.openStreams.Inc() }

// StreamClosed is the counterpart of StreamOpened.
func (m *Metrics) StreamClosed() { m.openStreams.Dec() }

// Attempt counts one backend attempt; next names the backend tried after
// it, or is empty.
func (m *Metrics) Attempt(ctx context.Context, route domain.Route, elapsed time.Duration, err error, next string) {
	outcome := Outcome(ctx, err)
	m.attempts.WithLabelValues(route.Backend, outcome).Inc()
	m.hostAttempts.WithLabelValues(route.Backend, route.Host, outcome).Inc()
	m.attemptDuration.WithLabelValues(route.Backend, outcome).Observe(elapsed.Seconds())
	if next != "" {
		m.fallbacks.WithLabelValues(route.Backend, next, outcome).Inc()
	}
}

// Outcome classifies an attempt's result into a bounded label value:
// success, cancelled, timeout, unreachable, overloaded (this service's
// limit), circuit_open, rate_limited, model_missing, unauthorized,
// misrouted (a wrong base URL), invalid (the request was refused as bad),
// bad_output (the model's answer did not meet the request), or error.
func Outcome(ctx context.Context, err error) string {
	var ue *domain.UpstreamError
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return "cancelled"
	case !errors.As(err, &ue):
		return "invalid"
	}
	switch ue.Kind {
	case domain.FailureTimeout:
		return "timeout"
	case domain.FailureUnreachable:
		return "unreachable"
	case domain.FailureOverloaded:
		return "overloaded"
	case domain.FailureCircuitOpen:
		return "circuit_open"
	case domain.FailureModelMissing:
		return "model_missing"
	case domain.FailureRateLimited:
		return "rate_limited"
	case domain.FailureUnauthorized:
		return "unauthorized"
	case domain.FailureMisrouted:
		return "misrouted"
	case domain.FailureRejected:
		return "invalid"
	case domain.FailureBadOutput:
		return "bad_output"
	}
	return "error"
}

// HealthReporter gives the last status of every backend.
type HealthReporter interface {
	Report() health.Report
}

// Guards report each backend's circuit breaker and queue.
type Guards interface {
	Breaker(backend string) string // closed, half-open or open
	Queue(backend string) int      // requests waiting for a slot
	InFlight(backend string) int   // requests being served
}

// HostGuards also report each host of a backend's pool.
type HostGuards interface {
	Hosts(backend string) []pool.HostStats
}

// breakerValues are the gauge values of the breaker states.
var breakerValues = map[string]float64{"closed": 0, "half-open": 1, "open": 2}

// backendCollector reads the health checker and the guards at scrape time,
// so the gauges are never stale and need no update path of their own.
type backendCollector struct {
	reporter HealthReporter
	guards   Guards
}

var (
	backendUpDesc = prometheus.NewDesc(Namespace+"_backend_up",
		"Whether the backend answered its last health check (1) or not (0).", []string{"backend", "protocol"}, nil)
	backendLatencyDesc = prometheus.NewDesc(Namespace+"_backend_latency_seconds",
		"Round trip of the backend's last health check.", []string{"backend"}, nil)
	backendModelsDesc = prometheus.NewDesc(Namespace+"_backend_models",
		"Models the backend listed at its last successful check.", []string{"backend"}, nil)
	breakerDesc = prometheus.NewDesc(Namespace+"_circuit_breaker_state",
		"The backend's circuit breaker: 0 closed, 1 half-open, 2 open.", []string{"backend"}, nil)
	queueDesc = prometheus.NewDesc(Namespace+"_queue_depth",
		"Requests waiting for one of the backend's concurrency slots.", []string{"backend"}, nil)
	inFlightDesc = prometheus.NewDesc(Namespace+"_upstream_in_flight",
		"Requests the backend is serving now.", []string{"backend"}, nil)

	hostLabels   = []string{"backend", "host"}
	hostUpDesc   = prometheus.NewDesc(Namespace+"_host_up", "Whether the host answered its last health check (1) or not (0).", hostLabels, nil)
	hostInFlight = prometheus.NewDesc(Namespace+"_host_in_flight", "Requests the host is serving now.", hostLabels, nil)
	hostQueue    = prometheus.NewDesc(Namespace+"_host_queue_depth", "Requests waiting for one of the host's concurrency slots.", hostLabels, nil)
	hostBreaker  = prometheus.NewDesc(Namespace+"_host_circuit_breaker_state", "The host's circuit breaker: 0 closed, 1 half-open, 2 open.", hostLabels, nil)
	hostLoaded   = prometheus.NewDesc(Namespace+"_host_models_loaded", "Models the host holds in memory (Ollama's /api/ps) at the last read.", hostLabels, nil)
	hostLoads    = prometheus.NewDesc(Namespace+"_host_model_loads_total",
		"Requests the host served that had to load their model (result caused), or found it loaded while another candidate host would have had to load it (result avoided).",
		[]string{"backend", "host", "result"}, nil)
	affinityDesc = prometheus.NewDesc(Namespace+"_pool_affinity_total",
		"Requests that continued a conversation, by whether they stayed with the host of its previous turn (hit), had to move (moved), or began one (new); by the host that served them.",
		[]string{"backend", "host", "result"}, nil)
)

func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backendUpDesc
	ch <- backendLatencyDesc
	ch <- backendModelsDesc
	ch <- breakerDesc
	ch <- queueDesc
	ch <- inFlightDesc
	for _, d := range []*prometheus.Desc{hostUpDesc, hostInFlight, hostQueue, hostBreaker, hostLoaded, hostLoads, affinityDesc} {
		ch <- d
	}
}

func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	if c.reporter == nil {
		return
	}
	for _, s := range c.reporter.Report().Backends {
		up := 0.0
		if s.State == health.StateUp {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(backendUpDesc, prometheus.GaugeValue, up, s.Name, s.Protocol)
		ch <- prometheus.MustNewConstMetric(backendLatencyDesc, prometheus.GaugeValue, s.Latency.Seconds(), s.Name)
		ch <- prometheus.MustNewConstMetric(backendModelsDesc, prometheus.GaugeValue, float64(len(s.Models)), s.Name)
		if c.guards != nil {
			ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, breakerValues[c.guards.Breaker(s.Name)], s.Name)
			ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(c.guards.Queue(s.Name)), s.Name)
			ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(c.guards.InFlight(s.Name)), s.Name)
		}
		c.collectHosts(ch, s)
	}
}

// collectHosts reports each host of a backend with more than one.
func (c *backendCollector) collectHosts(ch chan<- prometheus.Metric, s health.Status) {
	if len(s.Hosts) < 2 {
		return
	}
	var stats []pool.HostStats
	if hg, ok := c.guards.(HostGuards); ok {
		stats = hg.Hosts(s.Name)
	}
	for j, h := range s.Hosts {
		up := 0.0
		if h.State == health.StateUp {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(hostUpDesc, prometheus.GaugeValue, up, s.Name, h.Name)
		if j >= len(stats) {
			continue
		}
		st := stats[j]
		ch <- prometheus.MustNewConstMetric(hostInFlight, prometheus.GaugeValue, float64(st.InFlight), s.Name, h.Name)
		ch <- prometheus.MustNewConstMetric(hostQueue, prometheus.GaugeValue, float64(st.Queued), s.Name, h.Name)
		ch <- prometheus.MustNewConstMetric(hostBreaker, prometheus.GaugeValue, breakerValues[st.Breaker], s.Name, h.Name)
		if st.Loaded != nil {
			ch <- prometheus.MustNewConstMetric(hostLoaded, prometheus.GaugeValue, float64(len(st.Loaded)), s.Name, h.Name)
		}
		ch <- prometheus.MustNewConstMetric(hostLoads, prometheus.CounterValue, float64(st.LoadsCaused), s.Name, h.Name, "caused")
		ch <- prometheus.MustNewConstMetric(hostLoads, prometheus.CounterValue, float64(st.LoadsAvoided), s.Name, h.Name, "avoided")
		ch <- prometheus.MustNewConstMetric(affinityDesc, prometheus.CounterValue, float64(st.AffinityHit), s.Name, h.Name, "hit")
		ch <- prometheus.MustNewConstMetric(affinityDesc, prometheus.CounterValue, float64(st.AffinityMove), s.Name, h.Name, "moved")
		ch <- prometheus.MustNewConstMetric(affinityDesc, prometheus.CounterValue, float64(st.AffinityNew), s.Name, h.Name, "new")
	}
}
