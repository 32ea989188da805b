package ollama_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// benchEmbedAnswer is an /api/embed answer of n 768-dimensional vectors,
// as Ollama writes it (float32 values in their shortest form).
func benchEmbedAnswer(n int) []byte {
	r := rand.New(rand.NewPCG(768, 16))
	b := []byte(`{"model":"nomic-embed-text:latest","embeddings":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		v := make([]float32, 768)
		for j := range v {
			v[j] = float32(r.NormFloat64() * 0.036)
		}
		fl, _ := json.Marshal(v)
		b = append(b, fl...)
	}
	return append(b, `],"total_duration":41822417,"load_duration":3276958,"prompt_eval_count":1200}`...)
}

// cannedAnswer answers every request with one body, without a network.
type cannedAnswer []byte

func (c cannedAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		ContentLength: int64(len(c)), Body: io.NopCloser(bytes.NewReader(c)), Request: r}, nil
}

// benchEmbed runs the embeddings path of the Ollama protocol for 16
// inputs: /api/embed's answer read and decoded, and, unless format is
// empty, the client's answer written in that encoding.
func benchEmbed(b *testing.B, format string) {
	answer := benchEmbedAnswer(16)
	u, _ := url.Parse("http://ollama.invalid")
	c := ollama.New(upstream.Options{Name: "ollama", BaseURL: u, Transport: cannedAnswer(answer)}, ollama.Options{})
	inputs := make([]domain.Input, 16)
	for i := range inputs {
		inputs[i].Text = "an input of about three hundred characters " + strconv.Itoa(i)
	}
	body := `{"input":"x","model":"text-embedding-3-small","encoding_format":"` + format + `"}`
	req := domain.EmbedRequest{Model: "nomic-embed-text", Requested: "text-embedding-3-small", Inputs: inputs, Passthrough: wire.EmbeddingsBody(body)}
	b.SetBytes(int64(len(answer)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := c.Embed(context.Background(), req)
		if err != nil || len(e.Vectors) != 16 {
			b.Fatal(err)
		}
		if format != "" {
			_ = openai.AppendEmbeddingList(nil, "text-embedding-3-small", e, format)
		}
	}
}

// BenchmarkEmbedDecode reads an /api/embed answer (16×768) into vectors.
func BenchmarkEmbedDecode(b *testing.B) { benchEmbed(b, "") }

// BenchmarkEmbedToClient reads an /api/embed answer (16×768) and writes
// the client's answer as floats or base64.
func BenchmarkEmbedToClient(b *testing.B) {
	for _, f := range []string{openai.EncodingFloat, openai.EncodingBase64} {
		b.Run(f, func(b *testing.B) { benchEmbed(b, f) })
	}
}
