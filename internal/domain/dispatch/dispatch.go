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
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/pool"
)

// Backend is a named backend: a pool of hosts (see package pool), or one
// host given by Client and its guards (Breaker and Limiter may be nil).
type Backend struct {
	Name    string
	Pool    *pool.Pool
	Client  any
	Breaker *breaker.Breaker
	Limiter *limiter.Limiter
}

// Observer hears about every attempt; adapters log and count them, and the
// health checker learns of a backend that refuses the service.
type Observer interface {
	// Attempted is called after each attempt on a host (route.Host) of a
	// backend; err is nil when it served the request; next names the
	// backend tried after this one (the same backend when the next host of
	// its pool is), or is empty.
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
	backends   map[string]*pool.Pool
	observer   Observer
	embedBatch int
	refresher  Refresher
}

// Refresher reads the backends' model lists again (a health check): a
// model no backend listed may have been pulled since.
type Refresher interface {
	Refresh(ctx context.Context)
}

// Refresh sets what is asked to read the model lists again when a request
// names a model no backend lists, or a host says it lacks a model it
// listed.
func Refresh(r Refresher) Option {
	return func(s *Service) { s.refresher = r }
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
	m := make(map[string]*pool.Pool, len(backends))
	for _, b := range backends {
		p := b.Pool
		if p == nil {
			p = pool.New(b.Name, []pool.Host{{Client: b.Client, Breaker: b.Breaker, Limiter: b.Limiter}}, pool.Settings{})
		}
		m[b.Name] = p
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

// Run routes one operation for the client's model, without a conversation
// key: see RunKeyed.
func Run[P any](ctx context.Context, s *Service, model string, call Call[P]) (domain.Route, error) {
	return RunKeyed(ctx, s, model, pool.Key{}, call)
}

// RunKeyed routes one operation for the client's model in the conversation
// key: the backends that serve the model and offer port P are tried in
// order, and within each the hosts of its pool in the order the pool
// plans, each behind its guards, until one serves it, a failure is not
// worth another try, or something reached the client. The error is the
// last attempt's when the request ended there, else
// *domain.ModelNotFoundError when every host said it lacks the model, else
// *domain.BackendsFailedError.
func RunKeyed[P any](ctx context.Context, s *Service, model string, key pool.Key, call Call[P]) (domain.Route, error) {
	targets := s.catalog.Targets(model)
	if len(targets) == 0 && s.refresher != nil {
		// Nobody lists it: perhaps it was pulled since the last check.
		s.refresher.Refresh(ctx)
		targets = s.catalog.Targets(model)
	}
	type target struct {
		pool  *pool.Pool
		route domain.Route
	}
	var ts []target
	for _, t := range targets {
		p, ok := s.backends[t.Backend]
		if !ok {
			continue
		}
		if _, ok := p.Host(0).Client.(P); ok {
			ts = append(ts, target{p, domain.Route{Backend: t.Backend, Model: t.Model}})
		}
	}
	if len(ts) == 0 {
		return domain.Route{}, &domain.ModelNotFoundError{Model: model}
	}
	var failures []*domain.UpstreamError
	for ti, t := range ts {
		plan := t.pool.Plan(t.route.Model, key)
		for oi, hi := range plan.Order {
			h := t.pool.Host(hi)
			route := t.route
			route.Host, route.Affinity = h.Name, plan.Outcome(hi)
			port := h.Client.(P)
			begin := time.Now()
			t.pool.Begin(hi)
			started, err := guarded(ctx, route.Backend, h, func(ctx context.Context) (bool, error) {
				return call(ctx, port, route)
			})
			t.pool.End(hi)
			var ue *domain.UpstreamError
			more := oi < len(plan.Order)-1 || ti < len(ts)-1
			fallback := err != nil && !started && ctx.Err() == nil &&
				errors.As(err, &ue) && ue.Retryable() && more
			next := ""
			if fallback {
				next = t.route.Backend
				if oi == len(plan.Order)-1 {
					next = ts[ti+1].route.Backend
				}
			}
			s.observer.Attempted(ctx, route, time.Since(begin), err, next)
			if err == nil {
				t.pool.Served(plan, hi)
				return route, nil
			}
			if started || ctx.Err() != nil || ue == nil || !ue.Retryable() {
				return route, err
			}
			if ue.ModelMissing() {
				// The host listed the model and no longer has it: it is
				// passed over, and the lists are read again, in the
				// background, for the next request.
				t.pool.Lacks(hi, t.route.Model)
				if s.refresher != nil {
					go s.refresher.Refresh(context.WithoutCancel(ctx))
				}
			}
			failures = append(failures, ue)
		}
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
func guarded(ctx context.Context, backend string, b *pool.Host, attempt func(context.Context) (bool, error)) (bool, error) {
	if b.Breaker != nil && !b.Breaker.Allow() {
		return false, &domain.UpstreamError{Backend: backend, Kind: domain.FailureCircuitOpen}
	}
	if b.Limiter != nil {
		if err := b.Limiter.Acquire(ctx); err != nil {
			if b.Breaker != nil {
				b.Breaker.Release()
			}
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, &domain.UpstreamError{Backend: backend, Kind: domain.FailureOverloaded, Err: err}
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
