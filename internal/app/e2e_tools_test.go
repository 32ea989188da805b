package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
)

// recorded is an upstream that answers chat requests with a recording from
// internal/adapters/httpapi/testdata/replay/<name>: upstream.json for
// buffered requests, upstream.stream.* for streams. It keeps the bodies it
// received. It speaks Ollama's paths or OpenAI's, per protocol.
type recorded struct {
	dir, protocol string
	mu            sync.Mutex
	bodies        [][]byte
}

func newRecorded(t *testing.T, name, protocol string) (*recorded, string) {
	t.Helper()
	r := &recorded{dir: filepath.Join("..", "adapters", "httpapi", "testdata", "replay", name), protocol: protocol}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *recorded) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/api/tags":
		io.WriteString(w, `{"models":[{"name":"qwen2.5:32b","model":"qwen2.5:32b","modified_at":"2025-05-10T08:06:48Z"}]}`)
		return
	case "/v1/models":
		io.WriteString(w, `{"object":"list","data":[{"id":"qwen2.5:32b","object":"model","created":1,"owned_by":"gw"}]}`)
		return
	}
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.mu.Unlock()
	var m struct {
		Stream *bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &m)
	file, ctype := "upstream.json", "application/json"
	if m.Stream != nil && *m.Stream {
		file, ctype = "upstream.stream.ndjson", "application/x-ndjson"
		if r.protocol == "openai" {
			file, ctype = "upstream.stream.sse", "text/event-stream"
		}
	}
	data, err := os.ReadFile(filepath.Join(r.dir, file))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(data)
}

func (r *recorded) last() map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var m map[string]any
	_ = json.Unmarshal(r.bodies[len(r.bodies)-1], &m)
	return m
}

var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:       "get_weather",
	Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
})

type call struct{ Name, Arguments string }

// TestStreamedToolCallsRebuiltByTheSDKEqualTheBufferedAnswer streams two
// parallel tool calls through the SDK's accumulator and compares the
// rebuilt calls with the buffered answer, for both protocols.
func TestStreamedToolCallsRebuiltByTheSDKEqualTheBufferedAnswer(t *testing.T) {
	for _, tc := range []struct{ name, protocol string }{
		{"ollama_parallel_tools", "ollama"},
		{"gateway_parallel_tools", "openai"},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			_, url := newRecorded(t, tc.name, tc.protocol)
			cfg := testConfig("", url)
			if tc.protocol == "openai" {
				cfg = testConfig(url, "")
			}
			r := startApp(t, cfg)
			client := sdkClient(t, r)
			params := openai.ChatCompletionNewParams{
				Model:    "gpt-4",
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris and Rome?")},
				Tools:    []openai.ChatCompletionToolUnionParam{weatherTool},
			}
			buffered, err := client.Chat.Completions.New(context.Background(), params)
			if err != nil {
				t.Fatal(err)
			}
			stream := client.Chat.Completions.NewStreaming(context.Background(), params)
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			calls := func(c openai.ChatCompletion) (out []call, ids []string) {
				for _, tc := range c.Choices[0].Message.ToolCalls {
					out = append(out, call{tc.Function.Name, tc.Function.Arguments})
					ids = append(ids, tc.ID)
				}
				return out, ids
			}
			want, wantIDs := calls(*buffered)
			got, gotIDs := calls(acc.ChatCompletion)
			if len(want) != 2 {
				t.Fatalf("buffered answer has %d tool calls, want 2", len(want))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("streamed calls rebuilt by the SDK differ from the buffered ones (-buffered +streamed):\n%s", diff)
			}
			if gotIDs[0] == "" || gotIDs[0] == gotIDs[1] || wantIDs[0] == wantIDs[1] {
				t.Errorf("call ids must be present and distinct: buffered %v, streamed %v", wantIDs, gotIDs)
			}
			for _, c := range []openai.ChatCompletion{*buffered, acc.ChatCompletion} {
				if fr := c.Choices[0].FinishReason; fr != "tool_calls" {
					t.Errorf("finish_reason %q", fr)
				}
			}
		})
	}
}

// TestNativeFormsReachOllama checks the bytes the Ollama host receives for
// a json_schema request and an image request sent through the SDK.
func TestNativeFormsReachOllama(t *testing.T) {
	up, url := newRecorded(t, "ollama_json_schema", "ollama")
	r := startApp(t, testConfig("", url))
	client := sdkClient(t, r)
	schema := map[string]any{
		"type":       "object",
		"properties": map[string]any{"age": map[string]any{"type": "integer"}},
		"required":   []any{"age"},
	}
	_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-4",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Ollama is 22")},
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "person", Schema: schema},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(schema, up.last()["format"]); diff != "" {
		t.Errorf("format sent to Ollama (-want +got):\n%s", diff)
	}

	const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	_, err = client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("What is this?"),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64," + png}),
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := up.last()["messages"].([]any)
	want := map[string]any{"role": "user", "content": "What is this?", "images": []any{png}}
	if diff := cmp.Diff(want, msgs[0]); diff != "" {
		t.Errorf("image message sent to Ollama (-want +got):\n%s", diff)
	}
}
