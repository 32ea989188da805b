package gateway

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

// FuzzSSE feeds arbitrary bytes as an upstream event stream. Whatever
// arrives, the reader must not panic, must end with either success (only
// after a [DONE]) or an error, and must only hand out well-formed chunks.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}\n\n"))
	f.Add([]byte(": ping\n\nevent: x\ndata: {\"error\":{\"message\":\"boom\"}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := sseReader{backend: "fuzz", frame: func() {}, fail: func(err error) error { return err }}
		err := r.relay(bytes.NewReader(body), sinkFunc(func(c domain.Chunk) error {
			if c.Index < 0 {
				t.Fatalf("negative choice index %d", c.Index)
			}
			for _, tc := range c.ToolCalls {
				if tc.Index < 0 {
					t.Fatalf("negative tool call index %d", tc.Index)
				}
			}
			return nil
		}))
		if err == nil && !bytes.Contains(body, doneMarker) {
			t.Fatal("a stream without [DONE] was taken as complete")
		}
		var ue *domain.UpstreamError
		if err != nil && !errors.As(err, &ue) && err != io.ErrUnexpectedEOF && err != upstream.ErrLineTooLong {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}

// FuzzFastFrame holds the fast path to encoding/json: whatever frame it
// accepts, the full decoder must read as the same chunk.
func FuzzFastFrame(f *testing.F) {
	for _, seed := range []string{
		`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi \u00e9\ud83d\ude00 \n"},"logprobs":null,"finish_reason":null}]}`,
		`{"choices":[{"index":0,"delta":{"reasoning_content":"think","reasoning":"x"},"finish_reason":"stop"}],"usage":null}`,
		`{"choices":[{"index":2,"delta":{},"finish_reason":"function_call"}]}`,
		`{"Choices":[{"index":0,"delta":{"content":"a"}}]}`,
		`{"choices":[{"index":0,"delta":{"content":"\ud800"}}],"x":[1.5e3,-0,{"a":[true,false,null]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var s jsonscan.Scanner
		fast, ok := fastFrame(&s, payload)
		if !ok {
			return
		}
		var w chunkWire
		if err := json.Unmarshal(payload, &w); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", payload, err)
		}
		r := sseReader{backend: "fuzz", frame: func() {}, fail: func(err error) error { return err }}
		var slow []domain.Chunk
		if err := r.frameOf(&w, sinkFunc(func(c domain.Chunk) error { slow = append(slow, c); return nil })); err != nil {
			t.Fatalf("slow path failed on %q: %v", payload, err)
		}
		if len(slow) != 1 || !reflect.DeepEqual(slow[0], fast) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", payload, fast, slow)
		}
	})
}

// FuzzTextSSE is FuzzSSE for text completion streams.
func FuzzTextSSE(f *testing.F) {
	f.Add([]byte("data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"choices\":[{\"text\":\"hi\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}],\"model\":\"m\"}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"text\":\"a\",\"index\":1,\"logprobs\":{\"tokens\":[\"a\"],\"token_logprobs\":[null],\"top_logprobs\":[{\"a\":-1,\"b\":-2}],\"text_offset\":[0]},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n"))
	f.Add([]byte(": ping\n\ndata: {\"error\":{\"message\":\"boom\"}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		const choices = 4
		r := sseReader{backend: "fuzz", frame: func() {}, fail: func(err error) error { return err }}
		err := r.relayText(bytes.NewReader(body), textSinkFunc(func(c domain.TextChunk) error {
			if c.Index < 0 || c.Index >= choices {
				t.Fatalf("choice index %d of %d", c.Index, choices)
			}
			for _, lp := range c.Logprobs {
				for i := 1; i < len(lp.Top); i++ {
					if lp.Top[i].Logprob > lp.Top[i-1].Logprob {
						t.Fatalf("alternatives not most likely first: %+v", lp.Top)
					}
				}
			}
			return nil
		}), choices)
		if err == nil && !bytes.Contains(body, doneMarker) {
			t.Fatal("a stream without [DONE] was taken as complete")
		}
		var ue *domain.UpstreamError
		if err != nil && !errors.As(err, &ue) && err != io.ErrUnexpectedEOF && err != upstream.ErrLineTooLong {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}

// FuzzFastTextFrame holds the text fast path to encoding/json, as
// FuzzFastFrame does chat's.
func FuzzFastTextFrame(f *testing.F) {
	for _, seed := range []string{
		`{"id":"cmpl-x","object":"text_completion","created":1,"choices":[{"text":"Hi \u00e9\ud83d\ude00 \n","index":0,"logprobs":null,"finish_reason":null}],"model":"m"}`,
		`{"choices":[{"index":3,"text":"","finish_reason":"length","stop_reason":null}],"usage":null}`,
		`{"choices":[{"index":1,"text":"a","text":null,"finish_reason":"stop","finish_reason":null}]}`,
		`{"choices":[{"index":0,"Text":"a"}]}`,
		`{"Choices":[{"index":0,"text":"a"}]}`,
		`{"choices":[{"index":4,"text":"a"}]}`,
		`{"choices":[{"text":"\ud800","index":0}],"x":[1.5e3,-0,{"a":[true,false,null]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		const choices = 4
		var s jsonscan.Scanner
		fast, ok := fastTextFrame(&s, payload, choices)
		if !ok {
			return
		}
		var w textChunkWire
		if err := json.Unmarshal(payload, &w); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", payload, err)
		}
		r := sseReader{backend: "fuzz", frame: func() {}, fail: func(err error) error { return err }}
		var slow []domain.TextChunk
		if err := r.textFrameOf(&w, textSinkFunc(func(c domain.TextChunk) error { slow = append(slow, c); return nil }), choices); err != nil {
			t.Fatalf("slow path failed on %q: %v", payload, err)
		}
		if len(slow) != 1 || !reflect.DeepEqual(slow[0], fast) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", payload, fast, slow)
		}
	})
}

// textSinkFunc is a ports.Sink of text chunks that hands each to a function.
type textSinkFunc func(domain.TextChunk) error

func (f textSinkFunc) Send(c domain.TextChunk) error { return f(c) }
func (f textSinkFunc) Flush() error                  { return nil }
