package ollama_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/backendtest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestRequestTranslation(t *testing.T) {
	for _, name := range []string{
		"minimal", "sampling", "roles_and_parts", "tools", "tool_choice_none", "tool_choice_named",
		"tool_choice_required", "legacy_functions", "json_object", "json_schema", "image", "extras",
		"reasoning_effort", "logprobs", "logprobs_forced_tool",
	} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name+".request.json"))
			if err != nil {
				t.Fatal(err)
			}
			req, err := openai.DecodeChatRequest(in)
			if err != nil {
				t.Fatal(err)
			}
			client := ollama.New(upstream.Options{}, ollama.Options{Images: dataURLs{}, NumCtx: map[string]int{"qwen3:8b": 40960}})
			body, err := client.Translate(context.Background(), req, req.Stream)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			enc := json.NewEncoder(&out)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(body); err != nil {
				t.Fatal(err)
			}
			golden(t, name+".ollama.json", out.Bytes())
			sent, err := ollama.EncodeChat(&body)
			sameJSON(t, sent, err, body)
		})
	}
}

// sameJSON checks a body as the client sends it against what
// encoding/json's Encoder writes of it (HTML characters left alone),
// byte for byte.
func sameJSON(t *testing.T, sent []byte, err error, body any) {
	t.Helper()
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if werr := enc.Encode(body); err != nil || werr != nil {
		t.Fatalf("sent: %v; encoding/json: %v", err, werr)
	}
	if diff := cmp.Diff(want.String(), string(sent)); diff != "" {
		t.Errorf("the body sent is not encoding/json's (-want +got):\n%s", diff)
	}
}

func newClient(t *testing.T, srv *ollamatest.Server, timeout time.Duration) *ollama.Client {
	u, _ := url.Parse(srv.URL)
	return ollama.New(upstream.Options{Name: "ollama", BaseURL: u, AgentID: "agent-7", Timeouts: upstream.Timeouts{FirstByte: timeout}}, ollama.Options{})
}

func chat(model string) domain.ChatRequest {
	return domain.ChatRequest{Model: model, Messages: []domain.Message{{Role: "user", Content: "hi"}}}
}

// TestContract runs the contract every chat backend owes the domain.
func TestContract(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		Name: "ollama",
		New: func(t testing.TB, b backendtest.Behaviour, limits upstream.Timeouts) ports.ChatBackend {
			models := []string{backendtest.Model}
			if b.Missing {
				models = []string{"another-model"}
			}
			srv := ollamatest.New(models...)
			t.Cleanup(srv.Close)
			srv.Pieces, srv.FirstDelay, srv.PieceDelay, srv.BreakAfter = b.Pieces, b.FirstDelay, b.PieceDelay, b.BreakAfter
			srv.Hang, srv.Garbage = b.Hang, b.Garbage
			if b.Status != 0 {
				srv.Status, srv.ErrorText = b.Status, "told to fail"
			}
			base := srv.URL
			if b.WrongPath {
				base += "/ollama" // OLLAMA_URL with a path the host does not serve
			}
			if b.Down {
				srv.Close()
			}
			u, _ := url.Parse(base)
			return ollama.New(upstream.Options{Name: "ollama", BaseURL: u, Timeouts: limits}, ollama.Options{})
		},
		Request: func(n int) domain.ChatRequest {
			r := chat(backendtest.Model)
			r.N = n
			return r
		},
	})
}

func TestChatStreamsFromOllama(t *testing.T) {
	srv := ollamatest.New("qwen2.5:32b")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"Hel", "lo", " there"}
	srv.PromptEvalCount, srv.EvalCount = 26, 3
	ctx := domain.WithRequestID(context.Background(), "req-1")
	f := &backendtest.Frames{}
	if err := newClient(t, srv, 5*time.Second).Chat(ctx, chat("qwen2.5:32b"), f); err != nil {
		t.Fatal(err)
	}
	want := []domain.Chunk{{Content: "Hel"}, {Content: "lo"}, {Content: " there"},
		{FinishReason: "stop", Usage: &domain.Usage{PromptTokens: 26, CompletionTokens: 3}}}
	if diff := cmp.Diff(want, f.Chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	if r := srv.LastRequest(); r["stream"] != true {
		t.Errorf("stream flag sent: %v; a chat is always streamed from Ollama", r["stream"])
	}
}

func TestDoneReasonLength(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	srv.DoneReason = "length"
	f := &backendtest.Frames{}
	if err := newClient(t, srv, time.Second).Chat(context.Background(), chat("m"), f); err != nil {
		t.Fatal(err)
	}
	if last := f.Chunks[len(f.Chunks)-1]; last.FinishReason != "length" {
		t.Fatalf("finish_reason %q, want length", last.FinishReason)
	}
}

func TestOllamaWords(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	c := newClient(t, srv, time.Second)
	var ue *domain.UpstreamError
	err := c.Chat(context.Background(), chat("missing"), &backendtest.Frames{})
	if !errors.As(err, &ue) || !ue.ModelMissing() || ue.Message != `model "missing" not found, try pulling it first` {
		t.Errorf("missing model: %#v", err)
	}
	srv.Set(func(s *ollamatest.Server) { s.Status, s.ErrorText = 500, "llama runner process has terminated" })
	err = c.Chat(context.Background(), chat("m"), &backendtest.Frames{})
	if !errors.As(err, &ue) || ue.Kind != domain.FailureServer || ue.Message != "llama runner process has terminated" || !ue.Unhealthy() {
		t.Errorf("500: %#v", err)
	}
}

// TestChoicesOneAfterTheOther checks n > 1: the request is translated (and
// its images loaded) once, the choices run one after the other, each with
// its own seed, and the usage adds the choices' completions up.
func TestChoicesOneAfterTheOther(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	srv.PromptEvalCount, srv.EvalCount = 10, 4
	loads := &countingLoader{}
	u, _ := url.Parse(srv.URL)
	c := ollama.New(upstream.Options{Name: "ollama", BaseURL: u, Timeouts: upstream.Timeouts{FirstByte: 5 * time.Second}}, ollama.Options{Images: loads})
	req := chat("m")
	req.N = 3
	seed := int64(7)
	req.Sampling.Seed = &seed
	req.Messages[0].Images = []*domain.Image{domain.NewImage("data:image/png;base64,iVBORw0KGgo=")}
	f := &backendtest.Frames{}
	if err := c.Chat(context.Background(), req, f); err != nil {
		t.Fatal(err)
	}
	// A second attempt with the same request (a fallback, another host)
	// does not load the image again either.
	if err := c.Chat(context.Background(), req, &backendtest.Frames{}); err != nil {
		t.Fatal(err)
	}
	if loads.n.Load() != 1 {
		t.Errorf("the image was loaded %d times, want once per request", loads.n.Load())
	}
	var seeds []float64
	for _, body := range srv.Requests()[:3] {
		var r struct {
			Options  map[string]any `json:"options"`
			Messages []struct {
				Images []string `json:"images"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, r.Options["seed"].(float64))
		if len(r.Messages[0].Images) != 1 || r.Messages[0].Images[0] != "iVBORw0KGgo=" {
			t.Errorf("images sent: %v", r.Messages[0].Images)
		}
	}
	if diff := cmp.Diff([]float64{7, 8, 9}, seeds); diff != "" {
		t.Errorf("seeds per choice (-want +got):\n%s", diff)
	}
	var usage *domain.Usage
	last := -1
	for _, ch := range f.Chunks {
		if ch.Index < last {
			t.Errorf("choice %d after choice %d: choices must run one after the other", ch.Index, last)
		}
		last = ch.Index
		if ch.Usage != nil {
			if usage != nil {
				t.Errorf("usage reported twice")
			}
			usage = ch.Usage
		}
	}
	if usage == nil || *usage != (domain.Usage{PromptTokens: 10, CompletionTokens: 12}) {
		t.Errorf("usage %+v, want the prompt once and the three completions added", usage)
	}
}

type countingLoader struct{ n atomic.Int32 }

func (l *countingLoader) Load(_ context.Context, url string) (string, error) {
	l.n.Add(1)
	return dataURLs{}.Load(context.Background(), url)
}

// TestArgumentsNotAnObject checks a history holding a tool call whose
// arguments are not a JSON object (cut short at the token cap, or an
// array) still goes to Ollama, whose API wants an object there.
func TestArgumentsNotAnObject(t *testing.T) {
	client := ollama.New(upstream.Options{}, ollama.Options{})
	for _, tc := range []struct{ args, want string }{
		{`{"city": "Par`, `{"raw_arguments":"{\"city\": \"Par"}`},
		{`[1, 2]`, `{"raw_arguments":"[1, 2]"}`},
		{`"Paris"`, `{"raw_arguments":"\"Paris\""}`},
		{``, `{}`},
		{` {"city":"Paris"} `, `{"city":"Paris"}`},
	} {
		req := chat("m")
		req.Messages = append(req.Messages,
			domain.Message{Role: "assistant", ToolCalls: []domain.ToolCall{{ID: "call_1", Name: "weather", Arguments: tc.args}}},
			domain.Message{Role: "tool", ToolCallID: "call_1", Content: "sunny"})
		body, err := client.Translate(context.Background(), req, true)
		if err != nil {
			t.Errorf("arguments %q refused: %v", tc.args, err)
			continue
		}
		got := string(body.Messages[1].ToolCalls[0].Function.Arguments)
		if got != tc.want {
			t.Errorf("arguments %q sent as %s, want %s", tc.args, got, tc.want)
		}
	}
}

func TestListModels(t *testing.T) {
	srv := ollamatest.New("qwen2.5:32b", "llama3.2:latest")
	t.Cleanup(srv.Close)
	got, err := newClient(t, srv, time.Second).ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 5, 10, 15, 6, 48, 0, time.UTC).Unix()
	want := []domain.Model{{ID: "qwen2.5:32b", Created: created, OwnedBy: "ollama"}, {ID: "llama3.2:latest", Created: created, OwnedBy: "ollama"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func ptr[T any](v T) *T { return &v }

// dataURLs is an ImageLoader for tests: it returns the base64 of a data: URL.
type dataURLs struct{}

func (dataURLs) Load(_ context.Context, url string) (string, error) {
	_, b64, ok := strings.Cut(url, ";base64,")
	if !ok {
		return "", errors.New("not a base64 data: URL")
	}
	return b64, nil
}

// TestExtrasOfTheWrongType checks Ollama's own settings, read from the
// client's body, are refused with the param named when mistyped.
func TestExtrasOfTheWrongType(t *testing.T) {
	client := ollama.New(upstream.Options{}, ollama.Options{})
	for _, tc := range []struct{ extra, param string }{
		{`"options":[1]`, "options"},
		{`"think":{}`, "think"},
		{`"keep_alive":true`, "keep_alive"},
	} {
		req := chat("m")
		req.Passthrough = wire.ChatBody(`{"model":"m","messages":[{"role":"user","content":"hi"}],` + tc.extra + `}`)
		_, err := client.Translate(context.Background(), req, true)
		var inv *domain.InvalidRequestError
		if !errors.As(err, &inv) || inv.Param != tc.param {
			t.Errorf("%s: %v, want an invalid request naming %q", tc.extra, err, tc.param)
		}
	}
}

// TestFinishedAnswersKeepTheirConnection: /api/chat and /api/generate
// streams read to their done line hand the connection back, so answers
// one after the other use one connection.
func TestFinishedAnswersKeepTheirConnection(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"a", "b", "c"}
	srv.EndDelay = 5 * time.Millisecond // the body ends after the last frame was read
	var dials backendtest.Dials
	u, _ := url.Parse(srv.URL)
	c := ollama.New(dials.Options(upstream.Options{Name: "ollama", BaseURL: u, Timeouts: upstream.Timeouts{FirstByte: 5 * time.Second}}), ollama.Options{})
	for range 3 {
		if err := c.Chat(context.Background(), chat("m"), &backendtest.Frames{}); err != nil {
			t.Fatal(err)
		}
		if err := c.Complete(context.Background(), text("go on"), &textFrames{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := dials.Count(); n != 1 {
		t.Errorf("6 answers one after the other opened %d connections, want 1", n)
	}
}
