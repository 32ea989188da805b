package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/httpapi"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/tokenizer"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/catalog"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/health"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

var updateReplay = flag.Bool("update", false, "rewrite testdata/replay/*/*.golden")

// replayUpstream answers every chat request with a recorded upstream body:
// upstream.stream.* for streams, upstream.json otherwise. It records the
// request bodies it received.
type replayUpstream struct {
	dir      string
	protocol string

	mu       sync.Mutex
	received [][]byte
}

func (u *replayUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.received = append(u.received, body)
	u.mu.Unlock()
	var req struct {
		Stream *bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	stream := req.Stream != nil && *req.Stream
	if u.protocol == "ollama" && req.Stream == nil {
		stream = true // Ollama streams unless told not to
	}
	name, ctype := "upstream.json", "application/json; charset=utf-8"
	if stream {
		name, ctype = "upstream.stream.ndjson", "application/x-ndjson"
		if u.protocol == "openai" {
			name, ctype = "upstream.stream.sse", "text/event-stream"
		}
	}
	data, err := os.ReadFile(filepath.Join(u.dir, name))
	if err != nil {
		http.Error(w, `{"error":"no recording"}`, http.StatusNotImplemented)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(data)
}

// unknownModels makes the catalog try every backend.
type unknownModels struct{}

func (unknownModels) Models(string) ([]domain.Model, bool) { return nil, false }

func replayServer(t *testing.T, protocol string, up *replayUpstream) *httptest.Server {
	t.Helper()
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	base, _ := url.Parse(upSrv.URL)
	opts := upstream.Options{Name: protocol, BaseURL: base, AgentID: "test", Timeouts: upstream.Timeouts{FirstByte: 5 * time.Second}}
	var chat ports.ChatBackend
	if protocol == "openai" {
		opts.BaseURL = base.JoinPath("v1")
		chat = gateway.New(opts)
	} else {
		chat = ollama.New(opts, ollama.Options{Images: replayImages{}})
	}
	cat := catalog.New(map[string]string{"gpt-4": "qwen2.5:32b"}, []catalog.Backend{{Name: protocol}}, unknownModels{}, time.Unix(0, 0))
	svc := dispatch.New(cat, []dispatch.Backend{{Name: protocol, Client: chat}}, nil)
	router := httpapi.NewRouter(httpapi.Options{CORSOrigins: []string{"*"}, MaxBodyBytes: 1 << 20},
		httpapi.Deps{Chat: svc, Catalog: cat, Health: health.NewChecker(nil, time.Hour, time.Second), Log: zap.NewNop(),
			Now: func() time.Time { return time.Unix(1764146000, 0) }, Usage: tokenizer.New()})
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return srv
}

type replayImages struct{}

func (replayImages) Load(_ context.Context, u string) (string, error) {
	_, b64, _ := strings.Cut(u, ",")
	return b64, nil
}

var (
	completionIDs = regexp.MustCompile(`chatcmpl-[A-Z2-7]{26}`)
	callIDs       = regexp.MustCompile(`call_[A-Z2-7]{26}`)
	createdField  = regexp.MustCompile(`"created": ?\d+`)
)

// normalize replaces what differs between runs: fresh ids and timestamps.
func normalize(s string) string {
	s = completionIDs.ReplaceAllString(s, "chatcmpl-ID")
	n := map[string]string{}
	s = callIDs.ReplaceAllStringFunc(s, func(id string) string {
		if _, ok := n[id]; !ok {
			n[id] = fmt.Sprintf("call_GENERATED%d", len(n)+1)
		}
		return n[id]
	})
	return createdField.ReplaceAllString(s, `"created":0`)
}

// TestReplay drives each recorded upstream answer through the service, in
// both buffered and streamed form, and compares what the upstream received
// and what the client got with testdata/replay/<case>/<mode>.golden
// (regenerate with -update). Every answer and chunk is also validated
// against OpenAI's schemas.
func TestReplay(t *testing.T) {
	dirs, err := filepath.Glob("testdata/replay/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no replay cases: %v", err)
	}
	for _, dir := range dirs {
		protocol := "ollama"
		if strings.HasPrefix(filepath.Base(dir), "gateway_") {
			protocol = "openai"
		}
		for _, stream := range []bool{false, true} {
			mode := "buffered"
			if stream {
				mode = "stream"
			}
			if _, err := os.Stat(filepath.Join(dir, "upstream.json")); !stream && err != nil {
				continue
			}
			t.Run(filepath.Base(dir)+"/"+mode, func(t *testing.T) {
				replayCase(t, dir, protocol, mode, stream)
			})
		}
	}
}

func replayCase(t *testing.T, dir, protocol, mode string, stream bool) {
	reqBody, err := os.ReadFile(filepath.Join(dir, "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]any
	if err := json.Unmarshal(reqBody, &req); err != nil {
		t.Fatal(err)
	}
	req["stream"] = stream
	if !stream {
		delete(req, "stream_options")
	}
	body, _ := json.Marshal(req)

	up := &replayUpstream{dir: dir, protocol: protocol}
	srv := replayServer(t, protocol, up)
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)

	var b strings.Builder
	for i, r := range up.received {
		fmt.Fprintf(&b, "== upstream request %d\n%s\n", i, indent(r))
	}
	fmt.Fprintf(&b, "== response %d %s\n", resp.StatusCode, resp.Header.Get("Content-Type"))
	if stream {
		for _, frame := range strings.SplitAfter(string(out), "\n\n") {
			b.WriteString(frame)
			data, ok := strings.CutPrefix(strings.TrimSuffix(frame, "\n\n"), "data: ")
			if ok && data != "[DONE]" && !strings.HasPrefix(data, `{"error"`) {
				openaispec.Must(t, "CreateChatCompletionStreamResponse", []byte(data))
			}
		}
	} else {
		b.WriteString(indent(out))
		b.WriteByte('\n')
		if resp.StatusCode == http.StatusOK {
			openaispec.Must(t, "CreateChatCompletionResponse", out)
		}
	}
	if v := resp.Header.Get(httpapi.HeaderUsageEstimated); v != "" {
		fmt.Fprintf(&b, "== header %s: %s\n", httpapi.HeaderUsageEstimated, v)
	}
	if v := resp.Trailer.Get(httpapi.HeaderUsageEstimated); v != "" {
		fmt.Fprintf(&b, "== trailer %s: %s\n", httpapi.HeaderUsageEstimated, v)
	}
	got := normalize(b.String())
	path := filepath.Join(dir, mode+".golden")
	if *updateReplay {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func indent(raw []byte) string {
	var b bytes.Buffer
	if json.Indent(&b, bytes.TrimSpace(raw), "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}
