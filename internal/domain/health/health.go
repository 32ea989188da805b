// Package health keeps the status of every backend, refreshed in the
// background, for /health and for the catalog's model lists. Requests read
// the last result; none of them triggers a probe.
package health

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Backend is one backend to watch: a pool of Hosts, or one host given by
// URL and Lister.
type Backend struct {
	Name     string
	Protocol string
	URL      string
	Lister   ports.ModelLister
	Hosts    []Host
	// Observer, if set, is told of every check of a host (the backend's
	// pool routes by what they find).
	Observer HostObserver
}

// Host is one host of a backend.
type Host struct {
	Name   string
	URL    string
	Lister ports.ModelLister
}

// HostObserver hears what the checks of a backend's hosts find.
type HostObserver interface {
	// Checked reports the models host i lists, or the error that marks it
	// down.
	Checked(i int, models []domain.Model, err error)
	// Down reports a host a request found refusing the service.
	Down(i int)
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

// Status is what the last checks of one backend found: its hosts, and
// their sum. A backend is up while any host is; its models are those any
// host lists; its error and reason are its first host's while it is down.
type Status struct {
	Name     string
	Protocol string
	URL      string // its hosts' URLs, comma-separated
	State    State
	Latency  time.Duration  // the fastest up host's last check
	Models   []domain.Model // the last lists seen, kept while hosts are down
	Err      string
	// Reason says in one word why the backend is down: unauthorized,
	// not_found (a wrong URL), unreachable, timeout, rate_limited,
	// server_error or protocol_error.
	Reason    string
	UpSince   time.Time // when the backend was last seen to come up
	CheckedAt time.Time
	Hosts     []HostStatus
	listed    bool
}

// HostStatus is what the last check of one host found.
type HostStatus struct {
	Name      string
	URL       string
	State     State
	Latency   time.Duration
	Models    []domain.Model
	Err       string
	Reason    string
	UpSince   time.Time
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

// Checker probes every host of every backend on an interval.
type Checker struct {
	backends []Backend
	interval time.Duration
	timeout  time.Duration
	now      func() time.Time

	mu       sync.RWMutex
	statuses []Status
	index    map[string]int

	refreshMu sync.Mutex
	refreshed time.Time     // when the last check of everything ended
	running   chan struct{} // closed when the check in progress ends; nil if none
}

// MinRefresh is the least time between two checks that Refresh asks for.
const MinRefresh = time.Second

// NewChecker builds a checker; nothing runs until Run or CheckNow.
func NewChecker(backends []Backend, interval, timeout time.Duration) *Checker {
	c := &Checker{
		backends: make([]Backend, len(backends)),
		interval: interval,
		timeout:  timeout,
		now:      time.Now,
		statuses: make([]Status, len(backends)),
		index:    make(map[string]int, len(backends)),
	}
	for i, b := range backends {
		if len(b.Hosts) == 0 {
			b.Hosts = []Host{{URL: b.URL, Lister: b.Lister}}
		}
		c.backends[i] = b
		st := Status{Name: b.Name, Protocol: b.Protocol, State: StateUnknown, Hosts: make([]HostStatus, len(b.Hosts))}
		urls := make([]string, len(b.Hosts))
		for j, h := range b.Hosts {
			st.Hosts[j] = HostStatus{Name: h.Name, URL: h.URL, State: StateUnknown}
			urls[j] = h.URL
		}
		st.URL = strings.Join(urls, ",")
		c.statuses[i] = st
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

// CheckNow probes every host concurrently and records the results.
func (c *Checker) CheckNow(ctx context.Context) {
	var wg sync.WaitGroup
	for i, b := range c.backends {
		for j, h := range b.Hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.check(ctx, i, j, h)
			}()
		}
	}
	wg.Wait()
	c.refreshMu.Lock()
	c.refreshed = c.now()
	c.refreshMu.Unlock()
}

// Refresh checks every host now, unless a check ended less than
// MinRefresh ago; a caller that finds one running waits for it. It
// implements dispatch.Refresher: a request for a model nobody lists asks
// whether it was pulled since.
func (c *Checker) Refresh(ctx context.Context) {
	c.refreshMu.Lock()
	if c.running != nil {
		done := c.running
		c.refreshMu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		return
	}
	if !c.refreshed.IsZero() && c.now().Sub(c.refreshed) < MinRefresh {
		c.refreshMu.Unlock()
		return
	}
	done := make(chan struct{})
	c.running = done
	c.refreshMu.Unlock()
	defer func() {
		c.refreshMu.Lock()
		c.running = nil
		c.refreshMu.Unlock()
		close(done)
	}()
	c.CheckNow(context.WithoutCancel(ctx))
}

func (c *Checker) check(ctx context.Context, i, j int, h Host) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := c.now()
	models, err := h.Lister.ListModels(ctx)
	end := c.now()
	if ctx.Err() != nil && err != nil && context.Cause(ctx) == context.Canceled {
		return // shutting down; keep the last result
	}
	if o := c.backends[i].Observer; o != nil {
		o.Checked(j, models, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.statuses[i].Hosts[j]
	s.CheckedAt = end
	s.Latency = end.Sub(start)
	if err != nil {
		s.down(err)
	} else {
		if s.State != StateUp {
			s.UpSince = end
		}
		s.State = StateUp
		s.Err, s.Reason = "", ""
		s.Models = models
		s.listed = true
	}
	c.statuses[i].sum(end)
}

func (s *HostStatus) down(err error) {
	s.State = StateDown
	s.Err = err.Error()
	s.Reason = Reason(err)
	s.UpSince = time.Time{}
}

// sum derives the backend's status from its hosts'.
func (s *Status) sum(now time.Time) {
	wasUp := s.State == StateUp
	s.State = StateDown
	unknown := false
	s.Latency, s.CheckedAt = 0, time.Time{}
	s.listed = false
	s.Models = s.Models[:0:0]
	seen := map[string]bool{}
	fastest := time.Duration(-1)
	for _, h := range s.Hosts {
		switch h.State {
		case StateUp:
			s.State = StateUp
			if fastest < 0 || h.Latency < fastest {
				fastest = h.Latency
			}
		case StateUnknown:
			unknown = true
		}
		if h.CheckedAt.After(s.CheckedAt) {
			s.CheckedAt = h.CheckedAt
		}
		if h.listed {
			s.listed = true
			for _, m := range h.Models {
				if !seen[m.ID] {
					seen[m.ID] = true
					s.Models = append(s.Models, m)
				}
			}
		}
	}
	if s.State != StateUp && unknown {
		s.State = StateUnknown
	}
	first := s.Hosts[0]
	switch {
	case s.State == StateUp:
		s.Latency = fastest
		s.Err, s.Reason = "", ""
		if !wasUp {
			s.UpSince = now
		}
	default:
		s.Latency = first.Latency
		s.Err, s.Reason = first.Err, first.Reason
		for _, h := range s.Hosts {
			if h.State == StateDown {
				s.Err, s.Reason = h.Err, h.Reason
				break
			}
		}
		s.UpSince = time.Time{}
	}
}

// Attempted learns from requests what a model list cannot show: a host
// that lists its models but refuses this service's credentials, or a base
// URL whose list answers while the chat path does not. Such a failure marks
// the host down at once, with the reason; the next successful check marks
// it up again. It implements dispatch.Observer.
func (c *Checker) Attempted(_ context.Context, route domain.Route, _ time.Duration, err error, _ string) {
	var ue *domain.UpstreamError
	if !errors.As(err, &ue) || !ue.Misconfigured() {
		return
	}
	i, ok := c.index[route.Backend]
	if !ok {
		return
	}
	j := 0
	for k, h := range c.backends[i].Hosts {
		if h.Name == route.Host {
			j = k
			break
		}
	}
	if o := c.backends[i].Observer; o != nil {
		o.Down(j)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	h := &c.statuses[i].Hosts[j]
	h.down(err)
	h.CheckedAt = now
	c.statuses[i].sum(now)
}

// Report returns the current status of every backend.
func (c *Checker) Report() Report {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r := Report{Backends: make([]Status, len(c.statuses))}
	up := 0
	for i, s := range c.statuses {
		s.Hosts = slices.Clone(s.Hosts)
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

// Models returns the models a backend's hosts were last seen to serve;
// known is false until one list was fetched from one of them. It satisfies
// catalog.ModelSource.
func (c *Checker) Models(backend string) ([]domain.Model, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.index[backend]
	if !ok {
		return nil, false
	}
	return c.statuses[i].Models, c.statuses[i].listed
}
