package openai_test

import (
	"math/rand/v2"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// BenchmarkAppendEmbeddingList writes the answer of 16 768-dimensional
// vectors as floats and as base64.
func BenchmarkAppendEmbeddingList(b *testing.B) {
	r := rand.New(rand.NewPCG(768, 16))
	e := domain.Embeddings{Usage: &domain.Usage{PromptTokens: 1200}}
	for range 16 {
		v := make([]float32, 768)
		for j := range v {
			v[j] = float32(r.NormFloat64() * 0.036)
		}
		e.Vectors = append(e.Vectors, v)
	}
	for _, f := range []string{openai.EncodingFloat, openai.EncodingBase64} {
		b.Run(f, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = openai.AppendEmbeddingList(nil, "text-embedding-3-small", e, f)
			}
		})
	}
}
