package ollama

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"

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
		r := ndjsonReader{backend: "fuzz", plan: p, call: nopCall{}}
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
	for _, seed := range fastLineSeeds {
		f.Add([]byte(seed))
	}
	f.Add([]byte(`{"message":{"role":"assistant","content":"","thinking":"hmm"},"done":false,"x":[1,{"y":null}]}`))
	f.Add([]byte(`{"Message":{"content":"a"},"done":false}`))
	f.Add([]byte(`{"message":{"content":"\ud800x"}}`))
	f.Add([]byte(`{"message":{"content":"a","content":null},"message":{"thinking":"b"},"done":null}`))
	f.Add([]byte(`{"message":{"content":"a","tool_calls":[]},"done":false}`))
	f.Add([]byte(`{"message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":1,"prompt_eval_count":3,"eval_count":2,"eval_duration":7}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var s lineScan
		var fast chatResponse
		if !s.chat(line, &fast) {
			return
		}
		var slow chatResponse
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", line, err)
		}
		slow.lps, slow.Logprobs = tokenLogprobs(slow.Logprobs), nil
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", line, fast, slow)
		}
	})
}

// fastLineSeeds are lines of both streams, with log probabilities in every
// shape the fast path reads or refuses: the seeds of both fast-path fuzz
// targets, each reading them as its own kind of line.
var fastLineSeeds = []string{
	`{"model":"qwen2.5:32b","created_at":"2026-11-26T08:52:19.385406455Z","message":{"role":"assistant","content":"Hi \u00e9\n"},"done":false}`,
	`{"model":"m","created_at":"2026-11-26T08:52:19.385406455Z","response":"Hi \u00e9\n","done":false}`,
	`{"model":"m","created_at":"2026-11-26T08:52:19.385406455Z","message":{"role":"assistant","content":"Hi"},"done":false,"logprobs":[{"token":"Hi","logprob":-0.125,"bytes":[72,105],"top_logprobs":[{"token":"Hi","logprob":-0.125,"bytes":[72,105]}]}]}`,
	`{"response":"Hi","done":false,"logprobs":[{"token":"Hi","logprob":-0.125,"bytes":[72,105],"top_logprobs":[{"token":"Hi","logprob":-0.125,"bytes":[72,105]},{"token":"\u00e9","logprob":-2.5e-3,"bytes":[195,169]}]},{"token":"","logprob":0}]}`,
	`{"message":{"content":"a"},"done":false,"LogProbs":[{"token":"a","logprob":-1}]}`,
	`{"response":"a","done":false,"Logprobs":[{"token":"a","logprob":-1}]}`,
	`{"message":{"content":"a"},"logprobs":null,"done":false}`,
	`{"response":"a","logprobs":[],"done":false}`,
	`{"response":"a","logprobs":[{"token":"a","bytes":[],"top_logprobs":[]},{"token":null,"logprob":null,"bytes":null,"top_logprobs":null}],"done":false}`,
	`{"response":"a","logprobs":[{"token":"a","bytes":[1],"bytes":[300,2]},{"Token":"b"}],"done":false}`,
	`{"response":"a","logprobs":[{"token":"a","top_logprobs":[{"token":"b","top_logprobs":[1],"Top_logprobs":2,"x":{}}]}]}`,
	`{"response":"a","logprobs":[{"token":"a","top_logprobs":[{"token":"b"}],"top_logprobs":[{"logprob":-1}]}]}`,
	`{"response":"a","logprobs":[{"token":"a"}],"logprobs":null}`,
	`{"response":"a","logprobs":[{"token":"a","logprob":1e400}]}`,
	`{"response":"a","logprobs":[{"token":"a","bytes":[-1,1.5]}]}`,
	`{"response":"a","logprobs":[null]}`,
	`{"response":"","done":true,"done_reason":"length","context":[1,2,3],"prompt_eval_count":null,"eval_count":16,"Eval_count":3}`,
	`{"response":"a","thinking":7,"done":false}`,
	`{"response":"a","error":null}`,
}

// FuzzFastGenerate holds the /api/generate fast path to encoding/json as
// FuzzFastLine does /api/chat's.
func FuzzFastGenerate(f *testing.F) {
	for _, seed := range fastLineSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var s lineScan
		var fast generateResponse
		if !s.generate(line, &fast) {
			return
		}
		var slow generateResponse
		if err := json.Unmarshal(line, &slow); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", line, err)
		}
		slow.lps, slow.Logprobs = tokenLogprobs(slow.Logprobs), nil
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
		r := generateReader{backend: "fuzz", call: nopCall{}}
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
		r := generateReader{backend: "ollama", where: "POST /api/generate", call: nopCall{}}
		err := r.relay(bytes.NewReader([]byte(tc.body)), textSinkFunc(func(domain.TextChunk) error { return nil }))
		var ue *domain.UpstreamError
		if !errors.As(err, &ue) || ue.Kind != tc.kind || (tc.message != "" && ue.Message != tc.message) {
			t.Errorf("%q: %v, want %v", tc.body, err, tc.kind)
		}
	}
	r := generateReader{backend: "ollama", call: nopCall{}}
	if err := r.relay(bytes.NewReader([]byte(`{"response":"a","done":false}`)), textSinkFunc(func(domain.TextChunk) error { return nil })); err != io.ErrUnexpectedEOF {
		t.Errorf("a stream cut before done: %v", err)
	}
}

// textSinkFunc is a ports.Sink of text chunks that hands each to a function.
type textSinkFunc func(domain.TextChunk) error

func (f textSinkFunc) Send(c domain.TextChunk) error { return f(c) }
func (f textSinkFunc) Flush() error                  { return nil }

// FuzzFastEmbed holds /api/embed's fast path to encoding/json: whatever
// answer it accepts, the full decoder must read the same way.
func FuzzFastEmbed(f *testing.F) {
	for _, seed := range []string{
		`{"model":"nomic-embed-text:latest","embeddings":[[-0.0069292835,0.036,1e-45],[0.5,-1,0]],"total_duration":41822417,"load_duration":3276958,"prompt_eval_count":150}`,
		`{"embeddings":[[]],"prompt_eval_count":null}`,
		`{"embeddings":[[1]],"Prompt_eval_count":3}`,
		`{"embeddings":[null,[1]]}`,
		`{"embeddings":[[1e39]]}`,
		`{"embeddings":[[1]],"embeddings":[[2]]}`,
		"{\n \"embeddings\": [ [ 0.25 , -2 ] ],\n \"prompt_eval_count\": 2\n}",
	} {
		f.Add([]byte(seed), uint8(2))
	}
	f.Fuzz(func(t *testing.T, answer []byte, inputs uint8) {
		var fast embedResponse
		if !fast.fastDecode(answer, int(inputs)) {
			return
		}
		var slow embedResponse
		if err := json.Unmarshal(answer, &slow); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", answer, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", answer, fast, slow)
		}
	})
}
