package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/mock/gomock"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/breaker"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/catalog"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
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

// recorder is a dispatch.Observer that remembers every attempt.
type recorder struct{ attempts []attempt }

func (r *recorder) Attempted(_ context.Context, route domain.Route, _ time.Duration, err error, next string) {
	r.attempts = append(r.attempts, attempt{Route: route, Failed: err != nil, Fallback: next != ""})
}

type fixture struct {
	gw, ol *MockChatBackend
	gwBr   *breaker.Breaker
	rec    *recorder
	svc    *dispatch.Service
}

func newFixture(t *testing.T, known lists) fixture {
	ctrl := gomock.NewController(t)
	f := fixture{gw: NewMockChatBackend(ctrl), ol: NewMockChatBackend(ctrl), rec: &recorder{},
		gwBr: breaker.New(breaker.Settings{Failures: 5, Cooldown: time.Minute}, nil)}
	cat := catalog.New(map[string]string{"gpt-4": "qwen2.5:32b"},
		[]catalog.Backend{{Name: "gateway", Overrides: map[string]string{"qwen2.5:32b": "qwen-32b"}}, {Name: "ollama"}},
		known, time.Unix(1, 0))
	f.svc = dispatch.New(cat, []dispatch.Backend{{Name: "gateway", Client: f.gw, Breaker: f.gwBr}, {Name: "ollama", Client: f.ol}}, f.rec)
	return f
}

func req(model string) domain.ChatRequest {
	return domain.ChatRequest{Model: model, Messages: []domain.Message{{Role: "user", Content: "hi"}}}
}

func modelIs(name string) gomock.Matcher {
	return gomock.Cond(func(r domain.ChatRequest) bool { return r.Model == name })
}

// answers is a backend's Chat that sends chunks, then returns err.
func answers(err error, chunks ...domain.Chunk) func(context.Context, domain.ChatRequest, ports.Sink[domain.Chunk]) error {
	return func(_ context.Context, _ domain.ChatRequest, out ports.Sink[domain.Chunk]) error {
		for _, c := range chunks {
			if err := out.Send(c); err != nil {
				return err
			}
		}
		if err := out.Flush(); err != nil {
			return err
		}
		return err
	}
}

func text(s string) []domain.Chunk {
	return []domain.Chunk{{Content: s}, {FinishReason: "stop", Usage: &domain.Usage{PromptTokens: 3, CompletionTokens: 1}}}
}

func TestChatServedByFirstBackendWithItsModelName(t *testing.T) {
	f := newFixture(t, lists{})
	f.gw.EXPECT().Chat(gomock.Any(), modelIs("qwen-32b"), gomock.Any()).DoAndReturn(answers(nil, text("hi")...)).Times(1)
	// f.ol has no expectation: any call to it fails the test.
	out, route, err := f.svc.Chat(context.Background(), req("gpt-4"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(domain.Route{Backend: "gateway", Model: "qwen-32b"}, route); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}
	content := "hi"
	want := domain.Completion{Choices: []domain.Choice{{Content: &content, FinishReason: "stop"}}, Usage: &domain.Usage{PromptTokens: 3, CompletionTokens: 1}}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("assembled completion (-want +got):\n%s", diff)
	}
}

func TestChatFallsBackOnRetryableFailures(t *testing.T) {
	for _, kind := range []domain.FailureKind{
		domain.FailureUnreachable, domain.FailureTimeout, domain.FailureServer, domain.FailureRateLimited,
		domain.FailureModelMissing, domain.FailureProtocol, domain.FailureUnauthorized, domain.FailureMisrouted,
		domain.FailureBadOutput,
	} {
		t.Run(kind.String(), func(t *testing.T) {
			f := newFixture(t, lists{})
			f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(&domain.UpstreamError{Backend: "gateway", Kind: kind}).Times(1)
			f.ol.EXPECT().Chat(gomock.Any(), modelIs("qwen2.5:32b"), gomock.Any()).DoAndReturn(answers(nil, text("from ollama")...)).Times(1)
			out, route, err := f.svc.Chat(context.Background(), req("gpt-4"))
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

// TestBufferedChatFallsBackEvenAfterFrames: a buffered answer reaches the
// client only whole, so a backend that breaks halfway may still be replaced,
// and its pieces are dropped.
func TestBufferedChatFallsBackEvenAfterFrames(t *testing.T) {
	f := newFixture(t, lists{})
	broken := &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureProtocol}
	f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(broken, domain.Chunk{Content: "half an ans"}))
	f.ol.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(nil, text("whole")...))
	out, _, err := f.svc.Chat(context.Background(), req("gpt-4"))
	if err != nil || out.Choices[0].Text() != "whole" {
		t.Fatalf("%q %v: want only the second backend's answer", out.Choices[0].Text(), err)
	}
}

func TestChatDoesNotFallBackOnARejectedRequest(t *testing.T) {
	f := newFixture(t, lists{})
	bad := &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureRejected, Message: "bad tools"}
	f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(bad).Times(1)
	_, _, err := f.svc.Chat(context.Background(), req("gpt-4"))
	if !errors.Is(err, bad) {
		t.Fatalf("got %v, want the upstream's rejection", err)
	}
}

func TestChatDoesNotFallBackWhenTheClientLeft(t *testing.T) {
	f := newFixture(t, lists{})
	ctx, cancel := context.WithCancel(context.Background())
	f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(func(context.Context, domain.ChatRequest, ports.Sink[domain.Chunk]) error {
		cancel()
		return context.Canceled
	}).Times(1)
	_, _, err := f.svc.Chat(ctx, req("gpt-4"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestChatAllBackendsFailed(t *testing.T) {
	f := newFixture(t, lists{})
	e1 := &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureUnreachable}
	e2 := &domain.UpstreamError{Backend: "ollama", Kind: domain.FailureServer, Message: "out of memory"}
	f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(e1)
	f.ol.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(e2)
	_, _, err := f.svc.Chat(context.Background(), req("gpt-4"))
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
		_, _, err := f.svc.Chat(context.Background(), req("gpt-4"))
		if !errors.Is(err, domain.ErrModelNotFound) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("every backend says it lacks the model", func(t *testing.T) {
		f := newFixture(t, lists{})
		missing := &domain.UpstreamError{Kind: domain.FailureModelMissing}
		f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(missing)
		f.ol.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(missing)
		_, _, err := f.svc.Chat(context.Background(), req("nope"))
		var nf *domain.ModelNotFoundError
		if !errors.As(err, &nf) || nf.Model != "nope" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a wrong URL is not a missing model", func(t *testing.T) {
		f := newFixture(t, lists{})
		f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(&domain.UpstreamError{Kind: domain.FailureMisrouted})
		f.ol.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(&domain.UpstreamError{Kind: domain.FailureModelMissing})
		_, _, err := f.svc.Chat(context.Background(), req("nope"))
		if errors.Is(err, domain.ErrModelNotFound) {
			t.Fatalf("got %v: a backend with a wrong URL may have the model", err)
		}
	})
	t.Run("only the backend that lists it is tried", func(t *testing.T) {
		f := newFixture(t, lists{"gateway": {"llama3"}, "ollama": {"qwen2.5:7b"}})
		f.ol.EXPECT().Chat(gomock.Any(), modelIs("qwen2.5:7b"), gomock.Any()).DoAndReturn(answers(nil, text("x")...))
		if _, _, err := f.svc.Chat(context.Background(), req("qwen2.5:7b")); err != nil {
			t.Fatal(err)
		}
	})
}

// out is a dispatch.Out that records what reached it.
type out struct {
	begun  []domain.Route
	chunks []domain.Chunk
	err    error
}

func (o *out) Begin(r domain.Route) { o.begun = append(o.begun, r) }
func (o *out) Send(c domain.Chunk) error {
	o.chunks = append(o.chunks, c)
	return o.err
}
func (o *out) Flush() error { return nil }

func TestStreamFallsBackOnlyBeforeTheFirstChunk(t *testing.T) {
	broken := &domain.UpstreamError{Backend: "gateway", Kind: domain.FailureUnreachable}

	t.Run("before", func(t *testing.T) {
		f := newFixture(t, lists{})
		f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(broken)
		f.ol.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(nil, text("a")...))
		o := &out{}
		route, err := f.svc.StreamChat(context.Background(), new(req("gpt-4")), o)
		if err != nil || route.Backend != "ollama" || len(o.chunks) != 2 || len(o.begun) != 1 || o.begun[0].Backend != "ollama" {
			t.Fatalf("route %+v err %v begun %v chunks %v", route, err, o.begun, o.chunks)
		}
	})
	t.Run("after", func(t *testing.T) {
		f := newFixture(t, lists{})
		f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(broken, domain.Chunk{Content: "partial"}))
		// f.ol has no expectation: falling back after a chunk went out fails the test.
		o := &out{}
		_, err := f.svc.StreamChat(context.Background(), new(req("gpt-4")), o)
		if !errors.Is(err, broken) || len(o.chunks) != 1 {
			t.Fatalf("err %v after %d chunks", err, len(o.chunks))
		}
	})
	t.Run("a sink error ends the stream", func(t *testing.T) {
		f := newFixture(t, lists{})
		gone := errors.New("client write failed")
		f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(nil, text("a")...))
		_, err := f.svc.StreamChat(context.Background(), new(req("gpt-4")), &out{err: gone})
		if !errors.Is(err, gone) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestBreakerCountsOnlyUnhealthyFailures: what a client's request can make
// a backend answer never opens its breaker; what shows the backend cannot
// serve does, after five in a row.
func TestBreakerCountsOnlyUnhealthyFailures(t *testing.T) {
	benign := []error{
		&domain.UpstreamError{Backend: "gateway", Kind: domain.FailureRejected},
		&domain.UpstreamError{Backend: "gateway", Kind: domain.FailureModelMissing},
		&domain.UpstreamError{Backend: "gateway", Kind: domain.FailureBadOutput},
		&domain.UpstreamError{Backend: "gateway", Kind: domain.FailureRateLimited},
		&domain.UpstreamError{Backend: "gateway", Kind: domain.FailureTimeout, Err: domain.ErrTotalTimeout},
		domain.Invalid("messages[0].content", "bad image"),
	}
	f := newFixture(t, lists{})
	f.ol.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(nil, text("x")...)).AnyTimes()
	for range 10 {
		for _, e := range benign {
			f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(e)
			_, _, _ = f.svc.Chat(context.Background(), req("gpt-4"))
		}
	}
	if s := f.gwBr.State(); s != breaker.Closed {
		t.Fatalf("breaker %v after 60 benign failures, want closed", s)
	}
	for _, kind := range []domain.FailureKind{domain.FailureUnreachable, domain.FailureServer, domain.FailureProtocol,
		domain.FailureUnauthorized, domain.FailureMisrouted} {
		f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(&domain.UpstreamError{Backend: "gateway", Kind: kind})
		_, _, _ = f.svc.Chat(context.Background(), req("gpt-4"))
	}
	if s := f.gwBr.State(); s != breaker.Open {
		t.Fatalf("breaker %v after 5 unhealthy failures in a row, want open", s)
	}
}
