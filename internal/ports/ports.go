// Package ports declares the outbound capabilities the domain consumes. Each
// is small; one backend client may satisfy several, and the domain finds
// which by type assertion.
package ports

import (
	"context"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Sink receives an answer frame by frame. The backend says when a batch of
// frames is complete: frames that arrived together from the upstream go
// out together, and none waits for the network while the sink holds it.
type Sink[T any] interface {
	// Send takes the next frame: in order, one call at a time, on the
	// backend's goroutine. An error stops the backend, which returns it.
	Send(T) error
	// Flush delivers the frames sent so far. A backend calls it before
	// every wait for more upstream input.
	Flush() error
}

// ChatBackend answers chat requests, always as a stream of chunks (a
// buffered answer is assembled from them). req.Model is the backend's own
// name for the model. Errors are *domain.UpstreamError (or
// *domain.InvalidRequestError for a request this backend cannot take)
// unless ctx was cancelled.
type ChatBackend interface {
	Chat(ctx context.Context, req domain.ChatRequest, out Sink[domain.Chunk]) error
}

// ModelLister reports which models a backend serves. A successful call also
// proves the backend reachable, which is how health checks use it.
type ModelLister interface {
	ListModels(ctx context.Context) ([]domain.Model, error)
}

// ResidencyLister reports which models a host holds in memory now
// (Ollama's /api/ps): a request for one of them starts without a load.
type ResidencyLister interface {
	LoadedModels(ctx context.Context) ([]string, error)
}

// TextBackend continues raw prompts (legacy text completions), always as a
// stream of chunks; a buffered answer is assembled from them.
type TextBackend interface {
	Complete(ctx context.Context, req domain.TextRequest, out Sink[domain.TextChunk]) error
}

// Embedder turns inputs into vectors, in input order. An input too long
// for the model is a *domain.InputError (unless req.Truncate).
type Embedder interface {
	Embed(ctx context.Context, req domain.EmbedRequest) (domain.Embeddings, error)
}

// ResponseStore keeps stored Responses API answers. Every replica of the
// service must see the same ones (an embedded store serves one replica,
// Redis several).
type ResponseStore interface {
	// Put stores r under r.ID, replacing what was there; the store drops
	// it at r.ExpiresAt (zero: never).
	Put(ctx context.Context, r domain.StoredResponse) error
	// Get returns the response with id, or domain.ErrResponseNotFound when
	// there is none or it expired.
	Get(ctx context.Context, id string) (domain.StoredResponse, error)
	// Delete removes the response with id, or returns
	// domain.ErrResponseNotFound when there is none.
	Delete(ctx context.Context, id string) error
}
