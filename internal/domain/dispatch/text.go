package dispatch

import (
	"context"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// StreamText continues a text completion request chunk by chunk into out.
func (s *Service) StreamText(ctx context.Context, req domain.TextRequest, out Out[domain.TextChunk]) (domain.Route, error) {
	return RunKeyed(ctx, s, req.Model, textKey(&req), func(ctx context.Context, b ports.TextBackend, route domain.Route) (bool, error) {
		r := req
		r.Requested, r.Model = req.Model, route.Model
		sink := &begun[domain.TextChunk]{out: out, route: route}
		err := b.Complete(ctx, r, sink)
		return sink.started, err
	})
}

// Text answers a text completion request whole, assembled from the
// backend's stream (see Chat).
func (s *Service) Text(ctx context.Context, req domain.TextRequest) (domain.TextCompletion, domain.Route, error) {
	var asm textAssembler
	route, err := RunKeyed(ctx, s, req.Model, textKey(&req), func(ctx context.Context, b ports.TextBackend, route domain.Route) (bool, error) {
		asm = textAssembler{}
		r := req
		r.Requested, r.Model = req.Model, route.Model
		return false, b.Complete(ctx, r, &asm)
	})
	if err != nil {
		return domain.TextCompletion{}, route, err
	}
	return asm.Completion(len(req.Prompts) * max(req.N, 1)), route, nil
}

type textAssembler struct{ domain.TextAssembler }

func (a *textAssembler) Send(c domain.TextChunk) error { a.Add(c); return nil }
func (a *textAssembler) Flush() error                  { return nil }
