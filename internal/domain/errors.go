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

// Failure kinds of an upstream attempt. They decide whether the next backend
// may be tried and which status the client finally sees.
type FailureKind int

const (
	// FailureUnreachable: no connection could be made or it broke before an answer.
	FailureUnreachable FailureKind = iota + 1
	// FailureTimeout: the backend did not answer within its time limit.
	FailureTimeout
	// FailureStatus: the backend answered with an error status.
	FailureStatus
	// FailureProtocol: the backend answered something this service cannot read.
	FailureProtocol
	// FailureOverloaded: this service holds the backend at its concurrency
	// limit and the queue is full; no request was sent.
	FailureOverloaded
	// FailureCircuitOpen: the backend's circuit breaker is open after
	// repeated failures; no request was sent.
	FailureCircuitOpen
)

// UpstreamError is the failure of one backend attempt.
type UpstreamError struct {
	Backend string
	Kind    FailureKind
	Status  int    // HTTP status for FailureStatus
	Message string // what the upstream said, re-wrapped
	Type    string // upstream error type, when it sent one
	Code    string // upstream error code, when it sent one
	Param   string // upstream error param, when it sent one
	// Dial is true when no connection could be made (safe to retry: the
	// request was not sent).
	Dial bool
	// RetryAfter is the upstream's Retry-After, when it sent one.
	RetryAfter time.Duration
	Err        error
}

func (e *UpstreamError) Error() string {
	var b strings.Builder
	b.WriteString(e.Backend)
	b.WriteString(": ")
	switch e.Kind {
	case FailureStatus:
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		if e.Message != "" {
			b.WriteString(": ")
			b.WriteString(e.Message)
		}
	case FailureOverloaded:
		b.WriteString("at capacity (concurrency limit and queue full)")
	case FailureCircuitOpen:
		b.WriteString("skipped: circuit breaker open after repeated failures")
	case FailureTimeout:
		b.WriteString("timed out")
		if e.Err != nil {
			b.WriteString(": ")
			b.WriteString(e.Err.Error())
		}
	default:
		if e.Message != "" {
			b.WriteString(e.Message)
		} else if e.Err != nil {
			b.WriteString(e.Err.Error())
		} else {
			b.WriteString("failed")
		}
	}
	return b.String()
}

func (e *UpstreamError) Unwrap() error { return e.Err }

// ModelMissing reports whether the backend said it does not have the model.
func (e *UpstreamError) ModelMissing() bool {
	return e.Kind == FailureStatus && e.Status == 404
}

// Retryable reports whether another backend may be tried after this failure
// (before anything reached the client): connection failures, timeouts, 5xx,
// 429, and a backend that lacks the model.
func (e *UpstreamError) Retryable() bool {
	switch e.Kind {
	case FailureUnreachable, FailureTimeout, FailureProtocol, FailureOverloaded, FailureCircuitOpen:
		return true
	case FailureStatus:
		return e.Status == 429 || e.Status >= 500 || e.Status == 404
	}
	return false
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
