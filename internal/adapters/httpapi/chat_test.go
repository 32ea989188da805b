package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/httpapi"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
)

// TestChatCompletion checks buffered answers from each backend: OpenAI's
// chat.completion named as the client asked, the route headers, usage.
func TestChatCompletion(t *testing.T) {
	t.Parallel()
	fixed := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		cfg          harnessConfig
		model        string
		backend      string
		upstream     string
		content      string
		finish       string
		usage        usage
		wantRequests [2]int
	}{
		{
			name: "gateway via alias", model: aliasShared, backend: gwName, upstream: modelShared,
			content: gatewayReply, finish: "stop", usage: usage{12, 5, 17}, wantRequests: [2]int{1, 0},
		},
		{
			name: "gateway by name with a slash", model: modelGateway, backend: gwName, upstream: modelGateway,
			content: gatewayReply, finish: "stop", usage: usage{12, 5, 17}, wantRequests: [2]int{1, 0},
		},
		{
			name: "ollama via alias", model: aliasOllama, backend: olName, upstream: modelOllama,
			content: ollamaReply, finish: "stop", usage: usage{26, 4, 30}, wantRequests: [2]int{0, 1},
		},
		{
			name: "ollama untagged name resolves to :latest", model: "mistral", backend: olName, upstream: "mistral:latest",
			content: ollamaReply, finish: "stop", usage: usage{26, 4, 30}, wantRequests: [2]int{0, 1},
		},
		{
			name:  "ollama done_reason length",
			cfg:   harnessConfig{Ollama: func(s *ollamatest.Server) { s.DoneReason = "length" }},
			model: aliasOllama, backend: olName, upstream: modelOllama,
			content: ollamaReply, finish: "length", usage: usage{26, 4, 30}, wantRequests: [2]int{0, 1},
		},
		{
			name:  "gateway 500 falls back to ollama",
			cfg:   harnessConfig{Gateway: func(s *gatewaytest.Server) { s.Status = 500 }},
			model: aliasShared, backend: olName, upstream: modelShared,
			content: ollamaReply, finish: "stop", usage: usage{26, 4, 30}, wantRequests: [2]int{1, 1},
		},
		{
			name:  "ollama first in the order",
			cfg:   harnessConfig{OllamaFirst: true},
			model: aliasShared, backend: olName, upstream: modelShared,
			content: ollamaReply, finish: "stop", usage: usage{26, 4, 30}, wantRequests: [2]int{0, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.Now = func() time.Time { return fixed }
			h := newHarness(t, tt.cfg)
			resp, body := h.chat(t, chatBody(tt.model, ""), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d; body: %s", resp.StatusCode, body)
			}
			openaispec.Must(t, "CreateChatCompletionResponse", body)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := resp.Header.Get(httpapi.HeaderBackend); got != tt.backend {
				t.Errorf("X-Backend = %q, want %q", got, tt.backend)
			}
			if got := resp.Header.Get(httpapi.HeaderUpstreamModel); got != tt.upstream {
				t.Errorf("X-Upstream-Model = %q, want %q", got, tt.upstream)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			id, _ := got["id"].(string)
			if !strings.HasPrefix(id, "chatcmpl-") || len(id) <= len("chatcmpl-") {
				t.Errorf("id = %q, want chatcmpl-…", id)
			}
			want := jsonMap(t, fmt.Sprintf(`{"id":%s,"object":"chat.completion","created":%d,"model":%s,
				"choices":[{"index":0,"message":{"role":"assistant","content":%s,"refusal":null},"logprobs":null,"finish_reason":%s}],
				"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`,
				jsonString(id), fixed.Unix(), jsonString(tt.model), jsonString(tt.content), jsonString(tt.finish),
				tt.usage.PromptTokens, tt.usage.CompletionTokens, tt.usage.TotalTokens))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("chat.completion mismatch (-want +got):\n%s", diff)
			}
			if g, o := len(h.gw.Requests()), len(h.ol.Requests()); g != tt.wantRequests[0] || o != tt.wantRequests[1] {
				t.Errorf("chat requests: gateway %d, ollama %d; want %v", g, o, tt.wantRequests)
			}
		})
	}
}

// TestOllamaRequestTranslation checks the exact JSON the fake Ollama
// received for OpenAI requests: roles, joined parts, options, stream flag.
func TestOllamaRequestTranslation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessConfig{})
	tests := []struct {
		name string
		body string
		want string // the /api/chat body Ollama must receive
	}{
		{
			name: "no sampling fields: no options object at all",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
			want: `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		},
		{
			name: "explicit nulls are not values",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":null,"top_p":null,"max_tokens":null,"stop":null,"seed":null}`,
			want: `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		},
		{
			name: "developer becomes system, text parts joined",
			body: `{"model":"gpt-4o-mini","messages":[
				{"role":"developer","content":"Be brief."},
				{"role":"system","content":[{"type":"text","text":"Rule one."},{"type":"text","text":"Rule two."}]},
				{"role":"user","content":[{"type":"text","text":"first"},{"type":"text","text":"second"}]},
				{"role":"assistant","content":"ok"},
				{"role":"user","content":"again"}]}`,
			want: `{"model":"llama3.2:3b","messages":[
				{"role":"system","content":"Be brief."},
				{"role":"system","content":"Rule one.\nRule two."},
				{"role":"user","content":"first\nsecond"},
				{"role":"assistant","content":"ok"},
				{"role":"user","content":"again"}],"stream":true}`,
		},
		{
			name: "every sampling field carried; max_completion_tokens wins",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],
				"temperature":0.7,"top_p":0.9,"presence_penalty":0.5,"frequency_penalty":-0.25,
				"max_tokens":512,"max_completion_tokens":64,"stop":"x","seed":42}`,
			want: `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true,
				"options":{"temperature":0.7,"top_p":0.9,"presence_penalty":0.5,"frequency_penalty":-0.25,
				"num_predict":64,"stop":["x"],"seed":42}}`,
		},
		{
			name: "max_tokens alone",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":100}`,
			want: `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true,"options":{"num_predict":100}}`,
		},
		{
			name: "stop list",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stop":["a","b"]}`,
			want: `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true,"options":{"stop":["a","b"]}}`,
		},
		{
			name: "temperature 0 is a value, not an absence",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0}`,
			want: `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true,"options":{"temperature":0}}`,
		},
		{
			name: "fields Ollama does not take are dropped",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi","name":"bob"}],"user":"u-1","logit_bias":{},"n":1,"foo":{"bar":1}}`,
			want: `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		},
		{
			name: "streamed",
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`,
			want: `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		},
	}
	// Each option alone, at its zero value, still makes an options object.
	for _, f := range []struct{ in, out string }{
		{`"temperature":0`, `"temperature":0`},
		{`"top_p":0`, `"top_p":0`},
		{`"max_completion_tokens":1`, `"num_predict":1`},
		{`"stop":["END"]`, `"stop":["END"]`},
		{`"seed":0`, `"seed":0`},
		{`"presence_penalty":0`, `"presence_penalty":0`},
		{`"frequency_penalty":0`, `"frequency_penalty":0`},
	} {
		tests = append(tests, struct{ name, body, want string }{
			name: "only " + f.in,
			body: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],` + f.in + `}`,
			want: `{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}],"stream":true,"options":{` + f.out + `}}`,
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.ol.Requests())
			resp, body := h.chat(t, tt.body, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d; body: %s", resp.StatusCode, body)
			}
			reqs := h.ol.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("ollama got %d new requests, want 1", len(reqs)-before)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			got := h.ol.LastRequest()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("/api/chat body mismatch (-want +got):\n%s\nraw: %s", diff, reqs[len(reqs)-1])
			}
		})
	}
	if n := len(h.gw.Requests()); n != 0 {
		t.Errorf("the gateway got %d requests for an Ollama-only model", n)
	}
}

// TestGatewayRequestForwarding checks the body and headers the fake
// gateway received: the client's JSON untouched except the model, and the
// answer always asked for as a stream with usage (a buffered one is
// assembled here); the service's own credentials.
func TestGatewayRequestForwarding(t *testing.T) {
	t.Parallel()
	const extras = `"foo":{"bar":1},"logit_bias":{},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],"response_format":{"type":"text"},"n":1,"user":"u-1","metadata":{"k":"v"},"temperature":0.3`
	tests := []struct {
		name         string
		streamFields string
	}{
		{name: "buffered without stream_options", streamFields: `"stream":false`},
		{name: "buffered with stream_options", streamFields: `"stream":false,"stream_options":{"include_usage":true}`},
		{name: "stream absent", streamFields: `"stream_options":{"include_usage":true}`},
		{name: "streamed with stream_options", streamFields: `"stream":true,"stream_options":{"include_usage":true}`},
		{name: "streamed with include_usage false", streamFields: `"stream":true,"stream_options":{"include_usage":false}`},
		{name: "streamed without stream_options", streamFields: `"stream":true`},
	}
	h := newHarness(t, harnessConfig{GatewayKey: "gw-secret", AgentID: "agent-7"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := `{"model":"gpt-4","messages":[{"role":"developer","content":"d"},{"role":"user","content":[{"type":"text","text":"hi"}]}],` + extras + `,` + tt.streamFields + `}`
			before := len(h.gw.Requests())
			resp, body := h.chat(t, sent, http.Header{
				"Authorization":       {"Bearer sk-client-secret"},
				"Openai-Organization": {"org-client"},
				"X-Stainless-Os":      {"Linux"},
				"Cookie":              {"session=1"},
				"X-Request-Id":        {"req-forward-1"},
			})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d; body: %s", resp.StatusCode, body)
			}
			reqs := h.gw.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("gateway got %d new requests, want 1", len(reqs)-before)
			}
			got := reqs[len(reqs)-1]

			var want, gotBody map[string]any
			if err := json.Unmarshal([]byte(sent), &want); err != nil {
				t.Fatal(err)
			}
			want["model"] = modelShared
			want["stream"] = true
			want["stream_options"] = map[string]any{"include_usage": true}
			if err := json.Unmarshal(got.Body, &gotBody); err != nil {
				t.Fatalf("the gateway got unreadable JSON: %v\n%s", err, got.Body)
			}
			if diff := cmp.Diff(want, gotBody); diff != "" {
				t.Errorf("forwarded body mismatch (-want +got):\n%s", diff)
			}
			for _, frag := range []string{`"foo":{"bar":1}`, `"logit_bias":{}`, `"role":"developer"`} {
				if !bytes.Contains(got.Body, []byte(frag)) {
					t.Errorf("forwarded body lacks %s: %s", frag, got.Body)
				}
			}

			wantHdr := map[string]string{
				"Authorization": "Bearer gw-secret",
				"X-Agent-Id":    "agent-7",
				"X-Request-Id":  "req-forward-1",
				"Content-Type":  "application/json",
			}
			for k, v := range wantHdr {
				if g := got.Header.Get(k); g != v {
					t.Errorf("upstream header %s = %q, want %q", k, g, v)
				}
			}
			for _, k := range []string{"Openai-Organization", "X-Stainless-Os", "Cookie"} {
				if g := got.Header.Values(k); len(g) != 0 {
					t.Errorf("client header %s forwarded upstream: %q", k, g)
				}
			}
			if v := got.Header.Values("Authorization"); len(v) != 1 || strings.Contains(v[0], "sk-client") {
				t.Errorf("upstream Authorization = %q; the client's key must not be forwarded", v)
			}
		})
	}
}

// TestUpstreamAuthorization checks no Authorization header reaches a
// backend without an API key, whatever the client sent, and what Ollama
// receives.
func TestUpstreamAuthorization(t *testing.T) {
	t.Parallel()
	olEvents := newHandlerEvents("/api/chat")
	h := newHarness(t, harnessConfig{AgentID: "agent-9", WrapOllama: olEvents.wrap})
	hdr := http.Header{"Authorization": {"Bearer sk-client-secret"}, "X-Request-Id": {"req-auth-1"}}
	for _, model := range []string{aliasShared, aliasOllama} {
		resp, body := h.chat(t, chatBody(model, ""), hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status = %d; body: %s", model, resp.StatusCode, body)
		}
	}
	gw := h.gw.Requests()
	ol := olEvents.Headers()
	if len(gw) != 1 || len(ol) != 1 {
		t.Fatalf("requests: gateway %d, ollama %d; want 1 each", len(gw), len(ol))
	}
	for name, got := range map[string]http.Header{gwName: gw[0].Header, olName: ol[0]} {
		if v := got.Values("Authorization"); len(v) != 0 {
			t.Errorf("%s got Authorization %q; want none", name, v)
		}
		if v := got.Get("X-Agent-Id"); v != "agent-9" {
			t.Errorf("%s got X-Agent-ID %q, want agent-9", name, v)
		}
		if v := got.Get("X-Request-Id"); v != "req-auth-1" {
			t.Errorf("%s got X-Request-ID %q, want req-auth-1", name, v)
		}
	}
}
