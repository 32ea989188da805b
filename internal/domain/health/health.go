// Package health keeps the status of every backend, refreshed in the
// background, for /health and for the catalog's model lists. Requests read
// the last result; none of them triggers a probe.
package health

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Backend is one backend to watch.
type Backend struct {
	Name     string
	Protocol string
	URL      string
	Lister   ports.ModelLister
}

// State of a backend as last seen.
type State string

const (
	StateUnknown State = "unknown"
	StateUp      State = "up"
	StateDown    State = "down"
)

// Overall states reported by /health.
const (
	OverallOK       = "ok"
	OverallDegraded = "degraded"
	OverallDown     = "down"
)

// Status is what the last check of one backend found.
type Status struct {
	Name     string
	Protocol string
	URL      string
	State    State
	Latency  time.Duration
	Models   []domain.Model // the last list seen, kept while the backend is down
	Err      string
	// Reason says in one word why the backend is down: unauthorized,
	// not_found (a wrong URL), unreachable, timeout, rate_limited,
	// server_error or protocol_error.
	Reason    string
	UpSince   time.Time // when the backend was last seen to come up
	CheckedAt time.Time
	listed    bool
}

// Reason names a failure for /health: see Status.Reason.
func Reason(err error) string {
	var ue *domain.UpstreamError
	if !errors.As(err, &ue) {
		return "error"
	}
	switch ue.Kind {
	case domain.FailureUnauthorized:
		return "unauthorized"
	case domain.FailureMisrouted:
		return "not_found"
	case domain.FailureUnreachable:
		return "unreachable"
	case domain.FailureTimeout:
		return "timeout"
	case domain.FailureRateLimited:
		return "rate_limited"
	case domain.FailureServer:
		return "server_error"
	case domain.FailureProtocol:
		return "protocol_error"
	}
	return "error"
}

// Report is a consistent snapshot of every backend.
type Report struct {
	Overall  string
	Backends []Status
}

// Checker probes every backend on an interval.
type Checker struct {
	backends []Backend
	interval time.Duration
	timeout  time.Duration
	now      func() time.Time

	mu       sync.RWMutex
	statuses []Status
	index    map[string]int
}

// NewChecker builds a checker; nothing runs until Run or CheckNow.
func NewChecker(backends []Backend, interval, timeout time.Duration) *Checker {
	c := &Checker{
		backends: backends,
		interval: interval,
		timeout:  timeout,
		now:      time.Now,
		statuses: make([]Status, len(backends)),
		index:    make(map[string]int, len(backends)),
	}
	for i, b := range backends {
		c.statuses[i] = Status{Name: b.Name, Protocol: b.Protocol, URL: b.URL, State: StateUnknown}
		c.index[b.Name] = i
	}
	return c
}

// Run checks on every tick until ctx ends. The first check happens at once.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.CheckNow(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckNow probes every backend concurrently and records the results.
func (c *Checker) CheckNow(ctx context.Context) {
	var wg sync.WaitGroup
	for i, b := range c.backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.check(ctx, i, b)
		}()
	}
	wg.Wait()
}

func (c *Checker) check(ctx context.Context, i int, b Backend) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := c.now()
	models, err := b.Lister.ListModels(ctx)
	end := c.now()
	if ctx.Err() != nil && err != nil && context.Cause(ctx) == context.Canceled {
		return // shutting down; keep the last result
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.statuses[i]
	s.CheckedAt = end
	s.Latency = end.Sub(start)
	if err != nil {
		s.down(err)
		return
	}
	if s.State != StateUp {
		s.UpSince = end
	}
	s.State = StateUp
	s.Err, s.Reason = "", ""
	s.Models = models
	s.listed = true
}

func (s *Status) down(err error) {
	s.State = StateDown
	s.Err = err.Error()
	s.Reason = Reason(err)
	s.UpSince = time.Time{}
}

// Attempted learns from requests what a model list cannot show: a backend
// that lists its models but refuses this service's credentials, or a base
// URL whose list answers while the chat path does not. Such a failure marks
// the backend down at once, with the reason; the next successful check
// marks it up again. It implements dispatch.Observer.
func (c *Checker) Attempted(_ context.Context, route domain.Route, _ time.Duration, err error, _ string) {
	var ue *domain.UpstreamError
	if !errors.As(err, &ue) || !ue.Misconfigured() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, ok := c.index[route.Backend]; ok {
		c.statuses[i].down(err)
		c.statuses[i].CheckedAt = c.now()
	}
}

// Report returns the current status of every backend.
func (c *Checker) Report() Report {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r := Report{Backends: make([]Status, len(c.statuses))}
	up := 0
	for i, s := range c.statuses {
		r.Backends[i] = s
		if s.State == StateUp {
			up++
		}
	}
	switch {
	case up == 0:
		r.Overall = OverallDown
	case up < len(c.statuses):
		r.Overall = OverallDegraded
	default:
		r.Overall = OverallOK
	}
	return r
}

// Models returns the models a backend was last seen to serve; known is false
// until one list was fetched from it. It satisfies catalog.ModelSource.
func (c *Checker) Models(backend string) ([]domain.Model, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.index[backend]
	if !ok {
		return nil, false
	}
	return c.statuses[i].Models, c.statuses[i].listed
}
