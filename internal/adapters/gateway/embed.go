package gateway

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"

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
	answer, err := io.ReadAll(io.LimitReader(call.Resp.Body, maxAnswer+1))
	if err != nil {
		return domain.Embeddings{}, brokeOff(call.Fail(err))
	}
	if len(answer) > maxAnswer {
		return domain.Embeddings{}, call.Protocol("embeddings answer larger than %d MiB", maxAnswer>>20)
	}
	var w embeddingsWire
	if err := json.Unmarshal(answer, &w); err != nil {
		return domain.Embeddings{}, call.Protocol("unreadable embeddings: %v", err)
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

// embeddingsWire is an embeddings answer ({"object":"list","data":[…]}).
type embeddingsWire struct {
	Data []struct {
		Index     *int       `json:"index"`
		Embedding vectorWire `json:"embedding"`
	} `json:"data"`
	Usage *usageWire    `json:"usage"`
	Error rawUnlessNull `json:"error"`
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
