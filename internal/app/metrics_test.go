package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/fx"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// TestMetricsAfterTraffic sends a buffered request, a streamed request and
// one that falls back from the gateway to Ollama, then checks that /metrics
// parses, passes promlint, and counts exactly that.
func TestMetricsAfterTraffic(t *testing.T) {
	gw := gatewaytest.New("qwen2.5:32b")
	t.Cleanup(gw.Close)
	ol := ollamatest.New("qwen2.5:32b")
	t.Cleanup(ol.Close)
	ol.Pieces = []string{"a", "b", "c"}
	ol.PromptEvalCount, ol.EvalCount = 10, 3
	// Ollama is a pool of two alike hosts, so the per-host series exist.
	ol2 := ollamatest.New("qwen2.5:32b")
	t.Cleanup(ol2.Close)
	ol2.Pieces = []string{"a", "b", "c"}
	ol2.PromptEvalCount, ol2.EvalCount = 10, 3

	cfg := app.Default()
	cfg.Responses.DataDir = tempDir()
	cfg.Server.Host, cfg.Server.Port = "127.0.0.1", 0
	cfg.Log.Level = "error"
	cfg.Gateway.URL, cfg.Ollama.URL = gw.URL, ol.URL+","+ol2.URL
	var srv *app.Server
	fxApp := app.New(cfg, fx.Populate(&srv))
	if err := fxApp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fxApp.Stop(context.Background()) })
	base := "http://" + srv.Addr()

	post := func(body string) {
		t.Helper()
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d for %s", resp.StatusCode, body)
		}
	}
	post(`{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}`)               // gateway, buffered: 12+5 tokens
	post(`{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`) // gateway, streamed: 12+5 (usage is asked of the upstream)
	gw.Set(func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = 503, "overloaded" })
	post(`{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`) // falls back to ollama: 10+3

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	problems, err := promlint.New(bytes.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"chatgpt_api_http_requests_total", map[string]string{"route": "/v1/chat/completions", "method": "POST", "code": "200"}, 3},
		{"chatgpt_api_upstream_attempts_total", map[string]string{"backend": "gateway", "outcome": "success"}, 2},
		{"chatgpt_api_upstream_attempts_total", map[string]string{"backend": "gateway", "outcome": "error"}, 1},
		{"chatgpt_api_upstream_attempts_total", map[string]string{"backend": "ollama", "outcome": "success"}, 1},
		{"chatgpt_api_fallbacks_total", map[string]string{"from": "gateway", "to": "ollama", "reason": "error"}, 1},
		{"chatgpt_api_tokens_total", map[string]string{"backend": "gateway", "model": "gpt-4", "type": "prompt"}, 24},
		{"chatgpt_api_tokens_total", map[string]string{"backend": "gateway", "model": "gpt-4", "type": "completion"}, 10},
		{"chatgpt_api_tokens_total", map[string]string{"backend": "ollama", "model": "gpt-4", "type": "prompt"}, 10},
		{"chatgpt_api_tokens_total", map[string]string{"backend": "ollama", "model": "gpt-4", "type": "completion"}, 3},
		{"chatgpt_api_time_to_first_token_seconds", map[string]string{"backend": "gateway", "model": "gpt-4"}, 1},
		{"chatgpt_api_time_to_first_token_seconds", map[string]string{"backend": "ollama", "model": "gpt-4"}, 1},
		{"chatgpt_api_open_streams", nil, 0},
		{"chatgpt_api_backend_up", map[string]string{"backend": "gateway"}, 1},
		{"chatgpt_api_backend_up", map[string]string{"backend": "ollama"}, 1},
		{"chatgpt_api_build_info", map[string]string{"version": app.Version}, 1},
	} {
		got, err := value(families, tc.name, tc.labels)
		if err != nil {
			t.Errorf("%s%v: %v", tc.name, tc.labels, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if families[name] == nil {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}

	// What ships in deployments/ (alerts, recording rules, the dashboard)
	// may only use metrics the service really exports.
	files, _ := filepath.Glob("../../deployments/prometheus/*.yml")
	more, _ := filepath.Glob("../../deployments/grafana/*.json")
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no files found in deployments/prometheus and deployments/grafana")
	}
	used := regexp.MustCompile(`chatgpt_api_[a-z_]+`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range used.FindAllString(string(data), -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if trimmed, ok := strings.CutSuffix(name, suffix); ok && families[trimmed] != nil {
					base = trimmed
				}
			}
			if families[base] == nil {
				t.Errorf("%s uses %s, which the service does not export", f, name)
			}
		}
	}
}

// value returns the one sample of family name whose labels include want:
// a counter's or gauge's value, a histogram's sample count.
func value(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, error) {
	f := families[name]
	if f == nil {
		return 0, fmt.Errorf("no such metric")
	}
	var found []float64
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			found = append(found, m.Counter.GetValue())
		case m.Gauge != nil:
			found = append(found, m.Gauge.GetValue())
		case m.Histogram != nil:
			found = append(found, float64(m.Histogram.GetSampleCount()))
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%d samples match", len(found))
	}
	return found[0], nil
}

// TestMetricsForEveryEndpoint: embeddings and text completions are counted
// like chat: requests by route, attempts, tokens, time to first token.
func TestMetricsForEveryEndpoint(t *testing.T) {
	ol := newOllama(t, "nomic-embed-text", "qwen2.5:32b")
	r := startApp(t, testConfig("", ol.URL))
	for _, c := range []struct{ path, body string }{
		{"/v1/embeddings", `{"model":"text-embedding-3-small","input":["one two","three"]}`},
		{"/v1/completions", `{"model":"gpt-4","prompt":"Hi"}`},
		{"/v1/completions", `{"model":"gpt-4","prompt":"Hi","stream":true}`},
	} {
		if resp, body := post(t, r, c.path, c.body); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", c.path, resp.StatusCode, body)
		}
	}
	_, text := get(t, r, "/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"chatgpt_api_http_requests_total", map[string]string{"route": "/v1/embeddings", "code": "200"}, 1},
		{"chatgpt_api_http_requests_total", map[string]string{"route": "/v1/completions", "code": "200"}, 2},
		{"chatgpt_api_upstream_attempts_total", map[string]string{"backend": "ollama", "outcome": "success"}, 3},
		{"chatgpt_api_tokens_total", map[string]string{"backend": "ollama", "model": "text-embedding-3-small", "type": "prompt"}, 3},
		{"chatgpt_api_tokens_total", map[string]string{"backend": "ollama", "model": "gpt-4", "type": "completion"}, 8},
		{"chatgpt_api_time_to_first_token_seconds", map[string]string{"backend": "ollama", "model": "gpt-4"}, 1},
	} {
		got, err := value(families, tc.name, tc.labels)
		if err != nil || got != tc.want {
			t.Errorf("%s%v = %v (%v), want %v", tc.name, tc.labels, got, err, tc.want)
		}
	}
}
