package dispatch

import (
	"context"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Out receives a streamed answer on its way to the client: Begin once,
// naming who serves it, before the first frame.
type Out[T any] interface {
	ports.Sink[T]
	Begin(domain.Route)
}

// begun passes an attempt's frames to out, beginning it on the first: from
// then on something reached the client and the request cannot fall back.
type begun[T any] struct {
	out     Out[T]
	route   domain.Route
	started bool
}

func (b *begun[T]) Send(f T) error {
	if !b.started {
		b.started = true
		b.out.Begin(b.route)
	}
	return b.out.Send(f)
}

func (b *begun[T]) Flush() error {
	if !b.started {
		return nil
	}
	return b.out.Flush()
}

// StreamChat answers a chat request chunk by chunk into out.
// req goes by pointer and is not changed (each attempt works on its own
// copy): a stream's goroutine waits below this call for the whole answer.
func (s *Service) StreamChat(ctx context.Context, req *domain.ChatRequest, out Out[domain.Chunk]) (domain.Route, error) {
	return RunKeyed(ctx, s, req.Model, chatKey(req), func(ctx context.Context, b ports.ChatBackend, route domain.Route) (bool, error) {
		return attemptChat(ctx, b, req, route, out)
	})
}

// attemptChat is one attempt of StreamChat.
func attemptChat(ctx context.Context, b ports.ChatBackend, req *domain.ChatRequest, route domain.Route, out Out[domain.Chunk]) (bool, error) {
	r := *req
	r.Model = route.Model
	sink := &begun[domain.Chunk]{out: out, route: route}
	err := b.Chat(ctx, r, sink)
	return sink.started, err
}

// Chat answers a chat request whole. The backend streams it all the same
// and the chunks are assembled here: time limits bound the wait for the
// first token and the gaps between tokens, never the answer's length, and
// since nothing reaches the client before the end, any failure on the way
// may still fall back.
func (s *Service) Chat(ctx context.Context, req domain.ChatRequest) (domain.Completion, domain.Route, error) {
	var asm assembler
	route, err := RunKeyed(ctx, s, req.Model, chatKey(&req), func(ctx context.Context, b ports.ChatBackend, route domain.Route) (bool, error) {
		asm = assembler{} // a failed attempt's pieces are dropped
		r := req
		r.Model = route.Model
		return false, b.Chat(ctx, r, &asm)
	})
	if err != nil {
		return domain.Completion{}, route, err
	}
	return asm.Completion(), route, nil
}

// assembler is the sink of a buffered chat.
type assembler struct{ domain.Assembler }

func (a *assembler) Send(c domain.Chunk) error { a.Add(c); return nil }
func (a *assembler) Flush() error              { return nil }
