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
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
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
		"reasoning_effort",
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
		})
	}
}

func newClient(t *testing.T, srv *ollamatest.Server, timeout time.Duration) *ollama.Client {
	u, _ := url.Parse(srv.URL)
	return ollama.New(upstream.Options{Name: "ollama", BaseURL: u, AgentID: "agent-7", Timeouts: upstream.Timeouts{FirstByte: timeout}}, ollama.Options{})
}

func chat(model string) domain.ChatRequest {
	return domain.ChatRequest{Model: model, Messages: []domain.Message{{Role: "user", Content: "hi"}}}
}

func TestCompleteAndStream(t *testing.T) {
	srv := ollamatest.New("qwen2.5:32b")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"Hel", "lo", " there"}
	srv.PromptEvalCount, srv.EvalCount = 26, 3
	c := newClient(t, srv, 5*time.Second)

	got, err := c.Complete(context.Background(), chat("qwen2.5:32b"))
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Completion{Choices: []domain.Choice{{Content: ptr("Hello there"), FinishReason: "stop"}}, Usage: &domain.Usage{PromptTokens: 26, CompletionTokens: 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("complete (-want +got):\n%s", diff)
	}

	var chunks []domain.Chunk
	err = c.Stream(context.Background(), chat("qwen2.5:32b"), func(ch domain.Chunk) error {
		chunks = append(chunks, ch)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantChunks := []domain.Chunk{{Content: "Hel"}, {Content: "lo"}, {Content: " there"},
		{FinishReason: "stop", Usage: &domain.Usage{PromptTokens: 26, CompletionTokens: 3}}}
	if diff := cmp.Diff(wantChunks, chunks); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if r := srv.LastRequest(); r["stream"] != true {
		t.Errorf("stream flag sent: %v", r["stream"])
	}
}

func TestDoneReasonLength(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	srv.DoneReason = "length"
	got, err := newClient(t, srv, time.Second).Complete(context.Background(), chat("m"))
	if err != nil || got.Choices[0].FinishReason != "length" {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestErrors(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	c := newClient(t, srv, 200*time.Millisecond)

	_, err := c.Complete(context.Background(), chat("missing"))
	var ue *domain.UpstreamError
	if !errors.As(err, &ue) || !ue.ModelMissing() || ue.Message != `model "missing" not found, try pulling it first` {
		t.Errorf("missing model: %#v", err)
	}

	srv.Set(func(s *ollamatest.Server) { s.Status, s.ErrorText = 500, "llama runner process has terminated" })
	_, err = c.Complete(context.Background(), chat("m"))
	if !errors.As(err, &ue) || ue.Status != 500 || ue.Message != "llama runner process has terminated" || !ue.Retryable() {
		t.Errorf("500: %#v", err)
	}

	srv.Set(func(s *ollamatest.Server) { s.Status, s.Hang = 0, true })
	err = c.Stream(context.Background(), chat("m"), func(domain.Chunk) error { return nil })
	if !errors.As(err, &ue) || ue.Kind != domain.FailureTimeout {
		t.Errorf("hang: %#v", err)
	}
	srv.Set(func(s *ollamatest.Server) { s.Hang, s.BreakAfter = false, 1 })
	n := 0
	err = c.Stream(context.Background(), chat("m"), func(domain.Chunk) error { n++; return nil })
	if !errors.As(err, &ue) || n != 1 {
		t.Errorf("broken stream after %d chunks: %#v", n, err)
	}

	srv.Close()
	_, err = c.Complete(context.Background(), chat("m"))
	if !errors.As(err, &ue) || ue.Kind != domain.FailureUnreachable {
		t.Errorf("down: %#v", err)
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

func TestRequestHeaders(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	ctx := domain.WithRequestID(context.Background(), "req-1")
	if _, err := newClient(t, srv, time.Second).Complete(ctx, chat("m")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(srv.Requests()[0], []byte(`"stream":false`)) {
		t.Errorf("buffered request must say stream false: %s", srv.Requests()[0])
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
