//go:build compat

// Package compat is the compatibility suite: the official openai npm package
// (pinned in package-lock.json) against the real service, started here in
// front of fake upstreams. Run it with `make test-compat`; it needs node (20
// or later) and npm on PATH and installs its packages with `npm ci`.
//
// Each scenario gets its own service instance, so the node tests can run in
// parallel and every upstream answer is fixed and deterministic:
//
//	OPENAI_BASE_URL, COMPAT_GATEWAY_URL  gatewaytest, default reply: plain, streamed, errors
//	COMPAT_GATEWAY_JSON_URL              gatewaytest replying a JSON object: json mode
//	COMPAT_OLLAMA_URL                    ollamatest replying a JSON object: json mode, json_schema
//	COMPAT_GATEWAY_TOOLS_URL             replay of testdata/replay/gateway_parallel_tools
//	COMPAT_OLLAMA_TOOLS_URL              replay of testdata/replay/ollama_parallel_tools
//	COMPAT_DOWN_URL                      every backend unreachable
//	COMPAT_BROKEN_URL                    gatewaytest dropping the connection mid-stream
//	COMPAT_SLOW_URL                      a gateway slow to answer; keep-alive pings every 50ms
//	COMPAT_SLOW_FAIL_URL                 the same, answering 500 in the end
//	COMPAT_SECURED_URL                   gatewaytest behind the API key "compat-key"
//
// The node side records every HTTP response the SDK received into
// COMPAT_RECORD_DIR; once node is done, each response body, stream chunk and
// error body is validated here against OpenAI's OpenAPI schemas
// (openaispec), and what the fake upstreams received is checked. Set
// COMPAT_KEEP_RECORDS=<dir> to keep the recordings.
package compat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// upstreamModel is what gpt-4 stands for in app.Default().
const upstreamModel = "qwen2.5:32b"

// replayDir holds the recorded upstream answers shared with httpapi's replay tests.
const replayDir = "../../internal/adapters/httpapi/testdata/replay"

func TestCompat(t *testing.T) {
	node, npm := requireTool(t, "node"), requireTool(t, "npm")
	requireNodeVersion(t, node, 20)

	// --- upstreams and service instances -----------------------------------
	gw := newGateway(t)
	gwJSON := newGateway(t)
	gwJSON.Reply = `{"city": "Paris", "temp_c": 21}`
	ol := newOllama(t)
	ol.Reply = `{"age": 22, "available": false}`
	ol.EvalCount = 12
	gwTools := newReplay(t, "openai", filepath.Join(replayDir, "gateway_parallel_tools"))
	olTools := newReplay(t, "ollama", filepath.Join(replayDir, "ollama_parallel_tools"))
	broken := newGateway(t)
	broken.Pieces, broken.BreakAfter = []string{"one ", "two ", "three "}, 2
	slow := newSlow(t, false)
	slowFail := newSlow(t, true)

	type instance struct {
		env, name       string
		gateway, ollama string
		addr            string
	}
	instances := []*instance{
		{env: "COMPAT_GATEWAY_URL", name: "gateway", gateway: gw.URL},
		{env: "COMPAT_GATEWAY_JSON_URL", name: "gateway-json", gateway: gwJSON.URL},
		{env: "COMPAT_OLLAMA_URL", name: "ollama", ollama: ol.URL},
		{env: "COMPAT_GATEWAY_TOOLS_URL", name: "gateway-tools", gateway: gwTools.URL},
		{env: "COMPAT_OLLAMA_TOOLS_URL", name: "ollama-tools", ollama: olTools.URL},
		{env: "COMPAT_BROKEN_URL", name: "broken", gateway: broken.URL},
		{env: "COMPAT_SLOW_URL", name: "slow", gateway: slow.URL},
		{env: "COMPAT_SLOW_FAIL_URL", name: "slow-fail", gateway: slowFail.URL},
		{env: "COMPAT_SECURED_URL", name: "secured", gateway: gw.URL},
	}
	for _, in := range instances {
		cfg := testConfig(in.gateway, in.ollama)
		switch in.name {
		case "slow", "slow-fail":
			cfg.Streaming.PingInterval = app.Duration(pingInterval)
		case "secured":
			cfg.Auth.Keys = []string{"compat-key"}
		}
		in.addr = startApp(t, in.name, cfg)
	}
	// The unreachable URLs are made last, so no listener of this process
	// but the instance's own can take their ports afterwards.
	downGW, downOL := downURL(t), downURL(t)
	down := &instance{env: "COMPAT_DOWN_URL", name: "down", gateway: downGW, ollama: downOL}
	down.addr = startApp(t, down.name, testConfig(downGW, downOL))
	for _, u := range []string{downGW, downOL} {
		if strings.HasSuffix(u, "//"+down.addr) {
			t.Fatalf("the down instance listens on %s, the port meant to be unreachable; run again", down.addr)
		}
	}
	instances = append(instances, down)

	// --- node ---------------------------------------------------------------
	npmCI(t, npm)
	records := t.TempDir()
	if keep := os.Getenv("COMPAT_KEEP_RECORDS"); keep != "" { // a directory to keep them in, for debugging
		records, _ = filepath.Abs(keep)
		if err := os.MkdirAll(records, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("recording the SDK's HTTP exchanges in %s", records)
	}
	env := []string{
		"OPENAI_BASE_URL=http://" + instances[0].addr + "/v1",
		"OPENAI_API_KEY=test",
		"COMPAT_RECORD_DIR=" + records,
	}
	for _, in := range instances {
		env = append(env, in.env+"=http://"+in.addr+"/v1")
		t.Logf("%-13s http://%s/v1  (gateway %q, ollama %q)", in.name, in.addr, in.gateway, in.ollama)
	}
	runNode(t, node, env)

	// --- what the SDK received, against OpenAI's schemas ---------------------
	validateRecords(t, records)

	// --- what the upstreams received ----------------------------------------
	t.Run("upstream requests", func(t *testing.T) {
		checkGateway(t, gw)
		checkGatewayJSON(t, gwJSON)
		checkOllamaFormats(t, ol)
		checkOllamaEndpoints(t, ol)
		checkTools(t, "gateway replay", gwTools.Requests(), 3)
		checkTools(t, "ollama replay", olTools.Requests(), 3)
	})
}

// --- tools ---------------------------------------------------------------

// requireTool finds name on PATH or fails: the suite is never skipped.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH (%v): the compatibility suite needs Node.js 20 or later with npm; install them and run `make test-compat` again", name, err)
	}
	return p
}

func requireNodeVersion(t *testing.T, node string, major int) {
	t.Helper()
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", node, err)
	}
	v := strings.TrimSpace(string(out))
	m := regexp.MustCompile(`^v(\d+)\.`).FindStringSubmatch(v)
	if m == nil {
		t.Fatalf("node --version printed %q: want vMAJOR.MINOR.PATCH", v)
	}
	if n, _ := strconv.Atoi(m[1]); n < major {
		t.Fatalf("node %s is too old: the openai package needs Node.js %d or later", v, major)
	}
	t.Logf("node %s", v)
}

// npmCI installs the locked packages unless node_modules already holds
// exactly them (a stamp of package.json and package-lock.json).
func npmCI(t *testing.T, npm string) {
	t.Helper()
	h := sha256.New()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("%v (the suite installs its packages from the committed lock file)", err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	want := hex.EncodeToString(h.Sum(nil))
	stamp := filepath.Join("node_modules", ".compat-stamp")
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		if _, err := os.Stat(filepath.Join("node_modules", "openai", "package.json")); err == nil {
			t.Logf("node_modules is up to date with package-lock.json; not running npm ci")
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	out := &lineLogger{t: t, prefix: "npm: "}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	out.Flush()
	if err != nil {
		t.Fatalf("npm ci --no-audit --no-fund in test/compat: %v", err)
	}
	t.Logf("npm ci took %v", time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

var summaryLine = regexp.MustCompile(`^ℹ (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ([\d.]+)$`)

// runNode runs every *.test.mjs with node's test runner, its output going to
// the test log, and fails unless every node test passed.
func runNode(t *testing.T, node string, extraEnv []string) {
	t.Helper()
	files, err := filepath.Glob("*.test.mjs")
	if err != nil || len(files) == 0 {
		t.Fatalf("no *.test.mjs files in test/compat (%v)", err)
	}
	sort.Strings(files)
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OPENAI_") || strings.HasPrefix(k, "COMPAT_") || k == "NODE_TEST_CONTEXT" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, extraEnv...)
	env = append(env, "NO_COLOR=1")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"--test", "--test-reporter=spec", "--test-timeout=60000"}, files...)
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = env
	out := &lineLogger{t: t, prefix: "node: "}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	out.Flush()

	counts := map[string]string{}
	for _, l := range out.Lines() {
		if m := summaryLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			counts[m[1]] = m[2]
		}
	}
	t.Logf("node --test: tests %s, pass %s, fail %s, cancelled %s, skipped %s, todo %s (%v)",
		counts["tests"], counts["pass"], counts["fail"], counts["cancelled"], counts["skipped"], counts["todo"],
		time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("node --test %s: %v", strings.Join(files, " "), err)
	}
	if counts["tests"] == "" || counts["tests"] == "0" || counts["tests"] != counts["pass"] {
		t.Fatalf("node ran %q tests and %q passed: want every test run and passed", counts["tests"], counts["pass"])
	}
}

// lineLogger writes what a child process prints to the test log, line by line.
type lineLogger struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	buf    []byte
	lines  []string
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.emit(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLogger) emit(s string) {
	s = strings.TrimRight(s, "\r")
	l.lines = append(l.lines, s)
	l.t.Log(l.prefix + s)
}

// Flush logs a last line without a newline.
func (l *lineLogger) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(string(l.buf))
		l.buf = nil
	}
}

func (l *lineLogger) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// --- service and upstreams ------------------------------------------------

// testConfig is app.Default() on a random loopback port with the given
// backends ("" switches one off).
func testConfig(gatewayURL, ollamaURL string) app.Config {
	cfg := app.Default()
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.Port = 0
	cfg.Server.DrainTimeout = app.Duration(5 * time.Second)
	cfg.Log.Level = "error"
	cfg.AgentID = "compat"
	cfg.UpstreamTimeout = app.Duration(10 * time.Second)
	cfg.Health.Timeout = app.Duration(2 * time.Second)
	cfg.Gateway.URL = gatewayURL
	cfg.Ollama.URL = ollamaURL
	return cfg
}

// startApp starts the real application and stops it when the test ends
// (before the upstreams made earlier are closed). It returns host:port.
func startApp(t *testing.T, name string, cfg app.Config) string {
	t.Helper()
	cfg.Responses.DataDir = t.TempDir() // each instance its own embedded response store
	var srv *app.Server
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)).Named(name)
	a := app.New(cfg,
		fx.Decorate(func(*zap.Logger) *zap.Logger { return log }),
		fx.Populate(&srv),
	)
	if err := a.Err(); err != nil {
		t.Fatalf("%s: app.New: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("%s: app.Start: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("%s: app.Stop: %v", name, err)
		}
	})
	addr := srv.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("%s: server address %q: want 127.0.0.1:<port>", name, addr)
	}
	return addr
}

// embedModel is what text-embedding-3-small stands for in app.Default().
const embedModel = "nomic-embed-text"

func newGateway(t *testing.T) *gatewaytest.Server {
	gw := gatewaytest.New(upstreamModel, embedModel)
	t.Cleanup(gw.Close)
	return gw
}

func newOllama(t *testing.T) *ollamatest.Server {
	ol := ollamatest.New(upstreamModel, embedModel)
	ol.MaxInputChars = 1000 // the embedding model's context, in the fake's terms
	t.Cleanup(ol.Close)
	return ol
}

// downURL is the URL of a server started and closed again.
func downURL(t *testing.T) string {
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL
	s.Close()
	return u
}

// replay is an upstream answering every chat request with a recorded body
// (upstream.stream.sse / upstream.stream.ndjson for streams, upstream.json
// otherwise), in the gateway's ("openai") or Ollama's protocol; it lists
// upstreamModel as its only model.
type replay struct {
	*httptest.Server
	protocol, dir string

	mu       sync.Mutex
	requests [][]byte
}

func newReplay(t *testing.T, protocol, dir string) *replay {
	t.Helper()
	for _, f := range []string{"upstream.json", "upstream.stream.sse", "upstream.stream.ndjson"} {
		if strings.HasSuffix(f, ".sse") != (protocol == "openai") && f != "upstream.json" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("replay recording: %v", err)
		}
	}
	r := &replay{protocol: protocol, dir: dir}
	r.Server = httptest.NewServer(r)
	t.Cleanup(r.Close)
	return r
}

func (r *replay) Requests() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.requests...)
}

func (r *replay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch {
	case r.protocol == "openai" && req.Method == http.MethodGet && req.URL.Path == "/v1/models":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"id":%q,"object":"model","created":1715367049,"owned_by":"gateway"}]}`, upstreamModel)
	case r.protocol == "ollama" && req.Method == http.MethodGet && req.URL.Path == "/api/tags":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprintf(w, `{"models":[{"name":%q,"model":%q,"modified_at":"2025-05-10T08:06:48.639712648-07:00","size":4683075271,"digest":"0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163","details":{"format":"gguf","family":"qwen2"}}]}`, upstreamModel, upstreamModel)
	case req.Method == http.MethodPost && (r.protocol == "openai" && req.URL.Path == "/v1/chat/completions" || r.protocol == "ollama" && req.URL.Path == "/api/chat"):
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, body)
		r.mu.Unlock()
		var in struct {
			Stream *bool `json:"stream"`
		}
		_ = json.Unmarshal(body, &in)
		stream := in.Stream != nil && *in.Stream || r.protocol == "ollama" && in.Stream == nil
		name, ctype := "upstream.json", "application/json; charset=utf-8"
		switch {
		case stream && r.protocol == "openai":
			name, ctype = "upstream.stream.sse", "text/event-stream"
		case stream:
			name, ctype = "upstream.stream.ndjson", "application/x-ndjson"
		}
		data, err := os.ReadFile(filepath.Join(r.dir, name))
		if err != nil {
			http.Error(w, `{"error":"no recording"}`, http.StatusNotImplemented)
			return
		}
		w.Header().Set("Content-Type", ctype)
		w.Write(data)
	default:
		http.NotFound(w, req)
	}
}

// The slow upstreams wait slowFirstByte before answering; meanwhile the
// service sends a keep-alive comment every pingInterval.
const (
	slowFirstByte = 400 * time.Millisecond
	pingInterval  = 50 * time.Millisecond
)

// newSlow is a gateway taking slowFirstByte to answer a chat request: with
// gatewaytest's default reply, or (fail) with a 500.
func newSlow(t *testing.T, fail bool) *httptest.Server {
	gw := newGateway(t)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions" {
			select {
			case <-time.After(slowFirstByte):
			case <-r.Context().Done():
				return
			}
			if fail {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				io.WriteString(w, `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`)
				return
			}
		}
		gw.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// --- checks after node ------------------------------------------------------

// record is one HTTP exchange the SDK made (compat.mjs writes them).
type record struct {
	File        string            `json:"-"`
	Instance    string            `json:"instance"`
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	Request     *string           `json:"request"`
	Status      int               `json:"status"`
	ContentType string            `json:"contentType"`
	Headers     map[string]string `json:"headers"`
	Body        *string           `json:"body"`
	ReadError   string            `json:"readError"`
}

var modelPath = regexp.MustCompile(`/v1/models/[^/]+$`)

// validateRecords checks every response body, stream chunk and error the SDK
// received against OpenAI's OpenAPI description.
func validateRecords(t *testing.T, dir string) {
	t.Run("openapi", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) == 0 {
			t.Fatalf("node recorded no HTTP exchanges in %s", dir)
		}
		sort.Strings(files)
		n := map[string]int{}
		pinged := 0 // streams of the slow instances carrying keep-alive comments
		check := func(rec record, schema string, data []byte) {
			t.Helper()
			n[schema]++
			if err := openaispec.Validate(schema, data); err != nil {
				t.Errorf("%s (%s %s %s, status %d):\n%v\nJSON: %s", rec.File, rec.Instance, rec.Method, rec.URL, rec.Status, err, data)
			}
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var rec record
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			rec.File = filepath.Base(f)
			if rec.Body == nil {
				t.Errorf("%s (%s %s): the response body could not be read: %s", rec.File, rec.Method, rec.URL, rec.ReadError)
				continue
			}
			body := []byte(*rec.Body)
			u, err := url.Parse(rec.URL)
			if err != nil {
				t.Fatalf("%s: url %q: %v", rec.File, rec.URL, err)
			}
			switch {
			case rec.Status != http.StatusOK:
				check(rec, "ErrorResponse", body)
			case strings.HasPrefix(rec.ContentType, "text/event-stream"):
				chunkSchema, ok := streamSchema(u.Path)
				if !ok {
					t.Errorf("%s: unexpected stream from %s", rec.File, rec.URL)
					continue
				}
				if strings.HasPrefix(rec.Instance, "slow") && strings.Contains("\n"+string(body), "\n: ping\n") {
					pinged++
				}
				events, err := sseEvents(string(body))
				if err != nil {
					t.Errorf("%s: %v\n%s", rec.File, err, body)
					continue
				}
				if len(events) == 0 {
					t.Errorf("%s: a stream without events: %q", rec.File, body)
					continue
				}
				for i, data := range events {
					last := i == len(events)-1
					switch {
					case data == "[DONE]":
						if !last {
							t.Errorf("%s: [DONE] is event %d of %d", rec.File, i, len(events))
						}
					case strings.HasPrefix(data, `{"error"`):
						// An in-band error ends a stream that already began.
						check(rec, "ErrorResponse", []byte(data))
						if !last {
							t.Errorf("%s: the error is event %d of %d, want the last", rec.File, i, len(events))
						}
					default:
						if chunkSchema == "CreateCompletionResponse" {
							// text_completion chunks carry finish_reason null until
							// the last, as OpenAI's API sends them; the spec gives
							// streamed and whole objects one shape without null.
							data = strings.ReplaceAll(data, `"finish_reason":null`, `"finish_reason":"stop"`)
						}
						check(rec, chunkSchema, []byte(data))
						if last {
							t.Errorf("%s: the stream ends with a chunk, want data: [DONE] or an error", rec.File)
						}
					}
				}
			case strings.HasSuffix(u.Path, "/v1/chat/completions"):
				check(rec, "CreateChatCompletionResponse", body)
			case strings.HasSuffix(u.Path, "/v1/completions"):
				check(rec, "CreateCompletionResponse", body)
			case strings.HasSuffix(u.Path, "/v1/embeddings"):
				check(rec, "CreateEmbeddingResponse", base64ToFloats(t, rec, body))
			case strings.HasSuffix(u.Path, "/v1/models"):
				check(rec, "ListModelsResponse", body)
			case modelPath.MatchString(u.Path):
				check(rec, "Model", body)
			default:
				t.Errorf("%s: unexpected request %s %s", rec.File, rec.Method, rec.URL)
			}
		}
		t.Logf("validated against openai-openapi.yaml, from %d recorded responses: %v", len(files), n)
		if pinged == 0 {
			t.Errorf("no stream of the slow instances carried a keep-alive comment: the ping tests did not test pings")
		}
		for _, s := range []string{"CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "ErrorResponse", "ListModelsResponse", "Model",
			"CreateCompletionResponse", "CreateEmbeddingResponse"} {
			if n[s] == 0 {
				t.Errorf("no %s was recorded: the node tests should have produced some", s)
			}
		}
	})
}

// streamSchemas names the schema of each streamed endpoint's chunks, by
// the end of its path.
var streamSchemas = map[string]string{
	"/v1/chat/completions": "CreateChatCompletionStreamResponse",
	"/v1/completions":      "CreateCompletionResponse",
}

// streamSchema returns the chunk schema of the endpoint at path.
func streamSchema(path string) (string, bool) {
	for suffix, schema := range streamSchemas {
		if strings.HasSuffix(path, suffix) {
			return schema, true
		}
	}
	return "", false
}

// base64ToFloats returns an embedding list with base64 vectors decoded to
// float arrays: the SDKs ask for base64, which OpenAI's API sends though
// its spec lists only floats; the rest of the object is checked as is.
func base64ToFloats(t *testing.T, rec record, body []byte) []byte {
	t.Helper()
	var list map[string]any
	if err := json.Unmarshal(body, &list); err != nil {
		t.Errorf("%s: %v", rec.File, err)
		return body
	}
	data, _ := list["data"].([]any)
	for _, d := range data {
		e, _ := d.(map[string]any)
		s, ok := e["embedding"].(string)
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw)%4 != 0 {
			t.Errorf("%s: embedding is not base64 of float32 values: %v", rec.File, err)
			continue
		}
		floats := make([]float64, len(raw)/4)
		for i := range floats {
			floats[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
		}
		e["embedding"] = floats
	}
	out, _ := json.Marshal(list)
	return out
}

// sseEvents reads a text/event-stream body as the SDKs do: events end at a
// blank line, comment lines (":", such as keep-alive pings) are ignored,
// and an event's data lines are joined with newlines. OpenAI's streams use
// nothing but data, so any other field, or a body not ending in a blank
// line, is an error.
func sseEvents(body string) ([]string, error) {
	var events, data []string
	lines := strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "" || lines[len(lines)-2] != "" {
		return nil, fmt.Errorf("the stream does not end with a blank line")
	}
	for i, l := range lines[:len(lines)-1] {
		switch {
		case l == "":
			if data != nil {
				events = append(events, strings.Join(data, "\n"))
				data = nil
			}
		case strings.HasPrefix(l, ":"):
		case strings.HasPrefix(l, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(l, "data:"), " "))
		default:
			return nil, fmt.Errorf("line %d: %q is not a data line", i+1, l)
		}
	}
	return events, nil
}

func decode(t *testing.T, what string, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	return m
}

// checkGateway: invalid requests (temperature 5) and unknown models never
// reach the gateway; the rest ask for the mapped model.
func checkGateway(t *testing.T, gw *gatewaytest.Server) {
	reqs := gw.Requests()
	if len(reqs) == 0 {
		t.Errorf("the gateway received no chat request")
	}
	for i, r := range reqs {
		m := decode(t, "gateway request", r.Body)
		if _, ok := m["temperature"]; ok {
			t.Errorf("gateway request %d carries temperature (the service should have refused it): %s", i, r.Body)
		}
		if m["model"] != upstreamModel {
			t.Errorf("gateway request %d asks for model %v, want %q: %s", i, m["model"], upstreamModel, r.Body)
		}
		if got := r.Header.Get("X-Agent-ID"); got != "compat" {
			t.Errorf("gateway request %d: X-Agent-ID %q, want compat", i, got)
		}
	}
}

// checkGatewayJSON: response_format reaches the gateway as sent.
func checkGatewayJSON(t *testing.T, gw *gatewaytest.Server) {
	reqs := gw.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the JSON gateway received %d chat requests, want 1", len(reqs))
	}
	m := decode(t, "gateway request", reqs[0].Body)
	if !reflect.DeepEqual(m["response_format"], map[string]any{"type": "json_object"}) {
		t.Errorf("gateway request response_format = %v, want {type: json_object}: %s", m["response_format"], reqs[0].Body)
	}
}

// checkOllamaFormats: json_object becomes format "json", json_schema becomes
// format: <the schema>.
func checkOllamaFormats(t *testing.T, ol *ollamatest.Server) {
	b, err := os.ReadFile("testdata/person.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	byPrompt := map[string]any{}
	for _, r := range ol.Requests() {
		m := decode(t, "Ollama request", r)
		msgs, _ := m["messages"].([]any)
		if len(msgs) != 1 {
			t.Errorf("Ollama request with %d messages, want 1: %s", len(msgs), r)
			continue
		}
		content, _ := msgs[0].(map[string]any)["content"].(string)
		byPrompt[content] = m["format"]
		if m["model"] != upstreamModel {
			t.Errorf("Ollama was asked for model %v, want %q", m["model"], upstreamModel)
		}
	}
	for prompt, want := range map[string]any{
		"json_object: Ollama is 22.":        "json",
		"json_schema: Ollama is 22.":        schema,
		"json_schema stream: Ollama is 22.": schema,
		"Say hi":                            nil, // chat with logprobs
	} {
		got, ok := byPrompt[prompt]
		if !ok {
			t.Errorf("Ollama received no request for %q", prompt)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("Ollama request for %q: format %s, want %s", prompt, g, w)
		}
	}
	if len(byPrompt) != 4 {
		t.Errorf("Ollama received requests for %d prompts, want 4: %v", len(byPrompt), byPrompt)
	}
}

// checkOllamaEndpoints: completions go to /api/generate raw, or with the
// suffix (fill in the middle) and no raw; token ids reach /api/embed as
// their text.
func checkOllamaEndpoints(t *testing.T, ol *ollamatest.Server) {
	withSuffix, rawOnes := 0, 0
	for _, r := range ol.RequestsTo("/api/generate") {
		m := decode(t, "Ollama /api/generate request", r)
		switch {
		case m["suffix"] != nil && m["raw"] == nil:
			withSuffix++
		case m["suffix"] == nil && m["raw"] == true:
			rawOnes++
		default:
			t.Errorf("/api/generate request %s: want raw, or a suffix without raw", r)
		}
	}
	if withSuffix == 0 || rawOnes == 0 {
		t.Errorf("/api/generate requests: %d with a suffix, %d raw; want some of each", withSuffix, rawOnes)
	}
	decoded := false
	for _, r := range ol.RequestsTo("/api/embed") {
		m := decode(t, "Ollama /api/embed request", r)
		if m["truncate"] != false {
			t.Errorf("/api/embed request %s: want truncate false", r)
		}
		if reflect.DeepEqual(m["input"], []any{"The quick brown fox"}) && m["dimensions"] == float64(4) {
			decoded = true
		}
	}
	if !decoded {
		t.Errorf("no /api/embed request carried the token ids [791 4062 14198 39935] as \"The quick brown fox\"")
	}
}

// checkTools: the tool definitions reach the upstream.
func checkTools(t *testing.T, what string, reqs [][]byte, want int) {
	if len(reqs) != want {
		t.Errorf("%s received %d chat requests, want %d", what, len(reqs), want)
	}
	for i, r := range reqs {
		var m struct {
			Model string `json:"model"`
			Tools []struct {
				Type     string `json:"type"`
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tools"`
		}
		if err := json.Unmarshal(r, &m); err != nil {
			t.Errorf("%s request %d: %v: %s", what, i, err, r)
			continue
		}
		if m.Model != upstreamModel || len(m.Tools) != 1 || m.Tools[0].Type != "function" || m.Tools[0].Function.Name != "get_weather" {
			t.Errorf("%s request %d: want model %q and the get_weather function tool: %s", what, i, upstreamModel, r)
		}
	}
}
