package httpapi_test

// The harness wires the real service the way internal/app does — gateway and
// Ollama clients (upstream.Options pointing at the fakes), the health
// checker, the catalog, the completion service and the gin router — and
// serves it with httptest on 127.0.0.1. Tests talk to it over real HTTP.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/httpapi"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/telemetry"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/catalog"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/health"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Backend names as configured in the harness.
const (
	gwName = "gateway"
	olName = "ollama"
)

// Models the fakes serve by default, and the aliases clients use.
const (
	modelShared  = "qwen2.5:32b"                      // both backends
	modelGateway = "meta-llama/Llama-3.1-8B-Instruct" // gateway only
	modelOllama  = "llama3.2:3b"                      // Ollama only
	modelHF      = "hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M"
	aliasShared  = "gpt-4"       // -> modelShared
	aliasOllama  = "gpt-4o-mini" // -> modelOllama

	gatewayReply = "Hello from the gateway!"
	ollamaReply  = "Hello from Ollama!"
)

// catalogCreated is the created timestamp of aliases no backend dates.
var catalogCreated = time.Unix(1_700_000_000, 0)

// harnessConfig changes the defaults of newHarness. The zero value is a
// healthy gateway and Ollama host, gateway first.
type harnessConfig struct {
	GatewayModels []string // nil: modelShared, modelGateway
	OllamaModels  []string // nil: modelOllama, modelShared, mistral:latest, modelHF
	Aliases       map[string]string
	OllamaFirst   bool // backend order; the gateway comes first otherwise

	GatewayKey     string // upstream.Options.APIKey of the gateway
	AgentID        string
	GatewayTimeout time.Duration // 0: 30s
	OllamaTimeout  time.Duration // 0: 30s

	MaxBodyBytes int64    // 0: 1 MiB
	CORSOrigins  []string // nil: "*"
	APIKeys      []string // required from clients when set
	PingInterval time.Duration
	Now          func() time.Time
	Ready        *atomic.Bool
	Log          *zap.Logger

	// Gateway and Ollama configure the fakes before any request reaches them.
	Gateway func(*gatewaytest.Server)
	Ollama  func(*ollamatest.Server)
	// WrapGateway and WrapOllama put a handler in front of a fake; the
	// service then talks to the wrapper, which calls the fake's handler.
	WrapGateway func(http.Handler) http.Handler
	WrapOllama  func(http.Handler) http.Handler

	// GatewayDown and OllamaDown stop a fake before the first health check.
	GatewayDown, OllamaDown bool
	// SkipCheck leaves every backend "unknown": no health check is run.
	SkipCheck bool
	// AfterCheck runs after the first health check (to stop a backend that
	// was seen up, for example).
	AfterCheck func(*harness)
}

// harness is a running service and its two fake backends.
type harness struct {
	gw      *gatewaytest.Server
	ol      *ollamatest.Server
	srv     *httptest.Server
	checker *health.Checker
	client  *http.Client
	fronts  []*httptest.Server // the wrappers in front of fakes
}

// dropUpstreamConns cuts every connection the service holds to a backend;
// a failing test uses it so that a fake stuck waiting does not hold up the
// cleanup.
func (h *harness) dropUpstreamConns() {
	for _, s := range append([]*httptest.Server{h.gw.Server, h.ol.Server}, h.fronts...) {
		s.CloseClientConnections()
	}
}

func newHarness(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	if cfg.GatewayModels == nil {
		cfg.GatewayModels = []string{modelShared, modelGateway}
	}
	if cfg.OllamaModels == nil {
		cfg.OllamaModels = []string{modelOllama, modelShared, "mistral:latest", modelHF}
	}
	if cfg.Aliases == nil {
		cfg.Aliases = map[string]string{aliasShared: modelShared, aliasOllama: modelOllama}
	}
	// Generous defaults: only tests about timeouts should ever meet one,
	// however loaded the machine.
	if cfg.GatewayTimeout == 0 {
		cfg.GatewayTimeout = 30 * time.Second
	}
	if cfg.OllamaTimeout == 0 {
		cfg.OllamaTimeout = 30 * time.Second
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.CORSOrigins == nil {
		cfg.CORSOrigins = []string{"*"}
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}

	// Cleanups run last-registered first: the service stops (waiting for its
	// handlers, which cancels their upstream calls) before the backends do.
	h := &harness{gw: gatewaytest.New(cfg.GatewayModels...), ol: ollamatest.New(cfg.OllamaModels...)}
	t.Cleanup(h.gw.Close)
	t.Cleanup(h.ol.Close)
	if cfg.Gateway != nil {
		cfg.Gateway(h.gw)
	}
	if cfg.Ollama != nil {
		cfg.Ollama(h.ol)
	}
	gwURL, olURL := h.gw.URL, h.ol.URL
	if cfg.WrapGateway != nil {
		front := httptest.NewServer(cfg.WrapGateway(h.gw.Config.Handler))
		t.Cleanup(front.Close)
		h.fronts = append(h.fronts, front)
		gwURL = front.URL
	}
	if cfg.WrapOllama != nil {
		front := httptest.NewServer(cfg.WrapOllama(h.ol.Config.Handler))
		t.Cleanup(front.Close)
		h.fronts = append(h.fronts, front)
		olURL = front.URL
	}
	if cfg.GatewayDown {
		h.gw.Close()
	}
	if cfg.OllamaDown {
		h.ol.Close()
	}

	transport := func() http.RoundTripper {
		tr := upstream.NewTransport(0)
		t.Cleanup(tr.CloseIdleConnections)
		return tr
	}
	gwClient := gateway.New(upstream.Options{
		Name: gwName, BaseURL: mustURL(t, gwURL+"/v1"), AgentID: cfg.AgentID, APIKey: cfg.GatewayKey,
		Timeouts: upstream.Timeouts{FirstByte: cfg.GatewayTimeout}, Transport: transport(),
	})
	olClient := ollama.New(upstream.Options{
		Name: olName, BaseURL: mustURL(t, olURL), AgentID: cfg.AgentID,
		Timeouts: upstream.Timeouts{FirstByte: cfg.OllamaTimeout}, Transport: transport(),
	}, ollama.Options{})

	type backend struct {
		name, protocol, url string
		client              any
		lister              ports.ModelLister
	}
	backends := []backend{
		{gwName, "openai", gwURL + "/v1", gwClient, gwClient},
		{olName, "ollama", olURL, olClient, olClient},
	}
	if cfg.OllamaFirst {
		backends[0], backends[1] = backends[1], backends[0]
	}
	hb := make([]health.Backend, len(backends))
	cb := make([]catalog.Backend, len(backends))
	sb := make([]dispatch.Backend, len(backends))
	for i, b := range backends {
		hb[i] = health.Backend{Name: b.name, Protocol: b.protocol, URL: b.url, Lister: b.lister}
		cb[i] = catalog.Backend{Name: b.name}
		sb[i] = dispatch.Backend{Name: b.name, Client: b.client}
	}
	h.checker = health.NewChecker(hb, time.Minute, 30*time.Second)
	if !cfg.SkipCheck {
		h.checker.CheckNow(context.Background())
	}
	if cfg.AfterCheck != nil {
		cfg.AfterCheck(h)
	}
	cat := catalog.New(cfg.Aliases, cb, h.checker, catalogCreated)
	svc := dispatch.New(cat, sb, dispatch.Observers{telemetry.Attempts{Log: cfg.Log}, h.checker})
	router := httpapi.NewRouter(
		httpapi.Options{CORSOrigins: cfg.CORSOrigins, MaxBodyBytes: cfg.MaxBodyBytes, APIKeys: cfg.APIKeys, PingInterval: cfg.PingInterval},
		httpapi.Deps{Chat: svc, Catalog: cat, Health: h.checker, Ready: cfg.Ready, Log: cfg.Log, Now: cfg.Now},
	)
	h.srv = httptest.NewServer(router)
	t.Cleanup(h.srv.Close)
	h.client = h.srv.Client()
	return h
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// request builds a request to the service; body may be "".
func (h *harness) request(t testing.TB, ctx context.Context, method, path, body string, hdr http.Header) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req
}

// do sends a request and reads the whole answer.
func (h *harness) do(t testing.TB, method, path, body string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	resp, err := h.client.Do(h.request(t, context.Background(), method, path, body, hdr))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp, data
}

// chat posts body to /v1/chat/completions.
func (h *harness) chat(t testing.TB, body string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	return h.do(t, http.MethodPost, "/v1/chat/completions", body, hdr)
}

// chatBody is a minimal valid request for model with extra top-level
// fields (a JSON fragment such as `"stream":true`, or "").
func chatBody(model, extra string) string {
	m, _ := json.Marshal(model)
	b := `{"model":` + string(m) + `,"messages":[{"role":"user","content":"Say hello."}]`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

// errorBody is OpenAI's error envelope as the client decodes it.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// jsonString encodes s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// jsonMap decodes a JSON object.
func jsonMap(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad JSON in the test: %v\n%s", err, s)
	}
	return m
}

// wantError describes an expected error answer; an empty Param or Code
// means JSON null. MessageHas lists substrings the message must contain.
type wantError struct {
	Status     int
	Type       string
	Param      string
	Code       string
	MessageHas []string
	// MessageLacks lists substrings the message must not contain: what a
	// backend said, its addresses, network errors (those go to the logs).
	MessageLacks []string
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// checkError asserts an OpenAI-shaped error answer and returns it.
func checkError(t testing.TB, resp *http.Response, body []byte, want wantError) errorDetail {
	t.Helper()
	if resp.StatusCode != want.Status {
		t.Errorf("status = %d, want %d; body: %s", resp.StatusCode, want.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	openaispec.Must(t, "ErrorResponse", body)
	var got errorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decoding the error body: %v\n%s", err, body)
	}
	wantDetail := errorDetail{Message: got.Error.Message, Type: want.Type, Param: nullable(want.Param), Code: nullable(want.Code)}
	if diff := cmp.Diff(wantDetail, got.Error); diff != "" {
		t.Errorf("error body mismatch (-want +got):\n%s\nbody: %s", diff, body)
	}
	if got.Error.Message == "" {
		t.Errorf("error message is empty: %s", body)
	}
	for _, s := range want.MessageHas {
		if !strings.Contains(got.Error.Message, s) {
			t.Errorf("error message %q does not contain %q", got.Error.Message, s)
		}
	}
	for _, s := range want.MessageLacks {
		if strings.Contains(got.Error.Message, s) {
			t.Errorf("error message %q contains %q", got.Error.Message, s)
		}
	}
	return got.Error
}

// sseFrames splits a complete event stream into the payloads of its data
// frames, failing on anything but `data: <payload>\n\n` frames.
func sseFrames(t testing.TB, raw []byte) []string {
	t.Helper()
	var frames []string
	rest := raw
	for len(rest) > 0 {
		if !bytes.HasPrefix(rest, []byte("data: ")) {
			t.Fatalf("frame %d does not start with %q: %q\nstream:\n%s", len(frames), "data: ", firstLine(rest), raw)
		}
		end := bytes.Index(rest, []byte("\n\n"))
		if end < 0 {
			t.Fatalf("frame %d is not terminated by a blank line: %q", len(frames), rest)
		}
		payload := rest[len("data: "):end]
		if bytes.ContainsAny(payload, "\r\n") || len(payload) == 0 {
			t.Fatalf("frame %d is not a single non-empty data line: %q", len(frames), rest[:end])
		}
		frames = append(frames, string(payload))
		rest = rest[end+2:]
	}
	return frames
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// frameReader reads one SSE frame at a time from a live response.
type frameReader struct{ r *bufio.Reader }

func newFrameReader(r io.Reader) *frameReader { return &frameReader{bufio.NewReader(r)} }

// next returns the payload of the next frame.
func (f *frameReader) next() (string, error) {
	line, err := f.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, "data: ") {
		return "", errors.New("not a data line: " + line)
	}
	blank, err := f.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if blank != "\n" {
		return "", errors.New("data line not followed by a blank line: " + blank)
	}
	return strings.TrimSuffix(line[len("data: "):], "\n"), nil
}

// streamChunk is a chat.completion.chunk as the client decodes it.
type streamChunk struct {
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
	Usage *usage `json:"usage"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// handlerEvents wraps a fake's handler and reports, per chat request, when
// it arrived and how it ended: cancelled (the request's context was done
// when the fake returned) or finished normally.
type handlerEvents struct {
	path      string
	mu        sync.Mutex
	headers   []http.Header
	arrived   chan struct{} // one send per chat request
	cancelled chan struct{} // one send per chat request whose context ended
	finished  chan struct{} // one send per chat request that ended normally
}

func newHandlerEvents(path string) *handlerEvents {
	return &handlerEvents{
		path:      path,
		arrived:   make(chan struct{}, 16),
		cancelled: make(chan struct{}, 16),
		finished:  make(chan struct{}, 16),
	}
}

func (e *handlerEvents) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != e.path {
			next.ServeHTTP(w, r)
			return
		}
		e.mu.Lock()
		e.headers = append(e.headers, r.Header.Clone())
		e.mu.Unlock()
		e.arrived <- struct{}{}
		defer func() {
			// The server cancels r.Context() only after the handler returns,
			// so a done context here means the client went away.
			if r.Context().Err() != nil {
				e.cancelled <- struct{}{}
			} else {
				e.finished <- struct{}{}
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (e *handlerEvents) Headers() []http.Header {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]http.Header(nil), e.headers...)
}

// finalGate wraps a fake's handler and holds back the write carrying
// marker (the answer's final line) until release is called; held is closed
// once that write is waiting.
type finalGate struct {
	marker   []byte
	held     chan struct{}
	released chan struct{}
	heldOnce sync.Once
	relOnce  sync.Once
}

func newFinalGate(marker string) *finalGate {
	return &finalGate{marker: []byte(marker), held: make(chan struct{}), released: make(chan struct{})}
}

func (g *finalGate) release() { g.relOnce.Do(func() { close(g.released) }) }

func (g *finalGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&gatedWriter{ResponseWriter: w, gate: g, ctx: r.Context()}, r)
	})
}

type gatedWriter struct {
	http.ResponseWriter
	gate *finalGate
	ctx  context.Context
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, w.gate.marker) {
		w.gate.heldOnce.Do(func() { close(w.gate.held) })
		select {
		case <-w.gate.released:
		case <-w.ctx.Done():
			return 0, w.ctx.Err()
		}
	}
	return w.ResponseWriter.Write(p)
}

func (w *gatedWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// waitFor fails the test unless ch yields within a generous limit; the
// limit only stops a broken build from hanging, it asserts no timing.
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("gave up waiting: %s", what)
	}
}
