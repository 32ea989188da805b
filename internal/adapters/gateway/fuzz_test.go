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

// FuzzResponsesSSE feeds arbitrary bytes as a Responses API event stream.
// Whatever arrives, the reader must not panic; it succeeds only on a
// terminal event (response.completed or response.incomplete), whose chunk
// is the last and the only one with a finish reason; every chunk is of
// choice 0, and function calls are numbered 0, 1, 2… each with an id.
func FuzzResponsesSSE(f *testing.F) {
	f.Add([]byte(sseEvents(evCreated, evInProgress, evMsgAdded, evPartAdded, textDelta("Hi"), evTextDone, evMsgDone, evDone)))
	f.Add([]byte(sseEvents(callDone(0, "fc_1", "call_a", "f", `{"a":1}`), callDone(1, "fc_2", "", "g", `{}`), evDone)))
	f.Add([]byte(sseEvents(`{"type":"response.reasoning_summary_text.delta","delta":"\ud83d\ude00"}`,
		`{"type":"response.incomplete","response":{"incomplete_details":{"reason":"content_filter"}}}`)))
	f.Add([]byte(sseEvents(`{"type":"response.failed","response":{"error":{"code":"rate_limit_exceeded","message":"m"}}}`)))
	f.Add([]byte(": ping\n\nevent: error\ndata: {\"type\":\"error\",\"code\":null,\"message\":\"boom\"}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"type\":\"response.output_text.delta\",\"Delta\":\"x\",\"delta\":null}\n\ndata: {\"error\":{\"message\":\"e\"}}\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := responsesReader{backend: "fuzz", event: func() {}, fail: func(err error) error { return err }}
		var got []domain.Chunk
		err := r.relay(bytes.NewReader(body), sinkFunc(func(c domain.Chunk) error {
			got = append(got, c)
			return nil
		}))
		calls := 0
		for i, c := range got {
			if c.Index != 0 {
				t.Fatalf("chunk of choice %d", c.Index)
			}
			if c.FinishReason != "" && (i != len(got)-1 || err != nil) {
				t.Fatalf("finish reason %q on chunk %d of %d (error %v)", c.FinishReason, i, len(got), err)
			}
			for _, tc := range c.ToolCalls {
				if tc.Index != calls || tc.ID == "" {
					t.Fatalf("call %+v, want index %d with an id", tc, calls)
				}
				calls++
			}
		}
		if err == nil && (len(got) == 0 || got[len(got)-1].FinishReason == "") {
			t.Fatal("a stream without a terminal event was taken as complete")
		}
		var ue *domain.UpstreamError
		if err != nil && !errors.As(err, &ue) && err != io.ErrUnexpectedEOF && err != upstream.ErrLineTooLong {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}

// FuzzFastResponsesEvent holds the Responses fast path to encoding/json:
// whatever event it accepts, the full decoder must read as the same chunk.
func FuzzFastResponsesEvent(f *testing.F) {
	for _, seed := range []string{
		textDelta("Hi \u00e9\U0001F600 \n"),
		`{"type":"response.reasoning_text.delta","delta":"a","delta":null,"x":[1.5e3,-0,{"a":[true,false,null]}]}`,
		`{"delta":"late type","type":"response.refusal.delta"}`,
		`{"type":"response.reasoning_summary_text.delta","delta":"\ud800"}`,
		`{"type":"response.output_text.delta","Delta":"folded"}`,
		`{"type":"response.output_text.delta","delta":"x","item":5}`,
		`{"type":"response.output_text.\u0064elta","delta":"escaped type"}`,
		`{"type":"response.completed","delta":"not a delta"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var s jsonscan.Scanner
		fast, ok := fastEvent(&s, payload)
		if !ok {
			return
		}
		var w responsesEventWire
		if err := json.Unmarshal(payload, &w); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", payload, err)
		}
		r := responsesReader{backend: "fuzz", event: func() {}, fail: func(err error) error { return err }}
		var slow []domain.Chunk
		done, err := r.eventOf(&w, payload, sinkFunc(func(c domain.Chunk) error { slow = append(slow, c); return nil }))
		if err != nil || done {
			t.Fatalf("slow path on %q: done %v, error %v", payload, done, err)
		}
		if fast.Empty() {
			if len(slow) != 0 {
				t.Fatalf("%q: fast path read nothing, slow path %#v", payload, slow)
			}
			return
		}
		if len(slow) != 1 || !reflect.DeepEqual(slow[0], fast) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", payload, fast, slow)
		}
	})
}

// FuzzFastEmbeddings holds the embeddings answer's fast path to
// encoding/json: whatever answer it accepts, the full decoder must read
// the same way.
func FuzzFastEmbeddings(f *testing.F) {
	for _, seed := range []string{
		`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[-0.006929283495992422,0.0,1e-45]},` +
			`{"object":"embedding","index":1,"embedding":"AACAPwAAgL8AAAAA"}],"model":"m","usage":{"prompt_tokens":5,"total_tokens":5}}`,
		"{\n  \"object\": \"list\",\n  \"data\": [\n    {\n      \"object\": \"embedding\",\n      \"index\": 0,\n      \"embedding\": [\n        0.5,\n        -1e-3\n      ]\n    }\n  ],\n  \"usage\": null\n}",
		`{"data":[{"embedding":[],"index":null},{"embedding":null},{"embedding":"AACAPw"}],"error":null,"usage":{"prompt_tokens":1,"completion_tokens":0}}`,
		`{"Data":[{"index":0,"embedding":[1]}]}`,
		`{"data":[{"index":0,"embedding":[1],"Embedding":[2]}]}`,
		`{"data":[{"index":0,"embedding":[1e39]}]}`,
		`{"data":[{"index":0,"embedding":"AADAfw=="}]}`,
		`{"data":[{"index":0,"embedding":"AACAP\/=="}]}`,
		`{"data":[{"index":0,"embedding":[1]}],"usage":{"prompt_tokens":1,"prompt_tokens":2}}`,
		`{"error":{"message":"boom"}}`,
	} {
		f.Add([]byte(seed), uint8(2))
	}
	f.Fuzz(func(t *testing.T, answer []byte, inputs uint8) {
		var fast embeddingsWire
		if !fast.fastDecode(answer, int(inputs)) {
			return
		}
		var slow embeddingsWire
		if err := json.Unmarshal(answer, &slow); err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", answer, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", answer, fast, slow)
		}
	})
}
