package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// Pools: OLLAMA_URL with several hosts, through the running service and
// fake Ollama hosts speaking the wire format (/api/tags, /api/ps,
// /api/chat).

// hostOf is the name the service gives a fake host: its host:port.
func hostOf(t *testing.T, s *ollamatest.Server) string {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// poolAnswer is one request's outcome through the pool.
type poolAnswer struct {
	status   int
	host     string
	affinity string
	body     string
	err      error
}

// ask sends a chat request (streamed when stream) for model with the
// given user turns (alternating with fixed assistant answers), and an
// optional session header. Safe to call from several goroutines.
func ask(r *running, model string, stream bool, session string, turns ...string) poolAnswer {
	var msgs []map[string]string
	for i, u := range turns {
		if i > 0 {
			msgs = append(msgs, map[string]string{"role": "assistant", "content": "noted"})
		}
		msgs = append(msgs, map[string]string{"role": "user", "content": u})
	}
	body, _ := json.Marshal(map[string]any{"model": model, "stream": stream, "messages": msgs})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.BaseURL()+"/v1/chat/completions", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if session != "" {
		req.Header.Set("X-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return poolAnswer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	// Streams say who served in the headers, or in trailers when a ping
	// went out first.
	host, aff := resp.Header.Get("X-Backend-Host"), resp.Header.Get("X-Affinity")
	if host == "" {
		host, aff = resp.Trailer.Get("X-Backend-Host"), resp.Trailer.Get("X-Affinity")
	}
	return poolAnswer{status: resp.StatusCode, host: host, affinity: aff, body: string(b), err: err}
}

func (a poolAnswer) ok(t *testing.T) poolAnswer {
	t.Helper()
	if a.err != nil || a.status != http.StatusOK {
		t.Fatalf("status %d err %v body %s", a.status, a.err, a.body)
	}
	return a
}

// poolConfig: an Ollama pool of the given fakes, no gateway, each host
// serving one request at a time with a short queue.
func poolConfig(hosts ...*ollamatest.Server) app.Config {
	urls := make([]string, len(hosts))
	for i, h := range hosts {
		urls[i] = h.URL
	}
	cfg := testConfig("", strings.Join(urls, ","))
	cfg.Ollama.Resilience.Limit = app.LimitConfig{Concurrency: 1, Queue: 16, MaxWait: app.Duration(10 * time.Second)}
	cfg.Pool.ResidencyInterval = app.Duration(time.Hour) // the tests say when residency is read
	return cfg
}

// waitRequests waits until the fake received n chat requests.
func waitRequests(t *testing.T, s *ollamatest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d chat requests reached %s, want %d", len(s.Requests()), s.URL, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPoolAHostGoingDownMidLoadLosesNoRequest: requests waiting on a host
// that is still loading their model (no first byte yet) when it goes away
// are served by the next host of the pool; none fails.
func TestPoolAHostGoingDownMidLoadLosesNoRequest(t *testing.T) {
	a, b := newOllama(t, upstreamModel), newOllama(t, upstreamModel)
	// a has the model loaded, so it gets the requests, and takes long to
	// answer (as a host paging a model in does).
	a.Set(func(s *ollamatest.Server) { s.Loaded = []string{upstreamModel}; s.FirstDelay = 5 * time.Second })
	cfg := poolConfig(a, b)
	cfg.Ollama.Resilience.Limit.Concurrency = 4
	r := startApp(t, cfg)

	const n = 4
	answers := make(chan poolAnswer, n)
	for i := range n {
		go func() { answers <- ask(r, "gpt-4", i%2 == 0, "", fmt.Sprintf("question %d", i)) }()
	}
	waitRequests(t, a, n)
	a.CloseClientConnections()
	a.Close()
	for range n {
		got := <-answers
		got.ok(t)
		whole := strings.Contains(got.body, "Hello from Ollama!") || // buffered
			strings.Contains(got.body, `"finish_reason":"stop"`) && strings.HasSuffix(got.body, "data: [DONE]\n\n") && !strings.Contains(got.body, `"error"`)
		if got.host != hostOf(t, b) || !whole {
			t.Errorf("served by %q: %.200s; want host b's whole answer", got.host, got.body)
		}
	}
	if len(b.Requests()) != n {
		t.Errorf("b served %d requests, want %d", len(b.Requests()), n)
	}
	// Later requests go to b directly: a's failures count against it.
	if got := ask(r, "gpt-4", false, "", "after").ok(t); got.host != hostOf(t, b) {
		t.Errorf("after a went down: served by %q", got.host)
	}
}

// TestPoolAffinityMovesWhenItsHostIsSaturatedOrEjected: a conversation
// stays with its host; when that host is at its concurrency cap the turn
// goes elsewhere (moved); when the host is gone the turn is served by the
// next one and the conversation lives there from then on.
func TestPoolAffinityMovesWhenItsHostIsSaturatedOrEjected(t *testing.T) {
	a, b := newOllama(t, upstreamModel), newOllama(t, upstreamModel)
	// Both have the model loaded: moving costs the prompt cache, not a load.
	for _, h := range []*ollamatest.Server{a, b} {
		h.Set(func(s *ollamatest.Server) { s.Loaded = []string{upstreamModel} })
	}
	r := startApp(t, poolConfig(a, b))
	fakes := map[string]*ollamatest.Server{hostOf(t, a): a, hostOf(t, b): b}

	first := ask(r, "gpt-4", false, "", "Plan my week.").ok(t)
	if first.affinity != "new" {
		t.Fatalf("first turn: affinity %q, want new", first.affinity)
	}
	home, away := fakes[first.host], a
	if home == a {
		away = b
	}
	for i := range 3 {
		got := ask(r, "gpt-4", i%2 == 1, "", "Plan my week.", fmt.Sprintf("And day %d?", i)).ok(t)
		if got.host != first.host || got.affinity != "hit" {
			t.Fatalf("turn %d: host %q affinity %q, want %q hit", i+2, got.host, got.affinity, first.host)
		}
	}

	// Saturated: home serves one request at a time and is busy with a
	// slow turn; the next turn moves.
	home.Set(func(s *ollamatest.Server) { s.FirstDelay = 2 * time.Second })
	busy := make(chan poolAnswer, 1)
	before := len(home.Requests())
	go func() { busy <- ask(r, "gpt-4", true, "", "Plan my week.", "A slow question.") }()
	waitRequests(t, home, before+1)
	got := ask(r, "gpt-4", true, "", "Plan my week.", "A quick one.").ok(t)
	if got.host != hostOf(t, away) || got.affinity != "moved" {
		t.Fatalf("home saturated: host %q affinity %q, want %q moved", got.host, got.affinity, hostOf(t, away))
	}
	if slow := <-busy; slow.ok(t).host != first.host || slow.affinity != "hit" {
		t.Fatalf("the slow turn: host %q affinity %q, want home, hit", slow.host, slow.affinity)
	}

	// Ejected: home goes away. The turn planned for it is served by the
	// other host (moved), and the conversation stays there.
	home.CloseClientConnections()
	home.Close()
	got = ask(r, "gpt-4", false, "", "Plan my week.", "Still there?").ok(t)
	if got.host != hostOf(t, away) || got.affinity != "moved" {
		t.Fatalf("home gone: host %q affinity %q, want %q moved", got.host, got.affinity, hostOf(t, away))
	}
	got = ask(r, "gpt-4", false, "", "Plan my week.", "And now?").ok(t)
	if got.host != hostOf(t, away) || got.affinity != "hit" {
		t.Fatalf("after moving: host %q affinity %q, want %q hit", got.host, got.affinity, hostOf(t, away))
	}
}

// TestPoolAHostThatGainsAModelIsUsedAfterTheNextRefresh: a host is a
// candidate for a model only once its list shows it; the health checker's
// next round brings it in.
func TestPoolAHostThatGainsAModelIsUsedAfterTheNextRefresh(t *testing.T) {
	a, b := newOllama(t, upstreamModel), newOllama(t, "llama3.2:3b")
	a.Set(func(s *ollamatest.Server) { s.Loaded = []string{upstreamModel} })
	cfg := poolConfig(a, b)
	cfg.Health.Interval, cfg.Health.Timeout = app.Duration(300*time.Millisecond), app.Duration(200*time.Millisecond)
	r := startApp(t, cfg)

	// a has the model loaded and serves one request at a time. Two slow
	// requests are a round of waiting already queued there: a request
	// would rather load the model on b, if b listed it. Before b does, it
	// waits for a.
	hc := newHTTPClient(t)
	saturated := func() poolAnswer {
		t.Helper()
		a.Set(func(s *ollamatest.Server) { s.FirstDelay = 700 * time.Millisecond })
		defer a.Set(func(s *ollamatest.Server) { s.FirstDelay = 0 })
		busy := make(chan poolAnswer, 2)
		for i := range 2 {
			go func() { busy <- ask(r, "gpt-4", false, "", fmt.Sprintf("occupy %d", i)) }()
		}
		deadline := time.Now().Add(10 * time.Second)
		for h := poolHost(t, hc, r, hostOf(t, a)); h.InFlight == nil || *h.InFlight < 2; h = poolHost(t, hc, r, hostOf(t, a)) {
			if time.Now().After(deadline) {
				t.Fatalf("a never had 2 requests in flight: %+v", h)
			}
			time.Sleep(5 * time.Millisecond)
		}
		got := ask(r, "gpt-4", false, "", "next")
		(<-busy).ok(t)
		(<-busy).ok(t)
		return got.ok(t)
	}
	if got := saturated(); got.host != hostOf(t, a) {
		t.Fatalf("before b lists the model: served by %q, want a", got.host)
	}
	if len(b.Requests()) != 0 {
		t.Fatalf("b got %d chat requests for a model it does not list", len(b.Requests()))
	}

	b.Set(func(s *ollamatest.Server) { s.Models = []string{"llama3.2:3b", upstreamModel} })
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(poolHost(t, hc, r, hostOf(t, b)).Models, upstreamModel) {
		if time.Now().After(deadline) {
			t.Fatal("b's new model never showed in /health")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := saturated(); got.host != hostOf(t, b) {
		t.Fatalf("after the refresh: served by %q, want b (a has a round of waiting queued)", got.host)
	}
}

// TestPoolAModelPulledSinceTheLastCheckIsFoundAtOnce: a request for a model
// no host listed reads the lists again before answering 404.
func TestPoolAModelPulledSinceTheLastCheckIsFoundAtOnce(t *testing.T) {
	a, b := newOllama(t, upstreamModel), newOllama(t, upstreamModel)
	cfg := poolConfig(a, b)
	cfg.Health.Interval = app.Duration(time.Hour)
	r := startApp(t, cfg)
	b.Set(func(s *ollamatest.Server) { s.Models = append(s.Models, "phi4:14b") })
	time.Sleep(1100 * time.Millisecond) // the last check is older than health.MinRefresh
	if got := ask(r, "phi4:14b", false, "", "hi").ok(t); got.host != hostOf(t, b) {
		t.Fatalf("served by %q, want b, which pulled phi4", got.host)
	}
}

// poolHostView is one host in /health.
type poolHostView struct {
	Name         string   `json:"name"`
	Status       string   `json:"status"`
	Models       []string `json:"models"`
	Loaded       []string `json:"loaded"`
	InFlight     *int     `json:"in_flight"`
	Capacity     *int     `json:"capacity"`
	LoadsAvoided *uint64  `json:"loads_avoided"`
	LoadsCaused  *uint64  `json:"loads_caused"`
}

func poolHost(t *testing.T, hc *http.Client, r *running, name string) poolHostView {
	t.Helper()
	resp, err := hc.Get(r.BaseURL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Backends []struct {
			Name  string         `json:"name"`
			Hosts []poolHostView `json:"hosts"`
		} `json:"backends"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, b := range body.Backends {
		for _, h := range b.Hosts {
			if h.Name == name {
				return h
			}
		}
	}
	t.Fatalf("no host %q in /health", name)
	return poolHostView{}
}

// TestPoolPrefersTheHostWithTheModelLoaded: with two hosts serving a
// model, requests go to the one that has it in memory, and /health and the
// metrics show it.
func TestPoolPrefersTheHostWithTheModelLoaded(t *testing.T) {
	a, b := newOllama(t, upstreamModel, "llama3.2:3b"), newOllama(t, upstreamModel, "llama3.2:3b")
	b.Set(func(s *ollamatest.Server) { s.Loaded = []string{upstreamModel} })
	cfg := poolConfig(a, b)
	cfg.Ollama.Resilience.Limit.Concurrency = 4
	r := startApp(t, cfg)
	for i := range 6 {
		if got := ask(r, "gpt-4", i%2 == 0, "", fmt.Sprintf("conversation %d", i)).ok(t); got.host != hostOf(t, b) {
			t.Fatalf("request %d served by %q, want b, which has the model loaded", i, got.host)
		}
	}
	hc := newHTTPClient(t)
	hb, ha := poolHost(t, hc, r, hostOf(t, b)), poolHost(t, hc, r, hostOf(t, a))
	if !slices.Equal(hb.Loaded, []string{upstreamModel}) || hb.Status != "up" || hb.Capacity == nil || *hb.Capacity != 4 ||
		hb.LoadsAvoided == nil || *hb.LoadsAvoided != 6 {
		t.Fatalf("/health for b: %+v", hb)
	}
	if ha.Loaded == nil || len(ha.Loaded) != 0 || *ha.LoadsCaused != 0 { // known, and empty
		t.Fatalf("/health for a: %+v", ha)
	}
	if got := metric(t, hc, r, fmt.Sprintf(`chatgpt_api_host_model_loads_total{backend="ollama",host=%q,result="avoided"}`, hostOf(t, b))); got != "6" {
		t.Errorf("loads avoided metric %q, want 6", got)
	}
	if got := metric(t, hc, r, fmt.Sprintf(`chatgpt_api_host_attempts_total{backend="ollama",host=%q,outcome="success"}`, hostOf(t, b))); got != "6" {
		t.Errorf("host attempts metric %q, want 6", got)
	}

	// A model loaded nowhere: the request loads it on one host, which is
	// then known to have it: the next request for it goes there.
	first := ask(r, "llama3.2:3b", false, "", "x").ok(t)
	for i := range 3 {
		if got := ask(r, "llama3.2:3b", false, "", fmt.Sprintf("y%d", i)).ok(t); got.host != first.host {
			t.Fatalf("after a load on %q, a request for the same model went to %q", first.host, got.host)
		}
	}
	if h := poolHost(t, hc, r, first.host); *h.LoadsCaused != 1 {
		t.Fatalf("/health for %s: %+v, want one load caused", first.host, h)
	}
}

// TestPoolSessionsAndResponsesKeepTheirHost: a session header names a
// conversation whatever its messages; a Responses turn continued with
// previous_response_id goes where the previous turn went.
func TestPoolSessionsAndResponsesKeepTheirHost(t *testing.T) {
	a, b, c := newOllama(t, upstreamModel), newOllama(t, upstreamModel), newOllama(t, upstreamModel)
	cfg := poolConfig(a, b, c)
	cfg.Ollama.Resilience.Limit.Concurrency = 4
	r := startApp(t, cfg)
	first := ask(r, "gpt-4", false, "sess-1", "one").ok(t)
	for i := range 4 {
		got := ask(r, "gpt-4", false, "sess-1", fmt.Sprintf("unrelated %d", i)).ok(t)
		if got.host != first.host || got.affinity != "hit" {
			t.Fatalf("session turn %d: %q %q, want %q hit", i, got.host, got.affinity, first.host)
		}
	}

	var mu sync.Mutex
	respond := func(body string) (string, string, string) {
		mu.Lock()
		defer mu.Unlock()
		resp, out := post(t, r, "/v1/responses", body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, out)
		}
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		return v.ID, resp.Header.Get("X-Backend-Host"), resp.Header.Get("X-Affinity")
	}
	id, host, aff := respond(`{"model":"gpt-4","instructions":"Be brief.","input":"Start a story."}`)
	if aff != "new" {
		t.Fatalf("first Responses turn: affinity %q", aff)
	}
	for range 3 {
		var h string
		id, h, aff = respond(fmt.Sprintf(`{"model":"gpt-4","instructions":"Be brief.","input":"Go on.","previous_response_id":%q}`, id))
		if h != host || aff != "hit" {
			t.Fatalf("continued turn: host %q affinity %q, want %q hit", h, aff, host)
		}
	}
}
