package completion_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/mock/gomock"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/catalog"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/completion"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// lists is a catalog.ModelSource with fixed answers; a backend missing from
// the map has no known list yet.
type lists map[string][]string

func (l lists) Models(backend string) ([]domain.Model, bool) {
	names, ok := l[backend]
	if !ok {
		return nil, false
	}
	out := make([]domain.Model, len(names))
	for i, n := range names {
		out[i] = domain.Model{ID: n}
	}
	return out, true
}

type attempt struct {
	Route    domain.Route
	Failed   bool
	Fallback bool
}

// recorder is a completion.Observer that remembers every attempt.
type recorder struct{ attempts []attempt }

func (r *recorder) Attempted(_ context.Context, route domain.Route, _ time.Duration, err error, next string) {
	r.attempts = append(r.attempts, attempt{Route: route, Failed: err != nil, Fallback: next != ""})
}

type fixture struct {
	gw, ol *MockChatBackend
	rec    *recorder
	svc    *completion.Service
}

func newFixture(t *testing.T, known lists) fixture {
	ctrl := gomock.NewController(t)
	f := fixture{gw: NewMockChatBackend(ctrl), ol: NewMockChatBackend(ctrl), rec: &recorder{}}
	cat := catalog.New(map[string]string{"gpt-4": "qwen2.5:32b"},
		[]catalog.Backend{{Name: "gateway", Overrides: map[string]string{"qwen2.5:32b": "qwen-32b"}}, {Name: "ollama"}},
		known, time.Unix(1, 0))
	f.svc = completion.NewService(cat, []completion.Backend{{Name: "gateway", Chat: f.gw}, {Name: "ollama", Chat: f.ol}}, f.rec)
	return f
}

func req(model string) domain.ChatRequest {
	return domain.ChatRequest{Model: model, Messages: []domain.Message{{Role: "user", Content: "hi"}}}
}

func modelIs(name string) gomock.Matcher {
	return gomock.Cond(func(r domain.ChatRequest) bool { return r.Model == name })
}

func TestCompleteServedByFirstBackendWithItsModelName(t *testing.T) {
	f := newFixture(t, lists{})
	f.gw.EXPECT().Complete(gomock.Any(), modelIs("qwen-32b")).Return(completionOf("hi"), nil).Times(1)
	// f.ol has no expectation: any call to it fails the test.
	out, route, err := f.svc.Complete(context.Background(), req("gpt-4"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(domain.Route{Backend: "gateway", Model: "qwen-32b"}, route); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}
	if out.Choices[0].Text() != "hi" {
		t.Errorf("content %q", out.Choices[0].Text())
	}
}

func TestCompleteFallsBackOnRetryableFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"unreachable", &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureUnreachable}},
		{"timeout", &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureTimeout}},
		{"500", &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureStatus, Status: 500}},
		{"503", &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureStatus, Status: 503}},
		{"429", &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureStatus, Status: 429}},
		{"model missing", &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureStatus, Status: 404}},
		{"unreadable", &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureProtocol}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, lists{})
			f.gw.EXPECT().Complete(gomock.Any(), gomock.Any()).Return(domain.Completion{}, tc.err).Times(1)
			f.ol.EXPECT().Complete(gomock.Any(), modelIs("qwen2.5:32b")).Return(completionOf("from ollama"), nil).Times(1)
			out, route, err := f.svc.Complete(context.Background(), req("gpt-4"))
			if err != nil {
				t.Fatal(err)
			}
			if route.Backend != "ollama" || out.Choices[0].Text() != "from ollama" {
				t.Errorf("served by %+v: %q", route, out.Choices[0].Text())
			}
			want := []attempt{
				{Route: domain.Route{Backend: "gateway", Model: "qwen-32b"}, Failed: true, Fallback: true},
				{Route: domain.Route{Backend: "ollama", Model: "qwen2.5:32b"}},
			}
			if diff := cmp.Diff(want, f.rec.attempts); diff != "" {
				t.Errorf("attempts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompleteDoesNotFallBackOnClientErrors(t *testing.T) {
	f := newFixture(t, lists{})
	bad := &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureStatus, Status: 400, Message: "bad tools"}
	f.gw.EXPECT().Complete(gomock.Any(), gomock.Any()).Return(domain.Completion{}, bad).Times(1)
	_, _, err := f.svc.Complete(context.Background(), req("gpt-4"))
	if !errors.Is(err, bad) {
		t.Fatalf("got %v, want the upstream 400", err)
	}
}

func TestCompleteDoesNotFallBackWhenTheClientLeft(t *testing.T) {
	f := newFixture(t, lists{})
	ctx, cancel := context.WithCancel(context.Background())
	f.gw.EXPECT().Complete(gomock.Any(), gomock.Any()).DoAndReturn(func(context.Context, domain.ChatRequest) (domain.Completion, error) {
		cancel()
		return domain.Completion{}, context.Canceled
	}).Times(1)
	_, _, err := f.svc.Complete(ctx, req("gpt-4"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestCompleteAllBackendsFailed(t *testing.T) {
	f := newFixture(t, lists{})
	e1 := &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureUnreachable}
	e2 := &domain.UpstreamError{Backend: "ollama", Kind: domain.FailureStatus, Status: 500, Message: "out of memory"}
	f.gw.EXPECT().Complete(gomock.Any(), gomock.Any()).Return(domain.Completion{}, e1)
	f.ol.EXPECT().Complete(gomock.Any(), gomock.Any()).Return(domain.Completion{}, e2)
	_, _, err := f.svc.Complete(context.Background(), req("gpt-4"))
	var failed *domain.BackendsFailedError
	if !errors.As(err, &failed) {
		t.Fatalf("got %T %v", err, err)
	}
	if diff := cmp.Diff([]*domain.UpstreamError{e1, e2}, failed.Attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	if got := f.rec.attempts[1].Fallback; got {
		t.Error("the last attempt cannot fall back")
	}
}

func TestModelNotFound(t *testing.T) {
	t.Run("no backend lists it", func(t *testing.T) {
		f := newFixture(t, lists{"gateway": {"llama3"}, "ollama": {"qwen2.5:7b"}})
		_, _, err := f.svc.Complete(context.Background(), req("gpt-4"))
		if !errors.Is(err, domain.ErrModelNotFound) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("every backend answers 404", func(t *testing.T) {
		f := newFixture(t, lists{})
		missing := &domain.UpstreamError{Kind: domain.FailureStatus, Status: 404}
		f.gw.EXPECT().Complete(gomock.Any(), gomock.Any()).Return(domain.Completion{}, missing)
		f.ol.EXPECT().Complete(gomock.Any(), gomock.Any()).Return(domain.Completion{}, missing)
		_, _, err := f.svc.Complete(context.Background(), req("nope"))
		var nf *domain.ModelNotFoundError
		if !errors.As(err, &nf) || nf.Model != "nope" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("only the backend that lists it is tried", func(t *testing.T) {
		f := newFixture(t, lists{"gateway": {"llama3"}, "ollama": {"qwen2.5:7b"}})
		f.ol.EXPECT().Complete(gomock.Any(), modelIs("qwen2.5:7b")).Return(domain.Completion{}, nil)
		if _, _, err := f.svc.Complete(context.Background(), req("qwen2.5:7b")); err != nil {
			t.Fatal(err)
		}
	})
}

func streamOf(chunks ...domain.Chunk) func(context.Context, domain.ChatRequest, ports.ChunkFunc) error {
	return func(_ context.Context, _ domain.ChatRequest, fn ports.ChunkFunc) error {
		for _, c := range chunks {
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestStreamFallsBackOnlyBeforeTheFirstChunk(t *testing.T) {
	broken := &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureUnreachable}

	t.Run("before", func(t *testing.T) {
		f := newFixture(t, lists{})
		f.gw.EXPECT().Stream(gomock.Any(), gomock.Any(), gomock.Any()).Return(broken)
		f.ol.EXPECT().Stream(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(streamOf(domain.Chunk{Content: "a"}, domain.Chunk{FinishReason: "stop"}))
		var got []domain.Route
		route, err := f.svc.Stream(context.Background(), req("gpt-4"), func(r domain.Route, _ domain.Chunk) error {
			got = append(got, r)
			return nil
		})
		if err != nil || route.Backend != "ollama" || len(got) != 2 || got[0].Backend != "ollama" {
			t.Fatalf("route %+v err %v chunks %v", route, err, got)
		}
	})
	t.Run("after", func(t *testing.T) {
		f := newFixture(t, lists{})
		f.gw.EXPECT().Stream(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(
			func(ctx context.Context, r domain.ChatRequest, fn ports.ChunkFunc) error {
				if err := fn(domain.Chunk{Content: "partial"}); err != nil {
					return err
				}
				return broken
			})
		// f.ol has no expectation: falling back after a chunk went out fails the test.
		n := 0
		_, err := f.svc.Stream(context.Background(), req("gpt-4"), func(domain.Route, domain.Chunk) error { n++; return nil })
		if !errors.Is(err, broken) || n != 1 {
			t.Fatalf("err %v after %d chunks", err, n)
		}
	})
	t.Run("emit error ends the stream", func(t *testing.T) {
		f := newFixture(t, lists{})
		gone := errors.New("client write failed")
		f.gw.EXPECT().Stream(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(streamOf(domain.Chunk{Content: "a"}, domain.Chunk{Content: "b"}))
		_, err := f.svc.Stream(context.Background(), req("gpt-4"), func(domain.Route, domain.Chunk) error { return gone })
		if !errors.Is(err, gone) {
			t.Fatalf("got %v", err)
		}
	})
}

func completionOf(text string) domain.Completion {
	return domain.Completion{Choices: []domain.Choice{{Content: &text}}}
}
