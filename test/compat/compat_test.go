//go:build compat

// Package compat is the compatibility suite: the official openai npm
// package, the OpenAI Agents SDK (@openai/agents) and Codex CLI
// (@openai/codex), pinned in package-lock.json, against the real service,
// started here in front of fake upstreams. Run it with `make test-compat`;
// it needs node (20 or later) and npm on PATH and installs its packages with
// `npm ci`.
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
//	COMPAT_OLLAMA_RESPONSES_URL          ollamatest, default reply, thinking when streamed: Responses API
//	COMPAT_OLLAMA_CALLS_URL              ollamatest calling get_weather until it has its output, then
//	                                     weatherReply: responses.create's function-tool round trip
//	COMPAT_OLLAMA_AGENT_URL              the same, for the Agents SDK
//	COMPAT_GATEWAY_RESPONSES_URL         gatewaytest serving /v1/responses (responses_api on), reasoning
//	                                     and the default reply
//	COMPAT_GATEWAY_CALLS_URL             the same calling get_weather until it has its output: the tool
//	                                     round trips of responses.create and the Agents SDK
//	COMPAT_CODEX_URL                     ollamatest replying codexReply: `codex exec`, run from here
//	COMPAT_CODEX_TOOLS_URL               ollamatest calling Codex's exec_command (codexCommand) until it
//	                                     has its output, then replying codexToolReply: `codex exec`
//
// The node side records every HTTP response the SDK received into
// COMPAT_RECORD_DIR, and a proxy here records Codex's exchanges likewise;
// once node and Codex are done, each response body, stream chunk and event,
// and error body is validated here against OpenAI's OpenAPI schemas
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
	"syscall"
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

// The Responses API's tool round trips: the fakes call get_weather with
// weatherArgs until the conversation ends with its output, then answer
// weatherReply (compat.mjs has the same).
const (
	weatherArgs  = `{"city":"Paris"}`
	weatherReply = "It is sunny in Paris."
)

// Codex CLI's runs: a plain answer, and a call of its exec_command tool
// running codexCommand (in the run's working directory) before the answer.
const (
	codexReply     = "Codex reached the compat fake."
	codexCommand   = "echo compat-proof | tee proof.txt"
	codexProof     = "compat-proof"
	codexToolReply = "The command printed compat-proof."
)

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
	// The Responses API.
	olResponses := newOllama(t)
	olResponses.Thinking = []string{"The user ", "greets."}
	olCalls, olAgent := newCallingOllama(t), newCallingOllama(t)
	gwResponses := newGateway(t)
	gwResponses.Reasoning = []string{"The user ", "greets."}
	gwCalls := newCallingGateway(t)
	cxPlain := newOllama(t)
	cxPlain.Reply = codexReply
	cxTools := newOllama(t)
	// login false: a login shell would add the profile's noise to the output.
	cxTools.CallTools = []ollamatest.ToolCall{ollamatest.Call("exec_command", jsonOf(map[string]any{"cmd": codexCommand, "login": false}))}
	cxTools.Reply = codexToolReply

	type instance struct {
		env, name       string
		gateway, ollama string
		responsesAPI    bool // the gateway serves /v1/responses itself
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
		{env: "COMPAT_OLLAMA_RESPONSES_URL", name: "ollama-responses", ollama: olResponses.URL},
		{env: "COMPAT_OLLAMA_CALLS_URL", name: "ollama-calls", ollama: olCalls.URL},
		{env: "COMPAT_OLLAMA_AGENT_URL", name: "ollama-agent", ollama: olAgent.URL},
		{env: "COMPAT_GATEWAY_RESPONSES_URL", name: "gateway-responses", gateway: gwResponses.URL, responsesAPI: true},
		{env: "COMPAT_GATEWAY_CALLS_URL", name: "gateway-calls", gateway: gwCalls.URL, responsesAPI: true},
		{env: "COMPAT_CODEX_URL", name: "codex", ollama: cxPlain.URL},
		{env: "COMPAT_CODEX_TOOLS_URL", name: "codex-tools", ollama: cxTools.URL},
	}
	for _, in := range instances {
		cfg := testConfig(in.gateway, in.ollama)
		cfg.Gateway.ResponsesAPI = in.responsesAPI
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

	// --- Codex CLI, through a proxy recording its exchanges -------------------
	addrOf := map[string]string{}
	for _, in := range instances {
		addrOf[in.name] = in.addr
	}
	t.Run("codex", func(t *testing.T) {
		codex := codexLauncher(t)
		t.Run("plain answer", func(t *testing.T) {
			proxy := newRecorder(t, "codex", addrOf["codex"], records)
			run := runCodex(t, node, codex, proxy.URL, "Say hello.")
			checkStatuses(t, proxy, 1)
			checkCodexRequests(t, proxy)
			if run.message != codexReply {
				t.Errorf("codex's final message %q, want %q", run.message, codexReply)
			}
			if len(run.commands) != 0 {
				t.Errorf("codex ran commands %v, want none", run.commands)
			}
		})
		t.Run("exec_command round trip", func(t *testing.T) {
			proxy := newRecorder(t, "codex-tools", addrOf["codex-tools"], records)
			run := runCodex(t, node, codex, proxy.URL, "Write the proof file, then tell me what the command printed.")
			checkStatuses(t, proxy, 2)
			checkCodexRequests(t, proxy)
			if run.message != codexToolReply {
				t.Errorf("codex's final message %q, want %q", run.message, codexToolReply)
			}
			if len(run.commands) != 1 || !strings.Contains(run.commands[0].Command, codexCommand) ||
				run.commands[0].ExitCode == nil || *run.commands[0].ExitCode != 0 ||
				strings.TrimSpace(run.commands[0].Output) != codexProof {
				t.Errorf("codex's command executions %+v, want one of %q printing %q", run.commands, codexCommand, codexProof)
			}
			if b, err := os.ReadFile(filepath.Join(run.workdir, "proof.txt")); err != nil || string(b) != codexProof+"\n" {
				t.Errorf("proof.txt in codex's working directory: %q, %v; want %q", b, err, codexProof+"\n")
			}
		})
	})

	// --- what the clients received, against OpenAI's schemas -----------------
	validateRecords(t, records)

	// --- what the upstreams received ----------------------------------------
	t.Run("upstream requests", func(t *testing.T) {
		checkGateway(t, gw)
		checkGatewayJSON(t, gwJSON)
		checkOllamaFormats(t, ol)
		checkOllamaEndpoints(t, ol)
		checkTools(t, "gateway replay", gwTools.Requests(), 3)
		checkTools(t, "ollama replay", olTools.Requests(), 3)
		checkResponsesOllama(t, olResponses)
		checkCallingOllama(t, "responses.create", olCalls, 2, 2)
		checkCallingOllama(t, "the Agents SDK", olAgent, 4, 4)
		checkAgentContinued(t, olAgent)
		checkResponsesGateway(t, gwResponses)
		checkCallingGateway(t, gwCalls)
		checkCodexOllama(t, "plain", cxPlain, 1)
		checkCodexOllama(t, "exec_command", cxTools, 2)
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

var (
	modelPath      = regexp.MustCompile(`/v1/models/[^/]+$`)
	responsePath   = regexp.MustCompile(`/v1/responses/([^/]+)$`)
	inputItemsPath = regexp.MustCompile(`/v1/responses/[^/]+/input_items$`)
)

// deleted counts the DELETE /v1/responses/{id} answers checked: the spec
// gives them no schema.
const deleted = "(response.deleted)"

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
			case strings.HasPrefix(rec.ContentType, "text/event-stream") && strings.HasSuffix(u.Path, "/v1/responses"):
				checkResponsesStream(t, rec, body, check)
			case strings.HasPrefix(rec.ContentType, "text/event-stream"):
				chunkSchema, ok := streamSchema(u.Path)
				if !ok {
					t.Errorf("%s: unexpected stream from %s", rec.File, rec.URL)
					continue
				}
				if strings.HasPrefix(rec.Instance, "slow") && strings.Contains("\n"+string(body), "\n: ping\n") {
					pinged++
				}
				events, err := sseEvents(string(body), false)
				if err != nil {
					t.Errorf("%s: %v\n%s", rec.File, err, body)
					continue
				}
				if len(events) == 0 {
					t.Errorf("%s: a stream without events: %q", rec.File, body)
					continue
				}
				for i, ev := range events {
					data := ev.data
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
			case strings.HasSuffix(u.Path, "/v1/responses") && rec.Method == http.MethodPost:
				check(rec, "Response", body)
			case inputItemsPath.MatchString(u.Path) && rec.Method == http.MethodGet:
				check(rec, "ResponseItemList", body)
			case responsePath.MatchString(u.Path) && rec.Method == http.MethodGet:
				check(rec, "Response", body)
			case responsePath.MatchString(u.Path) && rec.Method == http.MethodDelete:
				// The spec's 200 has no schema: the SDKs ignore the body.
				// The service answers OpenAI's deletion object.
				n[deleted]++
				id := responsePath.FindStringSubmatch(u.Path)[1]
				var d struct {
					ID      string `json:"id"`
					Object  string `json:"object"`
					Deleted bool   `json:"deleted"`
				}
				if err := json.Unmarshal(body, &d); err != nil || d.ID != id || d.Object != "response.deleted" || !d.Deleted {
					t.Errorf("%s: DELETE %s answered %s (%v): want {id: %q, object: response.deleted, deleted: true}", rec.File, u.Path, body, err, id)
				}
			default:
				t.Errorf("%s: unexpected request %s %s", rec.File, rec.Method, rec.URL)
			}
		}
		t.Logf("validated against openai-openapi.yaml, from %d recorded responses: %v", len(files), n)
		if pinged == 0 {
			t.Errorf("no stream of the slow instances carried a keep-alive comment: the ping tests did not test pings")
		}
		for _, s := range []string{"CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "ErrorResponse", "ListModelsResponse", "Model",
			"CreateCompletionResponse", "CreateEmbeddingResponse", "Response", "ResponseStreamEvent", "ResponseItemList", deleted} {
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

// sseEvent is one event of a text/event-stream: its name (the event:
// field, "" without one) and its data.
type sseEvent struct {
	name, data string
}

// sseEvents reads a text/event-stream body as the SDKs do: events end at a
// blank line, comment lines (":", such as keep-alive pings) are ignored,
// and an event's data lines are joined with newlines. OpenAI's chat and
// completion streams use nothing but data; its Responses streams (named)
// name each event too, with one event: line. Any other field, an event
// without data, or a body not ending in a blank line, is an error.
func sseEvents(body string, named bool) ([]sseEvent, error) {
	var events []sseEvent
	var data []string
	var name *string
	lines := strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n")
	if len(lines) < 2 || lines[len(lines)-1] != "" || lines[len(lines)-2] != "" {
		return nil, fmt.Errorf("the stream does not end with a blank line")
	}
	for i, l := range lines[:len(lines)-1] {
		switch {
		case l == "":
			switch {
			case data != nil:
				ev := sseEvent{data: strings.Join(data, "\n")}
				if name != nil {
					ev.name = *name
				}
				events = append(events, ev)
			case name != nil:
				return nil, fmt.Errorf("line %d: event %q ends without data", i+1, *name)
			}
			data, name = nil, nil
		case strings.HasPrefix(l, ":"):
		case strings.HasPrefix(l, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(l, "data:"), " "))
		case named && strings.HasPrefix(l, "event:"):
			if name != nil {
				return nil, fmt.Errorf("line %d: a second event: line in one event", i+1)
			}
			v := strings.TrimPrefix(strings.TrimPrefix(l, "event:"), " ")
			name = &v
		case named:
			return nil, fmt.Errorf("line %d: %q is neither an event nor a data line", i+1, l)
		default:
			return nil, fmt.Errorf("line %d: %q is not a data line", i+1, l)
		}
	}
	return events, nil
}

// terminalEvents end a Responses stream.
var terminalEvents = map[string]bool{"response.completed": true, "response.incomplete": true, "response.failed": true, "error": true}

// checkResponsesStream checks a Responses API stream: each event named by
// an event: line as its data's type, and valid as a ResponseStreamEvent;
// sequence numbers 0, 1, 2…; response.created first and a terminal event
// (response.completed, incomplete, failed, or error) last, and only there.
// OpenAI sends no data: [DONE]; one is allowed at the very end.
func checkResponsesStream(t *testing.T, rec record, body []byte, check func(record, string, []byte)) {
	t.Helper()
	events, err := sseEvents(string(body), true)
	if err != nil {
		t.Errorf("%s: %v\n%s", rec.File, err, body)
		return
	}
	if n := len(events); n > 0 && events[n-1].data == "[DONE]" && events[n-1].name == "" {
		events = events[:n-1]
	}
	if len(events) == 0 {
		t.Errorf("%s: a Responses stream without events: %q", rec.File, body)
		return
	}
	var types []string
	failed := false
	errorf := func(format string, args ...any) {
		t.Helper()
		failed = true
		t.Errorf(rec.File+": "+format, args...)
	}
	for i, ev := range events {
		var head struct {
			Type     string `json:"type"`
			Sequence *int   `json:"sequence_number"`
		}
		if err := json.Unmarshal([]byte(ev.data), &head); err != nil {
			errorf("event %d is not a JSON object (%v): %s", i, err, ev.data)
			continue
		}
		types = append(types, head.Type)
		if ev.name != head.Type {
			errorf("event %d is named %q but its type is %q", i, ev.name, head.Type)
		}
		if head.Sequence == nil || *head.Sequence != i {
			errorf("event %d (%s) has sequence_number %v, want %d", i, head.Type, jsonOf(head.Sequence), i)
		}
		check(rec, "ResponseStreamEvent", []byte(ev.data))
		last := i == len(events)-1
		if i == 0 && head.Type != "response.created" {
			errorf("the stream begins with %s, want response.created", head.Type)
		}
		if last && !terminalEvents[head.Type] {
			errorf("the stream ends with %s, want response.completed, incomplete, failed or error", head.Type)
		}
		if !last && terminalEvents[head.Type] {
			errorf("%s is event %d of %d, want the last", head.Type, i, len(events))
		}
	}
	if failed {
		t.Logf("%s: events %v", rec.File, types)
	}
}

// jsonOf is v as JSON, for messages and fakes' arguments.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
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

// --- the Responses API's fakes ----------------------------------------------

// newCallingOllama is a fake Ollama calling get_weather with weatherArgs
// until the conversation's last message is the call's output, then
// answering weatherReply.
func newCallingOllama(t *testing.T) *ollamatest.Server {
	ol := newOllama(t)
	ol.CallTools = []ollamatest.ToolCall{ollamatest.Call("get_weather", weatherArgs)}
	ol.Reply = weatherReply
	return ol
}

// callingGateway is a gateway serving /v1/responses that acts as a model
// using a tool: its answer is a call of get_weather with weatherArgs (from
// the call fake) until the conversation's last input item is a
// function_call_output, then weatherReply (from the text fake).
type callingGateway struct {
	*httptest.Server
	call, text *gatewaytest.Server
}

func newCallingGateway(t *testing.T) *callingGateway {
	g := &callingGateway{call: newGateway(t), text: newGateway(t)}
	g.call.ToolCall = &gatewaytest.ToolCall{Name: "get_weather", Arguments: weatherArgs}
	g.text.Reply = weatherReply
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		to := g.call
		if items := inputItems(body); len(items) > 0 && items[len(items)-1]["type"] == "function_call_output" {
			to = g.text
		}
		to.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// inputItems decodes the input of a Responses request given as a list.
func inputItems(body []byte) []map[string]any {
	var req struct {
		Input json.RawMessage `json:"input"`
	}
	var items []map[string]any
	if json.Unmarshal(body, &req) == nil {
		_ = json.Unmarshal(req.Input, &items)
	}
	return items
}

// --- Codex CLI --------------------------------------------------------------

// recorder is a reverse proxy in front of a service instance that writes
// each exchange into the records directory as compat.mjs does, for a
// client (Codex) whose HTTP the node side does not see.
type recorder struct {
	*httptest.Server
	instance, addr, dir string
	t                   *testing.T

	mu       sync.Mutex
	n        int
	statuses []int
	requests [][]byte
}

// Requests are the request bodies so far.
func (p *recorder) Requests() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.requests...)
}

// Statuses are the HTTP statuses of the exchanges so far.
func (p *recorder) Statuses() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.statuses...)
}

func newRecorder(t *testing.T, instance, addr, dir string) *recorder {
	p := &recorder{instance: instance, addr: addr, dir: dir, t: t}
	p.Server = httptest.NewServer(p)
	t.Cleanup(p.Close)
	return p
}

func (p *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqBody, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.requests = append(p.requests, reqBody)
	p.mu.Unlock()
	rec := record{Instance: p.instance, Method: r.Method, URL: "http://" + p.addr + r.URL.RequestURI()}
	if len(reqBody) > 0 {
		s := string(reqBody)
		rec.Request = &s
	}
	defer p.write(&rec)
	out, err := http.NewRequestWithContext(r.Context(), r.Method, rec.URL, bytes.NewReader(reqBody))
	if err != nil {
		rec.ReadError = err.Error()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		rec.ReadError = err.Error()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	rec.Status, rec.ContentType = resp.StatusCode, resp.Header.Get("Content-Type")
	rec.Headers = map[string]string{}
	for k, v := range resp.Header {
		w.Header()[k] = v
		rec.Headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	w.WriteHeader(resp.StatusCode)
	var body bytes.Buffer
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			body.Write(buf[:n])
			w.Write(buf[:n])
			w.(http.Flusher).Flush()
		}
		if err == io.EOF {
			s := body.String()
			rec.Body = &s
			return
		}
		if err != nil {
			rec.ReadError = err.Error()
			return
		}
	}
}

func (p *recorder) write(rec *record) {
	p.mu.Lock()
	p.n++
	p.statuses = append(p.statuses, rec.Status)
	name := fmt.Sprintf("codex-%s-%04d.json", p.instance, p.n)
	p.mu.Unlock()
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(filepath.Join(p.dir, name), b, 0o644); err != nil {
		p.t.Errorf("recording codex's exchange: %v", err)
	}
}

// offHostGuard is the HTTP(S) proxy of a Codex run: it refuses every
// request and CONNECT, keeping the host each asked for.
type offHostGuard struct {
	*httptest.Server
	mu    sync.Mutex
	hosts []string
}

func newOffHostGuard(t *testing.T) *offHostGuard {
	g := &offHostGuard{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.hosts = append(g.hosts, r.Method+" "+r.Host)
		g.mu.Unlock()
		http.Error(w, "compat: no connection may leave the machine", http.StatusForbidden)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *offHostGuard) Hosts() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.hosts...)
}

// codexLauncher is the @openai/codex package's launcher, which runs the
// binary of this platform (an optional dependency of the package).
func codexLauncher(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("node_modules", "@openai", "codex", "bin", "codex.js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Codex CLI is not installed (npm ci installs @openai/codex from package-lock.json): %v", err)
	}
	return p
}

// codexRun is what one `codex exec --json` run did.
type codexRun struct {
	workdir  string
	message  string // the last agent message
	commands []codexCommandRun
}

// codexCommandRun is a command_execution item of `codex exec --json`.
type codexCommandRun struct {
	Command  string `json:"command"`
	Output   string `json:"aggregated_output"`
	ExitCode *int   `json:"exit_code"`
	Status   string `json:"status"`
}

// codexConfig is Codex's config.toml for a run against the service at
// baseURL: a custom provider speaking the Responses API, with no key (none
// is sent), no retries (a failure shows at once), and nothing that would
// leave the machine (analytics, plugins and their marketplace, update
// checks).
const codexConfig = `model = "gpt-4"
model_provider = "compat"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false

[model_providers.compat]
name = "compat"
base_url = %q
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
`

// runCodex runs `codex exec` once, non-interactively, against the service
// at baseURL (…/v1) in a new working directory and CODEX_HOME, and fails
// the test unless it ends with exit code 0.
func runCodex(t *testing.T, node, launcher, baseURL, prompt string) codexRun {
	t.Helper()
	home, work := t.TempDir(), t.TempDir()
	codexHome := filepath.Join(home, ".codex")
	if err := os.MkdirAll(codexHome, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(codexHome, "config.toml"), []byte(fmt.Sprintf(codexConfig, baseURL+"/v1")), 0o644); err != nil {
		t.Fatal(err)
	}
	last := filepath.Join(home, "last-message.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, launcher, "exec",
		"--json", "--output-last-message", last,
		"--skip-git-repo-check", "--ephemeral",
		// No sandbox: bubblewrap needs user namespaces, which CI runners
		// may not allow; the one command is the fake's, in a temporary
		// directory.
		"--sandbox", "danger-full-access",
		"--cd", work,
		prompt)
	cmd.Stdin = nil // </dev/null: else exec reads stdin into the prompt
	cmd.Dir = work
	// Every connection off the machine goes to a proxy refusing it, so
	// that the test sees it.
	guard := newOffHostGuard(t)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"CODEX_HOME=" + codexHome,
		"NO_COLOR=1",
		"LANG=C.UTF-8",
	}
	for _, k := range []string{"HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"} {
		cmd.Env = append(cmd.Env, k+"="+guard.URL, strings.ToLower(k)+"="+guard.URL)
	}
	cmd.Env = append(cmd.Env, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	// On a timeout the launcher gets SIGTERM, which it passes on to the
	// binary it runs; 10 seconds later both are killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout bytes.Buffer
	stderr := &lineLogger{t: t, prefix: "codex: "}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	start := time.Now()
	err := cmd.Run()
	stderr.Flush()
	took := time.Since(start).Round(time.Millisecond)
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		t.Log("codex --json: " + l)
	}
	if err != nil {
		t.Fatalf("codex exec against %s: %v after %v", baseURL, err, took)
	}
	t.Logf("codex exec took %v", took)

	run := codexRun{workdir: work}
	completed := false
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var ev struct {
			Type string          `json:"type"`
			Item json.RawMessage `json:"item"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Errorf("codex --json printed a line that is not JSON: %q", l)
			continue
		}
		switch ev.Type {
		case "turn.completed":
			completed = true
		case "turn.failed", "error":
			t.Errorf("codex: %s", l)
		case "item.completed":
			var item struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			_ = json.Unmarshal(ev.Item, &item)
			switch item.Type {
			case "agent_message":
				run.message = item.Text
			case "command_execution":
				var c codexCommandRun
				_ = json.Unmarshal(ev.Item, &c)
				run.commands = append(run.commands, c)
			}
		}
	}
	if !completed {
		t.Errorf("codex --json printed no turn.completed")
	}
	if hosts := guard.Hosts(); len(hosts) > 0 {
		t.Errorf("codex tried to reach %v: nothing but the service may be reached", hosts)
	}
	if b, err := os.ReadFile(last); err != nil || strings.TrimSpace(string(b)) != run.message {
		t.Errorf("codex --output-last-message wrote %q (%v), want its last agent message %q", b, err, run.message)
	}
	return run
}

// --- checks of what the Responses API's upstreams received --------------------

// ollamaChat is what the checks read of an /api/chat request.
type ollamaChat struct {
	Model    string `json:"model"`
	Messages []struct {
		Role      string `json:"role"`
		Content   string `json:"content"`
		ToolName  string `json:"tool_name"`
		ToolCalls []struct {
			Function struct {
				Name      string         `json:"name"`
				Arguments map[string]any `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
}

func decodeChats(t *testing.T, what string, ol *ollamatest.Server) []ollamaChat {
	t.Helper()
	var out []ollamaChat
	for _, r := range ol.Requests() {
		var c ollamaChat
		if err := json.Unmarshal(r, &c); err != nil {
			t.Fatalf("%s: Ollama request: %v: %s", what, err, r)
		}
		if c.Model != upstreamModel {
			t.Errorf("%s: Ollama was asked for model %q, want %q", what, c.Model, upstreamModel)
		}
		out = append(out, c)
	}
	return out
}

func (c ollamaChat) roles() string {
	var r []string
	for _, m := range c.Messages {
		r = append(r, m.Role)
	}
	return strings.Join(r, ",")
}

func (c ollamaChat) toolNames() []string {
	var names []string
	for _, tool := range c.Tools {
		names = append(names, tool.Type+":"+tool.Function.Name)
	}
	return names
}

// checkResponsesOllama: the plain Responses requests reached Ollama as chats
// of the instructions and the input.
func checkResponsesOllama(t *testing.T, ol *ollamatest.Server) {
	chats := decodeChats(t, "Responses via Ollama", ol)
	if len(chats) == 0 {
		t.Fatalf("the Responses Ollama received no chat request")
	}
	instructed := false
	for _, c := range chats {
		if len(c.Tools) != 0 {
			t.Errorf("Responses via Ollama: tools %v offered, want none", c.toolNames())
		}
		if c.roles() == "system,user" && c.Messages[0].Content == "Be brief." && c.Messages[1].Content == "Say hello." {
			instructed = true
		}
	}
	if !instructed {
		t.Errorf("no Ollama request carried the instructions as a system message before the input")
	}
}

// checkCallingOllama: calls requests offered get_weather alone (web_search,
// hosted, left out) and were answered with its call; answers requests (with
// get_weather or no tools) ended with its output after the call, the
// question before: the conversation rebuilt from previous_response_id.
func checkCallingOllama(t *testing.T, what string, ol *ollamatest.Server, calls, answers int) {
	gotCalls, gotAnswers := 0, 0
	for i, c := range decodeChats(t, what, ol) {
		names := c.toolNames()
		n := len(c.Messages)
		if n == 0 {
			t.Errorf("%s: Ollama request %d has no messages", what, i)
			continue
		}
		if c.Messages[n-1].Role != "tool" {
			gotCalls++
			if len(names) != 1 || names[0] != "function:get_weather" {
				t.Errorf("%s: Ollama request %d offers tools %v, want function:get_weather alone", what, i, names)
			}
			continue
		}
		if len(names) > 1 || len(names) == 1 && names[0] != "function:get_weather" {
			t.Errorf("%s: Ollama request %d offers tools %v, want function:get_weather alone or none", what, i, names)
		}
		gotAnswers++
		roles := c.roles()
		if !strings.HasSuffix(roles, "user,assistant,tool") || n < 3 ||
			len(c.Messages[n-2].ToolCalls) != 1 || c.Messages[n-2].ToolCalls[0].Function.Name != "get_weather" ||
			!reflect.DeepEqual(c.Messages[n-2].ToolCalls[0].Function.Arguments, map[string]any{"city": "Paris"}) ||
			c.Messages[n-1].ToolName != "get_weather" || !strings.Contains(c.Messages[n-1].Content, "sunny, 22°C") ||
			!strings.Contains(c.Messages[n-3].Content, "Weather in Paris?") && !strings.Contains(c.Messages[n-3].Content, "And tomorrow?") {
			t.Errorf("%s: Ollama request %d ends with roles %s: want the question, the call of get_weather %s and its output: %s", what, i, roles, weatherArgs, jsonOf(c.Messages))
		}
	}
	if gotCalls != calls || gotAnswers != answers {
		t.Errorf("%s: Ollama answered %d requests with a call and %d with its reply, want %d and %d", what, gotCalls, gotAnswers, calls, answers)
	}
}

// checkAgentContinued: the Agents SDK's run with previousResponseId reached
// Ollama with the earlier run's whole conversation before the new question.
func checkAgentContinued(t *testing.T, ol *ollamatest.Server) {
	for _, c := range decodeChats(t, "the Agents SDK", ol) {
		n := len(c.Messages)
		if n == 0 || c.Messages[n-1].Role != "tool" || !strings.Contains(jsonOf(c.Messages), "And tomorrow?") {
			continue
		}
		// instructions, the earlier run (question, call, output, answer),
		// then this one's (question, call, output).
		if got := c.roles(); got != "system,user,assistant,tool,assistant,user,assistant,tool" || c.Messages[1].Content != "Weather in Paris?" ||
			c.Messages[4].Content != weatherReply || c.Messages[5].Content != "And tomorrow?" {
			t.Errorf("the Agents SDK's continued run reached Ollama as %s: %s", got, jsonOf(c.Messages))
		}
		return
	}
	t.Errorf("no Ollama request continued the Agents SDK's earlier run (\"And tomorrow?\" answered with the tool's output)")
}

// responsesBody is what the checks read of a Responses request a gateway got.
type responsesBody struct {
	Model              string  `json:"model"`
	Stream             *bool   `json:"stream"`
	Store              *bool   `json:"store"`
	PreviousResponseID *string `json:"previous_response_id"`
	Tools              []struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tools"`
}

// checkNativeRequests: the gateway was asked on /v1/responses only, for the
// upstream model, streamed, to store nothing, without
// previous_response_id (the service keeps the conversation).
func checkNativeRequests(t *testing.T, what string, gw *gatewaytest.Server) []gatewaytest.Request {
	reqs := gw.RequestsTo(gatewaytest.PathResponses)
	if n := len(gw.Requests()); n != 0 {
		t.Errorf("%s: the gateway got %d chat completions, want none (responses_api is on)", what, n)
	}
	for i, r := range reqs {
		var b responsesBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Errorf("%s: request %d: %v: %s", what, i, err, r.Body)
			continue
		}
		if b.Model != upstreamModel || b.Stream == nil || !*b.Stream || b.Store == nil || *b.Store || b.PreviousResponseID != nil {
			t.Errorf("%s: request %d: want model %q, stream true, store false and no previous_response_id: %s", what, i, upstreamModel, r.Body)
		}
		if got := r.Header.Get("X-Agent-ID"); got != "compat" {
			t.Errorf("%s: request %d: X-Agent-ID %q, want compat", what, i, got)
		}
	}
	return reqs
}

func checkResponsesGateway(t *testing.T, gw *gatewaytest.Server) {
	if reqs := checkNativeRequests(t, "gateway serving /v1/responses", gw); len(reqs) == 0 {
		t.Errorf("the gateway serving /v1/responses received no request")
	}
}

// checkCallingGateway: the gateway asked for a call got the tools as sent
// (web_search too: the gateway decides); the one asked for the answer got
// the whole conversation, the question first and the call's output last,
// though the clients sent previous_response_id and the output alone.
func checkCallingGateway(t *testing.T, g *callingGateway) {
	calls := checkNativeRequests(t, "calling gateway", g.call)
	answers := checkNativeRequests(t, "calling gateway", g.text)
	// responses.test.mjs: 2 round trips; agents.test.mjs: 4.
	if len(calls) != 6 || len(answers) != 6 {
		t.Errorf("the calling gateway got %d requests for a call and %d for an answer, want 6 and 6", len(calls), len(answers))
	}
	for i, r := range calls {
		var b responsesBody
		_ = json.Unmarshal(r.Body, &b)
		if len(b.Tools) == 0 || b.Tools[0].Type != "function" || b.Tools[0].Name != "get_weather" {
			t.Errorf("calling gateway: request %d for a call: want get_weather first among the tools: %s", i, r.Body)
		}
	}
	for i, r := range answers {
		items := inputItems(r.Body)
		n := len(items)
		if n < 3 || items[0]["role"] != "user" || items[n-2]["type"] != "function_call" || items[n-1]["type"] != "function_call_output" ||
			items[n-2]["call_id"] != items[n-1]["call_id"] || items[n-2]["name"] != "get_weather" {
			t.Errorf("calling gateway: request %d for an answer: want the question, the call and its output: %s", i, r.Body)
		}
	}
}

// checkCodexOllama: Codex's requests reached Ollama (n of them), each
// offering exec_command as a function among Codex's tools, its hosted
// web_search left out; the last request of a tool run ends with the
// command's output.
func checkCodexOllama(t *testing.T, what string, ol *ollamatest.Server, n int) {
	chats := decodeChats(t, "codex "+what, ol)
	if len(chats) != n {
		t.Errorf("codex %s: Ollama got %d requests, want %d", what, len(chats), n)
	}
	for i, c := range chats {
		names := c.toolNames()
		t.Logf("codex %s: Ollama request %d: %d messages (%s), tools %v", what, i, len(c.Messages), c.roles(), names)
		hasExec, namespaced := false, false
		for _, name := range names {
			hasExec = hasExec || name == "function:exec_command"
			namespaced = namespaced || strings.HasPrefix(name, "function:multi_agent_v1.")
			if strings.Contains(name, "web_search") || !strings.HasPrefix(name, "function:") {
				t.Errorf("codex %s: Ollama request %d offers %s", what, i, name)
			}
		}
		if !hasExec || !namespaced {
			t.Errorf("codex %s: Ollama request %d does not offer exec_command and the tools of Codex's multi_agent_v1 namespace: %v", what, i, names)
		}
	}
	if n > 1 && len(chats) == n && len(chats[n-1].Messages) > 0 {
		last := chats[n-1]
		m := last.Messages[len(last.Messages)-1]
		if m.Role != "tool" || m.ToolName != "exec_command" || !strings.Contains(m.Content, codexProof) {
			t.Errorf("codex %s: the last request to Ollama ends with %s, want exec_command's output with %q", what, jsonOf(m), codexProof)
		}
	}
}

// checkStatuses: Codex made n requests through the proxy, each answered 200.
func checkStatuses(t *testing.T, p *recorder, n int) {
	t.Helper()
	got := p.Statuses()
	ok := len(got) == n
	for _, s := range got {
		ok = ok && s == http.StatusOK
	}
	if !ok {
		t.Errorf("codex's requests were answered %v, want %d answers 200", got, n)
	}
}

// checkCodexRequests: what Codex sent is what the service must cope with:
// a streamed request, its whole history each time (no
// previous_response_id, store false), exec_command among its function
// tools, tools in a namespace and the hosted web_search.
func checkCodexRequests(t *testing.T, p *recorder) {
	t.Helper()
	for i, body := range p.Requests() {
		var req struct {
			Stream             bool            `json:"stream"`
			Store              *bool           `json:"store"`
			PreviousResponseID json.RawMessage `json:"previous_response_id"`
			Tools              []struct {
				Type string `json:"type"`
				Name string `json:"name"`
			} `json:"tools"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("codex request %d: %v", i, err)
			continue
		}
		kinds := map[string]bool{}
		for _, tool := range req.Tools {
			kinds[tool.Type] = true
			if tool.Type == "function" && tool.Name == "exec_command" {
				kinds["exec_command"] = true
			}
		}
		if !req.Stream || req.Store == nil || *req.Store || req.PreviousResponseID != nil ||
			!kinds["exec_command"] || !kinds["namespace"] || !kinds["web_search"] {
			t.Errorf("codex request %d: stream %v, store %s, previous_response_id %s, tools %s: want a stream, store false, the whole history, "+
				"and the exec_command function, a namespace and web_search among the tools", i, req.Stream, jsonOf(req.Store), req.PreviousResponseID, jsonOf(req.Tools))
		}
	}
}
