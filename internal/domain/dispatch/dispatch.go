// Package dispatch is the one use case every endpoint runs on: resolve the
// model, pick the backends that serve it, guard each attempt (circuit
// breaker, concurrency limit), fall back to the next backend only while
// nothing has reached the client, and report every attempt. An endpoint
// brings its port and what one attempt does; nothing here knows which
// endpoint it serves.
package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/breaker"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/catalog"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/limiter"
)

// Backend is a named backend: its client, which offers one or more ports,
// and its guards (Breaker and Limiter may be nil).
type Backend struct {
	Name    string
	Client  any
	Breaker *breaker.Breaker
	Limiter *limiter.Limiter
}

// Observer hears about every attempt; adapters log and count them, and the
// health checker learns of a backend that refuses the service.
type Observer interface {
	// Attempted is called after each backend attempt; err is nil when the
	// backend served the request; next names the backend tried after this
	// one, or is empty.
	Attempted(ctx context.Context, route domain.Route, elapsed time.Duration, err error, next string)
}

// Observers calls each observer in turn.
type Observers []Observer

// Attempted implements Observer.
func (os Observers) Attempted(ctx context.Context, route domain.Route, elapsed time.Duration, err error, next string) {
	for _, o := range os {
		o.Attempted(ctx, route, elapsed, err, next)
	}
}

// Service routes operations to backends.
type Service struct {
	catalog    *catalog.Catalog
	backends   map[string]Backend
	observer   Observer
	embedBatch int
}

// Option tunes a Service.
type Option func(*Service)

// EmbedBatch sets how many embedding inputs go to a backend in one call; a
// larger request is split, its order kept (default 256).
func EmbedBatch(n int) Option {
	return func(s *Service) {
		if n > 0 {
			s.embedBatch = n
		}
	}
}

// New builds the service. Backend names must match the catalog's; obs may
// be nil.
func New(cat *catalog.Catalog, backends []Backend, obs Observer, opts ...Option) *Service {
	m := make(map[string]Backend, len(backends))
	for _, b := range backends {
		m[b.Name] = b
	}
	if obs == nil {
		obs = Observers(nil)
	}
	s := &Service{catalog: cat, backends: m, observer: obs, embedBatch: 256}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Call is one attempt of an operation on a backend offering port P, asked
// for the model as route names it. It reports whether anything reached the
// client: after that, a failure ends the request instead of falling back.
type Call[P any] func(ctx context.Context, port P, route domain.Route) (started bool, err error)

// Run routes one operation for the client's model: the backends that
// serve it and offer port P are tried in order, each behind its guards,
// until one serves it, a failure is not worth another backend, or
// something reached the client. The error is the last attempt's when the
// request ended there, else *domain.ModelNotFoundError when every backend
// said it lacks the model, else *domain.BackendsFailedError.
func Run[P any](ctx context.Context, s *Service, model string, call Call[P]) (domain.Route, error) {
	type target struct {
		backend Backend
		port    P
		route   domain.Route
	}
	var targets []target
	for _, t := range s.catalog.Targets(model) {
		b, ok := s.backends[t.Backend]
		if !ok {
			continue
		}
		if p, ok := b.Client.(P); ok {
			targets = append(targets, target{b, p, domain.Route{Backend: t.Backend, Model: t.Model}})
		}
	}
	if len(targets) == 0 {
		return domain.Route{}, &domain.ModelNotFoundError{Model: model}
	}
	var failures []*domain.UpstreamError
	for i, t := range targets {
		begin := time.Now()
		started, err := guarded(ctx, t.backend, func(ctx context.Context) (bool, error) {
			return call(ctx, t.port, t.route)
		})
		var ue *domain.UpstreamError
		fallback := err != nil && !started && ctx.Err() == nil &&
			errors.As(err, &ue) && ue.Retryable() && i < len(targets)-1
		next := ""
		if fallback {
			next = targets[i+1].route.Backend
		}
		s.observer.Attempted(ctx, t.route, time.Since(begin), err, next)
		if err == nil {
			return t.route, nil
		}
		if started || ctx.Err() != nil || ue == nil || !ue.Retryable() {
			return t.route, err
		}
		failures = append(failures, ue)
	}
	allMissing := true
	for _, f := range failures {
		allMissing = allMissing && f.ModelMissing()
	}
	if allMissing {
		return domain.Route{}, &domain.ModelNotFoundError{Model: model}
	}
	return domain.Route{}, &domain.BackendsFailedError{Model: model, Attempts: failures}
}

// guarded runs one attempt behind the backend's circuit breaker and
// concurrency limit. A skipped backend costs nothing: no connection is made.
func guarded(ctx context.Context, b Backend, attempt func(context.Context) (bool, error)) (bool, error) {
	if b.Breaker != nil && !b.Breaker.Allow() {
		return false, &domain.UpstreamError{Backend: b.Name, Kind: domain.FailureCircuitOpen}
	}
	if b.Limiter != nil {
		if err := b.Limiter.Acquire(ctx); err != nil {
			if b.Breaker != nil {
				b.Breaker.Release()
			}
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, &domain.UpstreamError{Backend: b.Name, Kind: domain.FailureOverloaded, Err: err}
		}
		defer b.Limiter.Release()
	}
	started, err := attempt(ctx)
	if b.Breaker != nil {
		judge(ctx, b.Breaker, started, err)
	}
	return started, err
}

// judge tells the breaker what an attempt says about the backend's health.
// Only failures that show the backend cannot serve count against it (see
// UpstreamError.Unhealthy); a backend that answered, if only to refuse the
// request, is healthy; a client that left or sent a bad request, and a
// rate limit, say nothing.
func judge(ctx context.Context, br *breaker.Breaker, started bool, err error) {
	var ue *domain.UpstreamError
	switch {
	case err == nil, started && ctx.Err() != nil:
		br.Success()
	case ctx.Err() != nil, !errors.As(err, &ue), ue.Kind == domain.FailureRateLimited:
		br.Release()
	case ue.Unhealthy():
		br.Failure()
	default:
		br.Success()
	}
}
