package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// The tests of issue 9: a backend that refuses the service is failed over
// and shown down; no client can open a breaker; long answers are never cut
// by the first-byte timeout.

// healthBackend is one backend of GET /health.
type healthBackend struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Error   string `json:"error"`
	Breaker string `json:"breaker"`
}

func healthOf(t *testing.T, hc *http.Client, r *running, backend string) healthBackend {
	t.Helper()
	resp, err := hc.Get(r.BaseURL() + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	defer resp.Body.Close()
	var h struct {
		Backends []healthBackend `json:"backends"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	for _, b := range h.Backends {
		if b.Name == backend {
			return b
		}
	}
	t.Fatalf("/health has no backend %q", backend)
	return healthBackend{}
}

// metric reads one sample of a counter from /metrics ("" when absent).
func metric(t *testing.T, hc *http.Client, r *running, sample string) string {
	t.Helper()
	resp, err := hc.Get(r.BaseURL() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// TestBackendRefusingTheServiceIsFailedOver: a gateway that refuses the
// service's credentials (401, 403) is a backend that cannot be used, not a
// client error: Ollama serves, the breaker counts it, /health shows the
// gateway down as unauthorized, and a warn line says which setting to
// check. The gateway's own error text never reaches the client.
func TestBackendRefusingTheServiceIsFailedOver(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			gw := newGateway(t, upstreamModel)
			gw.Status, gw.ErrorMessage = status, "Incorrect API key provided: sk-old."
			ol := newOllama(t, upstreamModel)
			cfg := faultConfig(gw.URL, ol.URL)
			cfg.Gateway.APIKey = "sk-old"
			cfg.Gateway.Resilience.Breaker = app.BreakerConfig{Failures: 3, Cooldown: app.Duration(time.Minute)}
			r := startApp(t, cfg)
			hc := faultClient(t)

			for i := range 3 {
				a := send(t, hc, r, faultBuffered)
				a.expect(t, http.StatusOK, "ollama")
				if bytes.Contains(a.Body, []byte("Incorrect API key")) {
					t.Errorf("request %d: the gateway's refusal reached the client: %s", i, a.Body)
				}
			}
			h := healthOf(t, hc, r, "gateway")
			if h.Status != "down" || h.Reason != "unauthorized" || h.Breaker != "open" {
				t.Errorf("/health gateway %+v: want down, unauthorized, breaker open after 3 refusals", h)
			}
			if got := metric(t, hc, r, `chatgpt_api_upstream_attempts_total{backend="gateway",outcome="unauthorized"}`); got != "3" {
				t.Errorf("unauthorized attempts counted: %q, want 3", got)
			}
			warned := r.Logs.FilterMessage("upstream attempt failed, falling back to the next backend").FilterFieldKey("check").All()
			if len(warned) == 0 || !strings.Contains(fmt.Sprint(warned[0].ContextMap()["check"]), "GATEWAY_API_KEY") {
				t.Errorf("warn lines naming the setting to check: %v", warned)
			}
			for _, e := range r.Logs.All() {
				if strings.Contains(fmt.Sprint(e.ContextMap()), "sk-old") && !strings.Contains(fmt.Sprint(e.ContextMap()), "Incorrect API key") {
					t.Errorf("a log line carries the API key: %v", e.ContextMap())
				}
			}
		})
	}
}

// TestWrongBasePathIsABrokenBackend: GATEWAY_URL pointing at a path the
// gateway does not serve makes every call 404. That is a broken backend,
// not a missing model: Ollama serves what it has, /health shows the
// gateway down with the URL it tried, and a model only the gateway could
// serve is a 502 naming the misconfiguration, never model_not_found.
func TestWrongBasePathIsABrokenBackend(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel, "gateway-only")
	ol := newOllama(t, upstreamModel)
	r := startApp(t, faultConfig(gw.URL+"/api", ol.URL))
	hc := faultClient(t)

	send(t, hc, r, faultBuffered).expect(t, http.StatusOK, "ollama")

	a := send(t, hc, r, `{"model":"gateway-only","messages":[{"role":"user","content":"Hi"}]}`)
	e := a.apiErr(t)
	if a.Status != http.StatusBadGateway || e.code() == "model_not_found" || !strings.Contains(e.Message, "gateway: misconfigured") {
		t.Errorf("status %d error %+v: want 502 naming the gateway as misconfigured", a.Status, e)
	}
	h := healthOf(t, hc, r, "gateway")
	if h.Status != "down" || h.Reason != "not_found" || !strings.Contains(h.Error, gw.URL+"/api/") {
		t.Errorf("/health gateway %+v: want down, not_found, and the URL tried", h)
	}
}

// TestHostileRequestsNeverOpenTheBreaker sends 50 hostile but well-formed
// requests, each of a kind a client can send at will; the gateway's
// breaker (3 failures) stays closed, and the gateway still serves.
func TestHostileRequestsNeverOpenTheBreaker(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel)
	// In front of the fake, the gateway reads the body as a Python or Node
	// server does (keys case-sensitive, the last duplicate wins), and
	// refuses what it finds invalid, as a real one would.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if bytes.Contains(body, []byte("logit_bias")) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"message":"Invalid 'logit_bias'.","type":"invalid_request_error","param":"logit_bias","code":null}}`)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(exactKeys(t, body)))
		gw.Config.Handler.ServeHTTP(w, req)
	}))
	t.Cleanup(front.Close)
	ol := newOllama(t, upstreamModel)
	cfg := faultConfig(front.URL, ol.URL)
	cfg.Gateway.Resilience.Breaker = app.BreakerConfig{Failures: 3, Cooldown: app.Duration(time.Minute)}
	cfg.Server.MaxBodyBytes = 4096
	r := startApp(t, cfg)
	hc := faultClient(t)

	msgs := `"messages":[{"role":"user","content":"Hi"}]`
	hostile := []string{
		// What encoding/json and the gateway would read differently.
		`{"model":"gpt-4","stream":true,"Stream":false,` + msgs + `}`,
		`{"model":"gpt-4","stream":false,"stream":true,` + msgs + `}`,
		`{"model":"gpt-4","stream":true,"stream_options":{"include_usage":true,"INCLUDE_USAGE":false},` + msgs + `}`,
		`{"model":"gpt-4","MODEL":"qwen2.5:32b",` + msgs + `}`,
		// What the gateway rejects.
		`{"model":"gpt-4","logit_bias":{"50256":-100},` + msgs + `}`,
		`{"model":"gpt-4","stream":true,"logit_bias":{"50256":-100},` + msgs + `}`,
		// What this service refuses before any backend.
		`{"model":"gpt-4","n":1000,` + msgs + `}`,
		`{"model":"gpt-4","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`,
		`{"model":"no-such-model",` + msgs + `}`,
	}
	// Each kind several times in a row: the breaker opens on consecutive
	// failures, and an attacker repeats what works.
	var wg sync.WaitGroup
	for i := range 50 {
		body := hostile[i*len(hostile)/50]
		if i%10 == 9 {
			// A client that leaves in the middle of a stream.
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
				defer cancel()
				gw.Set(func(s *gatewaytest.Server) { s.PieceDelay = 10 * time.Millisecond })
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.BaseURL()+"/v1/chat/completions",
					strings.NewReader(`{"model":"gpt-4","stream":true,`+msgs+`}`))
				if resp, err := hc.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
			continue
		}
		a := send(t, hc, r, body)
		if a.Status == http.StatusOK && a.Header.Get("X-Backend") == "gateway" {
			continue
		}
		if a.Status >= 500 {
			t.Errorf("hostile request %d answered %d: %s", i, a.Status, a.Body)
		}
	}
	wg.Wait()
	gw.Set(func(s *gatewaytest.Server) { s.PieceDelay = 0 })
	if b := healthOf(t, hc, r, "gateway"); b.Breaker != "closed" || b.Status != "up" {
		t.Fatalf("gateway after 50 hostile requests: %+v, want up with its breaker closed", b)
	}
	send(t, hc, r, faultBuffered).expect(t, http.StatusOK, "gateway")
}

// TestLongAnswersAreNotCutByTheFirstByteTimeout: the first token comes at
// once and the whole answer takes 3x the first-byte timeout. It arrives
// whole, buffered and streamed, on both protocols, and the breaker stays
// closed; a backend silent past the first-byte timeout is still failed
// over.
func TestLongAnswersAreNotCutByTheFirstByteTimeout(t *testing.T) {
	const firstByte = 300 * time.Millisecond
	pieces, text := numberedPieces(10)
	for _, protocol := range []string{"openai", "ollama"} {
		for _, body := range []string{faultBuffered, faultStreamed} {
			streamed := body == faultStreamed
			t.Run(fmt.Sprintf("%s/stream=%v", protocol, streamed), func(t *testing.T) {
				t.Parallel()
				var cfg app.Config
				if protocol == "openai" {
					gw := newGateway(t, upstreamModel)
					gw.Pieces, gw.PieceDelay = pieces, 3*firstByte/10
					cfg = faultConfig(gw.URL, "")
				} else {
					ol := newOllama(t, upstreamModel)
					ol.Pieces, ol.PieceDelay = pieces, 3*firstByte/10
					cfg = faultConfig("", ol.URL)
				}
				cfg.UpstreamTimeout = app.Duration(firstByte)
				cfg.Resilience.Breaker = app.BreakerConfig{Failures: 1, Cooldown: app.Duration(time.Minute)}
				r := startApp(t, cfg)
				hc := faultClient(t)
				a := send(t, hc, r, body)
				if a.Status != http.StatusOK {
					t.Fatalf("status %d after %v: %s", a.Status, a.Elapsed, a.Body)
				}
				if a.Elapsed < 3*firstByte*9/10 {
					t.Errorf("answered in %v: the fake should take about %v", a.Elapsed, 3*firstByte)
				}
				if streamed {
					parseSSE(t, a.Body).complete(t, text)
				} else if got := a.content(t); got != text {
					t.Errorf("content %q, want %q", got, text)
				}
				backend := "gateway"
				if protocol == "ollama" {
					backend = "ollama"
				}
				if b := healthOf(t, hc, r, backend); b.Breaker != "closed" {
					t.Errorf("breaker %q after a long answer (it opens on one failure here)", b.Breaker)
				}
			})
		}
	}

	t.Run("silent past the first-byte timeout: failed over", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, upstreamModel)
		gw.Hang = true
		ol := newOllama(t, upstreamModel)
		cfg := faultConfig(gw.URL, ol.URL)
		cfg.UpstreamTimeout = app.Duration(firstByte)
		r := startApp(t, cfg)
		hc := faultClient(t)
		for _, body := range []string{faultBuffered, faultStreamed} {
			a := send(t, hc, r, body)
			a.expect(t, http.StatusOK, "ollama")
		}
	})
}

// exactKeys rewrites a JSON object as a server matching keys exactly reads
// it: of the members whose keys differ only in case, the one spelled as
// the API spells it (lower case) and written last wins; the Go fake behind
// then reads the same.
func exactKeys(t *testing.T, body []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return body
	}
	var keys []string
	values := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if key != strings.ToLower(key) {
			continue // a Python server would not know this key
		}
		if _, ok := values[key]; !ok {
			keys = append(keys, key)
		}
		values[key] = v
	}
	out := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		kb, _ := json.Marshal(k)
		out = append(append(append(out, kb...), ':'), values[k]...)
	}
	return append(out, '}')
}
