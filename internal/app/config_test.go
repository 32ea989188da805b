package app_test

import (
	"bytes"
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
// file spells "none" as {} and [].
var equateConfig = cmpopts.EquateEmpty()

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
