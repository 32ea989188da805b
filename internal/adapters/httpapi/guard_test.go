package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/httpapi"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
)

func TestAPIKeys(t *testing.T) {
	h := newHarness(t, harnessConfig{APIKeys: []string{"sk-one", "sk-two"}})
	bearer := func(k string) http.Header { return http.Header{"Authorization": {"Bearer " + k}} }
	for _, tc := range []struct {
		name, method, path string
		hdr                http.Header
		want               int
	}{
		{"no key", "POST", "/v1/chat/completions", nil, 401},
		{"wrong key", "POST", "/v1/chat/completions", bearer("sk-three"), 401},
		{"a key's prefix", "POST", "/v1/chat/completions", bearer("sk-on"), 401},
		{"not bearer", "POST", "/v1/chat/completions", http.Header{"Authorization": {"Basic c2stb25l"}}, 401},
		{"first key", "POST", "/v1/chat/completions", bearer("sk-one"), 200},
		{"second key", "POST", "/v1/chat/completions", bearer("sk-two"), 200},
		{"models need a key", "GET", "/v1/models", nil, 401},
		{"health needs a key", "GET", "/health", nil, 401},
		{"health with a key", "GET", "/health", bearer("sk-one"), 200},
		{"liveness stays open", "GET", "/livez", nil, 200},
		{"readiness stays open", "GET", "/readyz", nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == "POST" {
				body = chatBody(aliasShared, "")
			}
			resp, raw := h.do(t, tc.method, tc.path, body, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, raw)
			}
			if tc.want == 401 {
				checkError(t, resp, raw, wantError{Status: 401, Type: "invalid_request_error", Code: "invalid_api_key"})
				if strings.Contains(string(raw), "sk-") {
					t.Errorf("the error echoes a key: %s", raw)
				}
			}
		})
	}
	// A browser's preflight carries no credentials and must pass.
	req, _ := http.NewRequest(http.MethodOptions, h.srv.URL+"/v1/chat/completions", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("preflight status %d", resp.StatusCode)
	}
	// The client's key never goes upstream.
	for _, r := range h.gw.Requests() {
		if strings.Contains(r.Header.Get("Authorization"), "sk-one") || strings.Contains(r.Header.Get("Authorization"), "sk-two") {
			t.Errorf("the client's key was forwarded: %q", r.Header.Get("Authorization"))
		}
	}
}

// slowStart holds a backend's answer back until release is closed.
func slowStart(release <-chan struct{}) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestPingsWhileWaitingForTheFirstToken: SSE comments keep the stream alive
// until the backend answers; who served it follows as trailers.
func TestPingsWhileWaitingForTheFirstToken(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, harnessConfig{PingInterval: 20 * time.Millisecond, WrapGateway: slowStart(release)})
	req := h.request(t, t.Context(), http.MethodPost, "/v1/chat/completions", chatBody(aliasShared, `"stream":true`), nil)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	pings := 0
	for pings < 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == ": ping\n" {
			pings++
		} else if line != "\n" {
			t.Fatalf("before the backend answered, got %q", line)
		}
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), `"content":"Hello `) || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Fatalf("after the pings: %s", rest)
	}
	if got := resp.Trailer.Get("X-Backend"); got != "gateway" {
		t.Errorf("X-Backend trailer %q", got)
	}
}

// TestPingsThenEveryBackendFails: once pings sent the 200, a failure can
// only be told in-band.
func TestPingsThenEveryBackendFails(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, harnessConfig{
		PingInterval: 20 * time.Millisecond, WrapGateway: slowStart(release), WrapOllama: slowStart(release),
		Gateway: func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 500, "boom" },
	})
	h.ol.Status, h.ol.ErrorText = 500, "also boom"
	req := h.request(t, t.Context(), http.MethodPost, "/v1/chat/completions", chatBody(aliasShared, `"stream":true`), nil)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != ": ping\n" {
		t.Fatalf("first line %q", line)
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), `data: {"error":{`) || strings.Contains(string(rest), "[DONE]") {
		t.Fatalf("want an in-band error and no [DONE]: %s", rest)
	}
}

func TestHostileBodies(t *testing.T) {
	h := newHarness(t, harnessConfig{MaxBodyBytes: 4 << 20})
	deep := `{"model":"gpt-4","messages":[{"role":"user","content":"x"}],"metadata":` + strings.Repeat("[", 200000) + strings.Repeat("]", 200000) + `}`
	for _, tc := range []struct{ name, body, param string }{
		{"deeply nested", deep, ""},
		{"a long string of escapes", `{"model":"gpt-4","messages":[{"role":"user","content":"` + strings.Repeat(`\u0000`, 300000) + `"}],"n":"x"}`, "n"},
		{"truncated", `{"model":"gpt-4","messages":[{"role":"user","content":"x"`, ""},
		{"two values", `{"model":"gpt-4","messages":[{"role":"user","content":"x"}]} {}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := h.chat(t, tc.body, nil)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d: %.300s", resp.StatusCode, raw)
			}
			checkError(t, resp, raw, wantError{Status: 400, Type: "invalid_request_error", Param: tc.param})
		})
	}
}

// failingChatter fails every streamed request before its first chunk,
// after a delay.
type failingChatter struct{ after func() time.Duration }

func (f failingChatter) Chat(context.Context, domain.ChatRequest) (domain.Completion, domain.Route, error) {
	return domain.Completion{}, domain.Route{}, errors.New("unused")
}

func (f failingChatter) StreamChat(ctx context.Context, _ *domain.ChatRequest, _ dispatch.Out[domain.Chunk]) (domain.Route, error) {
	time.Sleep(f.after())
	return domain.Route{}, &domain.BackendsFailedError{Model: "gpt-4",
		Attempts: []*domain.UpstreamError{{Backend: "gateway", Kind: domain.FailureServer}}}
}

// TestNoPingAfterTheHandlerReturned hammers "fail before the first chunk
// while a ping is due": whatever the timing, nothing is written once the
// handler returned (a pooled gin context may serve another request by
// then), and the answer is either a JSON error or pings then an in-band
// error. Run with -race.
func TestNoPingAfterTheHandlerReturned(t *testing.T) {
	var n atomic.Int64
	router := httpapi.NewRouter(
		httpapi.Options{CORSOrigins: []string{"*"}, MaxBodyBytes: 1 << 20, PingInterval: 50 * time.Microsecond},
		httpapi.Deps{Chat: failingChatter{after: func() time.Duration {
			return time.Duration(n.Add(1)%7) * 40 * time.Microsecond
		}}, Log: zap.NewNop()},
	)
	body := chatBody(aliasShared, `"stream":true`)
	for i := range 300 {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		router.ServeHTTP(rec, req)
		got := rec.Body.String()
		time.Sleep(200 * time.Microsecond) // several ping intervals
		if after := rec.Body.String(); after != got {
			t.Fatalf("round %d: %q written after the handler returned", i, strings.TrimPrefix(after, got))
		}
		switch {
		case rec.Code == http.StatusBadGateway && strings.HasPrefix(got, `{"error":`):
		case rec.Code == http.StatusOK && strings.HasPrefix(got, ": ping\n\n") && strings.HasSuffix(got, "}}\n\n") &&
			strings.Count(got, "data: ") == 1 && strings.Index(got, "data: ") > strings.LastIndex(got, ": ping"):
		default:
			t.Fatalf("round %d: status %d, body %q", i, rec.Code, got)
		}
	}
}

// TestDebugLogsOmitImageData: the debug log of a request shows an image's
// media type and size, never its data.
func TestDebugLogsOmitImageData(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	h := newHarness(t, harnessConfig{Log: zap.New(core)})
	data := strings.Repeat("iVBORw0KGgo", 100)
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"what is it?"},` +
		`{"type":"image_url","image_url":{"url":"data:image/png;base64,` + data + `"}},` +
		`{"type":"image_url","image_url":{"url":"data:image\/jpeg;base64,` + data + `"}}]}]}`
	h.chat(t, body, nil)
	entries := logs.FilterMessage("chat request").All()
	if len(entries) != 1 {
		t.Fatalf("%d debug lines for the request, want 1", len(entries))
	}
	logged := fmt.Sprint(entries[0].ContextMap()["body"])
	if strings.Contains(logged, "iVBORw0KGgo") {
		t.Errorf("image data logged: %s", logged)
	}
	for _, want := range []string{"data:image/png (1100 bytes of data, not logged)", "data:image/jpeg (1100 bytes of data, not logged)", "what is it?"} {
		if !strings.Contains(logged, want) {
			t.Errorf("logged body %s lacks %q", logged, want)
		}
	}
}
