package health_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/health"
)

// switchable is a ModelLister that is up or down on demand.
type switchable struct {
	down   bool
	models []domain.Model
}

func (s *switchable) ListModels(context.Context) ([]domain.Model, error) {
	if s.down {
		return nil, errors.New("connection refused")
	}
	return s.models, nil
}

func TestReportStates(t *testing.T) {
	a := &switchable{models: []domain.Model{{ID: "m1"}}}
	b := &switchable{down: true}
	c := health.NewChecker([]health.Backend{{Name: "a", Lister: a}, {Name: "b", Lister: b}}, time.Hour, time.Second)

	if r := c.Report(); r.Overall != health.OverallDown || r.Backends[0].State != health.StateUnknown {
		t.Fatalf("before any check: %+v", r)
	}
	if _, known := c.Models("a"); known {
		t.Fatal("models known before any check")
	}

	c.CheckNow(context.Background())
	r := c.Report()
	if r.Overall != health.OverallDegraded || r.Backends[0].State != health.StateUp || r.Backends[1].State != health.StateDown {
		t.Fatalf("one down: %+v", r)
	}
	if r.Backends[1].Err != "connection refused" || r.Backends[0].UpSince.IsZero() {
		t.Fatalf("details: %+v", r.Backends)
	}
	if m, known := c.Models("a"); !known || len(m) != 1 {
		t.Fatalf("models of a: %v %v", m, known)
	}

	b.down = false
	c.CheckNow(context.Background())
	if r := c.Report(); r.Overall != health.OverallOK {
		t.Fatalf("all up: %+v", r)
	}

	a.down, b.down = true, true
	c.CheckNow(context.Background())
	r = c.Report()
	if r.Overall != health.OverallDown {
		t.Fatalf("all down: %+v", r)
	}
	if m, known := c.Models("a"); !known || len(m) != 1 {
		t.Fatalf("a down keeps its last list: %v %v", m, known)
	}
	if !r.Backends[0].UpSince.IsZero() {
		t.Fatal("a down has no up-since")
	}
}

func TestRunStopsWithContext(t *testing.T) {
	c := health.NewChecker([]health.Backend{{Name: "a", Lister: &switchable{}}}, time.Millisecond, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	cancel()
	<-done
}

// TestRequestsMarkAMisconfiguredBackendDown: a model list may answer while
// the chat path refuses the service; a request that meets that marks the
// backend down at once, with the reason, until the next good check.
func TestRequestsMarkAMisconfiguredBackendDown(t *testing.T) {
	a := &switchable{models: []domain.Model{{ID: "m1"}}}
	c := health.NewChecker([]health.Backend{{Name: "a", Lister: a}}, time.Hour, time.Second)
	c.CheckNow(context.Background())
	route := domain.Route{Backend: "a", Model: "m1"}
	for _, kind := range []domain.FailureKind{domain.FailureServer, domain.FailureTimeout, domain.FailureRejected, domain.FailureModelMissing} {
		c.Attempted(context.Background(), route, 0, &domain.UpstreamError{Backend: "a", Kind: kind}, "")
		if s := c.Report().Backends[0]; s.State != health.StateUp {
			t.Fatalf("a request failing with %v marked the backend %v: only the checks judge such failures", kind, s.State)
		}
	}
	for kind, reason := range map[domain.FailureKind]string{domain.FailureUnauthorized: "unauthorized", domain.FailureMisrouted: "not_found"} {
		c.Attempted(context.Background(), route, 0, &domain.UpstreamError{Backend: "a", Kind: kind, Detail: "HTTP 401 from POST http://a/v1/chat/completions"}, "")
		s := c.Report().Backends[0]
		if s.State != health.StateDown || s.Reason != reason || s.Err == "" {
			t.Errorf("after a request met %v: %+v, want down with reason %q", kind, s, reason)
		}
		c.CheckNow(context.Background())
		if s := c.Report().Backends[0]; s.State != health.StateUp || s.Reason != "" {
			t.Errorf("after the next good check: %+v, want up", s)
		}
	}
}

// observed records what a backend's observer (its pool) is told.
type observed struct {
	mu      sync.Mutex
	checked map[int]error
	down    []int
}

func (o *observed) Checked(i int, _ []domain.Model, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checked[i] = err
}

func (o *observed) Down(i int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = append(o.down, i)
}

// TestAPoolIsUpWhileAnyHostIs: a backend of several hosts sums them up;
// each host keeps its own state, and a request that finds one refusing
// the service marks that host down, not its neighbours.
func TestAPoolIsUpWhileAnyHostIs(t *testing.T) {
	a := &switchable{models: []domain.Model{{ID: "m1"}}}
	b := &switchable{models: []domain.Model{{ID: "m2"}, {ID: "m1"}}}
	obs := &observed{checked: map[int]error{}}
	c := health.NewChecker([]health.Backend{{Name: "ollama", Hosts: []health.Host{
		{Name: "gpu1", URL: "http://gpu1:11434", Lister: a}, {Name: "gpu2", URL: "http://gpu2:11434", Lister: b}},
		Observer: obs}}, time.Hour, time.Second)
	c.CheckNow(context.Background())
	s := c.Report().Backends[0]
	if s.State != health.StateUp || s.URL != "http://gpu1:11434,http://gpu2:11434" || len(s.Hosts) != 2 {
		t.Fatalf("status %+v", s)
	}
	if m, _ := c.Models("ollama"); len(m) != 2 {
		t.Fatalf("models %v: want the union of both hosts' lists", m)
	}
	a.down = true
	c.CheckNow(context.Background())
	s = c.Report().Backends[0]
	if s.State != health.StateUp || s.Hosts[0].State != health.StateDown || s.Hosts[1].State != health.StateUp {
		t.Fatalf("one host down: %+v", s)
	}
	if obs.checked[0] == nil || obs.checked[1] != nil {
		t.Fatalf("observer told %v", obs.checked)
	}
	a.down = false
	c.CheckNow(context.Background())
	c.Attempted(context.Background(), domain.Route{Backend: "ollama", Host: "gpu2"}, 0,
		&domain.UpstreamError{Backend: "ollama", Kind: domain.FailureUnauthorized}, "")
	s = c.Report().Backends[0]
	if s.Hosts[1].State != health.StateDown || s.Hosts[0].State != health.StateUp || s.State != health.StateUp {
		t.Fatalf("after gpu2 refused the service: %+v", s)
	}
	if len(obs.down) != 1 || obs.down[0] != 1 {
		t.Fatalf("observer told down %v, want [1]", obs.down)
	}
	b.down, a.down = true, true
	c.CheckNow(context.Background())
	if s := c.Report(); s.Overall != health.OverallDown || s.Backends[0].Reason != "error" {
		t.Fatalf("all hosts down: %+v", s)
	}
}

// countingLister counts its calls and may block until released.
type countingLister struct {
	mu    sync.Mutex
	calls int
	gate  chan struct{}
}

func (l *countingLister) ListModels(ctx context.Context) ([]domain.Model, error) {
	l.mu.Lock()
	l.calls++
	gate := l.gate
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return nil, nil
}

func (l *countingLister) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

// TestRefreshIsSharedAndRateLimited: requests asking for the lists to be
// read again share one check, and none runs within MinRefresh of the last.
func TestRefreshIsSharedAndRateLimited(t *testing.T) {
	l := &countingLister{gate: make(chan struct{})}
	c := health.NewChecker([]health.Backend{{Name: "a", Lister: l}}, time.Hour, 5*time.Second)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Refresh(context.Background()) }()
	}
	for l.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(l.gate)
	wg.Wait()
	if n := l.count(); n != 1 {
		t.Fatalf("%d checks for 5 concurrent refreshes, want 1", n)
	}
	c.Refresh(context.Background())
	if n := l.count(); n != 1 {
		t.Fatalf("a refresh right after one ran a check (%d): want none within MinRefresh", n)
	}
}
