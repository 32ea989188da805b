package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// apiError is an error ready for the client: a status, OpenAI's body, and
// headers that steer the SDKs' retries.
type apiError struct {
	Status int
	Body   openai.ErrorBody
	// RetryAfter, when set, is sent as Retry-After (seconds).
	RetryAfter int
	// NoRetry sends x-should-retry: false: this service already retried
	// and fell back, so an SDK retrying too would only multiply the load.
	NoRetry bool
}

// overloadRetryAfter is what a client is told to wait when every backend
// is at its concurrency limit.
const overloadRetryAfter = 1

// toAPIError maps every error the handlers can meet onto the status and
// OpenAI error body a client receives. It is the only place that does.
func toAPIError(err error) apiError {
	var (
		inv    *domain.InvalidRequestError
		nf     *domain.ModelNotFoundError
		failed *domain.BackendsFailedError
		up     *domain.UpstreamError
		tooBig *http.MaxBytesError
	)
	switch {
	case errors.As(err, &inv):
		return apiError{Status: http.StatusBadRequest, Body: openai.NewError(openai.TypeInvalidRequest, inv.Message, inv.Param, "")}
	case errors.As(err, &nf):
		msg := fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", nf.Model)
		return apiError{Status: http.StatusNotFound, Body: openai.NewError(openai.TypeInvalidRequest, msg, "model", "model_not_found")}
	case errors.As(err, &tooBig):
		msg := fmt.Sprintf("The request body is larger than the limit of %d bytes.", tooBig.Limit)
		return apiError{Status: http.StatusRequestEntityTooLarge, Body: openai.NewError(openai.TypeInvalidRequest, msg, "", "request_too_large")}
	case errors.As(err, &failed):
		return backendsFailed(failed)
	case errors.As(err, &up):
		return upstreamError(up)
	}
	return apiError{Status: http.StatusInternalServerError, Body: openai.NewError(openai.TypeServer, "The server had an error while processing your request.", "", "internal_error")}
}

// backendsFailed picks the status for a request every backend failed: 429
// when all were at capacity here (the SDKs retry it after Retry-After) or
// rate limited upstream, 504 when all timed out, 503 when none could be
// reached, else 502. The message names each backend and the kind of its
// failure, never an address or a network error (those are in the logs).
// Anything but local overload carries x-should-retry: false.
func backendsFailed(e *domain.BackendsFailedError) apiError {
	timeouts, limited, unreachable, overloaded := 0, 0, 0, 0
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = a.Backend + ": " + describe(a)
		switch a.Kind {
		case domain.FailureTimeout:
			timeouts++
		case domain.FailureRateLimited:
			limited++
		case domain.FailureUnreachable, domain.FailureCircuitOpen:
			unreachable++
		case domain.FailureOverloaded:
			overloaded++
		}
	}
	n := len(e.Attempts)
	msg := fmt.Sprintf("No backend could serve model `%s`: %s.", e.Model, strings.Join(parts, "; "))
	if e.Model == "" {
		msg = fmt.Sprintf("Backend %s.", strings.Join(parts, "; "))
	}
	switch {
	case overloaded == n:
		return apiError{Status: http.StatusTooManyRequests, RetryAfter: overloadRetryAfter,
			Body: openai.NewError(openai.TypeRateLimit, msg, "", "rate_limit_exceeded")}
	case overloaded+limited == n:
		return apiError{Status: http.StatusTooManyRequests, NoRetry: true, Body: openai.NewError(openai.TypeRateLimit, msg, "", "rate_limit_exceeded")}
	case timeouts == n:
		return apiError{Status: http.StatusGatewayTimeout, NoRetry: true, Body: openai.NewError(openai.TypeServer, msg, "", "upstream_timeout")}
	case unreachable+overloaded == n:
		return apiError{Status: http.StatusServiceUnavailable, NoRetry: true, Body: openai.NewError(openai.TypeServer, msg, "", "upstream_unavailable")}
	}
	return apiError{Status: http.StatusBadGateway, NoRetry: true, Body: openai.NewError(openai.TypeServer, msg, "", "upstream_error")}
}

// describe says what went wrong with one backend: the kind of failure, and
// for a model's unmet answer what it missed. What the backend said, the URL
// it was called on and network errors stay in the logs: they may name
// internal hosts.
func describe(a *domain.UpstreamError) string {
	switch a.Kind {
	case domain.FailureMisrouted:
		return "misconfigured (its URL does not serve this API)"
	case domain.FailureBadOutput:
		if a.Message != "" {
			return strings.TrimRight(a.Message, ". ")
		}
	case domain.FailureProtocol:
		if a.Message == "the answer broke off" {
			return "the answer broke off"
		}
	}
	return a.Kind.String()
}

// upstreamError maps a failure that ended the request without fallback:
// a request the backend rejected as invalid is the client's to fix, and
// the backend's message, type, code and param are passed on with a 400;
// anything else (a stream cut after it began) is a backend failure.
func upstreamError(e *domain.UpstreamError) apiError {
	if e.Kind == domain.FailureRejected {
		typ := e.Type
		if typ == "" {
			typ = openai.TypeInvalidRequest
		}
		msg := e.Message
		if msg == "" {
			msg = "The backend rejected the request."
		}
		return apiError{Status: http.StatusBadRequest, Body: openai.NewError(typ, msg, e.Param, e.Code)}
	}
	return backendsFailed(&domain.BackendsFailedError{Model: "", Attempts: []*domain.UpstreamError{e}})
}
