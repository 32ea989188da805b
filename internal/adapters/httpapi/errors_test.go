package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/httpapi"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
)

const msgUser = `"messages":[{"role":"user","content":"hi"}]`

// TestChatValidationErrors sends malformed requests and checks each gets
// OpenAI's 400 invalid_request_error naming the offending parameter, and
// that nothing reaches a backend.
func TestChatValidationErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessConfig{})
	tests := []struct {
		name  string
		body  string
		param string // "" means null
		has   string // substring of the message
	}{
		{name: "empty body", body: "", param: ""},
		{name: "malformed JSON", body: `{"model":"gpt-4",` + msgUser + `,`, param: "", has: "JSON"},
		{name: "truncated JSON", body: `{"model":"gpt-4","messages":[`, param: ""},
		{name: "body is an array", body: `[{"model":"gpt-4"}]`, param: ""},
		{name: "invalid UTF-8", body: "{\"model\":\"gpt-4\"," + `"messages":[{"role":"user","content":"` + "\xff\xfe" + `"}]}`, param: "", has: "UTF-8"},
		{name: "missing model", body: `{` + msgUser + `}`, param: "model", has: "model"},
		{name: "null model", body: `{"model":null,` + msgUser + `}`, param: "model"},
		{name: "model not a string", body: `{"model":42,` + msgUser + `}`, param: "model", has: "string"},
		{name: "model is an object", body: `{"model":{"id":"gpt-4"},` + msgUser + `}`, param: "model"},
		{name: "empty model", body: `{"model":"  ",` + msgUser + `}`, param: "model"},
		{name: "missing messages", body: `{"model":"gpt-4"}`, param: "messages", has: "messages"},
		{name: "null messages", body: `{"model":"gpt-4","messages":null}`, param: "messages"},
		{name: "empty messages", body: `{"model":"gpt-4","messages":[]}`, param: "messages", has: "empty"},
		{name: "messages not an array", body: `{"model":"gpt-4","messages":"hi"}`, param: "messages"},
		{name: "message not an object", body: `{"model":"gpt-4","messages":["hi"]}`, param: "messages[0]"},
		{name: "missing role", body: `{"model":"gpt-4","messages":[{"content":"hi"}]}`, param: "messages[0].role"},
		{name: "bad role", body: `{"model":"gpt-4","messages":[{"role":"robot","content":"hi"}]}`, param: "messages[0].role", has: "robot"},
		{name: "role not a string", body: `{"model":"gpt-4","messages":[{"role":7,"content":"hi"}]}`, param: "messages[0].role"},
		{name: "bad role of second message", body: `{"model":"gpt-4","messages":[{"role":"user","content":"hi"},{"role":"wizard","content":"x"}]}`, param: "messages[1].role"},
		{name: "missing content", body: `{"model":"gpt-4","messages":[{"role":"user"}]}`, param: "messages[0].content"},
		{name: "content a number", body: `{"model":"gpt-4","messages":[{"role":"user","content":5}]}`, param: "messages[0].content"},
		{name: "content an object", body: `{"model":"gpt-4","messages":[{"role":"user","content":{"text":"hi"}}]}`, param: "messages[0].content"},
		{name: "content a boolean", body: `{"model":"gpt-4","messages":[{"role":"user","content":true}]}`, param: "messages[0].content"},
		{name: "unsupported part type", body: `{"model":"gpt-4","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"f"}}]}]}`, param: "messages[0].content[0].type", has: "file"},
		{name: "unsupported second part", body: `{"model":"gpt-4","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"input_audio","input_audio":{"data":"","format":"wav"}}]}]}`, param: "messages[0].content[1].type"},
		{name: "part not an object", body: `{"model":"gpt-4","messages":[{"role":"user","content":["hi"]}]}`, param: "messages[0].content[0]"},
		{name: "part without text", body: `{"model":"gpt-4","messages":[{"role":"user","content":[{"type":"text"}]}]}`, param: "messages[0].content[0].text"},
		{name: "tool message without tool_call_id", body: `{"model":"gpt-4","messages":[{"role":"user","content":"hi"},{"role":"tool","content":"42"}]}`, param: "messages[1].tool_call_id"},
		{name: "temperature 3", body: `{"model":"gpt-4",` + msgUser + `,"temperature":3}`, param: "temperature", has: "temperature"},
		{name: "temperature negative", body: `{"model":"gpt-4",` + msgUser + `,"temperature":-0.5}`, param: "temperature"},
		{name: "temperature a string", body: `{"model":"gpt-4",` + msgUser + `,"temperature":"hot"}`, param: "temperature"},
		{name: "top_p above 1", body: `{"model":"gpt-4",` + msgUser + `,"top_p":1.5}`, param: "top_p"},
		{name: "presence_penalty above 2", body: `{"model":"gpt-4",` + msgUser + `,"presence_penalty":2.5}`, param: "presence_penalty"},
		{name: "frequency_penalty below -2", body: `{"model":"gpt-4",` + msgUser + `,"frequency_penalty":-3}`, param: "frequency_penalty"},
		{name: "max_tokens 0", body: `{"model":"gpt-4",` + msgUser + `,"max_tokens":0}`, param: "max_tokens", has: ">= 1"},
		{name: "max_tokens fractional", body: `{"model":"gpt-4",` + msgUser + `,"max_tokens":1.5}`, param: "max_tokens"},
		{name: "max_completion_tokens negative", body: `{"model":"gpt-4",` + msgUser + `,"max_completion_tokens":-1}`, param: "max_completion_tokens"},
		{name: "stop with 5 entries", body: `{"model":"gpt-4",` + msgUser + `,"stop":["a","b","c","d","e"]}`, param: "stop", has: "4"},
		{name: "stop a number", body: `{"model":"gpt-4",` + msgUser + `,"stop":5}`, param: "stop"},
		{name: "stop array of numbers", body: `{"model":"gpt-4",` + msgUser + `,"stop":[1,2]}`, param: "stop"},
		{name: "stream yes", body: `{"model":"gpt-4",` + msgUser + `,"stream":"yes"}`, param: "stream", has: "boolean"},
		{name: "stream a number", body: `{"model":"gpt-4",` + msgUser + `,"stream":1}`, param: "stream"},
		{name: "include_usage wrong type", body: `{"model":"gpt-4",` + msgUser + `,"stream":true,"stream_options":{"include_usage":"yes"}}`, param: "stream_options.include_usage"},
		{name: "stream_options not an object", body: `{"model":"gpt-4",` + msgUser + `,"stream":true,"stream_options":true}`, param: "stream_options"},
		{name: "seed a string", body: `{"model":"gpt-4",` + msgUser + `,"seed":"42"}`, param: "seed"},
		{name: "user a number", body: `{"model":"gpt-4",` + msgUser + `,"user":12}`, param: "user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.chat(t, tt.body, nil)
			want := wantError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: tt.param}
			if tt.has != "" {
				want.MessageHas = []string{tt.has}
			}
			checkError(t, resp, body, want)
			if resp.Header.Get(httpapi.HeaderRequestID) == "" {
				t.Error("no X-Request-ID on the error answer")
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := resp.Header.Get(httpapi.HeaderBackend); got != "" {
				t.Errorf("X-Backend = %q on a rejected request", got)
			}
		})
	}
	if n, m := len(h.gw.Requests()), len(h.ol.Requests()); n+m != 0 {
		t.Errorf("invalid requests reached the backends: gateway %d, ollama %d", n, m)
	}
}

// TestBodyLimit checks MaxBodyBytes: a body of exactly the limit is served,
// one byte more is refused with 413 in OpenAI's shape.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 2048
	h := newHarness(t, harnessConfig{MaxBodyBytes: limit})
	sized := func(n int) string {
		base := chatBody(aliasShared, `"user":""`)
		pad := n - len(base)
		return chatBody(aliasShared, `"user":"`+strings.Repeat("x", pad)+`"`)
	}
	t.Run("at the limit", func(t *testing.T) {
		body := sized(limit)
		if len(body) != limit {
			t.Fatalf("body is %d bytes, want %d", len(body), limit)
		}
		resp, data := h.chat(t, body, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200; body: %s", resp.StatusCode, data)
		}
	})
	for _, n := range []int{limit + 1, 4 * limit} {
		t.Run(fmt.Sprintf("%d bytes", n), func(t *testing.T) {
			resp, data := h.chat(t, sized(n), nil)
			checkError(t, resp, data, wantError{
				Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
				MessageHas: []string{fmt.Sprint(limit)},
			})
		})
	}
	if got := len(h.gw.Requests()); got != 1 {
		t.Errorf("gateway got %d chat requests, want 1 (the one at the limit)", got)
	}
}

// TestRoutingErrors checks unknown routes (404) and wrong methods (405 with
// an Allow header) answer in OpenAI's error shape.
func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessConfig{})
	tests := []struct {
		method, path string
		want         wantError
		allow        string
	}{
		{method: "GET", path: "/v1/nope", want: wantError{Status: 404, Type: "invalid_request_error", Code: "unknown_url", MessageHas: []string{"GET /v1/nope"}}},
		{method: "POST", path: "/v1/completions", want: wantError{Status: 404, Type: "invalid_request_error", Code: "unknown_url"}},
		{method: "POST", path: "/v1/responses", want: wantError{Status: 404, Type: "invalid_request_error", Code: "unknown_url"}},
		{method: "GET", path: "/", want: wantError{Status: 404, Type: "invalid_request_error", Code: "unknown_url"}},
		{method: "DELETE", path: "/v1/chat/completions", allow: "POST", want: wantError{Status: 405, Type: "invalid_request_error", Code: "method_not_allowed", MessageHas: []string{"DELETE /v1/chat/completions"}}},
		{method: "GET", path: "/v1/chat/completions", allow: "POST", want: wantError{Status: 405, Type: "invalid_request_error", Code: "method_not_allowed"}},
		{method: "PUT", path: "/v1/chat/completions", allow: "POST", want: wantError{Status: 405, Type: "invalid_request_error", Code: "method_not_allowed"}},
		{method: "POST", path: "/v1/models", allow: "GET", want: wantError{Status: 405, Type: "invalid_request_error", Code: "method_not_allowed"}},
		{method: "POST", path: "/health", allow: "GET, HEAD", want: wantError{Status: 405, Type: "invalid_request_error", Code: "method_not_allowed"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := h.do(t, tt.method, tt.path, "", nil)
			checkError(t, resp, body, tt.want)
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

// TestUpstreamErrors drives real backend failures through the fakes and
// checks the status, type, code and message the client receives.
func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	const short = 100 * time.Millisecond
	tests := []struct {
		name   string
		cfg    harnessConfig
		model  string
		stream bool
		want   wantError
		// requests each fake must have received
		gwReqs, olReqs int
	}{
		{
			name:  "unknown model",
			model: "nope:1b",
			want:  wantError{Status: 404, Type: "invalid_request_error", Param: "model", Code: "model_not_found", MessageHas: []string{"`nope:1b`"}},
		},
		{
			name: "both 500",
			cfg: harnessConfig{
				Gateway: func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 500, "gateway exploded" },
				Ollama:  func(s *ollamatest.Server) { s.Status, s.ErrorText = 500, "ollama exploded" },
			},
			model: aliasShared,
			want: wantError{Status: 502, Type: "server_error", Code: "upstream_error",
				MessageHas: []string{"`gpt-4`", "gateway: server error", "ollama: server error"}, MessageLacks: []string{"exploded"}},
			gwReqs: 1, olReqs: 1,
		},
		{
			name: "both 500, streamed",
			cfg: harnessConfig{
				Gateway: func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 500, "gateway exploded" },
				Ollama:  func(s *ollamatest.Server) { s.Status, s.ErrorText = 500, "ollama exploded" },
			},
			model: aliasShared, stream: true,
			want:   wantError{Status: 502, Type: "server_error", Code: "upstream_error", MessageHas: []string{"gateway", "ollama"}},
			gwReqs: 1, olReqs: 1,
		},
		{
			name:  "both unreachable",
			cfg:   harnessConfig{AfterCheck: func(h *harness) { h.gw.Close(); h.ol.Close() }},
			model: aliasShared,
			want: wantError{Status: 503, Type: "server_error", Code: "upstream_unavailable",
				MessageHas: []string{"gateway: unreachable", "ollama: unreachable"}},
		},
		{
			name:  "both unreachable, never seen up",
			cfg:   harnessConfig{GatewayDown: true, OllamaDown: true},
			model: aliasShared,
			want:  wantError{Status: 503, Type: "server_error", Code: "upstream_unavailable", MessageHas: []string{"gateway", "ollama"}},
		},
		{
			name: "both hang past the timeout",
			cfg: harnessConfig{
				GatewayTimeout: short, OllamaTimeout: short,
				Gateway: func(s *gatewaytest.Server) { s.Hang = true },
				Ollama:  func(s *ollamatest.Server) { s.Hang = true },
			},
			model: aliasShared,
			want: wantError{Status: 504, Type: "server_error", Code: "upstream_timeout",
				MessageHas: []string{"gateway: timed out", "ollama: timed out"}},
			gwReqs: 1, olReqs: 1,
		},
		{
			name: "both hang before the first frame, streamed",
			cfg: harnessConfig{
				GatewayTimeout: short, OllamaTimeout: short,
				Gateway: func(s *gatewaytest.Server) { s.Hang = true },
				Ollama:  func(s *ollamatest.Server) { s.Hang = true },
			},
			model: aliasShared, stream: true,
			want:   wantError{Status: 504, Type: "server_error", Code: "upstream_timeout"},
			gwReqs: 1, olReqs: 1,
		},
		{
			name: "both rate limited",
			cfg: harnessConfig{
				Gateway: func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 429, "slow down" },
				Ollama:  func(s *ollamatest.Server) { s.Status, s.ErrorText = 429, "busy" },
			},
			model: aliasShared,
			want: wantError{Status: 429, Type: "rate_limit_exceeded", Code: "rate_limit_exceeded",
				MessageHas: []string{"gateway: rate limited", "ollama: rate limited"}, MessageLacks: []string{"slow down", "busy"}},
			gwReqs: 1, olReqs: 1,
		},
		{
			name: "mixed failures",
			cfg: harnessConfig{
				OllamaTimeout: short,
				Gateway:       func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 503, "overloaded" },
				Ollama:        func(s *ollamatest.Server) { s.Hang = true },
			},
			model: aliasShared,
			want: wantError{Status: 502, Type: "server_error", Code: "upstream_error",
				MessageHas: []string{"gateway: server error", "ollama: timed out"}, MessageLacks: []string{"overloaded"}},
			gwReqs: 1, olReqs: 1,
		},
		{
			// The fake labels every error it is told to send "server_error";
			// the service keeps the upstream's status, message and type.
			name:   "gateway 400 passes through without fallback",
			cfg:    harnessConfig{Gateway: func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 400, "Invalid 'logit_bias': too many entries." }},
			model:  aliasShared,
			want:   wantError{Status: 400, Type: "server_error"},
			gwReqs: 1, olReqs: 0,
		},
		{
			name:   "ollama plain-string 400 re-wrapped",
			cfg:    harnessConfig{Ollama: func(s *ollamatest.Server) { s.Status, s.ErrorText = 400, "invalid options: num_ctx must be positive" }},
			model:  aliasOllama,
			want:   wantError{Status: 400, Type: "invalid_request_error"},
			olReqs: 1,
		},
		{
			name:   "ollama plain-string 400 re-wrapped, streamed",
			cfg:    harnessConfig{Ollama: func(s *ollamatest.Server) { s.Status, s.ErrorText = 400, "invalid options: num_ctx must be positive" }},
			model:  aliasOllama,
			stream: true,
			want:   wantError{Status: 400, Type: "invalid_request_error"},
			olReqs: 1,
		},
		{
			name:  "ollama 500 as the only backend",
			cfg:   harnessConfig{Ollama: func(s *ollamatest.Server) { s.Status, s.ErrorText = 500, "llama runner process has terminated" }},
			model: aliasOllama,
			want: wantError{Status: 502, Type: "server_error", Code: "upstream_error",
				MessageHas: []string{"ollama: server error"}, MessageLacks: []string{"llama runner"}},
			olReqs: 1,
		},
		{
			name:  "gateway refuses the service's credentials",
			cfg:   harnessConfig{Gateway: func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 401, "Incorrect API key provided." }},
			model: modelGateway,
			want: wantError{Status: 502, Type: "server_error", Code: "upstream_error",
				MessageHas: []string{"gateway: refused this service's credentials"}, MessageLacks: []string{"Incorrect API key"}},
			gwReqs: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.cfg)
			extra := ""
			if tt.stream {
				extra = `"stream":true`
			}
			resp, body := h.chat(t, chatBody(tt.model, extra), nil)
			got := checkError(t, resp, body, tt.want)
			if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("a request that failed before the first byte got Content-Type %q", ct)
			}
			if b := resp.Header.Get(httpapi.HeaderBackend); b != "" {
				t.Errorf("X-Backend = %q on a failed request", b)
			}
			for _, secret := range []string{"127.0.0.1", "http://"} {
				if strings.Contains(got.Message, secret) {
					t.Errorf("error message exposes a backend address: %q", got.Message)
				}
			}
			if g, o := len(h.gw.Requests()), len(h.ol.Requests()); g != tt.gwReqs || o != tt.olReqs {
				t.Errorf("chat requests: gateway %d, ollama %d; want %d, %d", g, o, tt.gwReqs, tt.olReqs)
			}
		})
	}
}

// TestUpstreamClientErrorMessages checks the exact body of a 4xx the
// upstream blamed on the client.
func TestUpstreamClientErrorMessages(t *testing.T) {
	t.Parallel()
	t.Run("gateway", func(t *testing.T) {
		t.Parallel()
		const msg = "Invalid 'logit_bias': too many entries."
		h := newHarness(t, harnessConfig{Gateway: func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 400, msg }})
		resp, body := h.chat(t, chatBody(aliasShared, ""), nil)
		got := checkError(t, resp, body, wantError{Status: 400, Type: "server_error"})
		if got.Message != msg {
			t.Errorf("message = %q, want the upstream's %q", got.Message, msg)
		}
	})
	t.Run("ollama", func(t *testing.T) {
		t.Parallel()
		const msg = "invalid options: num_ctx must be positive"
		h := newHarness(t, harnessConfig{Ollama: func(s *ollamatest.Server) { s.Status, s.ErrorText = 400, msg }})
		resp, body := h.chat(t, chatBody(aliasOllama, ""), nil)
		// Ollama sends {"error":"<text>"}; the client gets OpenAI's object.
		got := checkError(t, resp, body, wantError{Status: 400, Type: "invalid_request_error"})
		if got.Message != msg {
			t.Errorf("message = %q, want Ollama's %q", got.Message, msg)
		}
	})
}

// panicChatter is a Chatter that panics: before anything is written,
// or, for model "after-first-chunk", once a stream has started.
type panicChatter struct{}

func (panicChatter) Chat(context.Context, domain.ChatRequest) (domain.Completion, domain.Route, error) {
	panic("completer exploded")
}

func (panicChatter) StreamChat(_ context.Context, req *domain.ChatRequest, out dispatch.Out[domain.Chunk]) (domain.Route, error) {
	if req.Model == "after-first-chunk" {
		out.Begin(domain.Route{Backend: "double", Model: req.Model})
		if err := out.Send(domain.Chunk{Content: "partial"}); err != nil {
			return domain.Route{}, err
		}
		_ = out.Flush()
	}
	panic("completer exploded mid-stream")
}

// TestPanicRecovery checks a panicking handler yields a logged 500 in
// OpenAI's shape (or a cut stream once it started), and the server keeps
// serving.
func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.ErrorLevel)
	router := httpapi.NewRouter(
		httpapi.Options{CORSOrigins: []string{"*"}, MaxBodyBytes: 1 << 20},
		httpapi.Deps{Chat: panicChatter{}, Log: zap.New(core)},
	)
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	h := &harness{srv: srv, client: srv.Client()}

	for _, tt := range []struct{ name, body string }{
		{"buffered", chatBody("gpt-4", "")},
		{"stream before the first chunk", chatBody("gpt-4", `"stream":true`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.chat(t, tt.body, http.Header{httpapi.HeaderRequestID: {"panic-" + strings.ReplaceAll(tt.name, " ", "-")}})
			got := checkError(t, resp, body, wantError{Status: 500, Type: "server_error", Code: "internal_error"})
			if strings.Contains(got.Message, "exploded") {
				t.Errorf("the panic value leaked to the client: %q", got.Message)
			}
		})
	}

	t.Run("stream after the first chunk", func(t *testing.T) {
		resp, err := h.client.Do(h.request(t, context.Background(), http.MethodPost, "/v1/chat/completions", chatBody("after-first-chunk", `"stream":true`), nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200 (the stream had started)", resp.StatusCode)
		}
		raw, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Errorf("the stream ended cleanly after a panic; want the connection cut. Body:\n%s", raw)
		}
		if strings.Contains(string(raw), "[DONE]") {
			t.Errorf("a stream cut by a panic carries [DONE]:\n%s", raw)
		}
		if !strings.Contains(string(raw), `"content":"partial"`) {
			t.Errorf("the chunk sent before the panic is missing:\n%s", raw)
		}
	})

	// Still serving, on fresh and reused connections alike.
	for i := range 3 {
		resp, body := h.do(t, http.MethodGet, "/livez", "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /livez #%d after panics: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := h.chat(t, chatBody("gpt-4", ""), nil)
	checkError(t, resp, body, wantError{Status: 500, Type: "server_error", Code: "internal_error"})

	entries := logs.FilterMessage("panic while handling request").All()
	if len(entries) != 4 {
		t.Fatalf("logged %d panics, want 4", len(entries))
	}
	if id := entries[0].ContextMap()["request_id"]; id != "panic-buffered" {
		t.Errorf("panic log request_id = %v, want panic-buffered", id)
	}
}
