package app_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// Configuration tests. Addresses are only parsed here, never dialled.

// envOf is a lookupEnv over a fixed map: keys present (even with "") are set.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeYAML writes a config file for the test; "" means no file.
func writeYAML(t *testing.T, text string) string {
	t.Helper()
	if text == "" {
		return ""
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// equateConfig treats nil and empty maps and slices alike: the documented
// file spells "none" as {} and []. It ignores which resilience keys a file
// wrote explicitly (unexported); TestBackendResilienceExplicitZero covers
// what they change.
var equateConfig = cmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreUnexported(app.Resilience{})}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want func(c *app.Config) // applied to app.Default()
	}{
		{
			name: "defaults",
			want: func(*app.Config) {},
		},
		{
			name: "empty file",
			yaml: "# nothing\n",
			want: func(*app.Config) {},
		},
		{
			name: "YAML overrides",
			yaml: `
server:
  host: 127.0.0.1
  port: 8080
  drain_timeout: 40s
  max_body_bytes: 4096
log:
  level: debug
  format: console
agent_id: team-a
upstream_timeout: 90           # a plain number is seconds
gateway:
  url: http://llm-gateway:8080/v1
  api_key: sk-test
  models: {"qwen2.5:32b": "qwen2.5-32b-instruct"}
ollama:
  url: ""
models:
  gpt-4: llama3.1:70b
  o1: deepseek-r1:32b
cors:
  allowed_origins: [https://app.example]
health:
  interval: 1m
  timeout: 500ms
`,
			want: func(c *app.Config) {
				c.Server.Host, c.Server.Port = "127.0.0.1", 8080
				c.Server.DrainTimeout, c.Server.MaxBodyBytes = app.Duration(40*time.Second), 4096
				c.Log = app.LogConfig{Level: "debug", Format: "console"}
				c.AgentID = "team-a"
				c.UpstreamTimeout = app.Duration(90 * time.Second)
				c.Gateway = app.EndpointConfig{URL: "http://llm-gateway:8080/v1", APIKey: "sk-test", Models: map[string]string{"qwen2.5:32b": "qwen2.5-32b-instruct"}}
				c.Ollama.URL = ""
				// A models table in the file replaces the built-in aliases.
				c.Models = map[string]string{"gpt-4": "llama3.1:70b", "o1": "deepseek-r1:32b"}
				c.CORS.AllowedOrigins = []string{"https://app.example"}
				c.Health = app.HealthConfig{Interval: app.Duration(time.Minute), Timeout: app.Duration(500 * time.Millisecond)}
			},
		},
		{
			name: "environment overrides YAML",
			yaml: `
server: {port: 8080, drain_timeout: 40s}
log: {level: debug}
agent_id: team-a
upstream_timeout: 90s
gateway: {url: http://from-file:8080, api_key: from-file}
ollama: {url: http://from-file:11434}
cors: {allowed_origins: [https://from-file]}
`,
			env: map[string]string{
				"CHATGPT_API_PORT":     "9090",
				"LOG_LEVEL":            "WARN",
				"AGENT_ID":             "from-env",
				"UPSTREAM_TIMEOUT":     "45",
				"DRAIN_TIMEOUT":        "2m",
				"GATEWAY_URL":          "http://from-env:8080",
				"GATEWAY_API_KEY":      "sk-env",
				"OLLAMA_URL":           "192.168.178.213:11434",
				"CORS_ALLOWED_ORIGINS": " https://a.example , https://b.example ,",
			},
			want: func(c *app.Config) {
				c.Server.Port, c.Server.DrainTimeout = 9090, app.Duration(2*time.Minute)
				c.Log.Level = "warn"
				c.AgentID = "from-env"
				c.UpstreamTimeout = app.Duration(45 * time.Second)
				c.Gateway.URL, c.Gateway.APIKey = "http://from-env:8080", "sk-env"
				c.Ollama.URL = "192.168.178.213:11434"
				c.CORS.AllowedOrigins = []string{"https://a.example", "https://b.example"}
			},
		},
		{
			name: "empty environment values leave the file's",
			yaml: "server: {port: 8080}\nlog: {level: debug}\n",
			env:  map[string]string{"CHATGPT_API_PORT": "", "LOG_LEVEL": " ", "AGENT_ID": "", "UPSTREAM_TIMEOUT": ""},
			want: func(c *app.Config) { c.Server.Port, c.Log.Level = 8080, "debug" },
		},
		{
			name: "empty OLLAMA_URL switches Ollama off when a gateway is set",
			env:  map[string]string{"GATEWAY_URL": "http://gw:8080", "OLLAMA_URL": ""},
			want: func(c *app.Config) { c.Gateway.URL, c.Ollama.URL = "http://gw:8080", "" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := app.Load(writeYAML(t, tc.yaml), envOf(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := app.Default()
			tc.want(&want)
			if diff := cmp.Diff(want, got, equateConfig); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadDoesNotShareDefaults: a file's aliases must not leak into the
// defaults of a later Load.
func TestLoadDoesNotShareDefaults(t *testing.T) {
	t.Parallel()
	if _, err := app.Load(writeYAML(t, "models: {o1: x}\n"), envOf(nil)); err != nil {
		t.Fatal(err)
	}
	if _, ok := app.Default().Models["o1"]; ok {
		t.Fatal("Default() carries an alias read from a file")
	}
}

func TestDocumentedConfigIsTheDefault(t *testing.T) {
	t.Parallel()
	got, err := app.Load("../../configs/config.yaml", envOf(nil))
	if err != nil {
		t.Fatalf("Load(configs/config.yaml): %v", err)
	}
	if diff := cmp.Diff(app.Default(), got, equateConfig); diff != "" {
		t.Errorf("configs/config.yaml documents other values than app.Default() (-default +file):\n%s", diff)
	}
}

// backendView is a BackendSpec with its URL as text.
type backendView struct {
	Name, Protocol, URL, APIKey string
	Timeout                     time.Duration
	Overrides                   map[string]string
}

func backendsOf(t *testing.T, c app.Config) []backendView {
	t.Helper()
	list, err := c.BackendList()
	if err != nil {
		t.Fatalf("BackendList: %v", err)
	}
	out := make([]backendView, len(list))
	for i, b := range list {
		out[i] = backendView{b.Name, b.Protocol, b.URL.String(), b.APIKey, time.Duration(b.Resilience.Timeouts.FirstByte), b.Overrides}
	}
	return out
}

func TestBackendList(t *testing.T) {
	t.Parallel()
	const timeout = 30 * time.Second // app.Default().UpstreamTimeout
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []backendView
	}{
		{
			name: "defaults: Ollama on localhost only",
			want: []backendView{{"ollama", "ollama", "http://localhost:11434", "", timeout, nil}},
		},
		{
			name: "OLLAMA_URL without a scheme gets http",
			env:  map[string]string{"OLLAMA_URL": "192.168.178.213:11434"},
			want: []backendView{{"ollama", "ollama", "http://192.168.178.213:11434", "", timeout, nil}},
		},
		{
			name: "GATEWAY_URL without a path gets /v1 and goes first",
			env:  map[string]string{"GATEWAY_URL": "http://llm-gateway:8080", "GATEWAY_API_KEY": "sk-x", "OLLAMA_URL": "ollama:11434/"},
			want: []backendView{
				{"gateway", "openai", "http://llm-gateway:8080/v1", "sk-x", timeout, nil},
				{"ollama", "ollama", "http://ollama:11434", "", timeout, nil},
			},
		},
		{
			name: "GATEWAY_URL with a path keeps it, without the trailing slash",
			env:  map[string]string{"GATEWAY_URL": "https://gw.example/openai/v1/?x=1", "OLLAMA_URL": ""},
			want: []backendView{{"gateway", "openai", "https://gw.example/openai/v1", "", timeout, nil}},
		},
		{
			name: "gateway without a scheme",
			env:  map[string]string{"GATEWAY_URL": "llm-gateway:8080", "OLLAMA_URL": ""},
			want: []backendView{{"gateway", "openai", "http://llm-gateway:8080/v1", "", timeout, nil}},
		},
		{
			name: "explicit list replaces gateway and ollama, in its order",
			yaml: `
upstream_timeout: 20s
gateway: {url: http://ignored:1}
backends:
  - name: ollama-a
    protocol: ollama
    url: 192.168.1.20:11434
    models: {"qwen2.5:32b": "qwen2.5:32b-instruct-q4_K_M"}
  - name: vllm
    protocol: openai
    url: http://vllm:8000
    api_key: sk-vllm
    timeout: 5s
`,
			env: map[string]string{"GATEWAY_URL": "http://ignored-too:1", "OLLAMA_URL": ""},
			want: []backendView{
				{"ollama-a", "ollama", "http://192.168.1.20:11434", "", 20 * time.Second, map[string]string{"qwen2.5:32b": "qwen2.5:32b-instruct-q4_K_M"}},
				{"vllm", "openai", "http://vllm:8000/v1", "sk-vllm", 5 * time.Second, nil},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := app.Load(writeYAML(t, tc.yaml), envOf(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tc.want, backendsOf(t, cfg)); diff != "" {
				t.Errorf("backends (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings of the one-line error: the key and the value
	}{
		{name: "port not a number", env: map[string]string{"CHATGPT_API_PORT": "abc"}, want: []string{"CHATGPT_API_PORT", `"abc"`}},
		{name: "port out of range", env: map[string]string{"CHATGPT_API_PORT": "70000"}, want: []string{"CHATGPT_API_PORT", "70000"}},
		{name: "log level", env: map[string]string{"LOG_LEVEL": "loud"}, want: []string{"LOG_LEVEL", `"loud"`}},
		{name: "upstream timeout", env: map[string]string{"UPSTREAM_TIMEOUT": "soon"}, want: []string{"UPSTREAM_TIMEOUT", `"soon"`}},
		{name: "negative upstream timeout", env: map[string]string{"UPSTREAM_TIMEOUT": "-5s"}, want: []string{"UPSTREAM_TIMEOUT", `"-5s"`}},
		{name: "drain timeout zero", env: map[string]string{"DRAIN_TIMEOUT": "0"}, want: []string{"DRAIN_TIMEOUT", `"0s"`}},
		{name: "ollama scheme", env: map[string]string{"OLLAMA_URL": "ftp://x"}, want: []string{"OLLAMA_URL", `"ftp://x"`}},
		{name: "gateway port", env: map[string]string{"GATEWAY_URL": "http://gw:99999"}, want: []string{"GATEWAY_URL", `"http://gw:99999"`}},
		{name: "gateway without host", env: map[string]string{"GATEWAY_URL": "http://"}, want: []string{"GATEWAY_URL", `"http://"`}},
		{name: "CORS without origins", env: map[string]string{"CORS_ALLOWED_ORIGINS": " , "}, want: []string{"CORS_ALLOWED_ORIGINS"}},
		{name: "unknown YAML key", yaml: "server:\n  port: 8080\nnonsense: 1\n", want: []string{"nonsense", "config.yaml"}},
		{name: "unknown nested YAML key", yaml: "server:\n  prot: 8080\n", want: []string{"prot", "config.yaml"}},
		{name: "YAML log format", yaml: "log: {format: xml}\n", want: []string{"log.format", `"xml"`}},
		{name: "YAML body limit", yaml: "server: {max_body_bytes: 10}\n", want: []string{"server.max_body_bytes", "10"}},
		{name: "YAML empty alias target", yaml: "models: {gpt-4: \"\"}\n", want: []string{"models.gpt-4", `""`}},
		{name: "YAML health interval", yaml: "health: {interval: 0s}\n", want: []string{"health.interval", `"0s"`}},
		{name: "duplicate backend names", yaml: "backends:\n- {name: a, protocol: ollama, url: h:1}\n- {name: a, protocol: openai, url: h:2}\n", want: []string{"backends[1].name", `"a"`}},
		{name: "backend protocol", yaml: "backends:\n- {name: a, protocol: grpc, url: h:1}\n", want: []string{"backends[0].protocol", `"grpc"`}},
		{name: "backend URL", yaml: "backends:\n- {name: a, protocol: ollama, url: \"ftp://x\"}\n", want: []string{"backends[0]", `"ftp://x"`}},
		{name: "backend without name", yaml: "backends:\n- {protocol: ollama, url: h:1}\n", want: []string{"backends[0].name"}},
		{name: "no backend", env: map[string]string{"GATEWAY_URL": "", "OLLAMA_URL": ""}, want: []string{"no backend"}},
		{name: "no backend, set empty in the file", yaml: "ollama: {url: \"\"}\n", want: []string{"no backend"}},
		{name: "missing file", yaml: "", want: []string{"cannot read", "does-not-exist.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeYAML(t, tc.yaml)
			if tc.name == "missing file" {
				path = filepath.Join(t.TempDir(), "does-not-exist.yaml")
			}
			_, err := app.Load(path, envOf(tc.env))
			if err == nil {
				t.Fatalf("Load succeeded, want an error naming %q", tc.want)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error of more than one line: %q", msg)
			}
			if !strings.HasPrefix(msg, "config: ") {
				t.Errorf("error %q: want the prefix %q", msg, "config: ")
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not name %s", msg, w)
				}
			}
		})
	}
}

// TestLoadRejectsNonsense: values that make no sense stop start-up with
// one line naming the key as the user wrote it (the per-backend key when
// the backend set the value, else the top-level one) and the value.
func TestLoadRejectsNonsense(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{
			name: "queue without a wait bound",
			yaml: "resilience: {limit: {concurrency: 2, queue: 5}}\n",
			want: `config: resilience.limit.max_wait="0s": must be positive when requests may queue (resilience.limit.queue=5): a queue needs a wait bound`,
		},
		{
			name: "queue in front of no limit",
			yaml: "resilience: {limit: {queue: 5, max_wait: 1s}}\n",
			want: `config: resilience.limit.queue=5: a queue needs a concurrency limit (resilience.limit.concurrency=0 means none)`,
		},
		{
			name: "breaker without a cooldown",
			yaml: "resilience: {breaker: {cooldown: 0s}}\n",
			want: `config: resilience.breaker.cooldown="0s": must be positive while the breaker is on (resilience.breaker.failures=5; failures 0 switches it off)`,
		},
		{
			name: "base delay above max delay",
			yaml: "resilience: {retries: {base_delay: 2s}}\n",
			want: `config: resilience.retries.base_delay="2s": must not exceed resilience.retries.max_delay="1s"`,
		},
		{
			name: "idle above total",
			yaml: "resilience: {timeouts: {total: 30s}}\n",
			want: `config: resilience.timeouts.idle="1m0s": must not exceed resilience.timeouts.total="30s", which bounds the whole request`,
		},
		{
			name: "first byte above total",
			yaml: "resilience: {timeouts: {first_byte: 11m}}\n",
			want: `config: resilience.timeouts.first_byte="11m0s": must not exceed resilience.timeouts.total="10m0s", which bounds the whole request`,
		},
		{
			name: "UPSTREAM_TIMEOUT above total",
			env:  map[string]string{"UPSTREAM_TIMEOUT": "20m"},
			want: `config: upstream_timeout (UPSTREAM_TIMEOUT)="20m0s": must not exceed resilience.timeouts.total="10m0s", which bounds the whole request`,
		},
		{
			name: "gateway first byte above total",
			yaml: "gateway: {url: http://gw:8080, resilience: {timeouts: {first_byte: 15m}}}\n",
			want: `config: gateway.resilience.timeouts.first_byte="15m0s": must not exceed resilience.timeouts.total="10m0s", which bounds the whole request`,
		},
		{
			name: "inherited idle above a backend's total",
			yaml: "backends:\n- {name: a, protocol: openai, url: h:1, resilience: {timeouts: {total: 30s}}}\n",
			want: `config: resilience.timeouts.idle="1m0s": must not exceed backends[0].resilience.timeouts.total="30s", which bounds the whole request`,
		},
		{
			name: "backend timeout above total",
			yaml: "backends:\n- {name: a, protocol: openai, url: h:1, timeout: 11m}\n",
			want: `config: backends[0].timeout="11m0s": must not exceed resilience.timeouts.total="10m0s", which bounds the whole request`,
		},
		{
			name: "negative backend timeout",
			yaml: "backends:\n- {name: a, protocol: openai, url: h:1, timeout: -5s}\n",
			want: `config: backends[0].timeout="-5s": must not be negative`,
		},
		{
			name: "backend timeout contradicts its first byte",
			yaml: "backends:\n- {name: a, protocol: openai, url: h:1, timeout: 5s, resilience: {timeouts: {first_byte: 10s}}}\n",
			want: `config: backends[0].timeout="5s": contradicts backends[0].resilience.timeouts.first_byte="10s"; set one of them`,
		},
		{
			name: "backend's explicit max_wait 0 leaves the inherited queue unbounded",
			yaml: `
resilience: {limit: {concurrency: 8, queue: 10, max_wait: 5s}}
backends:
- {name: a, protocol: openai, url: h:1}
- {name: b, protocol: openai, url: h:2, resilience: {limit: {max_wait: 0s}}}
`,
			want: `config: backends[1].resilience.limit.max_wait="0s": must be positive when requests may queue (resilience.limit.queue=10): a queue needs a wait bound`,
		},
		{
			name: "Ollama's explicit cooldown 0 under the inherited breaker",
			yaml: "ollama: {resilience: {breaker: {cooldown: 0s}}}\n",
			want: `config: ollama.resilience.breaker.cooldown="0s": must be positive while the breaker is on (resilience.breaker.failures=5; failures 0 switches it off)`,
		},
		{
			name: "Ollama's default queue without its wait bound",
			yaml: "ollama: {resilience: {limit: {max_wait: 0s}}}\n",
			want: `config: ollama.resilience.limit.max_wait="0s": must be positive when requests may queue (ollama.resilience.limit.queue=64): a queue needs a wait bound`,
		},
		{
			name: "a queue beside a limit switched off",
			yaml: "ollama: {resilience: {limit: {concurrency: 0, queue: 8}}}\n",
			want: `config: ollama.resilience.limit.queue=8: a queue needs a concurrency limit (ollama.resilience.limit.concurrency=0 means none)`,
		},
		{
			name: "unused gateway block",
			yaml: "gateway: {resilience: {retries: {attempts: -1}}}\n",
			want: `config: gateway.resilience.retries.attempts=-1: must not be negative`,
		},
		{
			name: "health timeout not below the interval",
			yaml: "health: {interval: 5s, timeout: 5s}\n",
			want: `config: health.timeout="5s": must be shorter than health.interval="5s"`,
		},
		{
			name: "negative num_ctx",
			yaml: "ollama: {num_ctx: {\"qwen2.5:32b\": -1}}\n",
			want: `config: ollama.num_ctx.qwen2.5:32b=-1: must not be negative (0 = Ollama's default)`,
		},
		{
			name: "empty model name in a backend's table",
			yaml: "backends:\n- {name: a, protocol: openai, url: h:1, models: {gpt-x: \"\"}}\n",
			want: `config: backends[0].models.gpt-x="": model names must not be empty`,
		},
	}
	// Every duration and count of every resilience block, negative.
	blocks := []struct{ key, yaml string }{
		{"resilience", "resilience: %s\n"},
		{"gateway.resilience", "gateway: {url: http://gw:8080, resilience: %s}\n"},
		{"ollama.resilience", "ollama: {resilience: %s}\n"},
		{"backends[1].resilience", "backends:\n- {name: a, protocol: ollama, url: h:1}\n- {name: b, protocol: openai, url: h:2, resilience: %s}\n"},
	}
	fields := []struct{ section, field, value, shown string }{
		{"timeouts", "connect", "-1s", `"-1s"`},
		{"timeouts", "first_byte", "-1s", `"-1s"`},
		{"timeouts", "idle", "-2s", `"-2s"`},
		{"timeouts", "total", "-1m", `"-1m0s"`},
		{"retries", "attempts", "-1", "-1"},
		{"retries", "base_delay", "-100ms", `"-100ms"`},
		{"retries", "max_delay", "-1s", `"-1s"`},
		{"retries", "max_retry_after", "-5s", `"-5s"`},
		{"breaker", "failures", "-3", "-3"},
		{"breaker", "cooldown", "-30s", `"-30s"`},
		{"limit", "concurrency", "-4", "-4"},
		{"limit", "queue", "-1", "-1"},
		{"limit", "max_wait", "-30s", `"-30s"`},
	}
	for _, b := range blocks {
		for _, f := range fields {
			key := b.key + "." + f.section + "." + f.field
			tests = append(tests, struct {
				name string
				yaml string
				env  map[string]string
				want string
			}{
				name: "negative " + key,
				yaml: fmt.Sprintf(b.yaml, fmt.Sprintf("{%s: {%s: %s}}", f.section, f.field, f.value)),
				want: "config: " + key + "=" + f.shown + ": must not be negative",
			})
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := app.Load(writeYAML(t, tc.yaml), envOf(tc.env))
			if err == nil {
				t.Fatalf("Load succeeded, want the error\n%s", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Load error\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

// TestBackendResilienceExplicitZero: in gateway.resilience,
// ollama.resilience and backends[].resilience, a key written as 0 switches
// that guard off for the backend; a key not written inherits the top level.
func TestBackendResilienceExplicitZero(t *testing.T) {
	t.Parallel()
	const top = `
resilience:
  timeouts: {connect: 2s, first_byte: 20s, idle: 30s, total: 5m}
  retries: {attempts: 3, base_delay: 50ms, max_delay: 500ms, max_retry_after: 2s}
  breaker: {failures: 4, cooldown: 10s}
  limit: {concurrency: 8, queue: 16, max_wait: 3s}
`
	s := func(d time.Duration) app.Duration { return app.Duration(d) }
	inherited := app.Resilience{
		Timeouts: app.TimeoutsConfig{Connect: s(2 * time.Second), FirstByte: s(20 * time.Second), Idle: s(30 * time.Second), Total: s(5 * time.Minute)},
		Retries:  app.RetriesConfig{Attempts: 3, BaseDelay: s(50 * time.Millisecond), MaxDelay: s(500 * time.Millisecond), MaxRetryAfter: s(2 * time.Second)},
		Breaker:  app.BreakerConfig{Failures: 4, Cooldown: s(10 * time.Second)},
		Limit:    app.LimitConfig{Concurrency: 8, Queue: 16, MaxWait: s(3 * time.Second)},
	}
	with := func(edit func(r *app.Resilience)) app.Resilience {
		r := inherited
		edit(&r)
		return r
	}
	ollamaLimit := app.LimitConfig{Concurrency: 4, Queue: 64, MaxWait: s(30 * time.Second)} // app.Default()
	defaults := app.Default().Resilience
	defaults.Timeouts.FirstByte = app.Default().UpstreamTimeout

	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		setup func(c *app.Config) // Go code building a config, after Load
		want  map[string]app.Resilience
	}{
		{
			name: "gateway: every guard off",
			yaml: top + `
gateway:
  url: http://gw:8080
  resilience:
    timeouts: {connect: 0s, first_byte: 0s, idle: 0s, total: 0s}
    retries: {attempts: 0}
    breaker: {failures: 0}
    limit: {concurrency: 0}
ollama: {url: ""}
`,
			want: map[string]app.Resilience{"gateway": with(func(r *app.Resilience) {
				r.Timeouts = app.TimeoutsConfig{}
				r.Retries.Attempts = 0
				r.Breaker.Failures = 0
				r.Limit = app.LimitConfig{}
			})},
		},
		{
			name: "gateway: absent keys inherit",
			yaml: top + "gateway: {url: http://gw:8080, resilience: {limit: {}}}\nollama: {url: \"\"}\n",
			want: map[string]app.Resilience{"gateway": inherited},
		},
		{
			name: "gateway: an explicit queue 0 keeps the inherited limit",
			yaml: top + "gateway: {url: http://gw:8080, resilience: {limit: {queue: 0}, retries: {max_retry_after: 0s}}}\nollama: {url: \"\"}\n",
			want: map[string]app.Resilience{"gateway": with(func(r *app.Resilience) {
				r.Limit.Queue = 0
				r.Retries.MaxRetryAfter = 0
			})},
		},
		{
			name: "ollama: the default limit switched off",
			yaml: "ollama: {resilience: {limit: {concurrency: 0}}}\n",
			want: map[string]app.Resilience{"ollama": func() app.Resilience {
				r := defaults
				r.Limit = app.LimitConfig{}
				return r
			}()},
		},
		{
			name: "ollama: the default limit when nothing is written",
			yaml: top,
			want: map[string]app.Resilience{"ollama": with(func(r *app.Resilience) { r.Limit = ollamaLimit })},
		},
		{
			name: "ollama: breaker and first byte off, the rest inherited",
			yaml: top + "ollama: {resilience: {breaker: {failures: 0}, timeouts: {first_byte: 0s}, limit: {queue: 0}}}\n",
			want: map[string]app.Resilience{"ollama": with(func(r *app.Resilience) {
				r.Breaker.Failures = 0
				r.Timeouts.FirstByte = 0
				r.Limit = app.LimitConfig{Concurrency: 4, MaxWait: ollamaLimit.MaxWait}
			})},
		},
		{
			name: "backends: off, absent, alias and merge key",
			yaml: top + `
backends:
- name: a
  protocol: openai
  url: h:1
  resilience: &off
    limit: {concurrency: 0}
    retries: {attempts: 1}
    timeouts: {total: 0s}
- {name: b, protocol: openai, url: h:2}
- {name: c, protocol: ollama, url: h:3, resilience: *off}
- {name: d, protocol: ollama, url: h:4, resilience: {<<: *off, breaker: {failures: 0}}}
- {name: e, protocol: openai, url: h:5, timeout: 7s, resilience: {timeouts: {idle: 0s}}}
`,
			want: func() map[string]app.Resilience {
				off := with(func(r *app.Resilience) {
					r.Limit = app.LimitConfig{}
					r.Retries.Attempts = 1
					r.Timeouts.Total = 0
				})
				d := off
				d.Breaker.Failures = 0
				return map[string]app.Resilience{
					"a": off, "b": inherited, "c": off, "d": d,
					"e": with(func(r *app.Resilience) { r.Timeouts.FirstByte, r.Timeouts.Idle = s(7*time.Second), 0 }),
				}
			}(),
		},
		{
			// Go code builds configs without a file: its zero values still
			// inherit, as before.
			name: "a zero set from Go inherits",
			yaml: top,
			setup: func(c *app.Config) {
				c.Ollama.Resilience.Limit = app.LimitConfig{}
				c.Gateway.URL = "http://gw:8080"
				c.Gateway.Resilience.Breaker = app.BreakerConfig{Failures: 5, Cooldown: s(time.Second)}
			},
			want: map[string]app.Resilience{
				"ollama":  inherited,
				"gateway": with(func(r *app.Resilience) { r.Breaker = app.BreakerConfig{Failures: 5, Cooldown: s(time.Second)} }),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := app.Load(writeYAML(t, tc.yaml), envOf(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if tc.setup != nil {
				tc.setup(&cfg)
			}
			list, err := cfg.BackendList()
			if err != nil {
				t.Fatalf("BackendList: %v", err)
			}
			got := map[string]app.Resilience{}
			for _, b := range list {
				if _, ok := tc.want[b.Name]; ok {
					got[b.Name] = b.Resilience
				}
			}
			if diff := cmp.Diff(tc.want, got, equateConfig); diff != "" {
				t.Errorf("resolved resilience (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadYAMLTypeErrorsNameTheKey: Load promises errors "naming the key
// and the value"; a value of the wrong type in the file must name its key too,
// not only the line.
func TestLoadYAMLTypeErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, key, value string }{
		{"server:\n  port: abc\n", "port", "abc"},
		{"upstream_timeout: soon\n", "upstream_timeout", "soon"},
	} {
		_, err := app.Load(writeYAML(t, tc.yaml), envOf(nil))
		if err == nil {
			t.Fatalf("%q: Load succeeded", tc.yaml)
		}
		if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || !strings.Contains(msg, tc.key) || !strings.Contains(msg, tc.value) {
			t.Errorf("%q: error %q, want one line naming the key %s and the value %s", tc.yaml, msg, tc.key, tc.value)
		}
	}
}

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, protocol, want, wantErr string
	}{
		{"192.168.178.213:11434", app.ProtocolOllama, "http://192.168.178.213:11434", ""},
		{" http://localhost:11434/ ", app.ProtocolOllama, "http://localhost:11434", ""},
		{"https://gw.example", app.ProtocolOpenAI, "https://gw.example/v1", ""},
		{"http://gw.example:8080/api/v1", app.ProtocolOpenAI, "http://gw.example:8080/api/v1", ""},
		{"http://user:pw@gw:8080", app.ProtocolOpenAI, "http://user:pw@gw:8080/v1", ""},
		{"[::1]:11434", app.ProtocolOllama, "http://[::1]:11434", ""},
		{"", app.ProtocolOllama, "", "must not be empty"},
		{"ftp://x", app.ProtocolOllama, "", "scheme"},
		{"http://:8080", app.ProtocolOllama, "", "no host"},
		{"host:0", app.ProtocolOllama, "", "port"},
		{"host:port", app.ProtocolOllama, "", ""}, // url.Parse rejects it; either way an error
	}
	for _, tc := range tests {
		u, err := app.NormalizeURL(tc.raw, tc.protocol)
		if tc.want == "" {
			if err == nil {
				t.Errorf("NormalizeURL(%q) = %v, want an error", tc.raw, u)
			} else if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NormalizeURL(%q): %v, want %q", tc.raw, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("NormalizeURL(%q): %v", tc.raw, err)
			continue
		}
		if u.String() != tc.want {
			t.Errorf("NormalizeURL(%q) = %q, want %q", tc.raw, u, tc.want)
		}
	}
}

// TestMainCommand runs the binary's entry point. It sets environment variables,
// so it does not run in parallel.
func TestMainCommand(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := app.Main(args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	t.Run("version", func(t *testing.T) {
		code, out, errOut := run("--version")
		if diff := cmp.Diff([]any{0, "chatgpt-api " + app.Version + "\n", ""}, []any{code, out, errOut}); diff != "" {
			t.Errorf("exit code, stdout, stderr (-want +got):\n%s", diff)
		}
	})
	t.Run("help", func(t *testing.T) {
		for _, arg := range []string{"--help", "-h"} {
			code, out, _ := run(arg)
			if code != 0 {
				t.Errorf("%s: exit %d, want 0", arg, code)
			}
			for _, w := range []string{"Usage: chatgpt-api", "-config", "-version", "CHATGPT_API_PORT"} {
				if !strings.Contains(out, w) {
					t.Errorf("%s: stdout lacks %q:\n%s", arg, w, out)
				}
			}
		}
	})
	// Asked for, the usage is the answer: once, on stdout, nothing on stderr.
	t.Run("help prints usage once on stdout", func(t *testing.T) {
		_, out, errOut := run("--help")
		if n := strings.Count(out+errOut, "Usage: chatgpt-api"); n != 1 || errOut != "" {
			t.Errorf("--help printed the usage %d times; stderr %q, want it once on stdout and an empty stderr", n, errOut)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		code, out, errOut := run("--nope")
		if code != 2 || out != "" || !strings.Contains(errOut, "nope") {
			t.Errorf("--nope: exit %d, stdout %q, stderr %q; want 2 and the flag named on stderr", code, out, errOut)
		}
	})
	t.Run("bad environment", func(t *testing.T) {
		t.Setenv("CHATGPT_API_PORT", "abc")
		code, out, errOut := run()
		if code != 1 || out != "" {
			t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
		}
		if strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") ||
			!strings.Contains(errOut, `CHATGPT_API_PORT="abc"`) {
			t.Errorf("stderr %q: want one line naming CHATGPT_API_PORT=\"abc\"", errOut)
		}
	})
	t.Run("missing config file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing.yaml")
		code, out, errOut := run("--config", missing)
		if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, missing) {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 and one line naming the file", code, out, errOut)
		}
	})
}

// TestPools: a backend's hosts come from a comma-separated URL or a hosts
// list with weights and labels; names default to host:port.
func TestPools(t *testing.T) {
	t.Parallel()
	type hostView struct {
		Name, URL string
		Weight    int
		Labels    map[string]string
	}
	hostsOf := func(t *testing.T, yaml string, env map[string]string) [][]hostView {
		t.Helper()
		cfg, err := app.Load(writeYAML(t, yaml), envOf(env))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		list, err := cfg.BackendList()
		if err != nil {
			t.Fatal(err)
		}
		var out [][]hostView
		for _, b := range list {
			var hs []hostView
			for _, h := range b.Hosts {
				hs = append(hs, hostView{h.Name, h.URL.String(), h.Weight, h.Labels})
			}
			out = append(out, hs)
		}
		return out
	}
	got := hostsOf(t, "", map[string]string{"OLLAMA_URL": "192.168.1.20:11434, http://gpu2:11434/ ,cpu1",
		"GATEWAY_URL": "http://gw-a:8080,http://gw-b:8080/v1"})
	want := [][]hostView{
		{{"gw-a:8080", "http://gw-a:8080/v1", 1, nil}, {"gw-b:8080", "http://gw-b:8080/v1", 1, nil}},
		{{"192.168.1.20:11434", "http://192.168.1.20:11434", 1, nil}, {"gpu2:11434", "http://gpu2:11434", 1, nil}, {"cpu1", "http://cpu1", 1, nil}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("comma-separated URLs (-want +got):\n%s", diff)
	}
	got = hostsOf(t, `
ollama:
  url: ""
  hosts:
    - {url: "http://gpu1:11434", name: gpu1, weight: 3, labels: {gpu: a100}}
    - {url: "cpu1:11434"}
pool: {strategy: least_busy}
`, nil)
	want = [][]hostView{{{"gpu1", "http://gpu1:11434", 3, map[string]string{"gpu": "a100"}}, {"cpu1:11434", "http://cpu1:11434", 1, nil}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a hosts list (-want +got):\n%s", diff)
	}
	// OLLAMA_URL replaces the file's hosts, as it replaces its url.
	got = hostsOf(t, "ollama:\n  url: \"\"\n  hosts: [{url: a:1}, {url: b:1}]\n", map[string]string{"OLLAMA_URL": "c:1"})
	if len(got) != 1 || len(got[0]) != 1 || got[0][0].URL != "http://c:1" {
		t.Errorf("OLLAMA_URL over a hosts list: %v", got)
	}

	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{"url and hosts", "ollama:\n  hosts: [{url: a:1}]\n", nil, []string{"ollama.url", "ollama.hosts is set too"}},
		{"a bad host in a list", "", map[string]string{"OLLAMA_URL": "a:1,ftp://b"}, []string{"OLLAMA_URL", "host 2", `"ftp://b"`}},
		{"an empty host in a list", "", map[string]string{"OLLAMA_URL": "a:1,,b:1"}, []string{"OLLAMA_URL", "host 2", "must not be empty"}},
		{"the same host twice", "", map[string]string{"OLLAMA_URL": "a:1,http://a:1"}, []string{"OLLAMA_URL", `"a:1" is listed twice`}},
		{"negative weight", "ollama:\n  url: \"\"\n  hosts: [{url: a:1, weight: -1}]\n", nil, []string{"ollama.hosts[0].weight", "-1"}},
		{"strategy", "", map[string]string{"POOL_STRATEGY": "random"}, []string{"POOL_STRATEGY", `"random"`}},
		{"residency interval", "", map[string]string{"POOL_RESIDENCY_INTERVAL": "often"}, []string{"POOL_RESIDENCY_INTERVAL", `"often"`}},
		{"affinity entries", "pool: {affinity_entries: 0}\n", nil, []string{"pool.affinity_entries", "0"}},
		{"session header", "pool: {session_header: \"X Session\"}\n", nil, []string{"pool.session_header", `"X Session"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := app.Load(writeYAML(t, tc.yaml), envOf(tc.env))
			if err == nil {
				t.Fatalf("Load succeeded, want an error naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}
