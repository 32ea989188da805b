package jsonscan_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
)

// benchVectors are a 768-dimensional embedding printed as OpenAI prints
// it (float64 shortest form of float32 values) and as Ollama does
// (float32 shortest form).
var benchVectors = func() (out [2][]byte) {
	r := rand.New(rand.NewPCG(768, 16))
	v32 := make([]float32, 768)
	v64 := make([]float64, 768)
	for i := range v32 {
		v32[i] = float32(r.NormFloat64() * 0.036)
		v64[i] = float64(v32[i])
	}
	out[0], _ = json.Marshal(v64)
	out[1], _ = json.Marshal(v32)
	return out
}()

func BenchmarkFloat32s(b *testing.B) {
	for i, name := range []string{"openai", "ollama"} {
		in := benchVectors[i]
		b.Run(name+"/jsonscan", func(b *testing.B) {
			var s jsonscan.Scanner
			dst := make([]float32, 0, 768)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				s.Reset(in)
				if _, ok := s.Float32s(dst[:0]); !ok {
					b.Fatal("refused")
				}
			}
		})
		b.Run(name+"/span", func(b *testing.B) {
			var s jsonscan.Scanner
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				s.Reset(in)
				if _, _, _, ok := s.Float32Span(); !ok {
					b.Fatal("refused")
				}
			}
		})
		b.Run(name+"/encoding_json", func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				var v []float32
				if err := json.Unmarshal(in, &v); err != nil || math.IsNaN(float64(v[0])) {
					b.Fatal(err)
				}
			}
		})
	}
}
