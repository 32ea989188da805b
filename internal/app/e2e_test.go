package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// End-to-end tests: the real application (app.New) in front of the fake
// gateway and the fake Ollama host, driven by OpenAI's official Go SDK, and
// the raw wire output checked against OpenAI's published schemas.

const (
	gatewayReply = "Hello from the gateway!" // gatewaytest's default reply
	ollamaReply  = "Hello from Ollama!"      // ollamatest's default reply
)

// completionID is "chatcmpl-" and 26 base32 characters (crypto/rand.Text).
var completionID = regexp.MustCompile(`^chatcmpl-[A-Z2-7]{26}$`)

func userMessage(text string) []openai.ChatCompletionMessageParamUnion {
	return []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiError asserts err is the SDK's *openai.Error with status and code.
func apiError(t *testing.T, err error, status int, code string) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T): want *openai.Error", err, err)
	}
	if e.StatusCode != status || e.Code != code {
		t.Fatalf("SDK error: status %d code %q, want %d %q (body %s)", e.StatusCode, e.Code, status, code, e.RawJSON())
	}
	return e
}

func TestE2EBufferedViaGateway(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel)
	ol := newOllama(t, upstreamModel)
	r := startApp(t, testConfig(gw.URL, ol.URL))
	client := sdkClient(t, r)

	before := time.Now().Unix()
	var resp *http.Response
	comp, err := client.Chat.Completions.New(ctxFor(t), openai.ChatCompletionNewParams{
		Model:    "gpt-4",
		Messages: userMessage("Say hello."),
	}, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("chat.completions: %v", err)
	}
	if len(comp.Choices) != 1 {
		t.Fatalf("got %d choices, want 1", len(comp.Choices))
	}
	got := struct {
		Content, Role, FinishReason, Model, Object string
		Usage                                      [3]int64
		Backend, UpstreamModel                     string
	}{
		Content:       comp.Choices[0].Message.Content,
		Role:          string(comp.Choices[0].Message.Role),
		FinishReason:  comp.Choices[0].FinishReason,
		Model:         comp.Model,
		Object:        string(comp.Object),
		Usage:         [3]int64{comp.Usage.PromptTokens, comp.Usage.CompletionTokens, comp.Usage.TotalTokens},
		Backend:       resp.Header.Get("X-Backend"),
		UpstreamModel: resp.Header.Get("X-Upstream-Model"),
	}
	want := got
	want.Content, want.Role, want.FinishReason, want.Model, want.Object = gatewayReply, "assistant", "stop", "gpt-4", "chat.completion"
	want.Usage = [3]int64{int64(gw.PromptTokens), int64(gw.CompletionTokens), int64(gw.PromptTokens + gw.CompletionTokens)}
	want.Backend, want.UpstreamModel = "gateway", upstreamModel
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("completion (-want +got):\n%s", diff)
	}
	if !completionID.MatchString(comp.ID) {
		t.Errorf("id %q: want chatcmpl- and 26 base32 characters", comp.ID)
	}
	if comp.Created < before || comp.Created > time.Now().Unix() {
		t.Errorf("created %d: want the time of the request", comp.Created)
	}

	reqs := gw.Requests()
	if len(reqs) != 1 {
		t.Fatalf("gateway received %d chat requests, want 1", len(reqs))
	}
	var body struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		Stream bool `json:"stream"`
	}
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatalf("gateway request body %s: %v", reqs[0].Body, err)
	}
	// A buffered answer is asked of the upstream as a stream and assembled
	// here: the first-byte timeout then bounds the first token only.
	if body.Model != upstreamModel || !body.Stream || len(body.Messages) != 1 ||
		body.Messages[0].Role != "user" || body.Messages[0].Content != "Say hello." {
		t.Errorf("gateway request body %s: want model %q, streamed, the user's message", reqs[0].Body, upstreamModel)
	}
	if got := reqs[0].Header.Get("X-Agent-ID"); got != "e2e-agent" {
		t.Errorf("gateway X-Agent-ID = %q, want %q", got, "e2e-agent")
	}
	if n := len(ol.Requests()); n != 0 {
		t.Errorf("Ollama received %d chat requests, want 0", n)
	}
}

func TestE2EStreamViaOllama(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, upstreamModel)
	r := startApp(t, testConfig("", ol.URL)) // no gateway: Ollama is the only backend
	client := sdkClient(t, r)

	var resp *http.Response
	stream := client.Chat.Completions.NewStreaming(ctxFor(t), openai.ChatCompletionNewParams{
		Model:         "gpt-4",
		Messages:      userMessage("Say hello."),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}, option.WithResponseInto(&resp))
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		chunk := stream.Current()
		if !acc.AddChunk(chunk) {
			t.Fatalf("accumulator rejected chunk %d: %s", chunks, chunk.RawJSON())
		}
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if len(acc.Choices) != 1 {
		t.Fatalf("accumulated %d choices, want 1", len(acc.Choices))
	}
	got := struct {
		Content, FinishReason, Model, Backend string
		Usage                                 [3]int64
	}{
		acc.Choices[0].Message.Content, acc.Choices[0].FinishReason, acc.Model, resp.Header.Get("X-Backend"),
		[3]int64{acc.Usage.PromptTokens, acc.Usage.CompletionTokens, acc.Usage.TotalTokens},
	}
	want := got
	want.Content, want.FinishReason, want.Model, want.Backend = ollamaReply, "stop", "gpt-4", "ollama"
	want.Usage = [3]int64{int64(ol.PromptEvalCount), int64(ol.EvalCount), int64(ol.PromptEvalCount + ol.EvalCount)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accumulated stream (-want +got):\n%s", diff)
	}
	if !completionID.MatchString(acc.ID) {
		t.Errorf("id %q: want chatcmpl- and 26 base32 characters", acc.ID)
	}
	// "Hello ", "from ", "Ollama!", the finishing chunk and the usage chunk.
	if chunks != 5 {
		t.Errorf("got %d chunks, want 5", chunks)
	}
	if got := ol.LastRequest()["model"]; got != upstreamModel {
		t.Errorf("Ollama was asked for model %v, want %q", got, upstreamModel)
	}
}

// ollamaModified is the modified_at ollamatest reports for every model.
var ollamaModified = time.Date(2025, 5, 10, 15, 6, 48, 0, time.UTC).Unix()

var aliases = []string{"gpt-3.5-turbo", "gpt-4", "gpt-4-mini", "gpt-4-turbo", "gpt-4o", "gpt-4o-mini",
	"text-embedding-3-large", "text-embedding-3-small", "text-embedding-ada-002"}

func TestE2EModels(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, "qwen2.5:32b", "llama3.1:8b")
	ol := newOllama(t, "qwen2.5:32b", "qwen2.5:3b", "llama3.1:8b")
	r := startApp(t, testConfig(gw.URL, ol.URL))
	client := sdkClient(t, r)
	ctx := ctxFor(t)

	page, err := client.Models.List(ctx)
	if err != nil {
		t.Fatalf("models.list: %v", err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy == "" {
			t.Errorf("model %q: object %q owned_by %q", m.ID, m.Object, m.OwnedBy)
		}
	}
	// The aliases sorted, then each backend's models in backend order, once.
	want := append(append([]string(nil), aliases...), "qwen2.5:32b", "llama3.1:8b", "qwen2.5:3b")
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("model ids (-want +got):\n%s", diff)
	}

	type model struct {
		ID, Object, OwnedBy string
		Created             int64
	}
	for _, tc := range []struct {
		id   string
		want model
	}{
		// An alias is dated by its target's entry on the first backend listing it.
		{"gpt-4", model{"gpt-4", "model", "chatgpt-api", 1715367049}},
		{"gpt-4o-mini", model{"gpt-4o-mini", "model", "chatgpt-api", ollamaModified}},
		{"llama3.1:8b", model{"llama3.1:8b", "model", "gateway", 1715367049}},
		{"qwen2.5:3b", model{"qwen2.5:3b", "model", "ollama", ollamaModified}},
	} {
		m, err := client.Models.Get(ctx, tc.id)
		if err != nil {
			t.Errorf("models.get %q: %v", tc.id, err)
			continue
		}
		got := model{m.ID, string(m.Object), m.OwnedBy, m.Created}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("models.get %q (-want +got):\n%s", tc.id, diff)
		}
	}

	_, err = client.Models.Get(ctx, "no-such-model")
	e := apiError(t, err, http.StatusNotFound, "model_not_found")
	if e.Type != "invalid_request_error" || !strings.Contains(e.Message, "no-such-model") {
		t.Errorf("error type %q message %q", e.Type, e.Message)
	}
}

func TestE2EUnknownModel(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel)
	ol := newOllama(t, upstreamModel)
	r := startApp(t, testConfig(gw.URL, ol.URL))
	client := sdkClient(t, r)

	_, err := client.Chat.Completions.New(ctxFor(t), openai.ChatCompletionNewParams{
		Model:    "no-such-model",
		Messages: userMessage("Hi"),
	})
	e := apiError(t, err, http.StatusNotFound, "model_not_found")
	if e.Param != "model" || e.Type != "invalid_request_error" || !strings.Contains(e.Message, "`no-such-model`") {
		t.Errorf("error param %q type %q message %q", e.Param, e.Type, e.Message)
	}

	// Streamed, the error comes before any event, as an HTTP status.
	stream := client.Chat.Completions.NewStreaming(ctxFor(t), openai.ChatCompletionNewParams{
		Model:    "no-such-model",
		Messages: userMessage("Hi"),
	})
	defer stream.Close()
	if stream.Next() {
		t.Fatalf("streamed request for an unknown model produced a chunk: %s", stream.Current().RawJSON())
	}
	apiError(t, stream.Err(), http.StatusNotFound, "model_not_found")

	if n, m := len(gw.Requests()), len(ol.Requests()); n+m != 0 {
		t.Errorf("backends received %d + %d chat requests, want none", n, m)
	}
}

func TestE2EFallback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(t *testing.T, cfg *app.Config)
		minWait time.Duration // the fallback cannot come sooner
	}{
		{
			name: "gateway answers 500",
			setup: func(t *testing.T, cfg *app.Config) {
				gw := newGateway(t, upstreamModel)
				gw.Status, gw.ErrorMessage = http.StatusInternalServerError, "boom"
				cfg.Gateway.URL = gw.URL
			},
		},
		{
			name: "gateway down",
			setup: func(t *testing.T, cfg *app.Config) {
				cfg.Gateway.URL = downURL(t)
			},
		},
		{
			name: "gateway hangs past the upstream timeout",
			setup: func(t *testing.T, cfg *app.Config) {
				gw := newGateway(t, upstreamModel)
				gw.Hang = true
				cfg.Gateway.URL = gw.URL
				cfg.UpstreamTimeout = app.Duration(300 * time.Millisecond)
			},
			minWait: 300 * time.Millisecond,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ol := newOllama(t, upstreamModel)
			cfg := testConfig("", ol.URL)
			tc.setup(t, &cfg)
			r := startApp(t, cfg)
			client := sdkClient(t, r)
			params := openai.ChatCompletionNewParams{Model: "gpt-4", Messages: userMessage("Hi")}

			t.Run("buffered", func(t *testing.T) {
				var resp *http.Response
				start := time.Now()
				comp, err := client.Chat.Completions.New(ctxFor(t), params, option.WithResponseInto(&resp))
				elapsed := time.Since(start)
				if err != nil {
					t.Fatalf("chat.completions: %v", err)
				}
				got := []string{comp.Choices[0].Message.Content, resp.Header.Get("X-Backend"), resp.Header.Get("X-Upstream-Model"), comp.Model}
				if diff := cmp.Diff([]string{ollamaReply, "ollama", upstreamModel, "gpt-4"}, got); diff != "" {
					t.Errorf("content, X-Backend, X-Upstream-Model, model (-want +got):\n%s", diff)
				}
				if elapsed < tc.minWait || elapsed > tc.minWait+3*time.Second {
					t.Errorf("answered after %v, want %v plus a little", elapsed, tc.minWait)
				}
			})
			t.Run("streamed", func(t *testing.T) {
				var resp *http.Response
				stream := client.Chat.Completions.NewStreaming(ctxFor(t), params, option.WithResponseInto(&resp))
				defer stream.Close()
				var acc openai.ChatCompletionAccumulator
				for stream.Next() {
					acc.AddChunk(stream.Current())
				}
				if err := stream.Err(); err != nil {
					t.Fatalf("stream: %v", err)
				}
				if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != ollamaReply || acc.Choices[0].FinishReason != "stop" {
					t.Errorf("accumulated %+v, want %q and stop", acc.Choices, ollamaReply)
				}
				if got := resp.Header.Get("X-Backend"); got != "ollama" {
					t.Errorf("X-Backend = %q, want ollama", got)
				}
			})

			if n := len(ol.Requests()); n != 2 {
				t.Errorf("Ollama received %d chat requests, want 2", n)
			}
			fellBack := r.Logs.FilterMessage("upstream attempt failed, falling back to the next backend").
				FilterField(zap.String("backend", "gateway")).Len()
			if fellBack != 2 {
				t.Errorf("logged %d fallbacks from the gateway, want 2; logs: %v", fellBack, r.Logs.All())
			}
		})
	}
}

// TestE2ENoFallbackAfterFirstByte: once a stream reached the client, a
// broken backend ends it with an in-band error; no other backend is tried.
func TestE2ENoFallbackAfterFirstByte(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel)
	gw.Pieces, gw.BreakAfter = []string{"one ", "two ", "three "}, 2
	ol := newOllama(t, upstreamModel)
	r := startApp(t, testConfig(gw.URL, ol.URL))
	client := sdkClient(t, r)

	stream := client.Chat.Completions.NewStreaming(ctxFor(t), openai.ChatCompletionNewParams{Model: "gpt-4", Messages: userMessage("Count.")})
	defer stream.Close()
	var content strings.Builder
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 {
			content.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if stream.Err() == nil || !strings.Contains(stream.Err().Error(), "upstream_") {
		t.Errorf("stream error %v: want the in-band error the service sent", stream.Err())
	}
	if got := content.String(); got != "one two " {
		t.Errorf("content %q, want what the gateway sent before breaking, %q", got, "one two ")
	}
	if n := len(ol.Requests()); n != 0 {
		t.Errorf("Ollama received %d chat requests after the stream started, want 0", n)
	}
}

// --- Raw wire output against OpenAI's published schemas -------------------

// post sends body to the service and returns the response and its body.
func post(t *testing.T, r *running, path, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(t), http.MethodPost, r.BaseURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func get(t *testing.T, r *running, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(t), http.MethodGet, r.BaseURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := newHTTPClient(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL.Path, err)
	}
	return resp, body
}

func TestWireBufferedMatchesSpec(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel)
	r := startApp(t, testConfig(gw.URL, ""))
	resp, body := post(t, r, "/v1/chat/completions", `{"model":"gpt-4","messages":[{"role":"user","content":"Hi"}]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	openaispec.Must(t, "CreateChatCompletionResponse", body)
}

func TestWireErrorMatchesSpec(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel)
	r := startApp(t, testConfig(gw.URL, ""))
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"unknown model", http.MethodPost, "/v1/chat/completions", `{"model":"no-such-model","messages":[{"role":"user","content":"Hi"}]}`, http.StatusNotFound},
		{"unknown streamed model", http.MethodPost, "/v1/chat/completions", `{"model":"no-such-model","stream":true,"messages":[{"role":"user","content":"Hi"}]}`, http.StatusNotFound},
		{"malformed JSON", http.MethodPost, "/v1/chat/completions", `{"model":`, http.StatusBadRequest},
		{"unknown model id", http.MethodGet, "/v1/models/no-such-model", "", http.StatusNotFound},
		{"unknown URL", http.MethodGet, "/v1/nothing-here", "", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			var body []byte
			if tc.method == http.MethodPost {
				resp, body = post(t, r, tc.path, tc.body)
			} else {
				resp, body = get(t, r, tc.path)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			openaispec.Must(t, "ErrorResponse", body)
		})
	}
}

func TestWireModelListMatchesSpec(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel, "llama3.1:8b")
	ol := newOllama(t, "qwen2.5:3b")
	r := startApp(t, testConfig(gw.URL, ol.URL))
	resp, body := get(t, r, "/v1/models")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	openaispec.Must(t, "ListModelsResponse", body)
	for _, id := range []string{"gpt-4", "qwen2.5:3b"} {
		resp, body := get(t, r, "/v1/models/"+id)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/models/%s: status %d: %s", id, resp.StatusCode, body)
		}
		openaispec.Must(t, "Model", body)
	}
}

// wireChunk is a chat.completion.chunk as sent.
type wireChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// sseEvents checks the framing of a complete event stream and returns each
// event's data except the final [DONE]: every event is exactly one line
// "data: <compact JSON>" followed by a blank line, and the stream ends with
// "data: [DONE]\n\n".
func sseEvents(t *testing.T, body []byte) [][]byte {
	t.Helper()
	const done = "data: [DONE]\n\n"
	if !bytes.HasSuffix(body, []byte(done)) {
		t.Fatalf("stream does not end with %q:\n%s", done, body)
	}
	if !bytes.HasPrefix(body, []byte("data: ")) {
		t.Fatalf("stream does not start with a data line:\n%s", body)
	}
	body = bytes.TrimSuffix(body, []byte(done))
	if len(body) == 0 {
		t.Fatal("stream has no event before [DONE]")
	}
	if !bytes.HasSuffix(body, []byte("\n\n")) {
		t.Fatalf("the event before [DONE] is not terminated by a blank line:\n%s", body)
	}
	var out [][]byte
	for _, ev := range bytes.Split(bytes.TrimSuffix(body, []byte("\n\n")), []byte("\n\n")) {
		if bytes.ContainsAny(ev, "\r\n") {
			t.Errorf("event of more than one line (id:, event:, comments or a split payload are not expected): %q", ev)
			continue
		}
		data, ok := bytes.CutPrefix(ev, []byte("data: "))
		if !ok {
			t.Errorf("event is not a data line: %q", ev)
			continue
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, data); err != nil {
			t.Errorf("data is not JSON: %v: %s", err, data)
			continue
		}
		if !bytes.Equal(compact.Bytes(), data) {
			t.Errorf("data is not compact JSON: %s", data)
		}
		out = append(out, data)
	}
	return out
}

func TestWireStreamFraming(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel)
	ol := newOllama(t, upstreamModel)
	gwApp := startApp(t, testConfig(gw.URL, ""))
	olApp := startApp(t, testConfig("", ol.URL))
	type usage struct{ Prompt, Completion, Total int }
	for _, tc := range []struct {
		name         string
		r            *running
		includeUsage bool
		reply        string
		usage        usage
	}{
		{"gateway with usage", gwApp, true, gatewayReply, usage{gw.PromptTokens, gw.CompletionTokens, gw.PromptTokens + gw.CompletionTokens}},
		{"gateway without usage", gwApp, false, gatewayReply, usage{}},
		{"ollama with usage", olApp, true, ollamaReply, usage{ol.PromptEvalCount, ol.EvalCount, ol.PromptEvalCount + ol.EvalCount}},
		{"ollama without usage", olApp, false, ollamaReply, usage{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := `{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"Hi"}]}`
			if tc.includeUsage {
				req = `{"model":"gpt-4","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}`
			}
			// The client offers compression; an event stream must not use it.
			resp, body := post(t, tc.r, "/v1/chat/completions", req, "Accept-Encoding", "gzip, deflate, br")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			hdr := map[string]string{}
			for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering", "Content-Encoding"} {
				hdr[k] = resp.Header.Get(k)
			}
			wantHdr := map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Content-Encoding": ""}
			if diff := cmp.Diff(wantHdr, hdr); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}

			events := sseEvents(t, body)
			var chunks []wireChunk
			for i, data := range events {
				openaispec.Must(t, "CreateChatCompletionStreamResponse", data)
				var c wireChunk
				if err := json.Unmarshal(data, &c); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				chunks = append(chunks, c)
			}
			first := chunks[0]
			if !completionID.MatchString(first.ID) {
				t.Errorf("id %q: want chatcmpl- and 26 base32 characters", first.ID)
			}
			if len(first.Choices) != 1 || first.Choices[0].Delta.Role == nil || *first.Choices[0].Delta.Role != "assistant" {
				t.Errorf("first chunk %s: want a delta with role assistant", events[0])
			}
			var content strings.Builder
			lastContent := -1 // index of the last chunk with choices
			usageChunks := 0
			for i, c := range chunks {
				if c.ID != first.ID || c.Created != first.Created || c.Model != "gpt-4" || c.Object != "chat.completion.chunk" {
					t.Errorf("chunk %d: id %q created %d model %q object %q; want %q %d gpt-4 chat.completion.chunk",
						i, c.ID, c.Created, c.Model, c.Object, first.ID, first.Created)
				}
				if len(c.Choices) == 0 {
					usageChunks++
					if !bytes.Contains(events[i], []byte(`"choices":[]`)) || c.Usage == nil {
						t.Errorf("chunk %d %s: a chunk without choices must be the usage chunk with \"choices\":[]", i, events[i])
					}
					continue
				}
				if c.Usage != nil {
					t.Errorf("chunk %d %s: usage on a content chunk", i, events[i])
				}
				if i > 0 && c.Choices[0].Delta.Role != nil {
					t.Errorf("chunk %d %s: role after the first chunk", i, events[i])
				}
				if lastContent >= 0 && chunks[lastContent].Choices[0].FinishReason != nil {
					t.Errorf("chunk %d %s: a chunk after the one carrying finish_reason", i, events[i])
				}
				if c.Choices[0].Delta.Content != nil {
					content.WriteString(*c.Choices[0].Delta.Content)
				}
				lastContent = i
			}
			if lastContent < 0 {
				t.Fatal("no content chunk")
			}
			if fr := chunks[lastContent].Choices[0].FinishReason; fr == nil || *fr != "stop" {
				t.Errorf("last content chunk %s: want finish_reason stop", events[lastContent])
			}
			if content.String() != tc.reply {
				t.Errorf("content %q, want %q", content.String(), tc.reply)
			}
			if !tc.includeUsage {
				if usageChunks != 0 {
					t.Errorf("%d usage chunks without stream_options.include_usage, want none", usageChunks)
				}
				return
			}
			last := chunks[len(chunks)-1]
			if usageChunks != 1 || len(last.Choices) != 0 || last.Usage == nil {
				t.Fatalf("with include_usage: %d usage chunks, last %s; want exactly one, last before [DONE]", usageChunks, events[len(events)-1])
			}
			if diff := cmp.Diff(tc.usage, usage{last.Usage.PromptTokens, last.Usage.CompletionTokens, last.Usage.TotalTokens}); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}
