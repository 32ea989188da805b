package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// decodeChunk validates one frame payload against OpenAI's schema and
// decodes it.
func decodeChunk(t testing.TB, payload string) streamChunk {
	t.Helper()
	openaispec.Must(t, "CreateChatCompletionStreamResponse", []byte(payload))
	var c streamChunk
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		t.Fatalf("decoding chunk: %v\n%s", err, payload)
	}
	return c
}

// checkStreamHeaders asserts the headers of an event stream.
func checkStreamHeaders(t testing.TB, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	want := map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// checkChunks asserts the chunks (frames before [DONE] or the error frame)
// form one well-formed answer and returns its text.
func checkChunks(t testing.TB, chunks []streamChunk, model string) string {
	t.Helper()
	if len(chunks) == 0 {
		t.Fatal("no chunks")
	}
	var text strings.Builder
	first := chunks[0]
	if !strings.HasPrefix(first.ID, "chatcmpl-") {
		t.Errorf("id = %q, want chatcmpl-…", first.ID)
	}
	for i, c := range chunks {
		if c.ID != first.ID || c.Created != first.Created || c.Model != model || c.Object != "chat.completion.chunk" {
			t.Errorf("chunk %d: id %q created %d model %q object %q; want %q %d %q chat.completion.chunk",
				i, c.ID, c.Created, c.Model, c.Object, first.ID, first.Created, model)
		}
		if len(c.Choices) == 0 {
			continue
		}
		if len(c.Choices) != 1 || c.Choices[0].Index != 0 {
			t.Errorf("chunk %d: want exactly one choice with index 0, got %+v", i, c.Choices)
			continue
		}
		ch := c.Choices[0]
		switch {
		case i == 0 && (ch.Delta.Role == nil || *ch.Delta.Role != "assistant"):
			t.Errorf("chunk 0: delta.role = %v, want assistant", ch.Delta.Role)
		case i > 0 && ch.Delta.Role != nil:
			t.Errorf("chunk %d repeats the role", i)
		}
		if ch.Delta.Content != nil {
			text.WriteString(*ch.Delta.Content)
		}
	}
	return text.String()
}

// TestStreamFraming reads whole streams from both backends and checks the
// bytes: only `data: <json>\n\n` frames, each a valid chunk, [DONE] last,
// and the usage chunk exactly when stream_options.include_usage asked.
func TestStreamFraming(t *testing.T) {
	t.Parallel()
	tricky := []string{"Hé ", "\"quoted\"\n", "</script> & ", "tab\there ", "\u2028end"}
	tests := []struct {
		name         string
		cfg          harnessConfig
		model        string
		streamOpts   string
		backend      string
		upstream     string
		text         string
		includeUsage bool
		usage        usage
	}{
		{name: "gateway with usage", model: aliasShared, streamOpts: `,"stream_options":{"include_usage":true}`,
			backend: gwName, upstream: modelShared, text: gatewayReply, includeUsage: true, usage: usage{12, 5, 17}},
		{name: "gateway include_usage false", model: aliasShared, streamOpts: `,"stream_options":{"include_usage":false}`,
			backend: gwName, upstream: modelShared, text: gatewayReply},
		{name: "gateway without stream_options", model: modelGateway,
			backend: gwName, upstream: modelGateway, text: gatewayReply},
		{name: "ollama with usage", model: aliasOllama, streamOpts: `,"stream_options":{"include_usage":true}`,
			backend: olName, upstream: modelOllama, text: ollamaReply, includeUsage: true, usage: usage{26, 4, 30}},
		{name: "ollama include_usage false", model: aliasOllama, streamOpts: `,"stream_options":{"include_usage":false}`,
			backend: olName, upstream: modelOllama, text: ollamaReply},
		{name: "ollama without stream_options", model: modelOllama,
			backend: olName, upstream: modelOllama, text: ollamaReply},
		{name: "gateway text needing escapes", model: modelGateway, streamOpts: `,"stream_options":{"include_usage":true}`,
			cfg:     harnessConfig{Gateway: func(s *gatewaytest.Server) { s.Pieces = tricky }},
			backend: gwName, upstream: modelGateway, text: strings.Join(tricky, ""), includeUsage: true, usage: usage{12, 5, 17}},
		{name: "ollama text needing escapes", model: modelOllama,
			cfg:     harnessConfig{Ollama: func(s *ollamatest.Server) { s.Pieces = tricky }},
			backend: olName, upstream: modelOllama, text: strings.Join(tricky, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.cfg)
			resp, raw := h.chat(t, chatBody(tt.model, `"stream":true`+tt.streamOpts), http.Header{"X-Request-Id": {"req-stream"}})
			checkStreamHeaders(t, resp)
			if got := resp.Header.Get(httpapi.HeaderBackend); got != tt.backend {
				t.Errorf("X-Backend = %q, want %q", got, tt.backend)
			}
			if got := resp.Header.Get(httpapi.HeaderUpstreamModel); got != tt.upstream {
				t.Errorf("X-Upstream-Model = %q, want %q", got, tt.upstream)
			}
			if got := resp.Header.Get(httpapi.HeaderRequestID); got != "req-stream" {
				t.Errorf("X-Request-ID = %q", got)
			}

			frames := sseFrames(t, raw)
			if len(frames) < 3 || frames[len(frames)-1] != "[DONE]" {
				t.Fatalf("stream does not end with [DONE]:\n%s", raw)
			}
			if n := bytes.Count(raw, []byte("[DONE]")); n != 1 {
				t.Errorf("[DONE] appears %d times", n)
			}
			chunks := make([]streamChunk, len(frames)-1)
			for i, f := range frames[:len(frames)-1] {
				chunks[i] = decodeChunk(t, f)
			}
			if got := checkChunks(t, chunks, tt.model); got != tt.text {
				t.Errorf("streamed text = %q, want %q", got, tt.text)
			}

			// The finishing chunk, then (only with include_usage) the usage
			// chunk: no choices, only usage.
			answer := chunks
			if tt.includeUsage {
				last := chunks[len(chunks)-1]
				if len(last.Choices) != 0 || !strings.Contains(frames[len(frames)-2], `"choices":[]`) {
					t.Errorf("the frame before [DONE] is not a usage chunk with choices []: %s", frames[len(frames)-2])
				}
				if diff := cmp.Diff(&tt.usage, last.Usage); diff != "" {
					t.Errorf("usage mismatch (-want +got):\n%s", diff)
				}
				answer = chunks[:len(chunks)-1]
			}
			for i, c := range answer {
				if c.Usage != nil || len(c.Choices) == 0 {
					t.Errorf("chunk %d carries usage or no choice: %s", i, frames[i])
				}
			}
			if !tt.includeUsage && bytes.Contains(raw, []byte(`"usage"`)) {
				t.Errorf("usage sent without include_usage:\n%s", raw)
			}
			finishes := 0
			for i, c := range answer {
				if fr := c.Choices[0].FinishReason; fr != nil {
					finishes++
					if *fr != "stop" || i != len(answer)-1 {
						t.Errorf("chunk %d of %d: finish_reason %q; want stop on the last chunk only", i, len(answer), *fr)
					}
				}
			}
			if finishes != 1 {
				t.Errorf("%d chunks carry a finish_reason, want 1", finishes)
			}
		})
	}
}

// TestStreamBreaksMidStream drops the serving backend's connection after
// some frames: the client gets an in-band error frame, no [DONE], and the
// next backend is not tried since the answer had started.
func TestStreamBreaksMidStream(t *testing.T) {
	t.Parallel()
	pieces := []string{"a ", "b ", "c ", "d "}
	tests := []struct {
		name  string
		cfg   harnessConfig
		other func(*harness) int // requests the backend that must not be tried got
		fail  string
	}{
		{
			name:  "gateway breaks",
			cfg:   harnessConfig{Gateway: func(s *gatewaytest.Server) { s.Pieces, s.BreakAfter = pieces, 2 }},
			other: func(h *harness) int { return len(h.ol.Requests()) },
			fail:  gwName,
		},
		{
			name: "ollama breaks",
			cfg: harnessConfig{OllamaFirst: true,
				Ollama: func(s *ollamatest.Server) { s.Pieces, s.BreakAfter = pieces, 2 }},
			other: func(h *harness) int { return len(h.gw.Requests()) },
			fail:  olName,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.cfg)
			resp, err := h.client.Do(h.request(t, context.Background(), http.MethodPost, "/v1/chat/completions", chatBody(aliasShared, `"stream":true`), nil))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("the service did not end the stream cleanly: %v\n%s", err, raw)
			}
			checkStreamHeaders(t, resp)
			if got := resp.Header.Get(httpapi.HeaderBackend); got != tt.fail {
				t.Errorf("X-Backend = %q, want %q", got, tt.fail)
			}
			frames := sseFrames(t, raw)
			if bytes.Contains(raw, []byte("[DONE]")) {
				t.Errorf("a broken stream ended with [DONE]:\n%s", raw)
			}
			last := frames[len(frames)-1]
			openaispec.Must(t, "ErrorResponse", []byte(last))
			var eb errorBody
			if err := json.Unmarshal([]byte(last), &eb); err != nil {
				t.Fatal(err)
			}
			if eb.Error.Type != "server_error" || eb.Error.Code == nil || *eb.Error.Code != "upstream_error" ||
				!strings.Contains(eb.Error.Message, tt.fail) {
				t.Errorf("error frame = %+v; want a server_error/upstream_error (the backend was reached; its answer broke off) naming %s", eb.Error, tt.fail)
			}
			// The client learns which backend failed and how, never an
			// address or a raw network error (those are in the logs).
			if !strings.Contains(eb.Error.Message, "broke off") {
				t.Errorf("error frame message %q does not say the answer broke off", eb.Error.Message)
			}
			for _, leak := range []string{"127.0.0.1", "tcp", "EOF", "connection", "http://"} {
				if strings.Contains(eb.Error.Message, leak) {
					t.Errorf("error frame message %q leaks %q", eb.Error.Message, leak)
				}
			}
			chunks := make([]streamChunk, len(frames)-1)
			for i, f := range frames[:len(frames)-1] {
				chunks[i] = decodeChunk(t, f)
			}
			if got := checkChunks(t, chunks, aliasShared); got != "a b " {
				t.Errorf("text before the break = %q, want %q", got, "a b ")
			}
			// Wait for the handler before counting the other backend's requests.
			h.srv.Close()
			if n := tt.other(h); n != 0 {
				t.Errorf("fell back to the next backend after the stream started (%d requests)", n)
			}
		})
	}
}

// TestFallbackBeforeFirstByte fails the gateway in each way that happens
// before anything reached the client; Ollama then serves the request, for
// streamed and buffered requests alike.
func TestFallbackBeforeFirstByte(t *testing.T) {
	t.Parallel()
	modes := []struct {
		name   string
		cfg    harnessConfig
		gwReqs int
	}{
		{name: "500", cfg: harnessConfig{Gateway: func(s *gatewaytest.Server) { s.Status = 500 }}, gwReqs: 1},
		{name: "503", cfg: harnessConfig{Gateway: func(s *gatewaytest.Server) { s.Status = 503 }}, gwReqs: 1},
		{name: "429", cfg: harnessConfig{Gateway: func(s *gatewaytest.Server) { s.Status = 429 }}, gwReqs: 1},
		{name: "timeout", cfg: harnessConfig{GatewayTimeout: 100 * time.Millisecond, Gateway: func(s *gatewaytest.Server) { s.Hang = true }}, gwReqs: 1},
		{name: "unreachable", cfg: harnessConfig{AfterCheck: func(h *harness) { h.gw.Close() }}, gwReqs: 0},
	}
	for _, m := range modes {
		for _, stream := range []bool{true, false} {
			name := m.name + "/buffered"
			if stream {
				name = m.name + "/streamed"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, m.cfg)
				extra := `"stream":false`
				if stream {
					extra = `"stream":true`
				}
				resp, raw := h.chat(t, chatBody(aliasShared, extra), nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d; body: %s", resp.StatusCode, raw)
				}
				if got := resp.Header.Get(httpapi.HeaderBackend); got != olName {
					t.Errorf("X-Backend = %q, want %q", got, olName)
				}
				if got := resp.Header.Get(httpapi.HeaderUpstreamModel); got != modelShared {
					t.Errorf("X-Upstream-Model = %q, want %q", got, modelShared)
				}
				var text string
				if stream {
					checkStreamHeaders(t, resp)
					frames := sseFrames(t, raw)
					if frames[len(frames)-1] != "[DONE]" {
						t.Fatalf("no [DONE]:\n%s", raw)
					}
					chunks := make([]streamChunk, len(frames)-1)
					for i, f := range frames[:len(frames)-1] {
						chunks[i] = decodeChunk(t, f)
					}
					text = checkChunks(t, chunks, aliasShared)
				} else {
					openaispec.Must(t, "CreateChatCompletionResponse", raw)
					var c struct {
						Choices []struct {
							Message struct{ Content string } `json:"message"`
						} `json:"choices"`
					}
					if err := json.Unmarshal(raw, &c); err != nil || len(c.Choices) != 1 {
						t.Fatalf("bad completion: %v\n%s", err, raw)
					}
					text = c.Choices[0].Message.Content
				}
				if text != ollamaReply {
					t.Errorf("text = %q, want Ollama's %q", text, ollamaReply)
				}
				if g, o := len(h.gw.Requests()), len(h.ol.Requests()); g != m.gwReqs || o != 1 {
					t.Errorf("chat requests: gateway %d, ollama %d; want %d, 1", g, o, m.gwReqs)
				}
			})
		}
	}
}

// TestStreamFlushesEachChunk proves chunks are relayed as they come: the
// fake's final line is held back until the client has read the first
// content chunk, so a service that buffered the answer (or its headers)
// would leave the client waiting, and the test fails. No step depends on
// timing.
func TestStreamFlushesEachChunk(t *testing.T) {
	t.Parallel()
	pieces := []string{"one ", "two ", "three "}
	const delay = 20 * time.Millisecond
	tests := []struct {
		name   string
		model  string
		marker string // only the upstream's final line contains it
		cfg    func(g *finalGate) harnessConfig
	}{
		{
			name: "gateway SSE", model: modelGateway, marker: `"finish_reason":"stop"`,
			cfg: func(g *finalGate) harnessConfig {
				return harnessConfig{WrapGateway: g.wrap,
					Gateway: func(s *gatewaytest.Server) { s.Pieces, s.PieceDelay = pieces, delay }}
			},
		},
		{
			name: "ollama NDJSON", model: modelOllama, marker: `"done":true`,
			cfg: func(g *finalGate) harnessConfig {
				return harnessConfig{WrapOllama: g.wrap,
					Ollama: func(s *ollamatest.Server) { s.Pieces, s.PieceDelay = pieces, delay }}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gate := newFinalGate(tt.marker)
			h := newHarness(t, tt.cfg(gate))
			t.Cleanup(gate.release) // runs before the harness stops

			type first struct {
				resp *http.Response
				fr   *frameReader
				text string
				err  error
			}
			got := make(chan first, 1)
			req := h.request(t, context.Background(), http.MethodPost, "/v1/chat/completions", chatBody(tt.model, `"stream":true`), nil)
			go func() {
				var f first
				f.resp, f.err = h.client.Do(req)
				if f.err != nil {
					got <- f
					return
				}
				f.fr = newFrameReader(f.resp.Body)
				for !strings.Contains(f.text, "one") && f.err == nil {
					var payload string
					if payload, f.err = f.fr.next(); f.err == nil {
						var c streamChunk
						if f.err = json.Unmarshal([]byte(payload), &c); f.err == nil && len(c.Choices) == 1 && c.Choices[0].Delta.Content != nil {
							f.text += *c.Choices[0].Delta.Content
						}
					}
				}
				got <- f
			}()
			var f first
			select {
			case f = <-got:
			case <-time.After(10 * time.Second):
				gate.release()
				t.Fatal("no chunk reached the client while the upstream's final line was held back: the stream is buffered")
			}
			if f.err != nil {
				t.Fatalf("reading the first chunk: %v", f.err)
			}
			defer f.resp.Body.Close()
			checkStreamHeaders(t, f.resp)
			// The upstream is still unfinished: its final line waits at the gate.
			waitFor(t, gate.held, "the fake to reach its final line")

			gate.release()
			text := f.text
			for {
				payload, err := f.fr.next()
				if err != nil {
					t.Fatalf("reading the stream: %v", err)
				}
				if payload == "[DONE]" {
					break
				}
				c := decodeChunk(t, payload)
				if len(c.Choices) == 1 && c.Choices[0].Delta.Content != nil {
					text += *c.Choices[0].Delta.Content
				}
			}
			if want := strings.Join(pieces, ""); text != want {
				t.Errorf("text = %q, want %q", text, want)
			}
		})
	}
}

// TestClientDisconnectCancelsUpstream has the client give up mid-request
// and checks the fake backend's request context ends (the fake returns
// early instead of finishing), and that no other backend is tried.
//
// The fakes wait a minute between pieces (or hang): only the cancellation
// of their request can end them within the test, so the test does not
// depend on timing. A service that noticed the disconnect only when its
// next write failed would leave the fake waiting, and fail.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	t.Parallel()
	many := []string{"p0 ", "p1 "}
	const pause = time.Minute
	tests := []struct {
		name   string
		stream bool
		cfg    func(ev *handlerEvents) harnessConfig
		other  func(*harness) int
		path   string
	}{
		{
			name: "gateway stream", stream: true, path: "/v1/chat/completions",
			cfg: func(ev *handlerEvents) harnessConfig {
				return harnessConfig{WrapGateway: ev.wrap, GatewayTimeout: pause,
					Gateway: func(s *gatewaytest.Server) { s.Pieces, s.PieceDelay = many, pause }}
			},
			other: func(h *harness) int { return len(h.ol.Requests()) },
		},
		{
			name: "ollama stream", stream: true, path: "/api/chat",
			cfg: func(ev *handlerEvents) harnessConfig {
				return harnessConfig{OllamaFirst: true, WrapOllama: ev.wrap, OllamaTimeout: pause,
					Ollama: func(s *ollamatest.Server) { s.Pieces, s.PieceDelay = many, pause }}
			},
			other: func(h *harness) int { return len(h.gw.Requests()) },
		},
		{
			name: "gateway buffered", path: "/v1/chat/completions",
			cfg: func(ev *handlerEvents) harnessConfig {
				return harnessConfig{WrapGateway: ev.wrap, GatewayTimeout: pause, Gateway: func(s *gatewaytest.Server) { s.Hang = true }}
			},
			other: func(h *harness) int { return len(h.ol.Requests()) },
		},
		{
			name: "ollama buffered", path: "/api/chat",
			cfg: func(ev *handlerEvents) harnessConfig {
				return harnessConfig{OllamaFirst: true, WrapOllama: ev.wrap, OllamaTimeout: pause, Ollama: func(s *ollamatest.Server) { s.Hang = true }}
			},
			other: func(h *harness) int { return len(h.gw.Requests()) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := newHandlerEvents(tt.path)
			h := newHarness(t, tt.cfg(ev))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := h.request(t, ctx, http.MethodPost, "/v1/chat/completions", chatBody(aliasShared, fmt.Sprintf(`"stream":%t`, tt.stream)), nil)
			if tt.stream {
				resp, err := h.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				checkStreamHeaders(t, resp)
				fr := newFrameReader(resp.Body)
				for got := ""; !strings.Contains(got, "p0"); {
					payload, err := fr.next()
					if err != nil {
						t.Fatalf("reading the first chunks: %v", err)
					}
					got += payload
				}
				cancel()
				resp.Body.Close()
			} else {
				errc := make(chan error, 1)
				go func() {
					resp, err := h.client.Do(req)
					if err == nil {
						resp.Body.Close()
					}
					errc <- err
				}()
				waitFor(t, ev.arrived, "the request to reach the backend")
				cancel()
				if err := <-errc; err == nil {
					t.Fatal("the request succeeded although the client cancelled it")
				}
			}
			select {
			case <-ev.cancelled:
			case <-ev.finished:
				t.Fatal("the backend finished its answer: the client's disconnect did not cancel the upstream request")
			case <-time.After(10 * time.Second):
				h.dropUpstreamConns()
				t.Fatal("the backend's request was not cancelled when the client went away")
			}
			h.srv.Close() // waits for the handler
			if n := tt.other(h); n != 0 {
				t.Errorf("another backend was tried after the client left (%d requests)", n)
			}
		})
	}
}

// TestStreamTimeoutCoversFirstFrameOnly checks the upstream timeout limits
// the wait for the first frame only: a stream whose pieces come slower
// than the timeout, once started, is relayed to the end.
func TestStreamTimeoutCoversFirstFrameOnly(t *testing.T) {
	t.Parallel()
	// The first frame comes at once; the next only after the timeout.
	const timeout, delay = time.Second, 1200 * time.Millisecond
	pieces := []string{"slow but steady"}
	h := newHarness(t, harnessConfig{
		GatewayTimeout: timeout, OllamaTimeout: timeout,
		Gateway: func(s *gatewaytest.Server) { s.Pieces, s.PieceDelay = pieces, delay },
		Ollama:  func(s *ollamatest.Server) { s.Pieces, s.PieceDelay = pieces, delay },
	})
	for _, model := range []string{modelGateway, modelOllama} {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			resp, raw := h.chat(t, chatBody(model, `"stream":true`), nil)
			checkStreamHeaders(t, resp)
			frames := sseFrames(t, raw)
			if frames[len(frames)-1] != "[DONE]" {
				t.Fatalf("the stream did not complete:\n%s", raw)
			}
			chunks := make([]streamChunk, len(frames)-1)
			for i, f := range frames[:len(frames)-1] {
				chunks[i] = decodeChunk(t, f)
			}
			if got, want := checkChunks(t, chunks, model), strings.Join(pieces, ""); got != want {
				t.Errorf("text = %q, want %q", got, want)
			}
		})
	}
}

// TestConcurrentRequests runs streamed and buffered requests to both
// backends at once through one service (meant for -race).
func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessConfig{})
	type result struct {
		name string
		err  string
	}
	const n = 24
	results := make(chan result, n)
	for i := range n {
		model := []string{aliasShared, aliasOllama}[i%2]
		stream := i%4 >= 2
		name := fmt.Sprintf("%s, stream %t", model, stream)
		req := h.request(t, context.Background(), http.MethodPost, "/v1/chat/completions",
			chatBody(model, fmt.Sprintf(`"stream":%t`, stream)), nil)
		go func() {
			resp, err := h.client.Do(req)
			if err != nil {
				results <- result{name, err.Error()}
				return
			}
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := map[string]string{aliasShared: gatewayReply, aliasOllama: ollamaReply}[model]
			switch {
			case err != nil:
				results <- result{name, err.Error()}
			case resp.StatusCode != http.StatusOK:
				results <- result{name, resp.Status + " " + string(raw)}
			case stream && !bytes.HasSuffix(raw, []byte("data: [DONE]\n\n")):
				results <- result{name, "no [DONE]: " + string(raw)}
			case !stream && !bytes.Contains(raw, []byte(jsonString(want))):
				results <- result{name, "unexpected answer: " + string(raw)}
			default:
				results <- result{name, ""}
			}
		}()
	}
	for range n {
		if r := <-results; r.err != "" {
			t.Errorf("%s: %s", r.name, r.err)
		}
	}
	if g, o := len(h.gw.Requests()), len(h.ol.Requests()); g != n/2 || o != n/2 {
		t.Errorf("chat requests: gateway %d, ollama %d; want %d each", g, o, n/2)
	}
}
