package openai

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// FuzzFastEmbeddingsRequest holds the request's fast path to the full
// decoder: whatever body it accepts, the full decoder must accept and read
// the same way.
func FuzzFastEmbeddingsRequest(f *testing.F) {
	for _, seed := range []string{
		`{"input":["The adapter accepts requests","in the OpenAI format"],"model":"text-embedding-3-small","encoding_format":"base64"}`,
		`{"model":"m","input":"one \u00e9\n","dimensions":8,"user":"u","encoding_format":null,"options":{"num_ctx":8192},"keep_alive":"5m","x":[1,{"y":null}]}`,
		`{"model":"m","input":[[1,2],[3]]}`,
		`{"model":"m","input":["a",""]}`,
		`{"model":"m","Input":["a"]}`,
		`{"model":"m","input":["a"],"model":"n"}`,
		`{"model":" ","input":"a"}`,
		`{"model":"m","input":"a","dimensions":0}`,
		`{"model":"m","input":"a","encoding_format":"int8"}`,
		`{"model":null,"input":"a","user":null}`,
		` {"input" : [ "a" , "b" ] , "model" : "m" } `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast EmbeddingsRequest
		if !fastEmbeddingsRequest(body, &fast) {
			return
		}
		slow, err := decodeEmbeddingsRequest(body)
		if err != nil {
			t.Fatalf("fast path took %q, the full decoder refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", body, fast, slow)
		}
	})
}

// TestEmbeddingListSize: the size AppendEmbeddingList grows its buffer to
// holds the answer, whatever the values (so it grows once).
func TestEmbeddingListSize(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	specials := []float32{0, float32(math.Copysign(0, -1)), math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32,
		-1.17549435e-38, -1.1754942e-38, float32(math.NaN()), float32(math.Inf(-1)), -0.000123456789, -123456789}
	for _, format := range []string{EncodingFloat, EncodingBase64} {
		for round := range 50 {
			var e domain.Embeddings
			for range 1 + r.IntN(4) {
				v := make([]float32, r.IntN(300))
				for j := range v {
					switch {
					case round == 0:
						v[j] = specials[j%len(specials)]
					default:
						v[j] = math.Float32frombits(r.Uint32())
					}
				}
				e.Vectors = append(e.Vectors, v)
			}
			model := "m\u2028\x01\"" + strconv.Itoa(round)
			got := AppendEmbeddingList(nil, model, e, format)
			if want := EmbeddingListSize(model, e, format); len(got) > want {
				t.Fatalf("%s: answer of %d bytes, bound %d", format, len(got), want)
			}
		}
	}
}

// TestFastEmbeddingsRequestTakesSDKBodies: the bodies the official SDKs
// send take the fast path.
func TestFastEmbeddingsRequestTakesSDKBodies(t *testing.T) {
	for _, body := range []string{
		`{"input":["The adapter accepts requests","in the OpenAI \"format\""],"model":"text-embedding-3-small","encoding_format":"base64"}`,
		`{"input":"hello","model":"text-embedding-3-small","encoding_format":"float"}`,
		`{"input":["a","b"],"model":"text-embedding-3-small","dimensions":256,"encoding_format":"base64","user":"u-1"}`,
		`{"model":"nomic-embed-text","input":["a"],"options":{"num_ctx":2048},"keep_alive":"10m"}`,
	} {
		var out EmbeddingsRequest
		if !fastEmbeddingsRequest([]byte(body), &out) {
			t.Errorf("%s: not taken by the fast path", body)
		}
	}
}
