package httpapi

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/health"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/pool"
)

// HealthReporter gives the last known status of every backend.
type HealthReporter interface {
	Report() health.Report
}

// Guards report each backend's circuit breaker and queue.
type Guards interface {
	Breaker(backend string) string
	Queue(backend string) int
	InFlight(backend string) int
}

// HostGuards also report each host of a backend's pool.
type HostGuards interface {
	Hosts(backend string) []pool.HostStats
}

type healthHandler struct {
	reporter HealthReporter
	guards   Guards
	ready    *atomic.Bool
	now      func() time.Time
}

type healthBody struct {
	Status   string          `json:"status"`
	Gateway  gatewayStatus   `json:"gateway"`
	Backends []backendStatus `json:"backends"`
}

// gatewayStatus is the primary backend (the first in the list), in the shape
// of the original specification.
type gatewayStatus struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	Uptime    float64 `json:"uptime"` // seconds the backend has been reachable without a failed check
	Models    int     `json:"models"`
	LatencyMS float64 `json:"latency_ms"`
}

type backendStatus struct {
	Name      string       `json:"name"`
	Protocol  string       `json:"protocol"`
	URL       string       `json:"url"`
	Status    string       `json:"status"`
	LatencyMS float64      `json:"latency_ms"`
	Models    []string     `json:"models"`
	Error     string       `json:"error,omitempty"`
	Reason    string       `json:"reason,omitempty"` // why it is down: unauthorized, not_found, unreachable, timeout, …
	CheckedAt string       `json:"checked_at,omitempty"`
	Breaker   string       `json:"breaker,omitempty"` // closed, half-open or open
	InFlight  *int         `json:"in_flight,omitempty"`
	Queued    *int         `json:"queued,omitempty"`
	Hosts     []hostStatus `json:"hosts,omitempty"`
}

// hostStatus is one host of a backend's pool.
type hostStatus struct {
	Name         string            `json:"name"`
	URL          string            `json:"url"`
	Status       string            `json:"status"`
	LatencyMS    float64           `json:"latency_ms"`
	Models       []string          `json:"models"`
	Loaded       []string          `json:"loaded"` // in memory now (Ollama's /api/ps); null when not known
	Error        string            `json:"error,omitempty"`
	Reason       string            `json:"reason,omitempty"`
	CheckedAt    string            `json:"checked_at,omitempty"`
	Weight       int               `json:"weight,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Breaker      string            `json:"breaker,omitempty"`
	InFlight     *int              `json:"in_flight,omitempty"`
	Queued       *int              `json:"queued,omitempty"`
	Capacity     *int              `json:"capacity,omitempty"` // its concurrency limit; 0: none
	LoadsCaused  *uint64           `json:"loads_caused,omitempty"`
	LoadsAvoided *uint64           `json:"loads_avoided,omitempty"`
}

// health answers 200 while at least one backend is up, else 503.
func (h *healthHandler) health(c *gin.Context) {
	r := h.reporter.Report()
	now := h.now()
	body := healthBody{Status: r.Overall, Backends: make([]backendStatus, len(r.Backends))}
	for i, s := range r.Backends {
		names := make([]string, len(s.Models))
		for j, m := range s.Models {
			names[j] = m.ID
		}
		b := backendStatus{
			Name: s.Name, Protocol: s.Protocol, URL: s.URL, Status: string(s.State),
			LatencyMS: ms(s.Latency), Models: names, Error: s.Err, Reason: s.Reason,
		}
		if !s.CheckedAt.IsZero() {
			b.CheckedAt = s.CheckedAt.UTC().Format(time.RFC3339)
		}
		if h.guards != nil {
			inFlight, queued := h.guards.InFlight(s.Name), h.guards.Queue(s.Name)
			b.Breaker, b.InFlight, b.Queued = h.guards.Breaker(s.Name), &inFlight, &queued
		}
		if len(s.Hosts) > 1 {
			b.Hosts = h.hosts(s)
		}
		body.Backends[i] = b
		if i == 0 {
			body.Gateway = gatewayStatus{Name: s.Name, Status: string(s.State), Models: len(s.Models), LatencyMS: ms(s.Latency)}
			if s.State == health.StateUp {
				body.Gateway.Uptime = now.Sub(s.UpSince).Round(time.Second).Seconds()
			}
		}
	}
	status := http.StatusOK
	if r.Overall == health.OverallDown {
		status = http.StatusServiceUnavailable
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(status, body)
}

// hosts reports each host of a pool: what its checks found, and, when
// the guards know them, its routing state.
func (h *healthHandler) hosts(s health.Status) []hostStatus {
	var stats []pool.HostStats
	if hg, ok := h.guards.(HostGuards); ok {
		stats = hg.Hosts(s.Name)
	}
	out := make([]hostStatus, len(s.Hosts))
	for j, hs := range s.Hosts {
		names := make([]string, len(hs.Models))
		for k, m := range hs.Models {
			names[k] = m.ID
		}
		o := hostStatus{Name: hs.Name, URL: hs.URL, Status: string(hs.State), LatencyMS: ms(hs.Latency), Models: names,
			Error: hs.Err, Reason: hs.Reason}
		if !hs.CheckedAt.IsZero() {
			o.CheckedAt = hs.CheckedAt.UTC().Format(time.RFC3339)
		}
		if j < len(stats) {
			st := stats[j]
			o.Weight, o.Labels, o.Breaker, o.Loaded = st.Weight, st.Labels, st.Breaker, st.Loaded
			o.InFlight, o.Queued, o.Capacity = &st.InFlight, &st.Queued, &st.Capacity
			o.LoadsCaused, o.LoadsAvoided = &st.LoadsCaused, &st.LoadsAvoided
		}
		out[j] = o
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// livez says the process runs; it never depends on a backend.
func (h *healthHandler) livez(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz says the service takes traffic: started and not draining.
func (h *healthHandler) readyz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	if !h.ready.Load() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "draining"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
