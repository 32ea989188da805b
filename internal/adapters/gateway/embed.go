package gateway

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

var _ ports.Embedder = (*Client)(nil)

// Embed forwards an embeddings request (POST /embeddings) for this call's
// inputs: the client's body with "model" set to the upstream's name and
// "input" replaced by req.Inputs (the caller may split a request into
// batches), always as an array. Every other member, encoding_format and
// dimensions among them, passes untouched. The answer is read whole; its
// vectors, float arrays or base64 alike, come back in input order.
func (c *Client) Embed(ctx context.Context, req domain.EmbedRequest) (domain.Embeddings, error) {
	raw, ok := req.Passthrough.(wire.EmbeddingsBody)
	if !ok {
		return domain.Embeddings{}, domain.Invalid("", "This backend forwards embedding requests only.")
	}
	if len(req.Inputs) == 0 {
		return domain.Embeddings{Vectors: [][]float32{}, Usage: &domain.Usage{}}, nil
	}
	body, err := embedBody(raw, req.Model, req.Inputs)
	if err != nil {
		return domain.Embeddings{}, err
	}
	call, err := c.call.Do(ctx, http.MethodPost, "embeddings", body)
	if err != nil {
		return domain.Embeddings{}, err
	}
	defer call.Close()
	answer, err := answerBufs.ReadAll(call.Resp.Body, call.Resp.ContentLength, maxAnswer)
	defer answerBufs.Put(answer) // what is returned holds nothing of it
	if err != nil {
		return domain.Embeddings{}, brokeOff(call.Fail(err))
	}
	if len(answer) > maxAnswer {
		return domain.Embeddings{}, call.Protocol("embeddings answer larger than %d MiB", maxAnswer>>20)
	}
	var w embeddingsWire
	if !w.fastDecode(answer, len(req.Inputs)) {
		w = embeddingsWire{}
		if err := json.Unmarshal(answer, &w); err != nil {
			return domain.Embeddings{}, call.Protocol("unreadable embeddings: %v", err)
		}
	}
	if len(w.Error) > 0 {
		return domain.Embeddings{}, inBandError(c.call.Name(), call.Where(), w.Error)
	}
	vectors, err := w.vectors(len(req.Inputs))
	if err != nil {
		return domain.Embeddings{}, call.Protocol("%v", err)
	}
	if d := req.Dimensions; d != nil {
		// An upstream that ignores dimensions (one whose model cannot
		// shorten its vectors) is healthy; another backend may do better.
		for i, v := range vectors {
			if len(v) != *d {
				return domain.Embeddings{}, &domain.UpstreamError{Backend: c.call.Name(), Kind: domain.FailureBadOutput, Detail: call.Where(),
					Message: fmt.Sprintf("embedding %d has %d dimensions; %d were asked for", i, len(v), *d)}
			}
		}
	}
	return domain.Embeddings{Vectors: vectors, Usage: w.Usage.domain()}, nil
}

// brokeOff classifies an error met reading an answer whose status already
// came: the backend answered, so a connection that breaks now cut its
// answer; it was not unreachable.
func brokeOff(err error) error {
	var ue *domain.UpstreamError
	if errors.As(err, &ue) && ue.Kind == domain.FailureUnreachable {
		ue.Kind, ue.Dial, ue.Message = domain.FailureProtocol, false, "the answer broke off"
	}
	return err
}

// embedBody returns the client's embeddings body as the upstream gets it:
// "model" and "input" replaced, everything else spliced through.
func embedBody(raw []byte, model string, inputs []domain.Input) ([]byte, error) {
	return splice(raw, member{key: "model", text: model}, member{key: "input", json: appendInputs(nil, inputs)})
}

// appendInputs writes inputs as a JSON array: each a string, or an array
// of token ids when the client sent ids (Tokens non-nil).
func appendInputs(b []byte, inputs []domain.Input) []byte {
	b = append(b, '[')
	for i, in := range inputs {
		if i > 0 {
			b = append(b, ',')
		}
		if in.Tokens == nil {
			b = wire.AppendString(b, in.Text)
			continue
		}
		b = append(b, '[')
		for j, t := range in.Tokens {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(t), 10)
		}
		b = append(b, ']')
	}
	return append(b, ']')
}

// answerBufs holds the buffers embeddings answers are read into, hundreds
// of KiB each: an answer is done with once decoded, its vectors copied out.
var answerBufs = wire.Buffers{Max: 8 << 20}

// embeddingsWire is an embeddings answer ({"object":"list","data":[…]}).
type embeddingsWire struct {
	Data  []embeddingWire `json:"data"`
	Usage *usageWire      `json:"usage"`
	Error rawUnlessNull   `json:"error"`
}

type embeddingWire struct {
	Index     *int       `json:"index"`
	Embedding vectorWire `json:"embedding"`
}

// fastDecode reads the usual answer without reflection: data a list of
// objects whose index is a non-negative integer or null and whose
// embedding is an array of numbers, a base64 string without escapes or
// null; usage null or an object of non-negative integer counts; error
// null; other members skipped. Vectors share one allocation. It reports
// false for anything else (an error, a member repeated or spelled in
// another case, a value encoding/json would refuse or read differently),
// and w is then to be read by encoding/json.
func (w *embeddingsWire) fastDecode(answer []byte, inputs int) bool {
	var s jsonscan.Scanner
	s.Reset(answer)
	var d embeddingDecoder
	var seen [3]bool
	once := func(i int) bool {
		if seen[i] {
			return false
		}
		seen[i] = true
		return true
	}
	ok := s.Object(func(key []byte) bool {
		switch string(key) {
		case "data":
			if !once(0) || s.Peek() != '[' {
				return false
			}
			w.Data = make([]embeddingWire, 0, inputs)
			d.index = make([]int, 0, inputs)
			return s.Array(func() bool {
				w.Data = append(w.Data, embeddingWire{})
				return d.entry(&s, &w.Data[len(w.Data)-1], inputs-len(w.Data))
			})
		case "usage":
			if !once(1) {
				return false
			}
			if s.Null() {
				return true
			}
			w.Usage = new(usageWire)
			return fastUsage(&s, w.Usage)
		case "error":
			return once(2) && s.Null()
		default:
			if jsonscan.FoldsTo(key, "data", "usage", "error") {
				return false
			}
			return s.Skip()
		}
	})
	return ok && s.Done()
}

// embeddingDecoder holds what the entries of one answer share.
type embeddingDecoder struct {
	index []int     // the entries' indexes
	slab  []float32 // the vectors' values
	raw   []byte    // scratch for base64
	sized bool      // the slab was made for the vectors after the first
}

// entry reads one element of data; more is how many are expected after it.
func (d *embeddingDecoder) entry(s *jsonscan.Scanner, e *embeddingWire, more int) bool {
	var seen [2]bool
	return s.Object(func(key []byte) bool {
		switch string(key) {
		case "index":
			if seen[0] {
				return false
			}
			seen[0] = true
			if s.Null() {
				return true
			}
			i, ok := s.Int()
			if !ok {
				return false
			}
			d.index = append(d.index, i)
			e.Index = &d.index[len(d.index)-1]
			return true
		case "embedding":
			if seen[1] {
				return false
			}
			seen[1] = true
			return d.vector(s, &e.Embedding, more)
		default:
			if jsonscan.FoldsTo(key, "index", "embedding") {
				return false
			}
			return s.Skip()
		}
	})
}

// vector reads an embedding into the slab; after the first, the slab is
// made large enough for more of the same size.
func (d *embeddingDecoder) vector(s *jsonscan.Scanner, v *vectorWire, more int) bool {
	if d.slab == nil {
		d.slab = make([]float32, 0, 1024)
	}
	start := len(d.slab)
	switch s.Peek() {
	case 'n':
		return s.Null()
	case '[':
		var ok bool
		if d.slab, ok = s.Float32s(d.slab); !ok {
			return false
		}
	case '"':
		raw, plain, ok := s.RawString()
		if !ok || !plain {
			return false
		}
		n := base64.RawStdEncoding.DecodedLen(len(raw)) // the larger
		if cap(d.raw) < n {
			d.raw = make([]byte, n)
		}
		dec := d.raw[:n]
		n, err := base64.StdEncoding.Decode(dec, raw)
		if err != nil {
			if n, err = base64.RawStdEncoding.Decode(dec, raw); err != nil {
				return false
			}
		}
		if n%4 != 0 {
			return false
		}
		d.slab = slices.Grow(d.slab, n/4)
		for i := 0; i < n; i += 4 {
			bits := binary.LittleEndian.Uint32(dec[i:])
			if bits&0x7f800000 == 0x7f800000 {
				return false // NaN or infinity: encoding/json's path refuses it
			}
			d.slab = append(d.slab, math.Float32frombits(bits))
		}
	default:
		return false
	}
	v.v, v.set = d.slab[start:len(d.slab):len(d.slab)], true
	if len(v.v) == 0 {
		v.v = []float32{}
	} else if !d.sized {
		d.sized = true
		if more > 0 {
			d.slab = make([]float32, 0, more*len(v.v))
		}
	}
	return true
}

// fastUsage reads a usage object whose counts are non-negative integers.
func fastUsage(s *jsonscan.Scanner, u *usageWire) bool {
	var seen [2]bool
	return s.Object(func(key []byte) bool {
		i := 0
		switch string(key) {
		case "prompt_tokens":
		case "completion_tokens":
			i = 1
		default:
			if jsonscan.FoldsTo(key, "prompt_tokens", "completion_tokens") {
				return false
			}
			return s.Skip()
		}
		if seen[i] {
			return false
		}
		seen[i] = true
		n, ok := s.Int()
		if i == 0 {
			u.PromptTokens = n
		} else {
			u.CompletionTokens = n
		}
		return ok
	})
}

// vectors returns the embeddings in input order, which is their index
// order, not necessarily the order of the list. Anything but one vector
// per input is an error: a count that differs, an index out of range or
// repeated, a vector missing. An entry without an index takes its place in
// the list.
func (w *embeddingsWire) vectors(n int) ([][]float32, error) {
	if len(w.Data) != n {
		return nil, fmt.Errorf("%d embeddings for %d inputs", len(w.Data), n)
	}
	out := make([][]float32, n)
	seen := make([]bool, n)
	for i := range w.Data {
		d := &w.Data[i]
		at := i
		if d.Index != nil {
			at = *d.Index
		}
		switch {
		case at < 0 || at >= n:
			return nil, fmt.Errorf("embedding index %d out of range (%d inputs)", at, n)
		case seen[at]:
			return nil, fmt.Errorf("embedding index %d repeated", at)
		case !d.Embedding.set:
			return nil, fmt.Errorf("embedding %d has no vector", at)
		}
		seen[at] = true
		out[at] = d.Embedding.v
	}
	return out, nil
}

// vectorWire is an embedding as OpenAI sends it: an array of numbers
// (encoding_format float, parsed as float32), or a string holding the
// base64 of its little-endian float32 values (encoding_format base64),
// decoded exactly. Values must be finite.
type vectorWire struct {
	v   []float32
	set bool
}

func (w *vectorWire) UnmarshalJSON(b []byte) error {
	var err error
	switch b[0] {
	case '[':
		err = json.Unmarshal(b, &w.v)
	case '"':
		var s string
		if err = json.Unmarshal(b, &s); err == nil {
			w.v, err = decodeVector(s)
		}
	case 'n':
		return nil
	default:
		return errors.New("an embedding is neither an array of numbers nor a base64 string")
	}
	if err != nil {
		return err
	}
	for _, f := range w.v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return errors.New("an embedding holds a value that is not a finite number")
		}
	}
	if w.v == nil {
		w.v = []float32{}
	}
	w.set = true
	return nil
}

// decodeVector reads a base64 embedding: little-endian float32 values
// (padding optional).
func decodeVector(s string) ([]float32, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("an embedding is not base64: %v", err)
		}
	}
	if len(raw)%4 != 0 {
		return nil, fmt.Errorf("a base64 embedding of %d bytes is not a whole number of float32 values", len(raw))
	}
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v, nil
}
