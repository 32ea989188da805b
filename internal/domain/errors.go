package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrModelNotFound means no backend serves the requested model.
var ErrModelNotFound = errors.New("model not found")

// ModelNotFoundError names the model no backend serves.
type ModelNotFoundError struct{ Model string }

func (e *ModelNotFoundError) Error() string {
	return fmt.Sprintf("the model `%s` does not exist or is not served by any backend", e.Model)
}

// Is makes errors.Is(err, ErrModelNotFound) true.
func (e *ModelNotFoundError) Is(target error) bool { return target == ErrModelNotFound }

// InvalidRequestError is a client mistake; Param names the offending field
// in OpenAI's notation (for example "messages[0].role").
type InvalidRequestError struct {
	Param   string
	Message string
}

func (e *InvalidRequestError) Error() string { return e.Message }

// Invalid builds an InvalidRequestError.
func Invalid(param, format string, args ...any) *InvalidRequestError {
	return &InvalidRequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// FailureKind says how an upstream attempt failed. It decides whether the
// next backend may be tried, whether the failure counts against the
// backend's health, and what the client is told.
type FailureKind int

const (
	// FailureUnreachable: no connection could be made, or it broke before
	// the backend answered.
	FailureUnreachable FailureKind = iota + 1
	// FailureTimeout: the backend did not answer in time (see ErrTotalTimeout
	// for the one time limit that says nothing about the backend's health).
	FailureTimeout
	// FailureRateLimited: the backend said it gets too many requests.
	FailureRateLimited
	// FailureServer: the backend failed while serving (a server error, or
	// an error it sent in the middle of its answer).
	FailureServer
	// FailureProtocol: the backend answered something this service cannot
	// read, or its answer broke off.
	FailureProtocol
	// FailureUnauthorized: the backend refused this service's credentials
	// (its API key is wrong, expired or lacks access). The client's own
	// credentials are never forwarded, so it is the service's configuration.
	FailureUnauthorized
	// FailureMisrouted: the backend does not know the path it was called on
	// (a wrong base URL), so it cannot serve anything.
	FailureMisrouted
	// FailureModelMissing: the backend said it does not have the model.
	FailureModelMissing
	// FailureRejected: the backend refused the request itself as invalid;
	// that is the client's to fix, and no other backend is tried.
	FailureRejected
	// FailureBadOutput: the model's answer did not meet the request (a tool
	// call it was required to make is missing). The backend is healthy;
	// another one may do better.
	FailureBadOutput
	// FailureOverloaded: this service holds the backend at its concurrency
	// limit and its queue is full; no request was sent.
	FailureOverloaded
	// FailureCircuitOpen: the backend's circuit breaker is open after
	// repeated failures; no request was sent.
	FailureCircuitOpen
)

var kindNames = map[FailureKind]string{
	FailureUnreachable:  "unreachable",
	FailureTimeout:      "timed out",
	FailureRateLimited:  "rate limited",
	FailureServer:       "server error",
	FailureProtocol:     "unreadable answer",
	FailureUnauthorized: "refused this service's credentials",
	FailureMisrouted:    "wrong URL: the backend does not know the path it was called on",
	FailureModelMissing: "does not have the model",
	FailureRejected:     "rejected the request",
	FailureBadOutput:    "the model's answer did not meet the request",
	FailureOverloaded:   "at capacity (concurrency limit and queue full)",
	FailureCircuitOpen:  "skipped: circuit breaker open after repeated failures",
}

func (k FailureKind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "failed"
}

// ErrTotalTimeout is the cause of a FailureTimeout that ended an answer at
// the total time limit: the answer was long, which says nothing about the
// backend's health.
var ErrTotalTimeout = errors.New("the answer ran longer than the total time limit")

// UpstreamError is the failure of one backend attempt.
type UpstreamError struct {
	Backend string
	Kind    FailureKind
	// Message, Type, Code and Param are what the backend said about the
	// failure. They go to the logs; for FailureRejected they are the
	// client's answer too (it is about the client's request).
	Message string
	Type    string
	Code    string
	Param   string
	// Detail says how the failure showed, for the logs and /health: the
	// URL called and the status it answered, the network error. It may
	// hold internal addresses and never reaches a client.
	Detail string
	// Dial is true when no connection could be made (safe to retry: the
	// request was not sent).
	Dial bool
	// RetryAfter is the backend's Retry-After, when it sent one.
	RetryAfter time.Duration
	Err        error
}

func (e *UpstreamError) Error() string {
	var b strings.Builder
	b.WriteString(e.Backend)
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	for _, s := range []string{e.Message, e.Detail} {
		if s != "" {
			b.WriteString(": ")
			b.WriteString(s)
		}
	}
	if e.Err != nil && e.Detail == "" && e.Message == "" {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// ModelMissing reports whether the backend said it does not have the model.
func (e *UpstreamError) ModelMissing() bool { return e.Kind == FailureModelMissing }

// Retryable reports whether another backend may be tried after this failure
// (before anything reached the client): every failure but a request the
// backend rejected as invalid, which another backend would reject too.
func (e *UpstreamError) Retryable() bool { return e.Kind != FailureRejected }

// Unhealthy reports whether the failure shows the backend cannot serve:
// only those count against it (its circuit breaker, its /health state).
// A client's request cannot produce one: a rejected request, a missing
// model, a model's poor answer and a long answer cut at the total limit
// say nothing about the backend; a rate limit is load, not ill health (the
// request falls back, and Retry-After is honoured); and this service's own
// limits (capacity, an open breaker) are not the backend's doing.
func (e *UpstreamError) Unhealthy() bool {
	switch e.Kind {
	case FailureUnreachable, FailureServer, FailureProtocol, FailureUnauthorized, FailureMisrouted:
		return true
	case FailureTimeout:
		return !errors.Is(e.Err, ErrTotalTimeout)
	}
	return false
}

// Misconfigured reports whether the failure points at this service's
// configuration of the backend (credentials, URL): it is reported in
// /health and logged with the setting to check.
func (e *UpstreamError) Misconfigured() bool {
	return e.Kind == FailureUnauthorized || e.Kind == FailureMisrouted
}

// BackendsFailedError is returned when every backend tried failed.
type BackendsFailedError struct {
	Model    string
	Attempts []*UpstreamError
}

func (e *BackendsFailedError) Error() string {
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = a.Error()
	}
	return fmt.Sprintf("all backends failed for model %s: %s", e.Model, strings.Join(parts, "; "))
}

// Unwrap exposes each attempt to errors.Is/As.
func (e *BackendsFailedError) Unwrap() []error {
	errs := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		errs[i] = a
	}
	return errs
}
