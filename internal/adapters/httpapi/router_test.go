package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/httpapi"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
)

var generatedID = regexp.MustCompile(`^req_[A-Z2-7]{26}$`)

// TestRequestID checks X-Request-ID is honoured when well formed, made up
// otherwise, echoed on every answer and forwarded to the backend.
func TestRequestID(t *testing.T) {
	t.Parallel()
	olEvents := newHandlerEvents("/api/chat")
	h := newHarness(t, harnessConfig{WrapOllama: olEvents.wrap})
	long := strings.Repeat("a", 129)
	maxID := strings.Repeat("b", 128)
	tests := []struct {
		name   string
		sent   []string // X-Request-ID values sent; nil sends none
		model  string
		stream bool
		keep   bool // the sent id must be used
	}{
		{name: "honoured", sent: []string{"trace-0042"}, model: aliasShared, keep: true},
		{name: "honoured on a stream", sent: []string{"trace-stream-7"}, model: aliasShared, stream: true, keep: true},
		{name: "honoured to ollama", sent: []string{"0af7651916cd43dd8448eb211c80319c"}, model: aliasOllama, keep: true},
		{name: "128 characters honoured", sent: []string{maxID}, model: aliasShared, keep: true},
		{name: "generated when absent", model: aliasShared},
		{name: "generated when absent, ollama", model: aliasOllama},
		{name: "replaced when too long", sent: []string{long}, model: aliasShared},
		{name: "replaced when it has a space", sent: []string{"a b"}, model: aliasShared},
		{name: "replaced when it has non-ASCII", sent: []string{"idé"}, model: aliasShared},
		{name: "replaced when empty", sent: []string{""}, model: aliasShared},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gwBefore, olBefore := len(h.gw.Requests()), len(olEvents.Headers())
			hdr := http.Header{}
			if tt.sent != nil {
				hdr[httpapi.HeaderRequestID] = tt.sent
			}
			extra := ""
			if tt.stream {
				extra = `"stream":true`
			}
			resp, body := h.chat(t, chatBody(tt.model, extra), hdr)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d; body: %s", resp.StatusCode, body)
			}
			echoed := resp.Header.Values(httpapi.HeaderRequestID)
			if len(echoed) != 1 {
				t.Fatalf("X-Request-ID values = %q, want one", echoed)
			}
			id := echoed[0]
			if tt.keep && id != tt.sent[0] {
				t.Errorf("X-Request-ID = %q, want the client's %q", id, tt.sent[0])
			}
			if !tt.keep && !generatedID.MatchString(id) {
				t.Errorf("X-Request-ID = %q, want a generated req_… id", id)
			}
			var upstream []string
			if tt.model == aliasOllama {
				hs := olEvents.Headers()
				if len(hs) != olBefore+1 {
					t.Fatalf("ollama got %d new requests", len(hs)-olBefore)
				}
				upstream = hs[len(hs)-1].Values(httpapi.HeaderRequestID)
			} else {
				rs := h.gw.Requests()
				if len(rs) != gwBefore+1 {
					t.Fatalf("gateway got %d new requests", len(rs)-gwBefore)
				}
				upstream = rs[len(rs)-1].Header.Values(httpapi.HeaderRequestID)
			}
			if len(upstream) != 1 || upstream[0] != id {
				t.Errorf("forwarded X-Request-ID = %q, want %q", upstream, id)
			}
		})
	}
	t.Run("fresh per request", func(t *testing.T) {
		seen := map[string]bool{}
		for range 5 {
			resp, _ := h.do(t, http.MethodGet, "/livez", "", nil)
			id := resp.Header.Get(httpapi.HeaderRequestID)
			if !generatedID.MatchString(id) || seen[id] {
				t.Fatalf("X-Request-ID %q is malformed or repeated", id)
			}
			seen[id] = true
		}
	})
	t.Run("on errors and unknown routes", func(t *testing.T) {
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/v1/chat/completions", "{"},
			{"GET", "/v1/nope", ""},
			{"DELETE", "/v1/chat/completions", ""},
			{"GET", "/v1/models/nope", ""},
		} {
			resp, _ := h.do(t, c.method, c.path, c.body, http.Header{httpapi.HeaderRequestID: {"err-1"}})
			if got := resp.Header.Get(httpapi.HeaderRequestID); got != "err-1" {
				t.Errorf("%s %s: X-Request-ID = %q, want err-1", c.method, c.path, got)
			}
		}
	})
}

// headerList splits a comma-separated header into lower-case tokens.
func headerList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// TestCORS checks preflights and cross-origin answers, for "*" and for an
// allowlist.
func TestCORS(t *testing.T) {
	t.Parallel()
	const sdkHeaders = "authorization,content-type,x-stainless-os,openai-organization"
	preflight := func(origin string) http.Header {
		return http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {sdkHeaders},
		}
	}

	t.Run("any origin", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessConfig{CORSOrigins: []string{"*"}})
		for _, path := range []string{"/v1/chat/completions", "/v1/models"} {
			resp, body := h.do(t, http.MethodOptions, path, "", preflight("https://chat.example.org"))
			if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
				t.Errorf("OPTIONS %s: %d %q, want 204 without a body", path, resp.StatusCode, body)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
			}
			allowed := headerList(resp.Header.Get("Access-Control-Allow-Headers"))
			for _, want := range headerList(sdkHeaders) {
				if !slices.Contains(allowed, want) {
					t.Errorf("Access-Control-Allow-Headers %q does not name %s (\"*\" does not cover Authorization)", allowed, want)
				}
			}
			if methods := headerList(resp.Header.Get("Access-Control-Allow-Methods")); !slices.Contains(methods, "post") {
				t.Errorf("Access-Control-Allow-Methods = %q, want POST in it", methods)
			}
			if got := resp.Header.Get("Access-Control-Max-Age"); got != "43200" {
				t.Errorf("Access-Control-Max-Age = %q, want 43200", got)
			}
		}
		if n := len(h.gw.Requests()) + len(h.ol.Requests()); n != 0 {
			t.Errorf("a preflight reached a backend (%d requests)", n)
		}
		// The actual cross-origin request.
		resp, body := h.chat(t, chatBody(aliasShared, ""), http.Header{"Origin": {"https://chat.example.org"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
		}
		exposed := headerList(resp.Header.Get("Access-Control-Expose-Headers"))
		for _, want := range []string{"x-request-id", "x-backend", "x-upstream-model"} {
			if !slices.Contains(exposed, want) {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, want)
			}
		}
	})

	t.Run("allowlist", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessConfig{CORSOrigins: []string{"https://allowed.example", "https://*.corp.example"}})
		for _, origin := range []string{"https://allowed.example", "https://app.corp.example"} {
			resp, _ := h.do(t, http.MethodOptions, "/v1/chat/completions", "", preflight(origin))
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("preflight from %s: %d, want 204", origin, resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
				t.Errorf("preflight from %s: Access-Control-Allow-Origin = %q", origin, got)
			}
			if vary := headerList(strings.Join(resp.Header.Values("Vary"), ",")); !slices.Contains(vary, "origin") {
				t.Errorf("preflight from %s: Vary = %q, want Origin in it", origin, vary)
			}
		}
		for _, origin := range []string{"https://evil.example", "http://allowed.example", "https://allowed.example.evil.test"} {
			resp, _ := h.do(t, http.MethodOptions, "/v1/chat/completions", "", preflight(origin))
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("preflight from %s: %d, want 403", origin, resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("preflight from %s: Access-Control-Allow-Origin = %q, want none", origin, got)
			}
			resp, _ = h.chat(t, chatBody(aliasShared, ""), http.Header{"Origin": {origin}})
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("POST from %s: %d with Access-Control-Allow-Origin %q, want 403 without it",
					origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
			}
		}
		if n := len(h.gw.Requests()); n != 0 {
			t.Errorf("a request from a refused origin reached the gateway (%d)", n)
		}
		// Requests without Origin (SDKs, curl) are not CORS requests.
		resp, body := h.chat(t, chatBody(aliasShared, ""), nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("POST without Origin: %d %s", resp.StatusCode, body)
		}
	})
}

// healthWire is the /health body.
type healthWire struct {
	Status  string `json:"status"`
	Gateway struct {
		Name      string   `json:"name"`
		Status    string   `json:"status"`
		Uptime    *float64 `json:"uptime"`
		Models    *int     `json:"models"`
		LatencyMS *float64 `json:"latency_ms"`
	} `json:"gateway"`
	Backends []struct {
		Name      string   `json:"name"`
		Protocol  string   `json:"protocol"`
		URL       string   `json:"url"`
		Status    string   `json:"status"`
		LatencyMS *float64 `json:"latency_ms"`
		Models    []string `json:"models"`
		Error     string   `json:"error"`
		Reason    string   `json:"reason"`
		CheckedAt string   `json:"checked_at"`
	} `json:"backends"`
}

// TestHealth checks /health for every combination of backend states.
func TestHealth(t *testing.T) {
	t.Parallel()
	const ahead = 90 * time.Second
	gwModels := []string{modelShared, modelGateway}
	olModels := []string{modelOllama, modelShared, "mistral:latest", modelHF}
	type backend struct {
		name, protocol, status string
		models                 []string
	}
	tests := []struct {
		name         string
		cfg          harnessConfig
		status       int
		overall      string
		gwUptime     float64
		backends     []backend
		checkedLater bool
	}{
		{
			name: "ok", status: 200, overall: "ok", gwUptime: ahead.Seconds(),
			backends: []backend{{gwName, "openai", "up", gwModels}, {olName, "ollama", "up", olModels}},
		},
		{
			name: "degraded, ollama down", cfg: harnessConfig{OllamaDown: true}, status: 200, overall: "degraded", gwUptime: ahead.Seconds(),
			backends: []backend{{gwName, "openai", "up", gwModels}, {olName, "ollama", "down", []string{}}},
		},
		{
			name: "degraded, gateway down", cfg: harnessConfig{GatewayDown: true}, status: 200, overall: "degraded", gwUptime: 0,
			backends: []backend{{gwName, "openai", "down", []string{}}, {olName, "ollama", "up", olModels}},
		},
		{
			name: "down", cfg: harnessConfig{GatewayDown: true, OllamaDown: true}, status: 503, overall: "down", gwUptime: 0,
			backends: []backend{{gwName, "openai", "down", []string{}}, {olName, "ollama", "down", []string{}}},
		},
		{
			// A backend that went down keeps its last model list.
			name: "down after being up", status: 200, overall: "degraded", gwUptime: 0,
			cfg: harnessConfig{AfterCheck: func(h *harness) {
				h.gw.Close()
				h.checker.CheckNow(context.Background())
			}},
			backends: []backend{{gwName, "openai", "down", gwModels}, {olName, "ollama", "up", olModels}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The clock reads ahead of the moment the gateway came up, so
			// the uptime is exact.
			var upSince atomic.Pointer[time.Time]
			tt.cfg.Now = func() time.Time {
				if p := upSince.Load(); p != nil {
					return p.Add(ahead)
				}
				return time.Now().Add(ahead)
			}
			before := time.Now().Add(-time.Second)
			h := newHarness(t, tt.cfg)
			after := time.Now().Add(time.Second)
			if gw := h.checker.Report().Backends[0]; !gw.UpSince.IsZero() {
				upSince.Store(&gw.UpSince)
			}
			resp, body := h.do(t, http.MethodGet, "/health", "", nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body: %s", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			var raw map[string]any
			if err := json.Unmarshal(body, &raw); err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
			var got healthWire
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("decoding /health: %v\n%s", err, body)
			}
			if got.Status != tt.overall {
				t.Errorf("status = %q, want %q", got.Status, tt.overall)
			}
			g := got.Gateway
			if g.Name != gwName || g.Status != tt.backends[0].status || g.Uptime == nil || g.Models == nil || g.LatencyMS == nil {
				t.Errorf("gateway = %s; want name, status %q, uptime, models, latency_ms", mustJSON(raw["gateway"]), tt.backends[0].status)
			} else {
				if *g.Uptime != tt.gwUptime {
					t.Errorf("gateway.uptime = %v, want %v", *g.Uptime, tt.gwUptime)
				}
				if *g.Models != len(tt.backends[0].models) {
					t.Errorf("gateway.models = %d, want %d", *g.Models, len(tt.backends[0].models))
				}
				if *g.LatencyMS < 0 || (g.Status == "up" && *g.LatencyMS == 0) {
					t.Errorf("gateway.latency_ms = %v", *g.LatencyMS)
				}
			}
			if len(got.Backends) != len(tt.backends) {
				t.Fatalf("%d backends, want %d: %s", len(got.Backends), len(tt.backends), body)
			}
			for i, want := range tt.backends {
				b := got.Backends[i]
				if b.Name != want.name || b.Protocol != want.protocol || b.Status != want.status {
					t.Errorf("backends[%d] = %s/%s/%s, want %s/%s/%s", i, b.Name, b.Protocol, b.Status, want.name, want.protocol, want.status)
				}
				if diff := cmp.Diff(want.models, b.Models, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("backends[%d].models (-want +got):\n%s", i, diff)
				}
				if ms, ok := raw["backends"].([]any)[i].(map[string]any)["models"].([]any); !ok || ms == nil {
					t.Errorf("backends[%d].models is not an array: %s", i, body)
				}
				if !strings.HasPrefix(b.URL, "http://127.0.0.1:") {
					t.Errorf("backends[%d].url = %q", i, b.URL)
				}
				if b.LatencyMS == nil || *b.LatencyMS < 0 {
					t.Errorf("backends[%d].latency_ms = %v", i, b.LatencyMS)
				}
				if (want.status == "down") != (b.Error != "") {
					t.Errorf("backends[%d]: status %s with error %q", i, b.Status, b.Error)
				}
				if wantReason := map[string]string{"down": "unreachable"}[want.status]; b.Reason != wantReason {
					t.Errorf("backends[%d]: status %s with reason %q, want %q", i, b.Status, b.Reason, wantReason)
				}
				at, err := time.Parse(time.RFC3339, b.CheckedAt)
				if err != nil || !strings.HasSuffix(b.CheckedAt, "Z") || at.Before(before) || at.After(after) {
					t.Errorf("backends[%d].checked_at = %q (%v); want RFC 3339 UTC between %v and %v", i, b.CheckedAt, err, before, after)
				}
			}
		})
	}
	t.Run("before the first check", func(t *testing.T) {
		t.Parallel()
		// No backend is known up yet: /health says down, but requests are
		// still routed since no model list says otherwise.
		h := newHarness(t, harnessConfig{SkipCheck: true})
		resp, body := h.do(t, http.MethodGet, "/health", "", nil)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status = %d, want 503; body: %s", resp.StatusCode, body)
		}
		want := jsonMap(t, `{"status":"down",
			"gateway":{"name":"gateway","status":"unknown","uptime":0,"models":0,"latency_ms":0},
			"backends":[
				{"name":"gateway","protocol":"openai","url":"`+h.gw.URL+`/v1","status":"unknown","latency_ms":0,"models":[]},
				{"name":"ollama","protocol":"ollama","url":"`+h.ol.URL+`","status":"unknown","latency_ms":0,"models":[]}]}`)
		if diff := cmp.Diff(want, jsonMap(t, string(body))); diff != "" {
			t.Errorf("/health mismatch (-want +got):\n%s", diff)
		}
		resp, body = h.chat(t, chatBody(aliasShared, ""), nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get(httpapi.HeaderBackend) != gwName {
			t.Errorf("chat before the first check: %d via %q; body: %s", resp.StatusCode, resp.Header.Get(httpapi.HeaderBackend), body)
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestProbesHEAD checks HEAD works on the probes and answers like GET
// without a body.
func TestProbesHEAD(t *testing.T) {
	t.Parallel()
	up := newHarness(t, harnessConfig{})
	down := newHarness(t, harnessConfig{GatewayDown: true, OllamaDown: true})
	draining := new(atomic.Bool)
	drain := newHarness(t, harnessConfig{Ready: draining})
	tests := []struct {
		name   string
		h      *harness
		path   string
		status int
		body   string // of the GET
	}{
		{"health up", up, "/health", 200, ""},
		{"health down", down, "/health", 503, ""},
		{"livez", up, "/livez", 200, `{"status":"ok"}`},
		{"livez with every backend down", down, "/livez", 200, `{"status":"ok"}`},
		{"readyz", up, "/readyz", 200, `{"status":"ready"}`},
		{"readyz draining", drain, "/readyz", 503, `{"status":"draining"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := tt.h.do(t, http.MethodHead, tt.path, "", nil)
			if resp.StatusCode != tt.status || len(body) != 0 {
				t.Errorf("HEAD %s: %d with %d body bytes, want %d and none", tt.path, resp.StatusCode, len(body), tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("HEAD %s: Content-Type = %q", tt.path, ct)
			}
			resp, body = tt.h.do(t, http.MethodGet, tt.path, "", nil)
			if resp.StatusCode != tt.status {
				t.Errorf("GET %s: %d, want %d", tt.path, resp.StatusCode, tt.status)
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("GET %s: body %s, want %s", tt.path, body, tt.body)
			}
		})
	}
}

// modelWire is OpenAI's model object.
type modelWire struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// TestModels checks /v1/models and /v1/models/{id} against OpenAI's
// schemas, for ids with ':' and '/'.
func TestModels(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessConfig{})
	const gwCreated = 1715367049 // what the fake gateway reports
	olStamp, err := time.Parse(time.RFC3339Nano, "2025-05-10T08:06:48.639712648-07:00")
	if err != nil {
		t.Fatal(err)
	}
	olCreated := olStamp.Unix() // the fake Ollama's modified_at
	all := []modelWire{
		{aliasShared, "model", gwCreated, "chatgpt-api"},
		{aliasOllama, "model", olCreated, "chatgpt-api"},
		{modelShared, "model", gwCreated, "gateway"},
		{modelGateway, "model", gwCreated, "gateway"},
		{modelOllama, "model", olCreated, "ollama"},
		{"mistral:latest", "model", olCreated, "ollama"},
		{modelHF, "model", olCreated, "ollama"},
	}

	for _, path := range []string{"/v1/models", "/v1/models/"} {
		t.Run("list "+path, func(t *testing.T) {
			resp, body := h.do(t, http.MethodGet, path, "", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d; body: %s", resp.StatusCode, body)
			}
			openaispec.Must(t, "ListModelsResponse", body)
			var got struct {
				Object string      `json:"object"`
				Data   []modelWire `json:"data"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Object != "list" {
				t.Errorf("object = %q, want list", got.Object)
			}
			if diff := cmp.Diff(all, got.Data); diff != "" {
				t.Errorf("model list mismatch (-want +got):\n%s", diff)
			}
		})
	}

	tests := []struct {
		path string
		want modelWire
	}{
		{"/v1/models/" + modelShared, all[2]},
		{"/v1/models/" + modelGateway, all[3]},
		{"/v1/models/meta-llama%2FLlama-3.1-8B-Instruct", all[3]},
		{"/v1/models/" + modelHF, all[6]},
		{"/v1/models/" + aliasShared, all[0]},
		{"/v1/models/" + aliasOllama, all[1]},
		{"/v1/models/mistral", modelWire{"mistral", "model", olCreated, "ollama"}},
	}
	for _, tt := range tests {
		t.Run("get "+tt.path, func(t *testing.T) {
			resp, body := h.do(t, http.MethodGet, tt.path, "", nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d; body: %s", resp.StatusCode, body)
			}
			openaispec.Must(t, "Model", body)
			var got modelWire
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("model mismatch (-want +got):\n%s", diff)
			}
		})
	}

	for _, id := range []string{"nope", "nope:1b", "org/nope", "qwen2.5"} {
		t.Run("unknown "+id, func(t *testing.T) {
			resp, body := h.do(t, http.MethodGet, "/v1/models/"+id, "", nil)
			checkError(t, resp, body, wantError{Status: 404, Type: "invalid_request_error", Param: "model", Code: "model_not_found",
				MessageHas: []string{"`" + id + "`"}})
		})
	}
}
