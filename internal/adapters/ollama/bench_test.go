package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

var benchRequest = []byte(`{"model":"gpt-4","messages":[{"role":"system","content":"You are a helpful assistant."},` +
	`{"role":"user","content":"Write a haiku about the sea, please."}],"temperature":0.7,"max_tokens":256,"stream":true,` +
	`"stream_options":{"include_usage":true},"user":"bench"}`)

// BenchmarkRequestToOllama is the request hot path of the Ollama protocol:
// decode and validate the client's body, translate it, encode /api/chat.
func BenchmarkRequestToOllama(b *testing.B) {
	c := New(upstream.Options{}, Options{})
	b.ReportAllocs()
	for b.Loop() {
		req, err := openai.DecodeChatRequest(benchRequest)
		if err != nil {
			b.Fatal(err)
		}
		req.Model = "qwen2.5:32b"
		body, _, err := c.translate(context.Background(), req, true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(body); err != nil {
			b.Fatal(err)
		}
	}
}

var benchLine = []byte(`{"model":"qwen2.5:32b","created_at":"2026-11-26T08:52:19.385406455Z","message":{"role":"assistant","content":" the sea"},"done":false}` + "\n")

// lines is an endless /api/chat stream of one repeated line.
type lines struct{ pos int }

func (l *lines) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], benchLine[l.pos:])
		n += c
		l.pos = (l.pos + c) % len(benchLine)
	}
	return n, nil
}

// BenchmarkLineToClient is the streaming hot path of the Ollama protocol:
// one NDJSON line read and decoded, one client frame encoded.
func BenchmarkLineToClient(b *testing.B) {
	enc := openai.NewChunkEncoder("chatcmpl-0123456789ABCDEFGHIJKLMNOP", 1764146000, "gpt-4", false)
	r := ndjsonReader{backend: "ollama", frame: func() {}, fail: func(err error) error { return err }}
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
	if err := r.relay(&lines{}, emit); err != stop {
		b.Fatal(err)
	}
	_ = out
}

// sinkFunc is a ports.Sink that hands each frame to a function.
type sinkFunc func(domain.Chunk) error

func (f sinkFunc) Send(c domain.Chunk) error { return f(c) }
func (f sinkFunc) Flush() error              { return nil }
