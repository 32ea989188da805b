package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Embed turns a request's inputs into vectors. Inputs go to the backend in
// batches of at most the configured size, one after the other; the vectors
// keep the inputs' order and the usage adds the batches up (it is nil if
// any batch reported none). A backend that fails a batch fails the attempt:
// nothing reached the client, so the next backend is tried with the whole
// request.
func (s *Service) Embed(ctx context.Context, req domain.EmbedRequest) (domain.Embeddings, domain.Route, error) {
	var out domain.Embeddings
	route, err := Run(ctx, s, req.Model, func(ctx context.Context, b ports.Embedder, route domain.Route) (bool, error) {
		out = domain.Embeddings{Vectors: make([][]float32, 0, len(req.Inputs)), Usage: &domain.Usage{}}
		for start := 0; start < len(req.Inputs); start += s.embedBatch {
			r := req
			r.Requested, r.Model = req.Model, route.Model
			r.Inputs = req.Inputs[start:min(start+s.embedBatch, len(req.Inputs))]
			got, err := b.Embed(ctx, r)
			if err != nil {
				return false, rebase(err, start)
			}
			if len(got.Vectors) != len(r.Inputs) {
				return false, &domain.UpstreamError{Backend: route.Backend, Kind: domain.FailureProtocol,
					Message: fmt.Sprintf("%d embeddings for %d inputs", len(got.Vectors), len(r.Inputs))}
			}
			out.Vectors = append(out.Vectors, got.Vectors...)
			if got.Usage == nil || out.Usage == nil {
				out.Usage = nil
			} else {
				out.Usage.PromptTokens += got.Usage.PromptTokens
			}
		}
		return false, nil
	})
	if err != nil {
		return domain.Embeddings{}, route, err
	}
	return out, route, nil
}

// rebase turns a batch's input failure into the client's error, naming the
// input by its position in the whole request.
func rebase(err error, offset int) error {
	var ie *domain.InputError
	if !errors.As(err, &ie) {
		return err
	}
	param := fmt.Sprintf("input[%d]", offset+ie.Index)
	return domain.Invalid(param, "Invalid '%s': %s", param, ie.Message)
}
