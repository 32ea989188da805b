// Package ports declares the outbound capabilities the domain consumes. Each
// is small; one backend client may satisfy several.
package ports

import (
	"context"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// ChunkFunc receives stream chunks in order, on the caller's goroutine.
// Returning an error stops the stream.
type ChunkFunc func(domain.Chunk) error

// ChatBackend answers chat requests. req.Model is the backend's own name for
// the model. Errors are *domain.UpstreamError unless ctx was cancelled.
type ChatBackend interface {
	Complete(ctx context.Context, req domain.ChatRequest) (domain.Completion, error)
	Stream(ctx context.Context, req domain.ChatRequest, fn ChunkFunc) error
}

// ModelLister reports which models a backend serves. A successful call also
// proves the backend reachable, which is how health checks use it.
type ModelLister interface {
	ListModels(ctx context.Context) ([]domain.Model, error)
}
