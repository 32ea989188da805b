package ollama

import (
	"context"
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
		if _, err := encodeChat(&body); err != nil {
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
	r := ndjsonReader{backend: "ollama", call: nopCall{}}
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

// nopCall is the call of a stream read without one: no timers, read
// errors as they are.
type nopCall struct{}

func (nopCall) Started()             {}
func (nopCall) Fail(err error) error { return err }

// sinkFunc is a ports.Sink that hands each frame to a function.
type sinkFunc func(domain.Chunk) error

func (f sinkFunc) Send(c domain.Chunk) error { return f(c) }
func (f sinkFunc) Flush() error              { return nil }

var benchTextRequest = []byte(`{"model":"gpt-3.5-turbo-instruct","prompt":"Once upon a time","max_tokens":64,"temperature":0.7,` +
	`"stream":true,"stream_options":{"include_usage":true},"user":"bench"}`)

// BenchmarkTextRequestToOllama is the request hot path of legacy text
// completions: decode and validate the client's body, translate it, encode
// /api/generate.
func BenchmarkTextRequestToOllama(b *testing.B) {
	c := New(upstream.Options{}, Options{})
	b.ReportAllocs()
	for b.Loop() {
		req, err := openai.DecodeCompletionRequest(benchTextRequest)
		if err != nil {
			b.Fatal(err)
		}
		req.Model = "qwen2.5:32b"
		t, err := c.translateText(req)
		if err != nil {
			b.Fatal(err)
		}
		body := t.generation(0, 0)
		if _, err := encodeGenerate(&body); err != nil {
			b.Fatal(err)
		}
	}
}

const benchLogprobs = `,"logprobs":[{"token":" the","logprob":-0.0625,"bytes":[32,116,104,101],"top_logprobs":[` +
	`{"token":" the","logprob":-0.0625,"bytes":[32,116,104,101]},{"token":" a","logprob":-2.875,"bytes":[32,97]}]},` +
	`{"token":" sea","logprob":-0.25,"bytes":[32,115,101,97],"top_logprobs":[` +
	`{"token":" sea","logprob":-0.25,"bytes":[32,115,101,97]},{"token":" ocean","logprob":-1.5,"bytes":[32,111,99,101,97,110]}]}]`

var (
	benchGenLine         = []byte(`{"model":"qwen2.5:32b","created_at":"2026-11-26T08:52:19.385406455Z","response":" the sea","done":false}` + "\n")
	benchGenLineLogprobs = []byte(`{"model":"qwen2.5:32b","created_at":"2026-11-26T08:52:19.385406455Z","response":" the sea","done":false` + benchLogprobs + "}\n")
	benchLineLogprobs    = []byte(`{"model":"qwen2.5:32b","created_at":"2026-11-26T08:52:19.385406455Z","message":{"role":"assistant","content":" the sea"},"done":false` + benchLogprobs + "}\n")
)

// repeated is an endless stream of one repeated line.
type repeated struct {
	line []byte
	pos  int
}

func (l *repeated) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.line[l.pos:])
		n += c
		l.pos = (l.pos + c) % len(l.line)
	}
	return n, nil
}

// BenchmarkGenerateLineToClient is the streaming hot path of legacy text
// completions: one /api/generate NDJSON line read and decoded, one client
// frame encoded; with and without log probabilities.
func BenchmarkGenerateLineToClient(b *testing.B) {
	for _, bc := range []struct {
		name string
		line []byte
	}{{"plain", benchGenLine}, {"logprobs", benchGenLineLogprobs}} {
		b.Run(bc.name, func(b *testing.B) {
			logprobs := bc.name == "logprobs"
			enc := openai.NewTextEncoder("cmpl-0123456789ABCDEFGHIJKLMNOP", 1764146000, "gpt-3.5-turbo-instruct", logprobs)
			r := generateReader{backend: "ollama", call: nopCall{}}
			var out []byte
			n := 0
			stop := errors.New("enough")
			emit := textSinkFunc(func(c domain.TextChunk) error {
				out = enc.Chunk(c)
				if n++; n == b.N {
					return stop
				}
				return nil
			})
			b.ReportAllocs()
			b.ResetTimer()
			if err := r.relay(&repeated{line: bc.line}, emit); err != stop {
				b.Fatal(err)
			}
			_ = out
		})
	}
}

// BenchmarkLineToClientLogprobs is BenchmarkLineToClient for a line that
// carries log probabilities (two tokens, two alternatives each).
func BenchmarkLineToClientLogprobs(b *testing.B) {
	enc := openai.NewChunkEncoder("chatcmpl-0123456789ABCDEFGHIJKLMNOP", 1764146000, "gpt-4", false)
	r := ndjsonReader{backend: "ollama", call: nopCall{}}
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
	if err := r.relay(&repeated{line: benchLineLogprobs}, emit); err != stop {
		b.Fatal(err)
	}
	_ = out
}

// BenchmarkTranslate is this client's share of a request's fixed cost:
// a decoded request translated and its body encoded as sent (/api/chat,
// /api/generate).
func BenchmarkTranslate(b *testing.B) {
	c := New(upstream.Options{}, Options{})
	b.Run("chat", func(b *testing.B) {
		req, err := openai.DecodeChatRequest(benchRequest)
		if err != nil {
			b.Fatal(err)
		}
		req.Model = "qwen2.5:32b"
		b.ReportAllocs()
		for b.Loop() {
			body, _, err := c.translate(context.Background(), req, true)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := encodeChat(&body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("text", func(b *testing.B) {
		req, err := openai.DecodeCompletionRequest(benchTextRequest)
		if err != nil {
			b.Fatal(err)
		}
		req.Model = "qwen2.5:32b"
		b.ReportAllocs()
		for b.Loop() {
			t, err := c.translateText(req)
			if err != nil {
				b.Fatal(err)
			}
			body := t.generation(0, 0)
			if _, err := encodeGenerate(&body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
