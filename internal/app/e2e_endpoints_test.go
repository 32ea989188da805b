package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
)

// End-to-end tests of /v1/embeddings, /v1/completions and log
// probabilities through OpenAI's Go SDK, in front of the fake Ollama host
// (the gateway's path is in e2e_gateway_endpoints_test.go). Wire output is
// validated against OpenAI's schemas.

const embedModel = "nomic-embed-text" // what text-embedding-3-* stand for by default

func TestE2EEmbeddingsViaOllama(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, embedModel, "qwen2.5-coder:7b")
	ol.EmbeddingLength = 16
	r := startApp(t, testConfig("", ol.URL))
	client := sdkClient(t, r)
	ctx := ctxFor(t)

	var resp *http.Response
	got, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first text", "second text"}},
	}, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("embeddings.create: %v", err)
	}
	if got.Model != "text-embedding-3-small" || len(got.Data) != 2 || got.Usage.PromptTokens == 0 || got.Usage.TotalTokens != got.Usage.PromptTokens {
		t.Fatalf("answer: model %q, %d vectors, usage %+v", got.Model, len(got.Data), got.Usage)
	}
	for i, text := range []string{"first text", "second text"} {
		want := ollamatest.Embedding(text, 16, 0)
		if got.Data[i].Index != int64(i) || len(got.Data[i].Embedding) != len(want) {
			t.Fatalf("vector %d: index %d, %d floats", i, got.Data[i].Index, len(got.Data[i].Embedding))
		}
		for j := range want {
			if float32(got.Data[i].Embedding[j]) != want[j] {
				t.Errorf("vector %d[%d] = %v, want %v", i, j, got.Data[i].Embedding[j], want[j])
				break
			}
		}
	}
	if resp.Header.Get("X-Backend") != "ollama" || resp.Header.Get("X-Upstream-Model") != embedModel {
		t.Errorf("served by %q %q", resp.Header.Get("X-Backend"), resp.Header.Get("X-Upstream-Model"))
	}
	sent := ol.LastRequestTo("/api/embed")
	if sent["model"] != embedModel || sent["truncate"] != false {
		t.Errorf("/api/embed request %v: want model %s, truncate false (OpenAI refuses over-long input)", sent, embedModel)
	}

	// Token ids, as LangChain's OpenAIEmbeddings sends them, and dimensions.
	got, err = client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model:      "text-embedding-3-small",
		Input:      openai.EmbeddingNewParamsInputUnion{OfArrayOfTokenArrays: [][]int64{{9906, 1917}}}, // cl100k_base "Hello world"
		Dimensions: openai.Int(4),
	})
	if err != nil {
		t.Fatalf("embeddings.create with token ids: %v", err)
	}
	if len(got.Data) != 1 || len(got.Data[0].Embedding) != 4 {
		t.Fatalf("%d vectors of %d floats, want 1 of 4", len(got.Data), len(got.Data[0].Embedding))
	}
	if sent := ol.LastRequestTo("/api/embed"); !cmp.Equal(sent["input"], []any{"Hello world"}) || sent["dimensions"] != float64(4) {
		t.Errorf("/api/embed request %v: want the ids decoded to \"Hello world\", dimensions 4", sent)
	}

	// A model that cannot make that many dimensions is the client's to fix.
	_, err = client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-large", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}, Dimensions: openai.Int(1024),
	})
	if e := apiError(t, err, http.StatusBadRequest, ""); e.Param != "dimensions" {
		t.Errorf("param %q, want dimensions (%s)", e.Param, e.Message)
	}

	// Over-long input: a 400 naming the input, as OpenAI answers it.
	ol.Set(func(s *ollamatest.Server) { s.MaxInputChars = 20 })
	_, err = client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"short", "short too", strings.Repeat("long ", 10)}},
	})
	if e := apiError(t, err, http.StatusBadRequest, ""); e.Param != "input[2]" {
		t.Errorf("param %q, want input[2] (%s)", e.Param, e.Message)
	}
}

// TestEmbeddingsBatchedInOrder: a request larger than embeddings.batch_size
// goes to the backend in several calls; the vectors keep the inputs' order
// and the usage adds the calls up.
func TestEmbeddingsBatchedInOrder(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, embedModel)
	cfg := testConfig("", ol.URL)
	cfg.Embeddings.BatchSize = 3
	r := startApp(t, cfg)
	inputs := make([]string, 8)
	for i := range inputs {
		inputs[i] = "input number " + string(rune('a'+i))
	}
	body, _ := json.Marshal(map[string]any{"model": "text-embedding-ada-002", "input": inputs})
	resp, data := post(t, r, "/v1/embeddings", string(body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	openaispec.Must(t, "CreateEmbeddingResponse", data)
	var got struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		if got.Data[i].Index != i || !cmp.Equal(got.Data[i].Embedding, ollamatest.Embedding(in, 8, 0)) {
			t.Errorf("vector %d is not input %d's", got.Data[i].Index, i)
		}
	}
	calls := ol.RequestsTo("/api/embed")
	if len(calls) != 3 {
		t.Errorf("%d calls to /api/embed, want 3 (8 inputs in batches of 3)", len(calls))
	}
	// The fake counts each input's words as its prompt tokens: 3 each.
	if got.Usage.PromptTokens != 3*len(inputs) {
		t.Errorf("prompt_tokens %d, want the three calls' %d", got.Usage.PromptTokens, 3*len(inputs))
	}
}

func TestE2ECompletionsViaOllama(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, "qwen2.5-coder:7b")
	ol.Pieces = []string{"    c = a + b\n", "    return c"}
	r := startApp(t, testConfig("", ol.URL))
	client := sdkClient(t, r)
	ctx := ctxFor(t)

	// Fill in the middle, as editor autocomplete asks for it.
	got, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model:     "qwen2.5-coder:7b",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("def add(a, b):\n")},
		Suffix:    openai.String("\n\nprint(add(1, 2))"),
		MaxTokens: openai.Int(64),
	})
	if err != nil {
		t.Fatalf("completions.create: %v", err)
	}
	if got.Object != "text_completion" || !strings.HasPrefix(got.ID, "cmpl-") || got.Model != "qwen2.5-coder:7b" ||
		len(got.Choices) != 1 || got.Choices[0].Text != "    c = a + b\n    return c" || got.Choices[0].FinishReason != "stop" {
		t.Fatalf("completion %+v", got)
	}
	sent := ol.LastRequestTo("/api/generate")
	if sent["suffix"] != "\n\nprint(add(1, 2))" || sent["raw"] != nil || sent["options"].(map[string]any)["num_predict"] != float64(64) {
		t.Errorf("/api/generate request %v: want the suffix, no raw, num_predict 64", sent)
	}

	// Without a suffix the prompt goes raw: no chat template wraps it.
	stream := client.Completions.NewStreaming(ctx, openai.CompletionNewParams{
		Model:  "qwen2.5-coder:7b",
		Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("def add(a, b):\n")},
	})
	var text strings.Builder
	finish := ""
	for stream.Next() {
		c := stream.Current()
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
			if ch.FinishReason != "" {
				finish = string(ch.FinishReason)
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("streamed completion: %v", err)
	}
	if text.String() != "    c = a + b\n    return c" || finish != "stop" {
		t.Errorf("streamed text %q, finish %q", text.String(), finish)
	}
	sent = ol.LastRequestTo("/api/generate")
	if sent["raw"] != true || sent["options"].(map[string]any)["num_predict"] != float64(16) {
		t.Errorf("/api/generate request %v: want raw true and OpenAI's default max_tokens 16", sent)
	}
}

// TestE2ELogprobsViaOllama: chat and text completions report log
// probabilities from Ollama in OpenAI's two shapes.
func TestE2ELogprobsViaOllama(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, upstreamModel)
	ol.Pieces = []string{"Hel", "lo"}
	r := startApp(t, testConfig("", ol.URL))
	client := sdkClient(t, r)
	ctx := ctxFor(t)

	chat, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "gpt-4", Messages: userMessage("Hi"), Logprobs: openai.Bool(true), TopLogprobs: openai.Int(2),
	})
	if err != nil {
		t.Fatalf("chat with logprobs: %v", err)
	}
	lp := chat.Choices[0].Logprobs.Content
	if len(lp) != 2 || lp[0].Token != "Hel" || lp[1].Token != "lo" || lp[0].Logprob != ollamatest.LogprobOf(0) ||
		len(lp[0].TopLogprobs) != 2 || !cmp.Equal(lp[1].Bytes, []int64{'l', 'o'}) {
		t.Errorf("chat logprobs %+v", lp)
	}

	text, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model: "gpt-4", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say")}, Logprobs: openai.Int(2),
	})
	if err != nil {
		t.Fatalf("completion with logprobs: %v", err)
	}
	l := text.Choices[0].Logprobs
	if !cmp.Equal(l.Tokens, []string{"Hel", "lo"}) || !cmp.Equal(l.TextOffset, []int64{0, 3}) || len(l.TopLogprobs) != 2 ||
		l.TokenLogprobs[1] != ollamatest.LogprobOf(1) {
		t.Errorf("legacy logprobs %+v", l)
	}
	for _, path := range []string{"/api/chat", "/api/generate"} {
		if sent := ol.LastRequestTo(path); sent["logprobs"] != true || sent["top_logprobs"] != float64(2) {
			t.Errorf("%s request %v: want logprobs true, top_logprobs 2", path, sent)
		}
	}
}

// TestWireNewEndpointsMatchSpec validates the raw answers of the new
// endpoints, buffered and streamed, against OpenAI's schemas.
func TestWireNewEndpointsMatchSpec(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, embedModel, "qwen2.5-coder:7b")
	r := startApp(t, testConfig("", ol.URL))

	for _, enc := range []string{"float", "base64"} {
		resp, data := post(t, r, "/v1/embeddings", `{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"`+enc+`"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", enc, resp.StatusCode, data)
		}
		if enc == "float" {
			openaispec.Must(t, "CreateEmbeddingResponse", data)
		} else if !strings.Contains(string(data), `"embedding":"`) {
			t.Errorf("base64 answer without base64 vectors: %s", data)
		}
	}
	resp, data := post(t, r, "/v1/completions", `{"model":"qwen2.5-coder:7b","prompt":["a","b"],"n":2,"logprobs":1}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("completion: %d %s", resp.StatusCode, data)
	}
	openaispec.Must(t, "CreateCompletionResponse", data)
	var c struct {
		Choices []struct {
			Index int `json:"index"`
		} `json:"choices"`
	}
	_ = json.Unmarshal(data, &c)
	if len(c.Choices) != 4 {
		t.Errorf("%d choices for 2 prompts x n=2, want 4", len(c.Choices))
	}
	resp, data = post(t, r, "/v1/completions", `{"model":"qwen2.5-coder:7b","prompt":"a","stream":true,"stream_options":{"include_usage":true}}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("streamed completion: %d %s", resp.StatusCode, data)
	}
	events := sseEvents(t, data) // checks the framing and the final [DONE]
	for i, ev := range events {
		// Chunks carry finish_reason null until the last one, as OpenAI's
		// API sends them; the spec lists no null for this shared shape.
		openaispec.Must(t, "CreateCompletionResponse", []byte(strings.ReplaceAll(string(ev), `"finish_reason":null`, `"finish_reason":"stop"`)))
		if i == len(events)-1 && !strings.Contains(string(ev), `"usage":{"prompt_tokens":`) {
			t.Errorf("last chunk %s: want the usage chunk", ev)
		}
	}
}

// TestE2ENewEndpointsViaGateway: the gateway gets the client's body with
// the model (and the batch) spliced in, answers first, and Ollama takes
// over when it fails before anything reached the client.
func TestE2ENewEndpointsViaGateway(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, embedModel, "qwen2.5-coder:7b")
	ol := newOllama(t, embedModel, "qwen2.5-coder:7b")
	r := startApp(t, testConfig(gw.URL, ol.URL))
	client := sdkClient(t, r)
	ctx := ctxFor(t)

	var resp *http.Response
	emb, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfTokens: []int64{9906, 1917}},
	}, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("embeddings.create: %v", err)
	}
	if resp.Header.Get("X-Backend") != "gateway" || len(emb.Data) != 1 || len(emb.Data[0].Embedding) != gw.Dimensions {
		t.Fatalf("served by %q: %d vectors", resp.Header.Get("X-Backend"), len(emb.Data))
	}
	var sent map[string]any
	reqs := gw.RequestsTo("/v1/embeddings")
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &sent); err != nil {
		t.Fatal(err)
	}
	if sent["model"] != embedModel || !cmp.Equal(sent["input"], []any{[]any{float64(9906), float64(1917)}}) {
		t.Errorf("gateway got %v: want the model's name and the token ids as sent", sent)
	}

	stream := client.Completions.NewStreaming(ctx, openai.CompletionNewParams{
		Model: "qwen2.5-coder:7b", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")},
	}, option.WithResponseInto(&resp))
	var text strings.Builder
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			text.WriteString(ch.Text)
		}
	}
	if err := stream.Err(); err != nil || text.String() != gatewayReply || resp.Header.Get("X-Backend") != "gateway" {
		t.Fatalf("streamed completion %q via %q: %v", text.String(), resp.Header.Get("X-Backend"), err)
	}

	gw.Set(func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 503, "overloaded" })
	emb, err = client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")},
	}, option.WithResponseInto(&resp))
	if err != nil || resp.Header.Get("X-Backend") != "ollama" || len(emb.Data) != 1 {
		t.Fatalf("embeddings after the gateway failed: %v, served by %q", err, resp.Header.Get("X-Backend"))
	}
	text.Reset()
	got, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model: "qwen2.5-coder:7b", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")},
	}, option.WithResponseInto(&resp))
	if err != nil || resp.Header.Get("X-Backend") != "ollama" || got.Choices[0].Text != ollamaReply {
		t.Fatalf("completion after the gateway failed: %v, served by %q", err, resp.Header.Get("X-Backend"))
	}
}
