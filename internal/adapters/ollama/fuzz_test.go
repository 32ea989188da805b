package ollama

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// FuzzNDJSON feeds arbitrary bytes as an /api/chat stream, under each way
// of reading it (plain, a forced tool, any required tool). The reader must
// not panic, must succeed only on a line saying done, and must only hand
// out well-formed chunks.
func FuzzNDJSON(f *testing.F) {
	f.Add([]byte(`{"message":{"role":"assistant","content":"Hi"},"done":false}`+"\n"+`{"message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"prompt_eval_count":1,"eval_count":1}`+"\n"), uint8(0))
	f.Add([]byte(`{"message":{"content":"","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},"done":true}`), uint8(0))
	f.Add([]byte(`{"message":{"content":"{\"a\":"},"done":false}`+"\n"+`{"message":{"content":"1}"},"done":true}`), uint8(1))
	f.Add([]byte(`{"message":{"content":"{\"name\":\"f\",\"arguments\":{}}"},"done":true}`), uint8(2))
	f.Add([]byte(`{"error":"model not found"}`), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		p := plan{force: forcing(mode % 3), forcedName: "f", single: mode&4 != 0}
		r := ndjsonReader{backend: "fuzz", plan: p, frame: func() {}, fail: func(err error) error { return err }}
		finished := false
		err := r.relay(bytes.NewReader(body), sinkFunc(func(c domain.Chunk) error {
			if finished {
				t.Fatal("a chunk after the finishing one")
			}
			finished = c.FinishReason != ""
			for _, tc := range c.ToolCalls {
				if tc.Index < 0 {
					t.Fatalf("negative tool call index %d", tc.Index)
				}
			}
			return nil
		}))
		if err == nil && !finished {
			t.Fatal("success without a finishing chunk")
		}
		var ue *domain.UpstreamError
		if err != nil && !errors.As(err, &ue) && err != io.ErrUnexpectedEOF && err != upstream.ErrLineTooLong {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}

// FuzzFastLine holds the fast path to encoding/json: whatever line it
// accepts, the full decoder must read the same way.
func FuzzFastLine(f *testing.F) {
	for _, seed := range []string{
		`{"model":"qwen2.5:32b","created_at":"2026-11-26T08:52:19.385406455Z","message":{"role":"assistant","content":"Hi \u00e9\n"},"done":false}`,
		`{"message":{"role":"assistant","content":"","thinking":"hmm"},"done":false,"x":[1,{"y":null}]}`,
		`{"Message":{"content":"a"},"done":false}`,
		`{"message":{"content":"\ud800x"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var s jsonscan.Scanner
		var fast chatResponse
		if !fastLine(&s, line, &fast) {
			return
		}
		var slow chatResponse
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", line, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", line, fast, slow)
		}
	})
}
