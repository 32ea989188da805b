package gatewaytest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// embeddingRequest is what the fake reads of an embeddings request.
type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat *string         `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
}

// embeddingInput is one input: text, or token ids.
type embeddingInput struct {
	text   string
	tokens []int
	isIDs  bool
}

// inputsOf reads input as OpenAI takes it: a string, strings, token ids, or
// lists of token ids. ok is false for anything else, for no input, and for
// an empty one.
func inputsOf(raw json.RawMessage) (in []embeddingInput, ok bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []embeddingInput{{text: one}}, one != ""
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil {
		for _, t := range texts {
			if t == "" {
				return nil, false
			}
			in = append(in, embeddingInput{text: t})
		}
		return in, len(in) > 0
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return []embeddingInput{{tokens: ids, isIDs: true}}, len(ids) > 0
	}
	var lists [][]int
	if json.Unmarshal(raw, &lists) != nil {
		return nil, false
	}
	for _, l := range lists {
		if len(l) == 0 {
			return nil, false
		}
		in = append(in, embeddingInput{tokens: l, isIDs: true})
	}
	return in, len(in) > 0
}

// key is what an input's vector derives from.
func (in embeddingInput) key() string {
	if in.isIDs {
		return "\x00ids:" + idsText(in.tokens)
	}
	return in.text
}

// promptTokens counts an input's tokens: its ids, or its words (the fake
// has no tokenizer).
func (in embeddingInput) promptTokens() int {
	if in.isIDs {
		return len(in.tokens)
	}
	return max(len(strings.Fields(in.text)), 1)
}

// Embedding returns the vector the fake answers for text, with dims
// values: derived from a hash of the text, of unit length. A shorter
// vector is a longer one's first values, scaled back to unit length, as
// OpenAI shortens embeddings for dimensions.
func Embedding(text string, dims int) []float32 {
	return embeddingOf(embeddingInput{text: text}, dims)
}

// TokensEmbedding is Embedding for an input of token ids.
func TokensEmbedding(ids []int, dims int) []float32 {
	return embeddingOf(embeddingInput{tokens: ids, isIDs: true}, dims)
}

func embeddingOf(in embeddingInput, dims int) []float32 {
	h := fnv.New64a()
	io.WriteString(h, in.key())
	state := h.Sum64()
	v := make([]float64, dims)
	var norm float64
	for i := range v {
		// splitmix64
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		v[i] = float64(z>>11)/(1<<53)*2 - 1
		norm += v[i] * v[i]
	}
	norm = math.Sqrt(norm)
	out := make([]float32, dims)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}

// embeddings answers POST /v1/embeddings: one vector per input, as float
// numbers or (encoding_format base64) the base64 of their little-endian
// float32 bytes, indented as OpenAI writes the answer.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	body := s.record(r)
	cfg := s.snapshot()
	var req embeddingRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	if !prelude(w, r, &cfg, func() {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>not an answer</html>\n")
	}) {
		return
	}
	if !cfg.has(req.Model) {
		modelNotFound(w, req.Model)
		return
	}
	inputs, ok := inputsOf(req.Input)
	if !ok {
		writeError(w, http.StatusBadRequest, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
			"invalid_request_error", "")
		return
	}
	format := "float"
	if req.EncodingFormat != nil {
		format = *req.EncodingFormat
	}
	if format != "float" && format != "base64" {
		writeParamError(w, http.StatusBadRequest, fmt.Sprintf("Invalid value for 'encoding_format' = %s. Supported values are: 'float' and 'base64'.", format),
			"invalid_request_error", "encoding_format", "")
		return
	}
	dims := cfg.Dimensions
	if d := req.Dimensions; d != nil {
		if *d < 1 || *d > cfg.Dimensions {
			writeParamError(w, http.StatusBadRequest, fmt.Sprintf("Invalid value for 'dimensions' = %d. Must be between 1 and %d.", *d, cfg.Dimensions),
				"invalid_request_error", "dimensions", "")
			return
		}
		dims = *d
	}
	b := []byte(`{"object":"list","data":[`)
	tokens := 0
	for i, in := range inputs {
		b = comma(b, i)
		b = fmt.Appendf(b, `{"object":"embedding","index":%d,"embedding":`, i)
		v := embeddingOf(in, dims)
		if format == "base64" {
			raw := make([]byte, 4*len(v))
			for k, f := range v {
				binary.LittleEndian.PutUint32(raw[4*k:], math.Float32bits(f))
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			b = append(b, '[')
			for k, f := range v {
				b = comma(b, k)
				b = appendFloat(b, float64(f))
			}
			b = append(b, ']')
		}
		b = append(b, '}')
		tokens += in.promptTokens()
	}
	b = fmt.Appendf(b, `],"model":%s,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`, jsonString(req.Model), tokens, tokens)
	var out bytes.Buffer
	json.Indent(&out, b, "", "  ")
	out.WriteByte('\n')
	w.Header().Set("Content-Type", "application/json")
	if cfg.BreakAfter > 0 {
		w.Write(out.Bytes()[:out.Len()/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.Write(out.Bytes())
}

// appendFloat writes a number as OpenAI does, in Python's shortest
// notation: -0.25, -1.0, -4.547132266452536e-05. A float32 embedding value
// is widened to float64 first (-0.006929283495992422).
func appendFloat(b []byte, f float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[start:], ".e") {
		b = append(b, ".0"...) // Python writes 1.0 and 0.0, not 1 and 0
	}
	return b
}
