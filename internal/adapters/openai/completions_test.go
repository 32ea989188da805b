package openai_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

func TestDecodeCompletionRequest(t *testing.T) {
	body := `{"model":"qwen2.5-coder:7b","prompt":"def add(a, b):","suffix":"    return c","echo":false,"max_tokens":64,
		"temperature":0.2,"top_p":0.9,"n":2,"best_of":2,"logprobs":3,"stop":["\n\n"],"seed":5,"presence_penalty":0.1,
		"frequency_penalty":-0.1,"stream":true,"stream_options":{"include_usage":true},"user":"u"}`
	got, err := openai.DecodeCompletionRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := domain.TextRequest{
		Model: "qwen2.5-coder:7b", Prompts: []domain.Input{{Text: "def add(a, b):"}}, Suffix: "    return c",
		Sampling: domain.Sampling{Temperature: ptr(0.2), TopP: ptr(0.9), MaxTokens: ptr(64), Stop: []string{"\n\n"},
			Seed: ptr(int64(5)), PresencePenalty: ptr(0.1), FrequencyPenalty: ptr(-0.1)},
		N: 2, Logprobs: ptr(3), Stream: true, IncludeUsage: true, User: "u", Passthrough: wire.CompletionBody(body),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// Every prompt form OpenAI accepts; max_tokens defaults to OpenAI's 16.
	for _, tc := range []struct {
		prompt string
		want   []domain.Input
	}{
		{`""`, []domain.Input{{Text: ""}}},
		{`["a","b"]`, []domain.Input{{Text: "a"}, {Text: "b"}}},
		{`[1212, 318]`, []domain.Input{{Tokens: []int{1212, 318}}}},
		{`[[1212], [318, 257]]`, []domain.Input{{Tokens: []int{1212}}, {Tokens: []int{318, 257}}}},
	} {
		got, err := openai.DecodeCompletionRequest([]byte(`{"model":"m","prompt":` + tc.prompt + `}`))
		if err != nil {
			t.Errorf("prompt %s: %v", tc.prompt, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got.Prompts); diff != "" {
			t.Errorf("prompt %s (-want +got):\n%s", tc.prompt, diff)
		}
		if got.Sampling.MaxTokens == nil || *got.Sampling.MaxTokens != openai.DefaultCompletionTokens || got.N != 1 {
			t.Errorf("prompt %s: max_tokens %v n %d, want OpenAI's defaults 16 and 1", tc.prompt, got.Sampling.MaxTokens, got.N)
		}
	}
}

func TestDecodeCompletionRequestErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ body, param string }{
		{`{"prompt":"x"}`, "model"},
		{`{"model":"m"}`, "prompt"},
		{`{"model":"m","prompt":null}`, "prompt"},
		{`{"model":"m","prompt":5}`, "prompt"},
		{`{"model":"m","prompt":[]}`, "prompt"},
		{`{"model":"m","prompt":["a",[1]]}`, "prompt[1]"},
		{`{"model":"m","prompt":[[1],[]]}`, "prompt[1]"},
		{`{"model":"m","prompt":[-1]}`, "prompt"},
		{`{"model":"m","prompt":["a",true]}`, "prompt[1]"},
		{`{"model":"m","prompt":"x","max_tokens":-1}`, "max_tokens"},
		{`{"model":"m","prompt":"x","n":2,"best_of":3}`, "best_of"},
		{`{"model":"m","prompt":"x","logprobs":6}`, "logprobs"},
		{`{"model":"m","prompt":"x","temperature":3}`, "temperature"},
		{`{"model":"m","prompt":"x","stop":["a","b","c","d","e"]}`, "stop"},
		{`{"model":"m","prompt":"x","logit_bias":{"1":1}}`, "logit_bias"},
		{`{"model":"m","prompt":"x","Prompt":"y"}`, "Prompt"},
		{`{"model":"m","prompt":"x","stream":true,"stream":false}`, "stream"},
	} {
		_, err := openai.DecodeCompletionRequest([]byte(tc.body))
		var inv *domain.InvalidRequestError
		if !errors.As(err, &inv) || inv.Param != tc.param || inv.Message == "" {
			t.Errorf("%s: %v, want an invalid request naming %q", tc.body, err, tc.param)
		}
	}
}

func TestDecodeEmbeddingsRequest(t *testing.T) {
	for _, tc := range []struct {
		body string
		want openai.EmbeddingsRequest
	}{
		{`{"model":"text-embedding-3-small","input":"hello"}`,
			openai.EmbeddingsRequest{Encoding: "float", EmbedRequest: domain.EmbedRequest{Model: "text-embedding-3-small", Inputs: []domain.Input{{Text: "hello"}}}}},
		{`{"model":"m","input":["a","b"],"encoding_format":"base64","dimensions":256,"user":"u"}`,
			openai.EmbeddingsRequest{Encoding: "base64", EmbedRequest: domain.EmbedRequest{Model: "m", Inputs: []domain.Input{{Text: "a"}, {Text: "b"}},
				Dimensions: ptr(256), User: "u"}}},
		{`{"model":"m","input":[1,2,3]}`,
			openai.EmbeddingsRequest{Encoding: "float", EmbedRequest: domain.EmbedRequest{Model: "m", Inputs: []domain.Input{{Tokens: []int{1, 2, 3}}}}}},
		{`{"model":"m","input":[[1,2],[3]]}`,
			openai.EmbeddingsRequest{Encoding: "float", EmbedRequest: domain.EmbedRequest{Model: "m", Inputs: []domain.Input{{Tokens: []int{1, 2}}, {Tokens: []int{3}}}}}},
	} {
		got, err := openai.DecodeEmbeddingsRequest([]byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.body, err)
			continue
		}
		tc.want.Passthrough = wire.EmbeddingsBody(tc.body)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.body, diff)
		}
	}
	many := `["` + strings.Repeat(`x","`, 2048) + `x"]`
	for _, tc := range []struct{ body, param string }{
		{`{"input":"x"}`, "model"},
		{`{"model":"m"}`, "input"},
		{`{"model":"m","input":""}`, "input"},
		{`{"model":"m","input":["a",""]}`, "input[1]"},
		{`{"model":"m","input":[]}`, "input"},
		{`{"model":"m","input":` + many + `}`, "input"},
		{`{"model":"m","input":{"text":"x"}}`, "input"},
		{`{"model":"m","input":"x","encoding_format":"int8"}`, "encoding_format"},
		{`{"model":"m","input":"x","dimensions":0}`, "dimensions"},
		{`{"model":"m","input":"x","Input":"y"}`, "Input"},
	} {
		_, err := openai.DecodeEmbeddingsRequest([]byte(tc.body))
		var inv *domain.InvalidRequestError
		if !errors.As(err, &inv) || inv.Param != tc.param {
			t.Errorf("%.80s: %v, want an invalid request naming %q", tc.body, err, tc.param)
		}
	}
}

// TestEmbeddingEncodingsRoundTrip: float and base64 answers give a client
// the very same float32 vectors, and both match the spec.
func TestEmbeddingEncodingsRoundTrip(t *testing.T) {
	vectors := [][]float32{{0.1, -0.2, 3.4028235e38, 1.4e-45, 0, -0.000123456789}, {1, 2, 3, float32(math.Pi), -1e-20, 7.5e12}}
	e := domain.Embeddings{Vectors: vectors, Usage: &domain.Usage{PromptTokens: 9}}
	asFloat := openai.AppendEmbeddingList(nil, "text-embedding-3-small", e, openai.EncodingFloat)
	asBase64 := openai.AppendEmbeddingList(nil, "text-embedding-3-small", e, openai.EncodingBase64)
	openaispec.Must(t, "CreateEmbeddingResponse", asFloat)

	var floats struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct{ PromptTokens, TotalTokens int } `json:"usage"`
	}
	if err := json.Unmarshal(asFloat, &floats); err != nil {
		t.Fatal(err)
	}
	var b64 struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(asBase64, &b64); err != nil {
		t.Fatal(err)
	}
	for i, v := range vectors {
		raw, err := base64.StdEncoding.DecodeString(b64.Data[i].Embedding)
		if err != nil {
			t.Fatal(err)
		}
		decoded := make([]float32, len(raw)/4)
		for j := range decoded {
			decoded[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		if diff := cmp.Diff(v, decoded); diff != "" {
			t.Errorf("vector %d from base64 (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(v, floats.Data[i].Embedding); diff != "" || floats.Data[i].Index != i {
			t.Errorf("vector %d from floats, index %d (-want +got):\n%s", i, floats.Data[i].Index, diff)
		}
	}
}

func TestTextCompletionObjects(t *testing.T) {
	lps := []domain.TokenLogprob{
		{Token: " 4", Logprob: -0.01, Top: []domain.TopLogprob{{Token: " 5", Logprob: -4.5}, {Token: " 4", Logprob: -0.01}}},
		{Token: "é", Logprob: -1.25},
	}
	c := domain.TextCompletion{
		Choices: []domain.TextChoice{{Index: 0, Text: " 4é", FinishReason: "length", Logprobs: lps}, {Index: 1, Text: "x"}},
		Usage:   &domain.Usage{PromptTokens: 3, CompletionTokens: 2},
	}
	got := openai.NewTextEncoder("cmpl-1", 42, "gpt-3.5-turbo-instruct", true).Completion(nil, c)
	want := `{"id":"cmpl-1","object":"text_completion","created":42,"model":"gpt-3.5-turbo-instruct","choices":[` +
		`{"text":" 4é","index":0,"logprobs":{"tokens":[" 4","é"],"token_logprobs":[-0.01,-1.25],"top_logprobs":[{" 4":-0.01," 5":-4.5},{}],"text_offset":[0,2]},"finish_reason":"length"},` +
		`{"text":"x","index":1,"logprobs":{"tokens":[],"token_logprobs":[],"top_logprobs":[],"text_offset":[]},"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`
	if string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	openaispec.Must(t, "CreateCompletionResponse", got)

	// Streamed: offsets run on across chunks, an echoed prompt moves them.
	enc := openai.NewTextEncoder("cmpl-2", 42, "m", true)
	// Each frame is valid until the next call: copied one at a time.
	var frames []string
	frames = append(frames, string(enc.Chunk(domain.TextChunk{Text: "2+2="})))
	frames = append(frames, string(enc.Chunk(domain.TextChunk{Text: " 4", Logprobs: lps[:1]})))
	frames = append(frames, string(enc.Chunk(domain.TextChunk{Text: "é", Logprobs: lps[1:], FinishReason: "stop"})))
	frames = append(frames, string(enc.Usage(domain.Usage{PromptTokens: 3, CompletionTokens: 2})))
	for i, want := range []string{`"text_offset":[]`, `"text_offset":[4]`, `"text_offset":[6]`} {
		if !strings.Contains(frames[i], want) {
			t.Errorf("frame %d %s lacks %s", i, frames[i], want)
		}
	}
	for i, f := range frames {
		payload := strings.TrimSuffix(strings.TrimPrefix(f, "data: "), "\n\n")
		// Stream chunks carry finish_reason null until the last one, as
		// OpenAI's API sends them; the spec (one shape for both) lists no
		// null, so it is checked as the SDKs read it.
		openaispec.Must(t, "CreateCompletionResponse", []byte(strings.ReplaceAll(payload, `"finish_reason":null`, `"finish_reason":"stop"`)))
		if i < 2 && !strings.Contains(payload, `"finish_reason":null`) {
			t.Errorf("chunk %d: %s, want finish_reason null", i, payload)
		}
	}
}
