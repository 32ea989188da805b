package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// apiError is an error ready for the client: a status and OpenAI's body.
type apiError struct {
	Status int
	Body   openai.ErrorBody
}

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
		return apiError{http.StatusBadRequest, openai.NewError(openai.TypeInvalidRequest, inv.Message, inv.Param, "")}
	case errors.As(err, &nf):
		msg := fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", nf.Model)
		return apiError{http.StatusNotFound, openai.NewError(openai.TypeInvalidRequest, msg, "model", "model_not_found")}
	case errors.As(err, &tooBig):
		msg := fmt.Sprintf("The request body is larger than the limit of %d bytes.", tooBig.Limit)
		return apiError{http.StatusRequestEntityTooLarge, openai.NewError(openai.TypeInvalidRequest, msg, "", "request_too_large")}
	case errors.As(err, &failed):
		return backendsFailed(failed)
	case errors.As(err, &up):
		return upstreamError(up)
	}
	return apiError{http.StatusInternalServerError, openai.NewError(openai.TypeServer, "The server had an error while processing your request.", "", "internal_error")}
}

// backendsFailed picks the status for a request every backend failed: 504
// when all timed out, 429 when all were rate limited, 503 when none could be
// reached, else 502. The message names each backend and what went wrong.
func backendsFailed(e *domain.BackendsFailedError) apiError {
	timeouts, limited, unreachable := 0, 0, 0
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = a.Backend + ": " + describe(a)
		switch {
		case a.Kind == domain.FailureTimeout:
			timeouts++
		case a.Kind == domain.FailureStatus && a.Status == http.StatusTooManyRequests:
			limited++
		case a.Kind == domain.FailureUnreachable:
			unreachable++
		}
	}
	n := len(e.Attempts)
	msg := fmt.Sprintf("No backend could serve model `%s`: %s.", e.Model, strings.Join(parts, "; "))
	switch {
	case timeouts == n:
		return apiError{http.StatusGatewayTimeout, openai.NewError(openai.TypeServer, msg, "", "upstream_timeout")}
	case limited == n:
		return apiError{http.StatusTooManyRequests, openai.NewError(openai.TypeRateLimit, msg, "", "rate_limit_exceeded")}
	case unreachable == n:
		return apiError{http.StatusServiceUnavailable, openai.NewError(openai.TypeServer, msg, "", "upstream_unavailable")}
	}
	return apiError{http.StatusBadGateway, openai.NewError(openai.TypeServer, msg, "", "upstream_error")}
}

// describe says what went wrong with one backend without exposing internal
// addresses; the full error is in the logs.
func describe(a *domain.UpstreamError) string {
	switch a.Kind {
	case domain.FailureTimeout:
		return "timed out"
	case domain.FailureUnreachable:
		return "unreachable"
	case domain.FailureProtocol:
		return "sent an answer that could not be read"
	}
	if a.Message != "" {
		return fmt.Sprintf("HTTP %d: %s", a.Status, a.Message)
	}
	return fmt.Sprintf("HTTP %d", a.Status)
}

// upstreamError maps a failure that ended the request without fallback: an
// upstream 4xx is the client's problem and keeps its status and message,
// except the upstream refusing this service's own credentials (502).
func upstreamError(e *domain.UpstreamError) apiError {
	if e.Kind == domain.FailureStatus && e.Status >= 400 && e.Status < 500 &&
		e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden {
		typ := e.Type
		if typ == "" {
			typ = openai.TypeInvalidRequest
		}
		msg := e.Message
		if msg == "" {
			msg = http.StatusText(e.Status)
		}
		return apiError{e.Status, openai.NewError(typ, msg, e.Param, e.Code)}
	}
	msg := fmt.Sprintf("Backend %s failed: %s.", e.Backend, describe(e))
	switch e.Kind {
	case domain.FailureTimeout:
		return apiError{http.StatusGatewayTimeout, openai.NewError(openai.TypeServer, msg, "", "upstream_timeout")}
	case domain.FailureUnreachable:
		return apiError{http.StatusServiceUnavailable, openai.NewError(openai.TypeServer, msg, "", "upstream_unavailable")}
	}
	return apiError{http.StatusBadGateway, openai.NewError(openai.TypeServer, msg, "", "upstream_error")}
}
