package openaispec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoad runs first (source order) so it measures the one-time load.
func TestLoad(t *testing.T) {
	start := time.Now()
	if err := Validate("Model", []byte(`{"id":"m","object":"model","created":1,"owned_by":"o"}`)); err != nil {
		t.Fatal(err)
	}
	t.Logf("spec %s: first Validate %v (load %v)", specPath, time.Since(start), loadDuration)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		schema  string
		json    string
		wantErr string // substring of the error; "" means valid
	}{
		{
			name:   "chat completion with usage",
			schema: "CreateChatCompletionResponse",
			json: `{
				"id": "chatcmpl-123", "object": "chat.completion", "created": 1700000000,
				"model": "gpt-4o",
				"choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
					"message": {"role": "assistant", "content": "Hello!", "refusal": null}}],
				"usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
			}`,
		},
		{
			name:   "stream chunk with null finish_reason",
			schema: "CreateChatCompletionStreamResponse",
			json: `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",
				"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		},
		{
			name:   "stream chunk with stop",
			schema: "CreateChatCompletionStreamResponse",
			json: `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",
				"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`,
		},
		{
			name:   "usage-only chunk",
			schema: "CreateChatCompletionStreamResponse",
			json: `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",
				"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`,
		},
		{
			name:   "error response",
			schema: "ErrorResponse",
			json:   `{"error":{"message":"x","type":"invalid_request_error","param":null,"code":null}}`,
		},
		{
			name:   "model list",
			schema: "ListModelsResponse",
			json: `{"object":"list","data":[
				{"id":"gpt-4o","object":"model","created":1686935002,"owned_by":"openai"},
				{"id":"llama3","object":"model","created":0,"owned_by":"library"}]}`,
		},
		{
			name:   "model",
			schema: "Model",
			json:   `{"id":"gpt-4o","object":"model","created":1686935002,"owned_by":"openai"}`,
		},
		{
			name:   "chat request",
			schema: "CreateChatCompletionRequest",
			json: `{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],
				"stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"max_tokens":null}`,
		},

		{
			name:   "completion missing created",
			schema: "CreateChatCompletionResponse",
			json: `{"id":"chatcmpl-123","object":"chat.completion","model":"gpt-4o",
				"choices":[{"index":0,"finish_reason":"stop","logprobs":null,
					"message":{"role":"assistant","content":"Hello!","refusal":null}}]}`,
			wantErr: "created",
		},
		{
			name:   "chunk with bogus finish_reason",
			schema: "CreateChatCompletionStreamResponse",
			json: `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",
				"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"bogus"}]}`,
			wantErr: "finish_reason",
		},
		{
			name:    "error without param",
			schema:  "ErrorResponse",
			json:    `{"error":{"message":"x","type":"invalid_request_error","code":null}}`,
			wantErr: "param",
		},
		{
			name:    "model missing owned_by",
			schema:  "Model",
			json:    `{"id":"gpt-4o","object":"model","created":1686935002}`,
			wantErr: "owned_by",
		},
		{
			name:    "model list with bad object",
			schema:  "ListModelsResponse",
			json:    `{"object":"lists","data":[]}`,
			wantErr: "object",
		},
		{
			name:    "usage must not be a string",
			schema:  "CreateChatCompletionStreamResponse",
			json:    `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":"x"}`,
			wantErr: "usage",
		},
		{
			name:    "trailing data",
			schema:  "Model",
			json:    `{"id":"a","object":"model","created":1,"owned_by":"o"} {}`,
			wantErr: "invalid JSON",
		},
		{
			name:    "unknown schema",
			schema:  "NoSuchSchema",
			json:    `{}`,
			wantErr: `no schema "NoSuchSchema"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.schema, []byte(tc.json))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want valid, got: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("want error containing %q, got nil", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("want error containing %q, got: %v", tc.wantErr, err)
			}
			if tc.wantErr == "" {
				Must(t, tc.schema, []byte(tc.json))
			} else {
				t.Logf("error (expected): %v", err)
			}
		})
	}
}

// TestAllSchemasCompile guards the OpenAPI -> JSON Schema translation against
// spec updates: every components.schemas entry must compile.
func TestAllSchemasCompile(t *testing.T) {
	if _, err := compiled("Model"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	names := make([]string, 0, len(defs))
	for name := range defs {
		names = append(names, name)
	}
	mu.Unlock()
	for _, name := range names {
		if _, err := compiled(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	t.Logf("%d schemas compiled", len(names))
}

// TestConvertSchema checks the OpenAPI 3.0 -> JSON Schema translations.
func TestConvertSchema(t *testing.T) {
	in := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"fr":   map[string]any{"type": "string", "enum": []any{"stop"}, "nullable": true},
			"ref":  map[string]any{"$ref": "#/components/schemas/X", "nullable": true},
			"all":  map[string]any{"allOf": []any{map[string]any{"$ref": "#/components/schemas/Y"}, map[string]any{"nullable": true}}},
			"num":  map[string]any{"type": "number", "minimum": 0, "exclusiveMinimum": true},
			"rec":  map[string]any{"$recursiveRef": "#"},
			"plai": map[string]any{"type": "string", "x-foo": 1, "example": "e", "description": "d"},
		},
	}
	out := convertSchema(in, "Comp").(map[string]any)
	props := out["properties"].(map[string]any)
	fr := props["fr"].(map[string]any)
	if got := fr["type"].([]any); len(got) != 2 || got[1] != "null" {
		t.Errorf("fr type = %v", fr["type"])
	}
	if got := fr["enum"].([]any); len(got) != 2 || got[1] != nil {
		t.Errorf("fr enum = %v", fr["enum"])
	}
	ref := props["ref"].(map[string]any)["anyOf"].([]any)
	if ref[1].(map[string]any)["$ref"] != "#/$defs/X" {
		t.Errorf("ref = %v", ref)
	}
	all := props["all"].(map[string]any)["anyOf"].([]any)
	if len(all[1].(map[string]any)["allOf"].([]any)) != 1 {
		t.Errorf("all = %v", all)
	}
	num := props["num"].(map[string]any)
	if _, ok := num["minimum"]; ok || num["exclusiveMinimum"] != 0 {
		t.Errorf("num = %v", num)
	}
	if props["rec"].(map[string]any)["$ref"] != "#/$defs/Comp" {
		t.Errorf("rec = %v", props["rec"])
	}
	if p := props["plai"].(map[string]any); len(p) != 1 {
		t.Errorf("plai = %v", p)
	}
}

// TestConcurrent exercises the cache from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range []string{"Model", "ErrorResponse", "ListModelsResponse"} {
				_ = Validate(s, []byte(`{}`))
			}
		}()
	}
	wg.Wait()
}

// TestMustFailsWithoutSpec re-runs this test binary with OPENAI_OPENAPI_SPEC
// pointing at a missing file and checks that Must fails the test (no skip).
func TestMustFailsWithoutSpec(t *testing.T) {
	if os.Getenv("OPENAISPEC_CHILD") == "1" {
		Must(t, "Model", []byte(`{"id":"m"}`))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMustFailsWithoutSpec$", "-test.v")
	cmd.Env = append(os.Environ(), "OPENAISPEC_CHILD=1", envSpecPath+"=/nonexistent/openai-openapi.yaml")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child should exit non-zero, err=%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- FAIL: TestMustFailsWithoutSpec") ||
		!strings.Contains(string(out), envSpecPath) || strings.Contains(string(out), "SKIP") {
		t.Fatalf("unexpected child output:\n%s", out)
	}
}

// TestEmbeddedSpecIsVendoredCopy pins the vendored document: the checksum in
// spec/README.md's instructions and this test change together on an update.
func TestEmbeddedSpecIsVendoredCopy(t *testing.T) {
	const want = "db5d7478feae10b4d331834c60d9765a8aa042e38419f9b1694288c11aa8ebc8"
	sum := sha256.Sum256(embedded)
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("spec/openai-openapi.yaml sha256 %s, want %s (update the test and spec/README.md together)", got, want)
	}
	if !bytes.Contains(embedded[:200], []byte("version: 2.3.0")) {
		t.Fatalf("spec/openai-openapi.yaml is not info.version 2.3.0, which spec/README.md names")
	}
}
