package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// The client side of the per-frame path of every streamed endpoint: one
// chunk from a backend encoded in the endpoint's wire format, written to
// the client and flushed, through the one stream writer. With the
// backends' own per-frame benchmarks (gateway BenchmarkFrameToClient,
// BenchmarkTextFrame; ollama BenchmarkLineToClient) they make up a relayed
// frame.

// discard is an http.ResponseWriter and http.Flusher that keeps nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Flush()                      {}

func benchContext() *gin.Context {
	c, _ := gin.CreateTestContext(&discard{h: http.Header{}})
	c.Request = httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	return c
}

func benchFrames[T any](b *testing.B, enc encoder[T], frame T) {
	c := benchContext()
	w := newSSEWriter[T](c, enc, &streamDeps{metrics: nopRecorder{}}, "gpt-4", time.Now(), false)
	w.Begin(domain.Route{Backend: "ollama", Host: "127.0.0.1:11434", Model: "qwen2.5:32b"})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := w.Send(frame); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChatFrameOut(b *testing.B) {
	req := domain.ChatRequest{Model: "gpt-4", Stream: true}
	enc := &chatFrames{enc: openai.NewChunkEncoder("chatcmpl-0123456789ABCDEFGHIJKLMNOP", 1764146000, "gpt-4", false), req: &req}
	benchFrames[domain.Chunk](b, enc, domain.Chunk{Content: " the sea"})
}

func BenchmarkTextFrameOut(b *testing.B) {
	req := domain.TextRequest{Model: "gpt-3.5-turbo-instruct", Stream: true}
	enc := &textFrames{enc: openai.NewTextEncoder("cmpl-0123456789ABCDEFGHIJKLMNOP", 1764146000, "gpt-3.5-turbo-instruct", false), req: req}
	benchFrames[domain.TextChunk](b, enc, domain.TextChunk{Text: " the sea"})
}

func BenchmarkResponsesFrameOut(b *testing.B) {
	req, err := openai.DecodeResponsesRequest([]byte(`{"model":"gpt-4","input":"Tell me about the sea.","stream":true}`))
	if err != nil {
		b.Fatal(err)
	}
	h := &responsesHandler{}
	rb := openai.NewResponseBuilder(req, openai.NewResponseID(), "gpt-4", 1764146000, func() int64 { return 1764146000 })
	enc := &responseFrames{h: h, req: req, b: rb}
	benchFrames[domain.Chunk](b, enc, domain.Chunk{Content: " the sea"})
}
