package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// benchEmbedAnswer is an embeddings answer of n 768-dimensional vectors as
// OpenAI writes it: floats in the shortest float64 form of float32 values,
// or base64.
func benchEmbedAnswer(n int, format string) []byte {
	r := rand.New(rand.NewPCG(768, 16))
	b := []byte(`{"object":"list","data":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		wide, raw := make([]float64, 768), []byte{}
		for j := range wide {
			f := float32(r.NormFloat64() * 0.036)
			wide[j] = float64(f)
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
		}
		if format == openai.EncodingBase64 {
			b = append(append(append(b, '"'), base64.StdEncoding.EncodeToString(raw)...), '"')
		} else {
			fl, _ := json.Marshal(wide)
			b = append(b, fl...)
		}
		b = append(b, '}')
	}
	return append(b, `],"model":"nomic-embed-text","usage":{"prompt_tokens":1200,"total_tokens":1200}}`...)
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

// benchEmbed runs the embeddings path of the gateway protocol for 16
// inputs: the upstream's answer read and decoded, and, when encode, the
// client's answer written in the same encoding.
func benchEmbed(b *testing.B, format string, encode bool) {
	answer := benchEmbedAnswer(16, format)
	u, _ := url.Parse("http://gateway.invalid/v1")
	c := gateway.New(upstream.Options{Name: "gateway", BaseURL: u, Transport: cannedAnswer(answer)})
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
		if encode {
			_ = openai.AppendEmbeddingList(nil, "text-embedding-3-small", e, format)
		}
	}
}

// BenchmarkEmbedDecode reads a gateway's answer (16×768) into vectors.
func BenchmarkEmbedDecode(b *testing.B) {
	for _, f := range []string{openai.EncodingFloat, openai.EncodingBase64} {
		b.Run(f, func(b *testing.B) { benchEmbed(b, f, false) })
	}
}

// BenchmarkEmbedToClient reads a gateway's answer (16×768) and writes the
// client's in the same encoding.
func BenchmarkEmbedToClient(b *testing.B) {
	for _, f := range []string{openai.EncodingFloat, openai.EncodingBase64} {
		b.Run(f, func(b *testing.B) { benchEmbed(b, f, true) })
	}
}
