package gateway

import (
	"errors"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

var benchRequest = []byte(`{"model":"gpt-4","messages":[{"role":"system","content":"You are a helpful assistant."},` +
	`{"role":"user","content":"Write a haiku about the sea, please."}],"temperature":0.7,"max_tokens":256,"stream":true,` +
	`"stream_options":{"include_usage":true},"user":"bench"}`)

// BenchmarkRequestToGateway is the request hot path of the gateway
// protocol: decode and validate the client's body, then rewrite its model.
func BenchmarkRequestToGateway(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		req, err := openai.DecodeChatRequest(benchRequest)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := RewriteBody(req.Passthrough.(wire.ChatBody), "qwen2.5:32b"); err != nil {
			b.Fatal(err)
		}
	}
}

var benchFrame = []byte(`{"id":"chatcmpl-upstream","object":"chat.completion.chunk","created":1764146000,"model":"qwen2.5:32b",` +
	`"system_fingerprint":"fp_gw","choices":[{"index":0,"delta":{"content":" the sea"},"logprobs":null,"finish_reason":null}]}`)

// frames is an endless upstream event stream of one repeated frame.
type frames struct {
	pos   int
	event []byte // benchEvent unless set
}

var benchEvent = append(append([]byte("data: "), benchFrame...), "\n\n"...)

func (f *frames) Read(p []byte) (int, error) {
	if f.event == nil {
		f.event = benchEvent
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], f.event[f.pos:])
		n += c
		f.pos = (f.pos + c) % len(f.event)
	}
	return n, nil
}

// BenchmarkFrameToClient is the streaming hot path of the gateway protocol:
// one upstream SSE frame read and decoded, one client frame encoded.
func BenchmarkFrameToClient(b *testing.B) {
	enc := openai.NewChunkEncoder("chatcmpl-0123456789ABCDEFGHIJKLMNOP", 1764146000, "gpt-4", false)
	r := sseReader{backend: "gateway", frame: func() {}, fail: func(err error) error { return err }}
	var out []byte
	n := 0
	stop := errors.New("enough")
	emit := sinkFunc(func(c domain.Chunk) error {
		out = enc.Chunk(c)
		if n++; n == b.N {
			return stop
		}
		return nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	if err := r.relay(&frames{}, emit); err != stop {
		b.Fatal(err)
	}
	_ = out
}

var benchTextEvent = []byte(`data: {"id":"cmpl-upstream","object":"text_completion","created":1764146000,` +
	`"choices":[{"text":" the sea","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}` + "\n\n")

// BenchmarkTextFrame is the streaming path of text completions: one
// upstream text_completion frame read and decoded into a chunk.
func BenchmarkTextFrame(b *testing.B) {
	r := sseReader{backend: "gateway", frame: func() {}, fail: func(err error) error { return err }}
	n := 0
	stop := errors.New("enough")
	emit := textSinkFunc(func(c domain.TextChunk) error {
		if n++; n == b.N {
			return stop
		}
		return nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	if err := r.relayText(&frames{event: benchTextEvent}, emit, 1); err != stop {
		b.Fatal(err)
	}
}

// sinkFunc is a ports.Sink that hands each frame to a function.
type sinkFunc func(domain.Chunk) error

func (f sinkFunc) Send(c domain.Chunk) error { return f(c) }
func (f sinkFunc) Flush() error              { return nil }

var benchResponsesEvent = []byte("event: response.output_text.delta\ndata: " +
	`{"type":"response.output_text.delta","sequence_number":12,"item_id":"msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654",` +
	`"output_index":0,"content_index":0,"delta":" the sea","logprobs":[],"obfuscation":"Xy3kQ"}` + "\n\n")

// BenchmarkResponsesEvent is the streaming path of a gateway's Responses
// API: one output_text.delta event read and decoded into a chunk.
func BenchmarkResponsesEvent(b *testing.B) {
	r := responsesReader{backend: "gateway", event: func() {}, fail: func(err error) error { return err }}
	n := 0
	stop := errors.New("enough")
	emit := sinkFunc(func(c domain.Chunk) error {
		if n++; n == b.N {
			return stop
		}
		return nil
	})
	b.ReportAllocs()
	b.ResetTimer()
	if err := r.relay(&frames{event: benchResponsesEvent}, emit); err != stop {
		b.Fatal(err)
	}
}
