package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/backendtest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func ptr[T any](v T) *T { return &v }

// richRequest sets everything a domain.ChatRequest holds.
func richRequest() domain.ChatRequest {
	return domain.ChatRequest{
		Model: "qwen2.5:32b",
		Messages: []domain.Message{
			{Role: "system", Content: "You are terse. <b>HTML</b> & \"quotes\" stay as they are."},
			{Role: "developer", Content: "Answer in French.", Name: "policy"},
			{Role: "user", Content: "What is in this picture, and the weather?", Name: "ana",
				Images: []*domain.Image{domain.NewImage("data:image/png;base64,iVBORw0KGgo="), domain.NewImage("https://example.com/cat.jpg")}},
			{Role: "assistant", ToolCalls: []domain.ToolCall{
				{ID: "call_1", Name: "weather", Arguments: `{"city":"Paris"}`},
				{ID: "call_2", Name: "time", Arguments: `{}`},
			}},
			{Role: "tool", ToolCallID: "call_1", Content: "sunny, 21°C", Name: "weather"},
			{Role: "tool", ToolCallID: "call_2", Content: "14:02"},
			{Role: "assistant", Content: "Un chat. Il fait beau.", Name: "bot"},
			{Role: "user", Content: "Merci\n\tet demain ?"},
		},
		Sampling: domain.Sampling{
			Temperature: ptr(0.7), TopP: ptr(0.95), MaxTokens: ptr(512), Stop: []string{"\n\n", "END"},
			Seed: ptr(int64(42)), PresencePenalty: ptr(0.5), FrequencyPenalty: ptr(-0.25),
		},
		User: "user-1234",
		Tools: []domain.Tool{
			{Name: "weather", Description: "The weather in a city.", Strict: ptr(true),
				Parameters: []byte(` {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false} `)},
			{Name: "time"},
		},
		ToolChoice:        domain.ToolChoice{Mode: domain.ToolChoiceRequired},
		ParallelToolCalls: ptr(false),
		ResponseFormat: &domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: "answer", Strict: ptr(true),
			Schema: []byte(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`)},
		N:               2,
		Logprobs:        true,
		TopLogprobs:     ptr(3),
		ReasoningEffort: "high",
		Stream:          false,
		IncludeUsage:    false,
		Passthrough:     wire.ResponsesBody{Raw: []byte(`{"model":"alias","input":"hi"}`), Input: []byte(`[]`)},
	}
}

// TestEncodeChat holds the chat completions bodies encoded from domain
// requests to golden files, and to OpenAI's CreateChatCompletionRequest.
func TestEncodeChat(t *testing.T) {
	minimal := domain.ChatRequest{Model: "m", N: 1, Messages: []domain.Message{{Role: "user", Content: "hi"}}}
	with := func(change func(*domain.ChatRequest)) domain.ChatRequest {
		r := minimal
		change(&r)
		return r
	}
	tools := []domain.Tool{{Name: "f", Parameters: []byte(`{"type":"object"}`)}}
	for _, tc := range []struct {
		name string
		req  domain.ChatRequest
	}{
		{"rich", richRequest()},
		{"minimal", minimal},
		{"tool_choice_named", with(func(r *domain.ChatRequest) {
			r.Tools, r.ToolChoice, r.ParallelToolCalls = tools, domain.ToolChoice{Mode: domain.ToolChoiceFunction, Name: "f"}, ptr(true)
		})},
		{"tool_choice_none", with(func(r *domain.ChatRequest) {
			r.Tools, r.ToolChoice = tools, domain.ToolChoice{Mode: domain.ToolChoiceNone}
		})},
		{"tool_choice_auto", with(func(r *domain.ChatRequest) {
			r.Tools, r.ToolChoice = tools, domain.ToolChoice{Mode: domain.ToolChoiceAuto}
		})},
		// tool_choice and parallel_tool_calls without tools: OpenAI refuses them.
		{"tool_choice_without_tools", with(func(r *domain.ChatRequest) {
			r.ToolChoice, r.ParallelToolCalls = domain.ToolChoice{Mode: domain.ToolChoiceAuto}, ptr(true)
		})},
		{"json_object", with(func(r *domain.ChatRequest) {
			r.ResponseFormat = &domain.ResponseFormat{Type: domain.FormatJSONObject}
			r.Sampling.Temperature, r.Sampling.MaxTokens = ptr(0.0), ptr(0)
		})},
		{"json_schema_unnamed", with(func(r *domain.ChatRequest) {
			r.ResponseFormat = &domain.ResponseFormat{Type: domain.FormatJSONSchema, Schema: []byte(`{"type":"object"}`)}
		})},
		{"text_format", with(func(r *domain.ChatRequest) {
			r.ResponseFormat = &domain.ResponseFormat{Type: domain.FormatText}
		})},
		{"logprobs_without_top", with(func(r *domain.ChatRequest) { r.Logprobs = true })},
		{"top_logprobs_without_logprobs", with(func(r *domain.ChatRequest) { r.TopLogprobs = ptr(2) })},
		{"image_only", with(func(r *domain.ChatRequest) {
			r.Messages = []domain.Message{{Role: "user", Images: []*domain.Image{domain.NewImage("https://example.com/a.png")}}}
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := gateway.EncodeChat(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(body) {
				t.Fatalf("invalid JSON: %s", body)
			}
			openaispec.Must(t, "CreateChatCompletionRequest", body)
			var out bytes.Buffer
			json.Indent(&out, body, "", "  ")
			out.WriteByte('\n')
			golden(t, "encode_"+tc.name+".chat.json", out.Bytes())
		})
	}
}

// TestEncodeChatRefusesInvalidSchemas: a schema that is not JSON would make
// the body invalid; it is refused as the client's mistake.
func TestEncodeChatRefusesInvalidSchemas(t *testing.T) {
	for param, req := range map[string]domain.ChatRequest{
		"tools[1].parameters": {Model: "m", Tools: []domain.Tool{{Name: "a"}, {Name: "b", Parameters: []byte(`{"type":`)}}},
		"response_format.json_schema.schema": {Model: "m",
			ResponseFormat: &domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: "x", Schema: []byte(`nope`)}},
	} {
		_, err := gateway.EncodeChat(req)
		ie, ok := err.(*domain.InvalidRequestError)
		if !ok || ie.Param != param {
			t.Errorf("%s: error %#v, want an invalid request naming it", param, err)
		}
	}
}

// TestChatEncodesWhatIsNotAChatBody: a Responses API request (to a gateway
// without Options.Responses) and a request without a passthrough are both
// served through /chat/completions, with the body encoded from the domain
// request; the answer is read as any chat stream.
func TestChatEncodesWhatIsNotAChatBody(t *testing.T) {
	for name, passthrough := range map[string]any{
		"responses": wire.ResponsesBody{Raw: []byte(`{"model":"alias","input":"hi","previous_response_id":"resp_1"}`), Input: []byte(`[]`)},
		"nil":       nil,
	} {
		t.Run(name, func(t *testing.T) {
			srv := gatewaytest.New("m")
			t.Cleanup(srv.Close)
			srv.Pieces = []string{"a", "b"}
			req := domain.ChatRequest{Model: "m", N: 1, Messages: []domain.Message{{Role: "user", Content: "hi"}}, Passthrough: passthrough}
			f := &backendtest.Frames{}
			if err := newClient(srv, "").Chat(context.Background(), req, f); err != nil {
				t.Fatal(err)
			}
			want := []domain.Chunk{{}, {Content: "a"}, {Content: "b"}, {FinishReason: "stop"}, {Usage: &domain.Usage{PromptTokens: 12, CompletionTokens: 5}}}
			if diff := cmp.Diff(want, f.Chunks); diff != "" {
				t.Errorf("chunks (-want +got):\n%s", diff)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || len(srv.RequestsTo(gatewaytest.PathResponses)) != 0 {
				t.Fatalf("%d chat and %d responses requests, want 1 and 0", len(reqs), len(srv.RequestsTo(gatewaytest.PathResponses)))
			}
			const body = `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`
			if got := string(reqs[0].Body); got != body {
				t.Errorf("upstream body\n got %s\nwant %s", got, body)
			}
		})
	}
}

// TestChatEncodedContract runs the contract against the encoded path: a
// request without a passthrough, n included.
func TestChatEncodedContract(t *testing.T) {
	backendtest.Run(t, contractHarness("gateway-encoded", gateway.Options{}, func(n int) domain.ChatRequest {
		return domain.ChatRequest{Model: backendtest.Model, N: n, Messages: []domain.Message{{Role: "user", Content: "hi"}}}
	}))
}
