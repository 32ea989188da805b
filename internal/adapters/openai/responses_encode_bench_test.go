package openai_test

import (
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// benchResponsesRequest is the bench harness's streamed Responses request.
const benchResponsesRequest = `{"model":"gpt-4o-mini","instructions":"You are a helpful assistant. Answer briefly.",` +
	`"input":"bench:chunks=100:interval=0 Write a haiku about the sea, please.","temperature":0.7,"max_output_tokens":256,"stream":true}`

// benchResponseStream builds one whole Responses stream as the service
// does for a 100-chunk answer: the opening events, an event per chunk,
// the closing events with the final response, and that response's object
// for the store.
func benchResponseStream(b *testing.B, chunks int) {
	req, err := openai.DecodeResponsesRequest([]byte(benchResponsesRequest))
	if err != nil {
		b.Fatal(err)
	}
	usage := &domain.Usage{PromptTokens: 24, CompletionTokens: chunks}
	now := func() int64 { return 1764146001 }
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		rb := openai.NewResponseBuilder(req, "resp_0123456789ABCDEFGHIJKLMNOP", "gpt-4o-mini", 1764146000, now)
		n += len(rb.Open())
		for range chunks {
			n += len(rb.Chunk(domain.Chunk{Content: " token"}))
		}
		n += len(rb.Chunk(domain.Chunk{FinishReason: "stop", Usage: usage}))
		n += len(rb.Close())
		n += len(rb.Object())
	}
	if n == 0 {
		b.Fatal("nothing written")
	}
}

func BenchmarkResponseStream10(b *testing.B)  { benchResponseStream(b, 10) }
func BenchmarkResponseStream100(b *testing.B) { benchResponseStream(b, 100) }
