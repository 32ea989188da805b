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
