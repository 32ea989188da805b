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
	f.Add([]byte(`{"message":{"role":"assistant","content":"Hi"},"done":false,"logprobs":[{"token":"Hi","logprob":-0.125,"bytes":[72,105],"top_logprobs":[{"token":"Hi","logprob":-0.125,"bytes":[72,105]},{"token":"alt1","logprob":-1.125,"bytes":[97,108,116,49]}]}]}`+"\n"+
		`{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","logprobs":[{"token":"","logprob":0}]}`), uint8(0))
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
		// A line with log probabilities is the slow path's, in any spelling.
		`{"model":"m","created_at":"2026-11-26T08:52:19.385406455Z","message":{"role":"assistant","content":"Hi"},"done":false,"logprobs":[{"token":"Hi","logprob":-0.125,"bytes":[72,105],"top_logprobs":[{"token":"Hi","logprob":-0.125,"bytes":[72,105]}]}]}`,
		`{"message":{"content":"a"},"done":false,"LogProbs":[{"token":"a","logprob":-1}]}`,
		`{"message":{"content":"a"},"logprobs":null,"done":false}`,
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

// FuzzGenerate feeds arbitrary bytes as an /api/generate stream. The reader
// must not panic, must succeed only on a line saying done, and must send
// nothing after the finishing chunk.
func FuzzGenerate(f *testing.F) {
	f.Add([]byte(`{"model":"m","created_at":"2026-11-26T08:52:19.385406455Z","response":"Hi","done":false}` + "\n" +
		`{"model":"m","created_at":"2026-11-26T08:52:19.385406455Z","response":"","done":true,"done_reason":"stop","total_duration":1,"prompt_eval_count":3,"eval_count":1}` + "\n"))
	f.Add([]byte(`{"response":"","thinking":"hmm","done":false}` + "\n" + `{"response":"a","done":false,"logprobs":[{"token":"a","logprob":-1,"bytes":[97]}]}` + "\n" + `{"done":true,"done_reason":"length"}`))
	f.Add([]byte(`{"response":"a","done":false}` + "\n" + `{"error":"llama runner process has terminated"}` + "\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := generateReader{backend: "fuzz", frame: func() {}, fail: func(err error) error { return err }}
		finished := false
		err := r.relay(bytes.NewReader(body), textSinkFunc(func(c domain.TextChunk) error {
			if finished {
				t.Fatal("a chunk after the finishing one")
			}
			finished = c.FinishReason != ""
			if finished != (c.Usage != nil) {
				t.Fatalf("chunk %+v: the usage comes with the finishing chunk, and only then", c)
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

// TestGenerateStreamFailures checks how an /api/generate stream fails: an
// error line is the host failing (a server error, Ollama's words kept), an
// unreadable line a protocol error, a stream cut before done an error too.
func TestGenerateStreamFailures(t *testing.T) {
	for _, tc := range []struct {
		body, message string
		kind          domain.FailureKind
	}{
		{`{"response":"a","done":false}` + "\n" + `{"error":"llama runner process has terminated"}` + "\n", "llama runner process has terminated", domain.FailureServer},
		{`{"response":"a","done":false}` + "\n" + `<html>` + "\n", "", domain.FailureProtocol},
	} {
		r := generateReader{backend: "ollama", where: "POST /api/generate", frame: func() {}, fail: func(err error) error { return err }}
		err := r.relay(bytes.NewReader([]byte(tc.body)), textSinkFunc(func(domain.TextChunk) error { return nil }))
		var ue *domain.UpstreamError
		if !errors.As(err, &ue) || ue.Kind != tc.kind || (tc.message != "" && ue.Message != tc.message) {
			t.Errorf("%q: %v, want %v", tc.body, err, tc.kind)
		}
	}
	r := generateReader{backend: "ollama", frame: func() {}, fail: func(err error) error { return err }}
	if err := r.relay(bytes.NewReader([]byte(`{"response":"a","done":false}`)), textSinkFunc(func(domain.TextChunk) error { return nil })); err != io.ErrUnexpectedEOF {
		t.Errorf("a stream cut before done: %v", err)
	}
}

// textSinkFunc is a ports.Sink of text chunks that hands each to a function.
type textSinkFunc func(domain.TextChunk) error

func (f textSinkFunc) Send(c domain.TextChunk) error { return f(c) }
func (f textSinkFunc) Flush() error                  { return nil }
