package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// textFrames is a sink of text chunks that keeps them, and how many had
// come at each flush.
type textFrames struct {
	mu      sync.Mutex
	Chunks  []domain.TextChunk
	Flushes []int
}

func (f *textFrames) Send(c domain.TextChunk) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Chunks = append(f.Chunks, c)
	return nil
}

func (f *textFrames) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Flushes = append(f.Flushes, len(f.Chunks))
	return nil
}

func textRequest(model, body string, prompts, n int) domain.TextRequest {
	req := domain.TextRequest{Model: model, Requested: "alias", N: n, Passthrough: wire.CompletionBody(body)}
	for range prompts {
		req.Prompts = append(req.Prompts, domain.Input{Text: "p"})
	}
	return req
}

// TestCompleteForwardsTheBody: the client's body reaches the upstream with
// the upstream's model name, asked as a stream with usage; every other
// member is as the client wrote it, byte for byte.
func TestCompleteForwardsTheBody(t *testing.T) {
	srv := gatewaytest.New("gpt-3.5-turbo-instruct:up")
	t.Cleanup(srv.Close)
	body := `{"model":"instruct","prompt":["Say \"hi\"","é"],"n":2,"stream":false,"stream_options":{"include_usage":false},` +
		`"echo":false,"suffix":null,"logprobs":null,"logit_bias":{"50256":-100},"best_of":2,"stop":["\n"],"x-vendor":{"a":[1,{"b":null}]}}`
	ctx := domain.WithRequestID(context.Background(), "req-7")
	if err := newClient(srv, "sk-gw").Complete(ctx, textRequest("gpt-3.5-turbo-instruct:up", body, 2, 2), &textFrames{}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.RequestsTo(gatewaytest.PathCompletions)
	if len(reqs) != 1 || len(srv.Requests()) != 0 {
		t.Fatalf("%d completion requests and %d chat requests, want 1 and 0", len(reqs), len(srv.Requests()))
	}
	want := `{"prompt":["Say \"hi\"","é"],"n":2,"echo":false,"suffix":null,"logprobs":null,"logit_bias":{"50256":-100},"best_of":2,` +
		`"stop":["\n"],"x-vendor":{"a":[1,{"b":null}]},"model":"gpt-3.5-turbo-instruct:up","stream":true,"stream_options":{"include_usage":true}}`
	if got := string(reqs[0].Body); got != want {
		t.Errorf("upstream body\n got %s\nwant %s", got, want)
	}
	for k, v := range map[string]string{"Authorization": "Bearer sk-gw", "X-Agent-Id": "agent-7", "X-Request-Id": "req-7", "Content-Type": "application/json"} {
		if got := reqs[0].Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// TestCompleteStreamsEveryChoice: two prompts with n=2 are four choices,
// p*n+k, interleaved as the upstream sends them; each ends with its
// finish_reason, and the usage comes last on a chunk of its own.
func TestCompleteStreamsEveryChoice(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	srv.Pieces, srv.FinishReason = []string{"Once", " upon"}, "length"
	body := `{"model":"m","prompt":["a","b"],"n":2,"max_tokens":2}`
	f := &textFrames{}
	if err := newClient(srv, "").Complete(context.Background(), textRequest("m", body, 2, 2), f); err != nil {
		t.Fatal(err)
	}
	var want []domain.TextChunk
	for _, piece := range []string{"Once", " upon"} {
		for i := range 4 {
			want = append(want, domain.TextChunk{Index: i, Text: piece})
		}
	}
	for i := range 4 {
		want = append(want, domain.TextChunk{Index: i, FinishReason: "length"})
	}
	want = append(want, domain.TextChunk{Usage: &domain.Usage{PromptTokens: 12, CompletionTokens: 5}})
	if diff := cmp.Diff(want, f.Chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	var asm domain.TextAssembler
	for _, c := range f.Chunks {
		asm.Add(c)
	}
	got := asm.Completion(4)
	for i, ch := range got.Choices {
		if ch.Index != i || ch.Text != "Once upon" || ch.FinishReason != "length" {
			t.Errorf("choice %d: %+v", i, ch)
		}
	}
	if len(got.Choices) != 4 || got.Usage == nil || *got.Usage != (domain.Usage{PromptTokens: 12, CompletionTokens: 5}) {
		t.Errorf("%d choices, usage %+v", len(got.Choices), got.Usage)
	}
	if len(f.Flushes) == 0 {
		t.Error("the frames were never flushed")
	}
}

// TestCompleteLogprobs: the legacy parallel lists become one TokenLogprob
// per token, with its bytes and its alternatives most likely first; the
// first token of an echoed prompt has no log probability (0) and no
// alternatives.
func TestCompleteLogprobs(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"Hello", " wörld"}
	body := `{"model":"m","prompt":"Say hi","echo":true,"logprobs":2}`
	f := &textFrames{}
	if err := newClient(srv, "").Complete(context.Background(), textRequest("m", body, 1, 1), f); err != nil {
		t.Fatal(err)
	}
	tok := func(s string, lp float64, alt string) domain.TokenLogprob {
		return domain.TokenLogprob{Token: s, Logprob: lp, Bytes: []byte(s), Top: []domain.TopLogprob{
			{Token: s, Logprob: lp, Bytes: []byte(s)}, {Token: alt, Logprob: lp - 0.75, Bytes: []byte(alt)}}}
	}
	want := []domain.TextChunk{
		{Text: "Say hi", Logprobs: []domain.TokenLogprob{{Token: "Say", Bytes: []byte("Say")}, tok(" hi", -0.25, " the")}},
		{Text: "Hello", Logprobs: []domain.TokenLogprob{tok("Hello", -0.4375, " the")}},
		{Text: " wörld", Logprobs: []domain.TokenLogprob{tok(" wörld", -0.125, " the")}},
		{FinishReason: "stop"},
		{Usage: &domain.Usage{PromptTokens: 12, CompletionTokens: 5}},
	}
	if diff := cmp.Diff(want, f.Chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
}

func TestCompleteRefusesAnotherBody(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	req := textRequest("m", "", 1, 1)
	req.Passthrough = wire.ChatBody(`{"model":"m","messages":[]}`)
	var ie *domain.InvalidRequestError
	if err := newClient(srv, "").Complete(context.Background(), req, &textFrames{}); !errors.As(err, &ie) {
		t.Errorf("error %v (%T), want *domain.InvalidRequestError", err, err)
	}
	if n := len(srv.RequestsTo(gatewaytest.PathCompletions)); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// failureCase is a behaviour of the fake and the failure it must be
// classified as, as for chat (see backendtest).
type failureCase struct {
	name      string
	set       func(*gatewaytest.Server)
	wrongPath bool
	limits    upstream.Timeouts
	kind      domain.FailureKind
	frames    bool // chunks arrived before the failure (streams only)
}

func failureCases() []failureCase {
	words := []string{"one ", "two ", "three"}
	status := func(code int) func(*gatewaytest.Server) {
		return func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = code, "told to fail" }
	}
	return []failureCase{
		{name: "401", set: status(http.StatusUnauthorized), kind: domain.FailureUnauthorized},
		{name: "400", set: status(http.StatusBadRequest), kind: domain.FailureRejected},
		{name: "429", set: status(http.StatusTooManyRequests), kind: domain.FailureRateLimited},
		{name: "500", set: status(http.StatusInternalServerError), kind: domain.FailureServer},
		{name: "model missing", set: func(s *gatewaytest.Server) { s.Models = []string{"another-model"} }, kind: domain.FailureModelMissing},
		{name: "wrong base path", wrongPath: true, kind: domain.FailureMisrouted},
		{name: "garbage", set: func(s *gatewaytest.Server) { s.Garbage = true }, kind: domain.FailureProtocol},
		{name: "broken mid-answer", set: func(s *gatewaytest.Server) { s.Pieces, s.BreakAfter = words, 2 }, kind: domain.FailureProtocol, frames: true},
		{name: "silent past the first-byte timeout", set: func(s *gatewaytest.Server) { s.Hang = true },
			limits: upstream.Timeouts{FirstByte: 200 * time.Millisecond}, kind: domain.FailureTimeout},
	}
}

// start runs the fake acting out tc and returns a client pointed at it.
func (tc failureCase) start(t *testing.T, model string) *gateway.Client {
	srv := gatewaytest.New(model)
	t.Cleanup(srv.Close)
	if tc.set != nil {
		srv.Set(tc.set)
	}
	base := srv.URL + "/v1"
	if tc.wrongPath {
		base = srv.URL + "/api"
	}
	u, _ := url.Parse(base)
	limits := tc.limits
	if limits == (upstream.Timeouts{}) {
		limits = upstream.Timeouts{FirstByte: 5 * time.Second}
	}
	return gateway.New(upstream.Options{Name: "gateway", BaseURL: u, Timeouts: limits})
}

func checkFailure(t *testing.T, err error, kind domain.FailureKind) {
	t.Helper()
	var ue *domain.UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T), want *domain.UpstreamError", err, err)
	}
	if ue.Kind != kind || ue.Backend != "gateway" {
		t.Errorf("%v: kind %v backend %q, want kind %v of the gateway", err, ue.Kind, ue.Backend, kind)
	}
}

// TestCompleteFailures: text completions fail as chat does.
func TestCompleteFailures(t *testing.T) {
	for _, tc := range append(failureCases(), failureCase{name: "stalls past the idle timeout",
		set:    func(s *gatewaytest.Server) { s.Pieces, s.PieceDelay = []string{"a", "b"}, time.Second },
		limits: upstream.Timeouts{FirstByte: time.Second, Idle: 200 * time.Millisecond}, kind: domain.FailureTimeout, frames: true}) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &textFrames{}
			err := tc.start(t, "m").Complete(context.Background(), textRequest("m", `{"model":"m","prompt":"p"}`, 1, 1), f)
			checkFailure(t, err, tc.kind)
			if got := len(f.Chunks) > 0; got != tc.frames {
				t.Errorf("chunks before the failure: %v, want %v", got, tc.frames)
			}
		})
	}
}
