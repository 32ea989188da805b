package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// Fault injection: the real application talks to its fake backends through
// toxiproxy proxies run in this process (a real TCP hop on 127.0.0.1), and
// toxics break those links the way networks and upstreams break. Every test
// checks exactly what the client sees.
//
// These tests are not parallel: each one ends with goleak.VerifyNone, which
// inspects every goroutine of the process. Tests of the package that call
// t.Parallel wait until the sequential ones are done, so only this test's
// goroutines (and those existing when it began, ignored) are in view.

// noLeaks fails t when goroutines started during the test are still running
// once its cleanups are done. Call it first: cleanups run last-in first-out,
// so this one runs after the app, the proxies and the fakes have stopped.
//
// One known toxiproxy behaviour is ignored: a toxic that closes its stage
// (reset_peer, limit_data) stops reading from the stage before it, so bytes
// arriving after the cut leave that stage (the hidden noop toxic, and the
// reader feeding it) blocked on a channel send for good. Those goroutines
// hold no connection; they are the proxy's, not the service's.
func noLeaks(t *testing.T) {
	t.Helper()
	existing := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		goleak.VerifyNone(t, existing,
			goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
			goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/stream.(*ChanWriter).Write"))
	})
}

// faultLink is one toxiproxy proxy between the service and a fake backend.
type faultLink struct {
	proxy    *toxiproxy.Proxy
	accepted atomic.Int64 // client connections the proxy accepted
}

// newFaultLink starts a proxy on 127.0.0.1 forwarding to the server at
// upstreamURL; it is stopped when the test ends.
func newFaultLink(t *testing.T, name, upstreamURL string) *faultLink {
	t.Helper()
	u, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.New(io.Discard))
	p := toxiproxy.NewProxy(server, name, "127.0.0.1:0", u.Host)
	l := &faultLink{proxy: p}
	// The proxy logs every connection it accepts; counting those log
	// events counts the connection attempts that reached the link.
	counting := p.Logger.Hook(zerolog.HookFunc(func(_ *zerolog.Event, _ zerolog.Level, msg string) {
		if msg == "Accepted client" {
			l.accepted.Add(1)
		}
	}))
	p.Logger = &counting
	if err := p.Start(); err != nil {
		t.Fatalf("starting the %s proxy: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return l
}

// URL is the proxy's address as a backend URL.
func (l *faultLink) URL() string { return "http://" + l.proxy.Listen }

// toxic adds a toxic to the link; stream is "downstream" (backend to
// service) or "upstream" (service to backend). Connections already open
// get it too.
func (l *faultLink) toxic(t *testing.T, name, typ, stream, attributes string) {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":%s}`, name, typ, stream, attributes)
	if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(body)); err != nil {
		t.Fatalf("adding toxic %s: %v", body, err)
	}
}

// faultConfig is testConfig with the periodic health check pushed out of
// the test's way: only the start-up checks use the links.
func faultConfig(gatewayURL, ollamaURL string) app.Config {
	cfg := testConfig(gatewayURL, ollamaURL)
	cfg.Health.Interval = app.Duration(time.Hour)
	return cfg
}

const (
	faultBuffered = `{"model":"gpt-4","messages":[{"role":"user","content":"Hi"}]}`
	faultStreamed = `{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"Hi"}]}`
)

// faultAnswer is what the client received for one request.
type faultAnswer struct {
	Status  int
	Header  http.Header
	Body    []byte
	Elapsed time.Duration
}

// send posts body to the service's chat endpoint and reads the whole answer.
func send(t *testing.T, hc *http.Client, r *running, body string) faultAnswer {
	t.Helper()
	a, err := trySend(hc, r, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// trySend is send for other goroutines than the test's.
func trySend(hc *http.Client, r *running, body string) (faultAnswer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.BaseURL()+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return faultAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return faultAnswer{}, fmt.Errorf("POST /v1/chat/completions: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return faultAnswer{}, fmt.Errorf("reading the answer: %w (read so far: %q)", err, data)
	}
	return faultAnswer{Status: resp.StatusCode, Header: resp.Header, Body: data, Elapsed: time.Since(start)}, nil
}

// numberedPieces returns n pieces "p0 ", "p1 ", … and their concatenation.
func numberedPieces(n int) ([]string, string) {
	pieces := make([]string, n)
	for i := range pieces {
		pieces[i] = fmt.Sprintf("p%d ", i)
	}
	return pieces, strings.Join(pieces, "")
}

// faultClient is an HTTP client for the service without its own deadline
// (each request carries one).
func faultClient(t *testing.T) *http.Client {
	t.Helper()
	hc := newHTTPClient(t)
	hc.Timeout = 0
	return hc
}

// content is the message of a buffered chat.completion.
func (a faultAnswer) content(t *testing.T) string {
	t.Helper()
	var c struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(a.Body, &c); err != nil || c.Object != "chat.completion" || len(c.Choices) != 1 {
		t.Fatalf("status %d body %s: want a chat.completion with one choice (%v)", a.Status, a.Body, err)
	}
	return c.Choices[0].Message.Content
}

// faultError is an OpenAI error body, as a response or an in-band frame.
type faultError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    *string `json:"code"`
}

func (e faultError) code() string {
	if e.Code == nil {
		return ""
	}
	return *e.Code
}

// apiErr decodes an error response.
func (a faultAnswer) apiErr(t *testing.T) faultError {
	t.Helper()
	var b struct {
		Error *faultError `json:"error"`
	}
	if err := json.Unmarshal(a.Body, &b); err != nil || b.Error == nil {
		t.Fatalf("status %d body %s: want an OpenAI error body (%v)", a.Status, a.Body, err)
	}
	return *b.Error
}

// sse is a parsed event stream.
type sse struct {
	Content string      // the deltas' content, concatenated
	Chunks  int         // chat.completion.chunk events
	Err     *faultError // the in-band error frame, if one came
	Done    bool        // data: [DONE] came
	After   []string    // events after an error frame or [DONE] (none expected)
}

// parseSSE reads an event stream; keep-alive comments are skipped.
func parseSSE(t *testing.T, body []byte) sse {
	t.Helper()
	var s sse
	for _, ev := range strings.Split(string(body), "\n\n") {
		var data string
		for _, line := range strings.Split(ev, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data = d
			}
		}
		if data == "" {
			continue // a comment (": ping") or the end of the body
		}
		if s.Done || s.Err != nil {
			s.After = append(s.After, data)
			continue
		}
		if data == "[DONE]" {
			s.Done = true
			continue
		}
		var frame struct {
			Object  string      `json:"object"`
			Error   *faultError `json:"error"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &frame); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		switch {
		case frame.Error != nil:
			s.Err = frame.Error
		case frame.Object == "chat.completion.chunk":
			s.Chunks++
			for _, c := range frame.Choices {
				s.Content += c.Delta.Content
			}
		default:
			t.Fatalf("event %q: neither a chunk nor an error", data)
		}
	}
	return s
}

// complete asserts a stream that ended normally with want as its content.
func (s sse) complete(t *testing.T, want string) {
	t.Helper()
	if s.Err != nil || !s.Done || len(s.After) > 0 || s.Content != want {
		t.Errorf("stream: content %q, error %+v, [DONE] %v, events after the end %q; want %q, no error, [DONE], nothing after",
			s.Content, s.Err, s.Done, s.After, want)
	}
}

// broken asserts a stream that ended with an in-band error frame carrying
// code, and no [DONE].
func (s sse) broken(t *testing.T, code string) {
	t.Helper()
	if s.Err == nil || s.Done || len(s.After) > 0 {
		t.Fatalf("stream: error %+v, [DONE] %v, events after the end %q; want an error frame last and no [DONE]", s.Err, s.Done, s.After)
	}
	t.Logf("in-band error frame: code %q: %s", s.Err.code(), s.Err.Message)
	if s.Err.Type != "server_error" || s.Err.code() != code {
		t.Errorf("error frame: type %q code %q (%s); want server_error %q", s.Err.Type, s.Err.code(), s.Err.Message, code)
	}
}

// expect asserts the status and the backend that served a request.
func (a faultAnswer) expect(t *testing.T, status int, backend string) {
	t.Helper()
	if a.Status != status || a.Header.Get("X-Backend") != backend {
		t.Fatalf("status %d X-Backend %q, want %d %q; body %s", a.Status, a.Header.Get("X-Backend"), status, backend, a.Body)
	}
}

// fallbacks counts the logged fallbacks away from backend.
func fallbacks(r *running, backend string) int {
	return r.Logs.FilterMessage("upstream attempt failed, falling back to the next backend").
		FilterField(zap.String("backend", backend)).Len()
}

// breakerOf reads backend's circuit breaker state from /health.
func breakerOf(t *testing.T, hc *http.Client, r *running, backend string) string {
	t.Helper()
	resp, err := hc.Get(r.BaseURL() + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	defer resp.Body.Close()
	var h struct {
		Backends []struct {
			Name    string `json:"name"`
			Breaker string `json:"breaker"`
		} `json:"backends"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	for _, b := range h.Backends {
		if b.Name == backend {
			return b.Breaker
		}
	}
	t.Fatalf("/health lists no backend %q: %+v", backend, h.Backends)
	return ""
}

// TestFaultLatency: 200 ms added on every packet from the gateway slows the
// answer down but the gateway still serves it, intact.
func TestFaultLatency(t *testing.T) {
	noLeaks(t)
	gw := newGateway(t, upstreamModel)
	ol := newOllama(t, upstreamModel)
	link := newFaultLink(t, "gateway", gw.URL)
	r := startApp(t, faultConfig(link.URL(), ol.URL))
	hc := faultClient(t)

	const latency = 200 * time.Millisecond
	link.toxic(t, "slow", "latency", "downstream", `{"latency":200}`)

	buffered := send(t, hc, r, faultBuffered)
	buffered.expect(t, http.StatusOK, "gateway")
	if got := buffered.content(t); got != gatewayReply {
		t.Errorf("content %q, want %q", got, gatewayReply)
	}
	streamed := send(t, hc, r, faultStreamed)
	streamed.expect(t, http.StatusOK, "gateway")
	parseSSE(t, streamed.Body).complete(t, gatewayReply)

	// The latency toxic holds every byte back at least that long, so a
	// faster answer means the fault was not on the path.
	for _, a := range []faultAnswer{buffered, streamed} {
		if a.Elapsed < latency || a.Elapsed > 10*time.Second {
			t.Errorf("answered after %v; want the injected %v plus a little", a.Elapsed, latency)
		}
	}
	if n := len(ol.Requests()); n != 0 {
		t.Errorf("Ollama received %d requests, want 0", n)
	}
}

// TestFaultResetBeforeFirstByte: the gateway takes the request but its
// connection is reset before a byte of the answer gets through; the request
// falls back to Ollama.
func TestFaultResetBeforeFirstByte(t *testing.T) {
	noLeaks(t)
	gw := newGateway(t, upstreamModel)
	ol := newOllama(t, upstreamModel)
	link := newFaultLink(t, "gateway", gw.URL)
	r := startApp(t, faultConfig(link.URL(), ol.URL))
	hc := faultClient(t)

	link.toxic(t, "reset", "reset_peer", "downstream", `{"timeout":0}`)

	buffered := send(t, hc, r, faultBuffered)
	buffered.expect(t, http.StatusOK, "ollama")
	if got := buffered.content(t); got != ollamaReply {
		t.Errorf("content %q, want %q", got, ollamaReply)
	}
	streamed := send(t, hc, r, faultStreamed)
	streamed.expect(t, http.StatusOK, "ollama")
	parseSSE(t, streamed.Body).complete(t, ollamaReply)

	// Each request reached the gateway once (a reset after sending is not
	// retried on the same backend) and fell back once.
	if g, o, f := len(gw.Requests()), len(ol.Requests()), fallbacks(r, "gateway"); g != 2 || o != 2 || f != 2 {
		t.Errorf("gateway requests %d, Ollama requests %d, logged fallbacks %d; want 2 each", g, o, f)
	}
}

// TestFaultResetMidStream: the gateway connection dies after part of a
// stream went out. The client keeps what it got, then an in-band error
// frame, no [DONE]; Ollama is not tried since the answer had started.
func TestFaultResetMidStream(t *testing.T) {
	noLeaks(t)
	gw := newGateway(t, upstreamModel)
	// Five frames of about 1 KB, so the byte limit below falls inside the
	// second content frame whatever the size of the headers.
	pieces := make([]string, 5)
	for i := range pieces {
		pieces[i] = strings.Repeat(string(rune('a'+i)), 999) + " "
	}
	gw.Pieces, gw.PieceDelay = pieces, 50*time.Millisecond
	ol := newOllama(t, upstreamModel)
	link := newFaultLink(t, "gateway", gw.URL)
	r := startApp(t, faultConfig(link.URL(), ol.URL))
	hc := faultClient(t)

	// Headers (~150 bytes), the role frame (~250) and the first content
	// frame (~1.2 KB) pass; the connection closes inside the second.
	link.toxic(t, "cut", "limit_data", "downstream", `{"bytes":2200}`)

	a := send(t, hc, r, faultStreamed)
	a.expect(t, http.StatusOK, "gateway")
	s := parseSSE(t, a.Body)
	if s.Content != pieces[0] || s.Chunks != 2 {
		t.Errorf("got %d chunks with %d bytes of content; want the role chunk and the first piece (%d bytes)", s.Chunks, len(s.Content), len(pieces[0]))
	}
	// The truncated frame is unreadable: a 502-class upstream_error.
	s.broken(t, "upstream_error")
	if n := len(ol.Requests()); n != 0 {
		t.Errorf("Ollama received %d requests after the stream started, want 0", n)
	}
	if f := fallbacks(r, "gateway"); f != 0 {
		t.Errorf("logged %d fallbacks, want 0", f)
	}
}

// TestFaultStall: the gateway's answer is swallowed on the link (toxic
// timeout 0 holds the connection open and drops every byte).
func TestFaultStall(t *testing.T) {
	noLeaks(t)

	// Before the first byte, the first-byte timeout gives up on the gateway
	// and Ollama answers.
	t.Run("before the first byte", func(t *testing.T) {
		gw := newGateway(t, upstreamModel)
		ol := newOllama(t, upstreamModel)
		link := newFaultLink(t, "gateway", gw.URL)
		cfg := faultConfig(link.URL(), ol.URL)
		const firstByte = 300 * time.Millisecond
		cfg.Gateway.Resilience.Timeouts.FirstByte = app.Duration(firstByte)
		r := startApp(t, cfg)
		hc := faultClient(t)

		link.toxic(t, "blackhole", "timeout", "downstream", `{"timeout":0}`)

		buffered := send(t, hc, r, faultBuffered)
		buffered.expect(t, http.StatusOK, "ollama")
		if got := buffered.content(t); got != ollamaReply {
			t.Errorf("content %q, want %q", got, ollamaReply)
		}
		streamed := send(t, hc, r, faultStreamed)
		streamed.expect(t, http.StatusOK, "ollama")
		parseSSE(t, streamed.Body).complete(t, ollamaReply)
		for _, a := range []faultAnswer{buffered, streamed} {
			if a.Elapsed < firstByte || a.Elapsed > 10*time.Second {
				t.Errorf("answered after %v; want the %v first-byte timeout plus a little", a.Elapsed, firstByte)
			}
		}
		if g, f := len(gw.Requests()), fallbacks(r, "gateway"); g != 2 || f != 2 {
			t.Errorf("gateway requests %d, logged fallbacks %d; want 2 each", g, f)
		}
	})

	// Mid-stream, the idle timeout ends the stream with an in-band error
	// instead of leaving the client hanging.
	t.Run("mid-stream", func(t *testing.T) {
		gw := newGateway(t, upstreamModel)
		pieces, full := numberedPieces(6)
		gw.Pieces, gw.PieceDelay = pieces, 300*time.Millisecond
		ol := newOllama(t, upstreamModel)
		link := newFaultLink(t, "gateway", gw.URL)
		cfg := faultConfig(link.URL(), ol.URL)
		cfg.Gateway.Resilience.Timeouts.Idle = app.Duration(time.Second) // longer than the 300ms gaps
		r := startApp(t, cfg)

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.BaseURL()+"/v1/chat/completions", strings.NewReader(faultStreamed))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := faultClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend") != "gateway" {
			t.Fatalf("status %d X-Backend %q, want 200 gateway", resp.StatusCode, resp.Header.Get("X-Backend"))
		}
		// Read up to the first piece, then stall the link.
		br := bufio.NewReader(resp.Body)
		var head bytes.Buffer
		for !strings.Contains(head.String(), `"content":"p0 "`) {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("before the first piece: %v (read %q)", err, head.String())
			}
			head.WriteString(line)
		}
		stalled := time.Now()
		link.toxic(t, "blackhole", "timeout", "downstream", `{"timeout":0}`)

		rest, err := io.ReadAll(br)
		if err != nil {
			t.Fatalf("after the stall: %v", err)
		}
		if waited := time.Since(stalled); waited > 10*time.Second {
			t.Errorf("the stream ended %v after the stall; want about the 1s idle timeout", waited)
		}
		s := parseSSE(t, append(head.Bytes(), rest...))
		s.broken(t, "upstream_timeout")
		// Everything sent before the stall, at least the first piece; the
		// rest never came.
		if !strings.HasPrefix(s.Content, "p0 ") || s.Content == full || !strings.HasPrefix(full, s.Content) {
			t.Errorf("content %q: want a strict prefix of %q beginning with the first piece", s.Content, full)
		}
		if n := len(ol.Requests()); n != 0 {
			t.Errorf("Ollama received %d requests after the stream started, want 0", n)
		}
	})
}

// TestFaultBandwidth: the gateway's stream squeezed through 8 KB/s arrives
// slowly but whole and in order.
func TestFaultBandwidth(t *testing.T) {
	noLeaks(t)
	gw := newGateway(t, upstreamModel)
	pieces, full := numberedPieces(40)
	gw.Pieces = pieces
	ol := newOllama(t, upstreamModel)
	link := newFaultLink(t, "gateway", gw.URL)
	r := startApp(t, faultConfig(link.URL(), ol.URL))
	hc := faultClient(t)

	link.toxic(t, "narrow", "bandwidth", "downstream", `{"rate":8}`)

	a := send(t, hc, r, faultStreamed)
	a.expect(t, http.StatusOK, "gateway")
	s := parseSSE(t, a.Body)
	s.complete(t, full) // countPieces numbers the pieces: in order, none missing
	if s.Chunks != len(pieces)+2 {
		t.Errorf("%d chunks, want %d: the role chunk, one per piece, the finishing chunk", s.Chunks, len(pieces)+2)
	}
	// About 9 KB of upstream frames at 8 KB/s take over a second; half of
	// that is a floor the toxic guarantees.
	if a.Elapsed < 500*time.Millisecond || a.Elapsed > 15*time.Second {
		t.Errorf("the stream took %v; want about a second", a.Elapsed)
	}
	if n := len(ol.Requests()); n != 0 {
		t.Errorf("Ollama received %d requests, want 0", n)
	}
}

// TestFaultGatewayDownAndBack: the gateway link goes away; Ollama serves,
// the breaker opens after breaker.failures failures and keeps requests off
// the link; once the link is back and the cooldown over, one probe finds
// the gateway healthy, the breaker closes and the gateway serves again.
func TestFaultGatewayDownAndBack(t *testing.T) {
	noLeaks(t)
	gw := newGateway(t, upstreamModel)
	ol := newOllama(t, upstreamModel)
	link := newFaultLink(t, "gateway", gw.URL)
	cfg := faultConfig(link.URL(), ol.URL)
	const failures, cooldown = 3, time.Second
	cfg.Gateway.Resilience.Breaker = app.BreakerConfig{Failures: failures, Cooldown: app.Duration(cooldown)}
	r := startApp(t, cfg)
	hc := faultClient(t)

	send(t, hc, r, faultBuffered).expect(t, http.StatusOK, "gateway")
	if b := breakerOf(t, hc, r, "gateway"); b != "closed" {
		t.Fatalf("breaker %q at the start, want closed", b)
	}
	gatewayChats := len(gw.Requests())

	// Down: the proxy stops listening and drops its connections.
	link.proxy.Stop()
	var lastSent time.Time
	for i := 0; i < failures; i++ {
		lastSent = time.Now()
		a := send(t, hc, r, faultBuffered)
		a.expect(t, http.StatusOK, "ollama")
		if got := a.content(t); got != ollamaReply {
			t.Errorf("content %q, want %q", got, ollamaReply)
		}
	}
	if b := breakerOf(t, hc, r, "gateway"); b != "open" {
		t.Fatalf("breaker %q after %d failures, want open", b, failures)
	}

	// Back, but the breaker is open: requests skip the gateway without
	// touching the link.
	if err := link.proxy.Start(); err != nil {
		t.Fatalf("restarting the proxy: %v", err)
	}
	accepted := link.accepted.Load()
	var skipped []faultAnswer
	for range 2 {
		skipped = append(skipped, send(t, hc, r, faultBuffered))
	}
	// The breaker opened after lastSent; so while less than the cooldown
	// has passed since then, every request above met it open. A machine
	// too slow for that cannot tell an open breaker from a probe.
	if inWindow := time.Since(lastSent) < cooldown; inWindow {
		for _, a := range skipped {
			a.expect(t, http.StatusOK, "ollama")
		}
		if n := link.accepted.Load() - accepted; n != 0 {
			t.Errorf("%d connections reached the gateway link while the breaker was open, want 0", n)
		}
		if n := len(gw.Requests()) - gatewayChats; n != 0 {
			t.Errorf("the gateway received %d chat requests while the breaker was open, want 0", n)
		}
		if b := breakerOf(t, hc, r, "gateway"); b != "open" {
			t.Errorf("breaker %q within the cooldown, want open", b)
		}
		skippedLogs := r.Logs.FilterMessage("upstream attempt failed, falling back to the next backend").
			FilterField(zap.String("backend", "gateway")).FilterFieldKey("error").All()
		open := 0
		for _, e := range skippedLogs {
			if strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "circuit breaker open") {
				open++
			}
		}
		if open != len(skipped) {
			t.Errorf("logged %d attempts skipped by the open breaker, want %d", open, len(skipped))
		}
	} else {
		t.Logf("%v passed before the open-breaker checks ended (cooldown %v): skipped them", time.Since(lastSent), cooldown)
	}

	// After the cooldown one probe goes to the gateway, and it is healthy.
	deadline := time.Now().Add(10 * time.Second)
	for breakerOf(t, hc, r, "gateway") == "open" {
		if time.Now().After(deadline) {
			t.Fatal("the breaker stayed open long past its cooldown")
		}
		time.Sleep(20 * time.Millisecond)
	}
	accepted = link.accepted.Load()
	send(t, hc, r, faultBuffered).expect(t, http.StatusOK, "gateway")
	if link.accepted.Load() == accepted {
		t.Error("the probe reached the gateway without a new connection on the link")
	}
	if b := breakerOf(t, hc, r, "gateway"); b != "closed" {
		t.Errorf("breaker %q after a successful probe, want closed", b)
	}
	send(t, hc, r, faultBuffered).expect(t, http.StatusOK, "gateway")
	a := send(t, hc, r, faultStreamed)
	a.expect(t, http.StatusOK, "gateway")
	parseSSE(t, a.Body).complete(t, gatewayReply)
}

// TestFaultOverload: Ollama alone, one request at a time and one waiting
// at most 100ms. Of four concurrent streams, the one served gets a whole
// answer; the others are refused with 429 rate_limit_exceeded and a
// Retry-After, and are not told to give up (no x-should-retry: false).
func TestFaultOverload(t *testing.T) {
	noLeaks(t)
	ol := newOllama(t, upstreamModel)
	ol.PieceDelay = 300 * time.Millisecond // about a second per answer
	cfg := faultConfig("", ol.URL)
	cfg.Ollama.Resilience.Limit = app.LimitConfig{Concurrency: 1, Queue: 1, MaxWait: app.Duration(100 * time.Millisecond)}
	r := startApp(t, cfg)
	hc := faultClient(t)

	answers := make([]faultAnswer, 4)
	errs := make([]error, len(answers))
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i], errs[i] = trySend(hc, r, faultStreamed) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	served, refused := 0, 0
	for i, a := range answers {
		switch a.Status {
		case http.StatusOK:
			served++
			a.expect(t, http.StatusOK, "ollama")
			parseSSE(t, a.Body).complete(t, ollamaReply)
		case http.StatusTooManyRequests:
			refused++
			e := a.apiErr(t)
			if e.code() != "rate_limit_exceeded" || e.Type != "rate_limit_exceeded" {
				t.Errorf("request %d: error type %q code %q, want rate_limit_exceeded", i, e.Type, e.code())
			}
			if ra := a.Header.Get("Retry-After"); ra != "1" {
				t.Errorf("request %d: Retry-After %q, want 1", i, ra)
			}
			if v, ok := a.Header["X-Should-Retry"]; ok {
				t.Errorf("request %d: x-should-retry %q on a 429 the client should retry", i, v)
			}
		default:
			t.Errorf("request %d: status %d, want 200 or 429; body %s", i, a.Status, a.Body)
		}
	}
	if served < 1 || refused < 1 {
		t.Errorf("%d served, %d refused; want at least one of each", served, refused)
	}
	if n := len(ol.Requests()); n != served {
		t.Errorf("Ollama received %d requests, want %d (refused ones never reach it)", n, served)
	}
}

// TestFaultAllBackendsFail: when every backend failed, the final 5xx tells
// the SDKs not to retry (this service already tried everything), and the
// code says how the backends failed.
func TestFaultAllBackendsFail(t *testing.T) {
	noLeaks(t)
	for _, tc := range []struct {
		name, toxic, attributes string
		status                  int
		code                    string
	}{
		{"connections reset", "reset_peer", `{"timeout":0}`, http.StatusServiceUnavailable, "upstream_unavailable"},
		{"answers stall", "timeout", `{"timeout":0}`, http.StatusGatewayTimeout, "upstream_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := newGateway(t, upstreamModel)
			ol := newOllama(t, upstreamModel)
			gwLink := newFaultLink(t, "gateway", gw.URL)
			olLink := newFaultLink(t, "ollama", ol.URL)
			cfg := faultConfig(gwLink.URL(), olLink.URL())
			cfg.UpstreamTimeout = app.Duration(300 * time.Millisecond) // the first-byte timeout of both
			r := startApp(t, cfg)
			hc := faultClient(t)
			gwLink.toxic(t, "fault", tc.toxic, "downstream", tc.attributes)
			olLink.toxic(t, "fault", tc.toxic, "downstream", tc.attributes)

			for _, body := range []string{faultBuffered, faultStreamed} {
				a := send(t, hc, r, body)
				if a.Status != tc.status {
					t.Fatalf("status %d, want %d; body %s", a.Status, tc.status, a.Body)
				}
				e := a.apiErr(t)
				if e.Type != "server_error" || e.code() != tc.code {
					t.Errorf("error type %q code %q, want server_error %q (%s)", e.Type, e.code(), tc.code, e.Message)
				}
				if got := a.Header.Get("X-Should-Retry"); got != "false" {
					t.Errorf("x-should-retry %q, want false", got)
				}
				if got := a.Header.Get("Retry-After"); got != "" {
					t.Errorf("Retry-After %q, want none", got)
				}
				if b := a.Header.Get("X-Backend"); b != "" {
					t.Errorf("X-Backend %q on a request no backend served", b)
				}
			}
			if f := fallbacks(r, "gateway"); f != 2 {
				t.Errorf("logged %d fallbacks from the gateway, want 2", f)
			}
		})
	}
}

// TestFaultRetryOn503: a gateway that answers 503 with Retry-After: 0 once
// is asked again after a short backoff and serves the request; Ollama is
// not tried.
func TestFaultRetryOn503(t *testing.T) {
	noLeaks(t)
	gw := newGateway(t, upstreamModel)
	var chats atomic.Int64
	var refuseNext atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/v1/chat/completions" {
			chats.Add(1)
			if refuseNext.CompareAndSwap(true, false) {
				_, _ = io.Copy(io.Discard, req.Body)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"error":{"message":"busy, try again","type":"server_error","param":null,"code":null}}`)
				return
			}
		}
		gw.Config.Handler.ServeHTTP(w, req)
	}))
	t.Cleanup(front.Close)
	ol := newOllama(t, upstreamModel)
	cfg := faultConfig(front.URL, ol.URL)
	cfg.Gateway.Resilience.Retries = app.RetriesConfig{Attempts: 2, BaseDelay: app.Duration(50 * time.Millisecond), MaxDelay: app.Duration(time.Second)}
	r := startApp(t, cfg)
	hc := faultClient(t)

	for _, tc := range []struct{ name, body string }{{"buffered", faultBuffered}, {"streamed", faultStreamed}} {
		t.Run(tc.name, func(t *testing.T) {
			before, served := chats.Load(), len(gw.Requests())
			refuseNext.Store(true)
			a := send(t, hc, r, tc.body)
			a.expect(t, http.StatusOK, "gateway")
			if tc.body == faultBuffered {
				if got := a.content(t); got != gatewayReply {
					t.Errorf("content %q, want %q", got, gatewayReply)
				}
			} else {
				parseSSE(t, a.Body).complete(t, gatewayReply)
			}
			if n, m := chats.Load()-before, len(gw.Requests())-served; n != 2 || m != 1 {
				t.Errorf("the gateway was asked %d times and answered %d; want 2 (the 503, the retry) and 1", n, m)
			}
		})
	}
	if n, f := len(ol.Requests()), fallbacks(r, "gateway"); n != 0 || f != 0 {
		t.Errorf("Ollama received %d requests, logged fallbacks %d; want none", n, f)
	}
}
