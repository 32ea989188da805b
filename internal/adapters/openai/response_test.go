package openai_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

func TestChunkEncoderFrames(t *testing.T) {
	enc := openai.NewChunkEncoder("chatcmpl-abc", 1700000000, "gpt-4", false)
	// Each frame is copied at once (copy is a call, so the calls run in
	// order): the encoder reuses its buffer.
	copyOf := func(b []byte) string { return string(append([]byte(nil), b...)) }
	frames := []struct {
		got  string
		want string
	}{
		{copyOf(enc.Chunk(domain.Chunk{Content: "Hel"})), `{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"logprobs":null,"finish_reason":null}]}`},
		{copyOf(enc.Chunk(domain.Chunk{Content: "lo \"x\""})), `{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4","choices":[{"index":0,"delta":{"content":"lo \"x\""},"logprobs":null,"finish_reason":null}]}`},
		{copyOf(enc.Chunk(domain.Chunk{FinishReason: "stop"})), `{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`},
		{copyOf(enc.Usage(domain.Usage{PromptTokens: 3, CompletionTokens: 4})), `{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`},
	}
	for i, f := range frames {
		want := "data: " + f.want + "\n\n"
		if f.got != want {
			t.Errorf("frame %d:\n got %s\nwant %s", i, f.got, want)
		}
		openaispec.Must(t, "CreateChatCompletionStreamResponse", []byte(f.want))
	}
}

func TestFirstChunkWithoutContentStillCarriesRole(t *testing.T) {
	enc := openai.NewChunkEncoder("id", 1, "m", false)
	got := string(enc.Chunk(domain.Chunk{}))
	if !strings.Contains(got, `"delta":{"role":"assistant","content":""}`) {
		t.Errorf("got %s", got)
	}
	enc = openai.NewChunkEncoder("id", 1, "m", false)
	got = string(enc.Chunk(domain.Chunk{FinishReason: "length"}))
	if !strings.Contains(got, `"delta":{"role":"assistant"},"logprobs":null,"finish_reason":"length"`) {
		t.Errorf("got %s", got)
	}
}

func TestCompletionMatchesSpec(t *testing.T) {
	c := openai.NewCompletion(openai.NewCompletionID(), 1700000000, "gpt-4",
		domain.Completion{Choices: []domain.Choice{{Content: ptr("hi")}}, Usage: &domain.Usage{PromptTokens: 1, CompletionTokens: 2}}, false)
	b, _ := json.Marshal(c)
	openaispec.Must(t, "CreateChatCompletionResponse", b)
	if c.Choices[0].FinishReason != "stop" || c.Usage.TotalTokens != 3 {
		t.Errorf("%s", b)
	}
	if id := c.ID; !strings.HasPrefix(id, "chatcmpl-") || len(id) < len("chatcmpl-")+20 {
		t.Errorf("id %q", id)
	}
	if a, b := openai.NewCompletionID(), openai.NewCompletionID(); a == b {
		t.Errorf("ids repeat: %s", a)
	}
	e, _ := json.Marshal(openai.NewError(openai.TypeInvalidRequest, "m", "", ""))
	openaispec.Must(t, "ErrorResponse", e)
	if string(e) != `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}}` {
		t.Errorf("%s", e)
	}
}

// TestAppendJSONMatchesEncodingJSON: the reflection-free encoder writes
// what encoding/json writes (without HTML escaping) for every shape.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	text, refusal := "Hi <b>\"there\"\n\u2028 \xff", "no"
	for _, c := range []domain.Completion{
		{Choices: []domain.Choice{{Content: &text}}},
		{Choices: []domain.Choice{{Content: &text, Reasoning: "hmm", FinishReason: "length"}}, Usage: &domain.Usage{PromptTokens: 3, CompletionTokens: 4}},
		{Choices: []domain.Choice{{ToolCalls: []domain.ToolCall{{ID: "call_1", Name: "f", Arguments: `{"a":1}`}, {ID: "call_2", Name: "g"}}, FinishReason: "tool_calls"}}},
		{Choices: []domain.Choice{{Refusal: &refusal, Logprobs: []domain.TokenLogprob{
			{Token: "Hi", Logprob: -0.25, Bytes: []byte("Hi"), Top: []domain.TopLogprob{{Token: "Hi", Logprob: -0.25, Bytes: []byte("Hi")}, {Token: "Hey", Logprob: -1.5e-7}}},
			{Token: "\xe2", Logprob: math.Inf(-1), Bytes: []byte{0xe2}},
		}}, {Index: 1, Content: &text}}},
	} {
		for _, legacy := range []bool{false, true} {
			v := openai.NewCompletion("chatcmpl-x", 42, "gpt-4", c, legacy)
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
			got := v.AppendJSON(nil)
			if string(got) != strings.TrimSuffix(want.String(), "\n") {
				t.Errorf("legacy=%v\n got %s\nwant %s", legacy, got, want.String())
			}
			openaispec.Must(t, "CreateChatCompletionResponse", got)
		}
	}
}

// TestFirstChunkWithLogprobsIsSplit: the role goes out on a chunk of its
// own, with empty logprobs, before the first tokens; the SDKs' stream
// accumulators would count a first chunk's logprobs twice.
func TestFirstChunkWithLogprobsIsSplit(t *testing.T) {
	enc := openai.NewChunkEncoder("id", 1, "m", false)
	lp := []domain.TokenLogprob{{Token: "Hi", Logprob: -0.5, Bytes: []byte("Hi")}}
	frames := strings.Split(strings.TrimSuffix(string(enc.Chunk(domain.Chunk{Content: "Hi", Logprobs: lp})), "\n\n"), "\n\n")
	if len(frames) != 2 {
		t.Fatalf("%d frames, want the role chunk and the token chunk: %q", len(frames), frames)
	}
	if !strings.Contains(frames[0], `"delta":{"role":"assistant","content":""},"logprobs":{"content":[],"refusal":null}`) ||
		strings.Contains(frames[1], `"role"`) || !strings.Contains(frames[1], `"content":[{"token":"Hi"`) {
		t.Errorf("frames %q", frames)
	}
	for _, f := range frames {
		openaispec.Must(t, "CreateChatCompletionStreamResponse", []byte(strings.TrimPrefix(f, "data: ")))
	}
	if next := string(enc.Chunk(domain.Chunk{Content: "!", Logprobs: lp})); strings.Count(next, "data: ") != 1 {
		t.Errorf("a later chunk was split: %q", next)
	}
}
