// Package completion answers chat requests: it resolves the model, tries the
// backends that serve it in order, and falls back to the next one only while
// nothing has reached the client.
package completion

import (
	"context"
	"errors"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/breaker"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/catalog"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/limiter"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Backend is a named chat backend with its guards; Breaker and Limiter
// may be nil.
type Backend struct {
	Name    string
	Chat    ports.ChatBackend
	Breaker *breaker.Breaker
	Limiter *limiter.Limiter
}

// Observer hears about every attempt; adapters log and count them.
type Observer interface {
	// Attempted is called after each backend attempt; err is nil when the
	// backend served the request; next names the backend tried after this
	// one, or is empty.
	Attempted(ctx context.Context, route domain.Route, elapsed time.Duration, err error, next string)
}

// EmitFunc receives each chunk of a stream together with the route serving
// it; the first call is the moment the answer starts reaching the client.
type EmitFunc func(domain.Route, domain.Chunk) error

// Service is the completion use case.
type Service struct {
	catalog  *catalog.Catalog
	backends map[string]Backend
	observer Observer
}

// NewService builds the service. Backend names must match the catalog's.
func NewService(cat *catalog.Catalog, backends []Backend, obs Observer) *Service {
	m := make(map[string]Backend, len(backends))
	for _, b := range backends {
		m[b.Name] = b
	}
	return &Service{catalog: cat, backends: m, observer: obs}
}

// Complete answers a buffered request.
func (s *Service) Complete(ctx context.Context, req domain.ChatRequest) (domain.Completion, domain.Route, error) {
	var out domain.Completion
	route, err := s.try(ctx, req, func(ctx context.Context, b ports.ChatBackend, r domain.ChatRequest, _ domain.Route) (bool, error) {
		c, err := b.Complete(ctx, r)
		out = c
		return false, err
	})
	return out, route, err
}

// Stream answers a streamed request, calling emit for every chunk. Once emit
// was called, a failure ends the stream: it is returned and no other
// backend is tried.
func (s *Service) Stream(ctx context.Context, req domain.ChatRequest, emit EmitFunc) (domain.Route, error) {
	return s.try(ctx, req, func(ctx context.Context, b ports.ChatBackend, r domain.ChatRequest, route domain.Route) (bool, error) {
		started := false
		err := b.Stream(ctx, r, func(c domain.Chunk) error {
			started = true
			return emit(route, c)
		})
		return started, err
	})
}

// guarded runs one attempt behind the backend's circuit breaker and
// concurrency limit. A skipped backend costs nothing: no connection is made.
func (s *Service) guarded(ctx context.Context, b Backend, req domain.ChatRequest, route domain.Route, attempt attemptFunc) (bool, error) {
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
	started, err := attempt(ctx, b.Chat, req, route)
	if b.Breaker != nil {
		judge(ctx, b.Breaker, started, err)
	}
	return started, err
}

// judge tells the breaker what the attempt says about the backend's health:
// failures that point at the backend count; a client that left or sent a
// bad request says nothing.
func judge(ctx context.Context, br *breaker.Breaker, started bool, err error) {
	var ue *domain.UpstreamError
	switch {
	case err == nil, started && ctx.Err() != nil:
		br.Success()
	case ctx.Err() != nil, !errors.As(err, &ue):
		br.Release()
	case ue.Retryable() && !ue.ModelMissing():
		br.Failure()
	default:
		br.Success() // it answered, if only to refuse
	}
}

type attemptFunc func(ctx context.Context, b ports.ChatBackend, req domain.ChatRequest, route domain.Route) (started bool, err error)

func (s *Service) try(ctx context.Context, req domain.ChatRequest, attempt attemptFunc) (domain.Route, error) {
	targets := s.catalog.Targets(req.Model)
	if len(targets) == 0 {
		return domain.Route{}, &domain.ModelNotFoundError{Model: req.Model}
	}
	var failures []*domain.UpstreamError
	for i, t := range targets {
		backend, ok := s.backends[t.Backend]
		if !ok {
			continue
		}
		route := domain.Route{Backend: t.Backend, Model: t.Model}
		r := req
		r.Model = t.Model
		begin := time.Now()
		started, err := s.guarded(ctx, backend, r, route, attempt)
		var ue *domain.UpstreamError
		fallback := err != nil && !started && ctx.Err() == nil &&
			errors.As(err, &ue) && ue.Retryable() && i < len(targets)-1
		if s.observer != nil {
			next := ""
			if fallback {
				next = targets[i+1].Backend
			}
			s.observer.Attempted(ctx, route, time.Since(begin), err, next)
		}
		if err == nil {
			return route, nil
		}
		if started || ctx.Err() != nil || ue == nil || !ue.Retryable() {
			return route, err
		}
		failures = append(failures, ue)
	}
	allMissing := len(failures) > 0
	for _, f := range failures {
		allMissing = allMissing && f.ModelMissing()
	}
	if allMissing {
		return domain.Route{}, &domain.ModelNotFoundError{Model: req.Model}
	}
	return domain.Route{}, &domain.BackendsFailedError{Model: req.Model, Attempts: failures}
}
