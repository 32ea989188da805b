package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/backendtest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// responsesInput is a conversation's input as the inbound adapter rebuilds
// it: the earlier turn's items, then this request's.
const responsesInput = `[{"type":"message","role":"user","content":[{"type":"input_text","text":"earlier"}]},` +
	`{"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]},` +
	`{"role":"user","content":"hi"}]`

// responsesRequest is a Responses API request continuing an earlier one:
// the upstream must never see that id (it stored nothing).
func responsesRequest(model string) domain.ChatRequest {
	raw := `{"model":"alias","input":"hi","previous_response_id":"resp_earlier","store":true,"stream":false}`
	return domain.ChatRequest{Model: model, N: 1, Messages: []domain.Message{{Role: "user", Content: "hi"}},
		Passthrough: wire.ResponsesBody{Raw: []byte(raw), Input: []byte(responsesInput)}}
}

func newResponsesClient(srv *gatewaytest.Server, key string) *gateway.Client {
	u, _ := url.Parse(srv.URL + "/v1")
	return gateway.New(upstream.Options{Name: "gateway", BaseURL: u, AgentID: "agent-7", APIKey: key, Timeouts: upstream.Timeouts{FirstByte: 5 * time.Second}},
		gateway.Options{Responses: true})
}

func TestRewriteResponsesBody(t *testing.T) {
	raw := `{"model":"alias","input":"and now?","previous_response_id":"resp_prev","store":true,"stream":false,"instructions":"Be brief.",` +
		`"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"reasoning":{"effort":"low"},` +
		`"stream_options":{"include_obfuscation":false},"x-vendor":{"a":[1,null]},"metadata":{"k":"<v>"},"temperature":null}`
	got, err := gateway.RewriteResponsesBody(wire.ResponsesBody{Raw: []byte(raw), Input: []byte(responsesInput)}, "qwen3:8b")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"instructions":"Be brief.","tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"reasoning":{"effort":"low"},` +
		`"stream_options":{"include_obfuscation":false},"x-vendor":{"a":[1,null]},"metadata":{"k":"<v>"},"temperature":null,` +
		`"model":"qwen3:8b","input":` + responsesInput + `,"store":false,"stream":true}`
	if string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}

	// Without a conversation's input, the client's own input stays.
	got, err = gateway.RewriteResponsesBody(wire.ResponsesBody{Raw: []byte(`{"input":"hi","model":"a"}`)}, "m")
	if err != nil || string(got) != `{"input":"hi","model":"m","store":false,"stream":true}` {
		t.Errorf("without Input: %s, %v", got, err)
	}
	if _, err := gateway.RewriteResponsesBody(wire.ResponsesBody{Raw: []byte(`{"input":`)}, "m"); err == nil {
		t.Error("a body that is not JSON was spliced")
	}
}

// TestResponsesForwarded: with Options.Responses, a Responses API request
// goes to /responses (never /chat/completions) with the client's body
// rewritten and the usual headers; the answer's events come back as
// chunks.
func TestResponsesForwarded(t *testing.T) {
	srv := gatewaytest.New("qwen3:8b")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"a", "b"}
	ctx := domain.WithRequestID(context.Background(), "req-42")
	f := &backendtest.Frames{}
	if err := newResponsesClient(srv, "sk-gw").Chat(ctx, responsesRequest("qwen3:8b"), f); err != nil {
		t.Fatal(err)
	}
	want := []domain.Chunk{{Content: "a"}, {Content: "b"}, {FinishReason: "stop", Usage: &domain.Usage{PromptTokens: 12, CompletionTokens: 5}}}
	if diff := cmp.Diff(want, f.Chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	if len(f.Flushes) == 0 {
		t.Error("the frames were never flushed")
	}
	reqs := srv.RequestsTo(gatewaytest.PathResponses)
	if len(reqs) != 1 || len(srv.Requests()) != 0 {
		t.Fatalf("%d responses and %d chat requests, want 1 and 0", len(reqs), len(srv.Requests()))
	}
	body := `{"model":"qwen3:8b","input":` + responsesInput + `,"store":false,"stream":true}`
	if got := string(reqs[0].Body); got != body {
		t.Errorf("upstream body\n got %s\nwant %s", got, body)
	}
	for k, v := range map[string]string{"Authorization": "Bearer sk-gw", "X-Agent-Id": "agent-7", "X-Request-Id": "req-42", "Content-Type": "application/json"} {
		if got := reqs[0].Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// TestResponsesAnswers reads the fake's answers of every kind: reasoning
// and text, a function call, an answer cut at the token limit or by the
// filter, a failure.
func TestResponsesAnswers(t *testing.T) {
	usage := &domain.Usage{PromptTokens: 12, CompletionTokens: 5}
	for _, tc := range []struct {
		name   string
		set    func(*gatewaytest.Server)
		want   []domain.Chunk
		kind   domain.FailureKind // of the error, when one is wanted
		errMsg string
	}{
		{name: "reasoning and text", set: func(s *gatewaytest.Server) { s.Reasoning, s.Pieces = []string{"Hm", "m."}, []string{"Yes."} },
			want: []domain.Chunk{{Reasoning: "Hm"}, {Reasoning: "m."}, {Content: "Yes."}, {FinishReason: "stop", Usage: usage}}},
		{name: "function call", set: func(s *gatewaytest.Server) {
			s.ToolCall = &gatewaytest.ToolCall{Name: "weather", Arguments: `{"city":"Paris"}`}
		},
			want: []domain.Chunk{{ToolCalls: []domain.ToolCallDelta{{ID: "call_gw0123456789abcdefghijklmn", Name: "weather", Arguments: `{"city":"Paris"}`}}},
				{FinishReason: "tool_calls", Usage: usage}}},
		{name: "text, then a function call", set: func(s *gatewaytest.Server) {
			s.Pieces, s.ToolCall = []string{"Let me check."}, &gatewaytest.ToolCall{Name: "weather", Arguments: `{"city":"Zürich"}`}
		},
			want: []domain.Chunk{{Content: "Let me check."}, {ToolCalls: []domain.ToolCallDelta{{ID: "call_gw0123456789abcdefghijklmn", Name: "weather", Arguments: `{"city":"Zürich"}`}}},
				{FinishReason: "tool_calls", Usage: usage}}},
		{name: "cut at max_output_tokens", set: func(s *gatewaytest.Server) { s.Pieces, s.Incomplete = []string{"Once"}, "max_output_tokens" },
			want: []domain.Chunk{{Content: "Once"}, {FinishReason: "length", Usage: usage}}},
		{name: "cut by the content filter", set: func(s *gatewaytest.Server) { s.Pieces, s.Incomplete = []string{"Once"}, "content_filter" },
			want: []domain.Chunk{{Content: "Once"}, {FinishReason: "content_filter", Usage: usage}}},
		{name: "failed, rate limited", set: func(s *gatewaytest.Server) {
			s.Pieces, s.Failure = []string{"Once"}, &gatewaytest.ResponseError{Code: "rate_limit_exceeded", Message: "Rate limit reached."}
		},
			want: []domain.Chunk{{Content: "Once"}}, kind: domain.FailureRateLimited, errMsg: "Rate limit reached."},
		{name: "failed, server error", set: func(s *gatewaytest.Server) {
			s.Failure = &gatewaytest.ResponseError{Code: "server_error", Message: "The server had an error."}
		},
			want: []domain.Chunk{{Content: "Hello "}, {Content: "from "}, {Content: "the "}, {Content: "gateway!"}}, kind: domain.FailureServer, errMsg: "The server had an error."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := gatewaytest.New("m")
			t.Cleanup(srv.Close)
			tc.set(srv)
			f := &backendtest.Frames{}
			err := newResponsesClient(srv, "").Chat(context.Background(), responsesRequest("m"), f)
			if diff := cmp.Diff(tc.want, f.Chunks); diff != "" {
				t.Errorf("chunks (-want +got):\n%s", diff)
			}
			if tc.errMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ue *domain.UpstreamError
			if !errors.As(err, &ue) || ue.Kind != tc.kind || ue.Message != tc.errMsg || ue.Backend != "gateway" || !strings.Contains(ue.Detail, "/v1/responses") {
				t.Errorf("error %#v, want kind %v, message %q", err, tc.kind, tc.errMsg)
			}
		})
	}
}

// TestResponsesClassification: the gateway's error statuses on /responses
// mean what they mean on /chat/completions.
func TestResponsesClassification(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	c := newResponsesClient(srv, "")
	for _, tc := range []struct {
		status int
		msg    string
		kind   domain.FailureKind
	}{
		{404, "The model `m` does not exist or you do not have access to it.", domain.FailureModelMissing},
		{404, "Invalid URL (POST /v1/responses)", domain.FailureMisrouted},
		{401, "Incorrect API key provided.", domain.FailureUnauthorized},
		{429, "Rate limit reached.", domain.FailureRateLimited},
		{500, "The server had an error while processing your request.", domain.FailureServer},
		{400, "Unsupported parameter: 'reasoning.effort'.", domain.FailureRejected},
	} {
		srv.Set(func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = tc.status, tc.msg })
		err := c.Chat(context.Background(), responsesRequest("m"), &backendtest.Frames{})
		ue, ok := err.(*domain.UpstreamError)
		if !ok || ue.Kind != tc.kind || ue.Message != tc.msg || !strings.Contains(ue.Detail, fmt.Sprint(tc.status)) {
			t.Errorf("%d %q: %#v, want kind %v", tc.status, tc.msg, err, tc.kind)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests went to /chat/completions", n)
	}
}

// TestResponsesRefusesN: the Responses API has no n; several choices are
// refused rather than answered with one.
func TestResponsesRefusesN(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	req := responsesRequest("m")
	req.N = 2
	err := newResponsesClient(srv, "").Chat(context.Background(), req, &backendtest.Frames{})
	if ie, ok := err.(*domain.InvalidRequestError); !ok || ie.Param != "n" {
		t.Errorf("error %#v, want an invalid request about n", err)
	}
	if n := len(srv.RequestsTo(gatewaytest.PathResponses)); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// TestContractResponses holds the native Responses path to the contract.
// The Responses API has no n, so the contract's "n choices" case does not
// apply: the harness says so (SingleChoice), and the rest runs as for
// chat completions.
func TestContractResponses(t *testing.T) {
	h := contractHarness("gateway-responses", gateway.Options{Responses: true}, func(n int) domain.ChatRequest {
		r := responsesRequest(backendtest.Model)
		r.N = n
		return r
	})
	h.SingleChoice = true
	backendtest.Run(t, h)
}
