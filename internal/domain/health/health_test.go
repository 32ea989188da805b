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
