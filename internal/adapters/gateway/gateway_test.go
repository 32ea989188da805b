package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

func TestRewriteBody(t *testing.T) {
	raw := []byte(`{"model":"gpt-4","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true},"logit_bias":{"50256":-100},"foo":{"bar":[1,2]},"temperature":null}`)
	for _, tc := range []struct {
		stream bool
		want   string
	}{
		{false, `{"model":"qwen2.5:32b","messages":[{"role":"user","content":"hi"}],"logit_bias":{"50256":-100},"foo":{"bar":[1,2]},"temperature":null}`},
		{true, `{"model":"qwen2.5:32b","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true},"logit_bias":{"50256":-100},"foo":{"bar":[1,2]},"temperature":null}`},
	} {
		got, err := gateway.RewriteBody(raw, "qwen2.5:32b", tc.stream)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("stream=%v:\n got %s\nwant %s", tc.stream, got, tc.want)
		}
	}
}

func newClient(srv *gatewaytest.Server, key string, timeout time.Duration) *gateway.Client {
	u, _ := url.Parse(srv.URL + "/v1")
	return gateway.New(upstream.Options{Name: "gateway", BaseURL: u, AgentID: "agent-7", APIKey: key, Timeouts: upstream.Timeouts{FirstByte: timeout}})
}

func chat(model string, stream bool) domain.ChatRequest {
	raw, _ := json.Marshal(map[string]any{"model": "alias", "stream": stream, "messages": []map[string]string{{"role": "user", "content": "hi"}}})
	return domain.ChatRequest{Model: model, Stream: stream, Messages: []domain.Message{{Role: "user", Content: "hi"}}, Raw: raw}
}

func TestComplete(t *testing.T) {
	srv := gatewaytest.New("qwen2.5:32b")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"Hi", " you"}
	ctx := domain.WithRequestID(context.Background(), "req-42")
	got, err := newClient(srv, "sk-gw", time.Second).Complete(ctx, chat("qwen2.5:32b", false))
	if err != nil {
		t.Fatal(err)
	}
	content := "Hi you"
	want := domain.Completion{Choices: []domain.Choice{{Content: &content, FinishReason: "stop"}}, Usage: &domain.Usage{PromptTokens: 12, CompletionTokens: 5}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	h := srv.Requests()[0].Header
	for k, v := range map[string]string{"Authorization": "Bearer sk-gw", "X-Agent-Id": "agent-7", "X-Request-Id": "req-42", "Content-Type": "application/json"} {
		if h.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
		}
	}
}

func TestStreamWithUsageAfterFinish(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"a", "b"}
	req := chat("m", true)
	req.Raw = []byte(`{"model":"x","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	var got []domain.Chunk
	err := newClient(srv, "", time.Second).Stream(context.Background(), req, func(c domain.Chunk) error {
		got = append(got, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Chunk{{}, {Content: "a"}, {Content: "b"}, {FinishReason: "stop"}, {Usage: &domain.Usage{PromptTokens: 12, CompletionTokens: 5}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if h := srv.Requests()[0].Header.Get("Authorization"); h != "" {
		t.Errorf("no key configured, but Authorization %q was sent", h)
	}
}

func TestFailures(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	c := newClient(srv, "", 200*time.Millisecond)
	var ue *domain.UpstreamError

	_, err := c.Complete(context.Background(), chat("other", false))
	if !errors.As(err, &ue) || !ue.ModelMissing() || ue.Code != "model_not_found" {
		t.Errorf("missing model: %#v", err)
	}

	srv.Set(func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 429, "slow down" })
	_, err = c.Complete(context.Background(), chat("m", false))
	if !errors.As(err, &ue) || ue.Status != 429 || ue.Message != "slow down" || !ue.Retryable() {
		t.Errorf("429: %#v", err)
	}

	srv.Set(func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 400, "bad tools" })
	_, err = c.Complete(context.Background(), chat("m", false))
	if !errors.As(err, &ue) || ue.Status != 400 || ue.Retryable() {
		t.Errorf("400: %#v", err)
	}

	srv.Set(func(s *gatewaytest.Server) { s.Status, s.Hang = 0, true })
	err = c.Stream(context.Background(), chat("m", true), func(domain.Chunk) error { return nil })
	if !errors.As(err, &ue) || ue.Kind != domain.FailureTimeout {
		t.Errorf("hang: %#v", err)
	}

	srv.Set(func(s *gatewaytest.Server) { s.Hang, s.BreakAfter = false, 2 })
	n := 0
	err = c.Stream(context.Background(), chat("m", true), func(domain.Chunk) error { n++; return nil })
	if !errors.As(err, &ue) || n != 3 {
		t.Errorf("broken after %d chunks: %#v", n, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	srv.Set(func(s *gatewaytest.Server) { s.BreakAfter, s.PieceDelay = 0, time.Hour })
	err = c.Stream(ctx, chat("m", true), func(domain.Chunk) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("client gone: %#v", err)
	}
}

func TestListModels(t *testing.T) {
	srv := gatewaytest.New("a", "b")
	t.Cleanup(srv.Close)
	got, err := newClient(srv, "", time.Second).ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Model{{ID: "a", Created: 1715367049, OwnedBy: "gateway"}, {ID: "b", Created: 1715367049, OwnedBy: "gateway"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// FuzzRewriteBody checks the splice against decoding: the result is valid
// JSON with every member of the input but stream_options (when buffered),
// and model replaced.
func FuzzRewriteBody(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4","messages":[],"stream_options":{"a":"}"}}`), true)
	f.Add([]byte(` { "a" : [1, {"b": "\\"}] , "model" : null, "model": "x" } `), false)
	f.Add([]byte(`{"mo\u0064el":"x","stream_options":null}`), false)
	f.Fuzz(func(t *testing.T, raw []byte, stream bool) {
		var in map[string]json.RawMessage
		if json.Unmarshal(raw, &in) != nil || in == nil {
			return // only objects reach RewriteBody (null decodes into a map too)
		}
		out, err := gateway.RewriteBody(raw, "m:1", stream)
		if err != nil {
			t.Fatalf("valid object refused: %v", err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("invalid JSON %s from %s", out, raw)
		}
		want := map[string]string{}
		for k, v := range in {
			want[k] = string(compactJSON(v))
		}
		want["model"] = `"m:1"`
		if !stream {
			delete(want, "stream_options")
		}
		gotS := map[string]string{}
		for k, v := range got {
			gotS[k] = string(compactJSON(v))
		}
		if diff := cmp.Diff(want, gotS); diff != "" {
			t.Fatalf("%s -> %s (-want +got):\n%s", raw, out, diff)
		}
	})
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}
