package health_test

import (
	"context"
	"errors"
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
