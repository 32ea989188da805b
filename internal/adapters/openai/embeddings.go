package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Limits of CreateEmbeddingRequest as OpenAI enforces them.
const (
	MaxEmbeddingInputs = 2048 // inputs per request
	MaxInputTokens     = 8192 // token ids of one input
)

// Embedding encodings a client may ask for.
const (
	EncodingFloat  = "float"
	EncodingBase64 = "base64"
)

type embeddingsWire struct {
	Model          json.RawMessage `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat *string         `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           *string         `json:"user"`
}

var embeddingsShape = shape{"model": nil, "input": nil, "encoding_format": nil, "dimensions": nil, "user": nil,
	"options": nil, "keep_alive": nil}

// EmbeddingsRequest is a decoded /v1/embeddings request and how its answer
// must be written.
type EmbeddingsRequest struct {
	domain.EmbedRequest
	Encoding string // EncodingFloat or EncodingBase64
}

// DecodeEmbeddingsRequest parses and validates a CreateEmbeddingRequest.
// Every client mistake comes back as *domain.InvalidRequestError naming the
// field. The request carries body as its Passthrough (a wire.EmbeddingsBody).
func DecodeEmbeddingsRequest(body []byte) (EmbeddingsRequest, error) {
	var out EmbeddingsRequest
	if fastEmbeddingsRequest(body, &out) {
		return out, nil
	}
	return decodeEmbeddingsRequest(body)
}

// decodeEmbeddingsRequest is DecodeEmbeddingsRequest for any body.
func decodeEmbeddingsRequest(body []byte) (EmbeddingsRequest, error) {
	var out EmbeddingsRequest
	if err := checkBody(body, "`model` and `input`"); err != nil {
		return out, err
	}
	var w embeddingsWire
	if err := json.Unmarshal(body, &w); err != nil {
		return out, jsonError("", err)
	}
	if err := checkKeys(body, embeddingsShape); err != nil {
		return out, err
	}
	model, err := decodeModel(w.Model)
	if err != nil {
		return out, err
	}
	out.Model = model
	if out.Inputs, err = decodeInputs("input", w.Input, MaxEmbeddingInputs, false); err != nil {
		return out, err
	}
	out.Encoding = EncodingFloat
	if f := w.EncodingFormat; f != nil {
		if *f != EncodingFloat && *f != EncodingBase64 {
			return out, domain.Invalid("encoding_format", "Invalid value: '%s'. Supported values are: 'float' and 'base64'.", *f)
		}
		out.Encoding = *f
	}
	if d := w.Dimensions; d != nil {
		if *d < 1 {
			return out, domain.Invalid("dimensions", "Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but got %d instead.", *d)
		}
		out.Dimensions = d
	}
	if w.User != nil {
		out.User = *w.User
	}
	out.Passthrough = wire.EmbeddingsBody(body)
	return out, nil
}

// embeddingsKeys are the members of a request the service reads, in
// fastEmbeddingsRequest's order.
var embeddingsKeys = [...]string{"model", "input", "encoding_format", "dimensions", "user", "options", "keep_alive"}

// fastEmbeddingsRequest reads the usual request in one pass, without
// reflection: model a string, input a string or an array of strings,
// encoding_format, dimensions and user of their type or null, options and
// keep_alive skipped (the Ollama backend reads them), other members
// skipped. It reports false for anything else (token ids, escaped keys)
// and for anything DecodeEmbeddingsRequest refuses, which then reads the
// body again and says why.
func fastEmbeddingsRequest(body []byte, out *EmbeddingsRequest) bool {
	if !utf8.Valid(body) {
		return false
	}
	var s jsonscan.Scanner
	s.Reset(body)
	var seen [len(embeddingsKeys)]bool
	out.Encoding = EncodingFloat
	ok := s.Object(func(key []byte) bool {
		k := slices.Index(embeddingsKeys[:], string(key))
		if k < 0 {
			return !jsonscan.FoldsTo(key, embeddingsKeys[:]...) && s.Skip()
		}
		if seen[k] {
			return false // a repeated key, which the full decoder refuses
		}
		seen[k] = true
		var ok bool
		switch embeddingsKeys[k] {
		case "model":
			if s.Peek() != '"' {
				return false
			}
			out.Model, ok = s.String()
			return ok && strings.TrimSpace(out.Model) != ""
		case "input":
			return fastInputs(&s, &out.Inputs)
		case "encoding_format":
			if s.Null() {
				return true
			}
			if s.Peek() != '"' {
				return false
			}
			out.Encoding, ok = s.String()
			return ok && (out.Encoding == EncodingFloat || out.Encoding == EncodingBase64)
		case "dimensions":
			if s.Null() {
				return true
			}
			d, ok := s.Int()
			out.Dimensions = &d
			return ok && d >= 1
		case "user":
			if s.Null() {
				return true
			}
			if s.Peek() != '"' {
				return false
			}
			out.User, ok = s.String()
			return ok
		default: // options, keep_alive
			return s.Skip()
		}
	})
	if !ok || !s.Done() || !seen[0] || !seen[1] {
		return false
	}
	out.Passthrough = wire.EmbeddingsBody(body)
	return true
}

// fastInputs reads a string or an array of strings, none empty, as inputs.
func fastInputs(s *jsonscan.Scanner, inputs *[]domain.Input) bool {
	switch s.Peek() {
	case '"':
		text, ok := s.String()
		*inputs = []domain.Input{{Text: text}}
		return ok && text != ""
	case '[':
		*inputs = make([]domain.Input, 0, 16)
		ok := s.Array(func() bool {
			if s.Peek() != '"' || len(*inputs) == MaxEmbeddingInputs {
				return false
			}
			text, ok := s.String()
			*inputs = append(*inputs, domain.Input{Text: text})
			return ok && text != ""
		})
		return ok && len(*inputs) > 0
	}
	return false
}

// checkBody refuses an empty body, invalid UTF-8 and JSON that is not an
// object; wants names what the object must hold.
func checkBody(body []byte, wants string) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return domain.Invalid("", "The request body is empty; expected a JSON object with %s.", wants)
	}
	if !utf8.Valid(body) {
		return domain.Invalid("", "The request body is not valid UTF-8.")
	}
	if k := jsonKind(body); k != "an object" && json.Valid(body) {
		return domain.Invalid("", "The request body must be a JSON object with %s, but it is %s.", wants, k)
	}
	return nil
}

// decodeInputs reads a string, an array of strings, an array of token ids
// or an array of arrays of token ids (prompts of /v1/completions, inputs of
// /v1/embeddings). Empty strings are refused unless allowEmpty.
func decodeInputs(param string, raw json.RawMessage, maxInputs int, allowEmpty bool) ([]domain.Input, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, domain.Invalid(param, "Missing required parameter: '%s'.", param)
	}
	invalidType := func() error {
		return domain.Invalid(param, "Invalid type for '%s': expected a string, an array of strings, an array of integers (token ids) or an array of arrays of integers.", param)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, jsonError(param, err)
		}
		if s == "" && !allowEmpty {
			return nil, domain.Invalid(param, "Invalid '%s': empty string. Expected a non-empty string.", param)
		}
		return []domain.Input{{Text: s}}, nil
	case '[':
	default:
		return nil, invalidType()
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalidType()
	}
	if len(items) == 0 {
		return nil, domain.Invalid(param, "Invalid '%s': empty array. Expected an array with minimum length 1.", param)
	}
	if k := jsonKind(items[0]); k == "a number" {
		tokens, err := decodeTokens(param, raw)
		if err != nil {
			return nil, err
		}
		return []domain.Input{{Tokens: tokens}}, nil
	}
	if len(items) > maxInputs {
		return nil, domain.Invalid(param, "Invalid '%s': array too long. Expected an array with maximum length %d, but got an array with length %d instead.", param, maxInputs, len(items))
	}
	out := make([]domain.Input, len(items))
	for i, item := range items {
		p := param + "[" + strconv.Itoa(i) + "]"
		switch jsonKind(item) {
		case "a string":
			if err := json.Unmarshal(item, &out[i].Text); err != nil {
				return nil, jsonError(p, err)
			}
			if out[i].Text == "" && !allowEmpty {
				return nil, domain.Invalid(p, "Invalid '%s': empty string. Expected a non-empty string.", p)
			}
		case "an array":
			tokens, err := decodeTokens(p, item)
			if err != nil {
				return nil, err
			}
			out[i].Tokens = tokens
		default:
			return nil, domain.Invalid(p, "Invalid type for '%s': expected a string or an array of integers (token ids), but got %s instead.", p, jsonKind(item))
		}
		if (out[i].Tokens == nil) != (out[0].Tokens == nil) {
			return nil, domain.Invalid(p, "Invalid '%s': strings and token arrays cannot be mixed in one request.", p)
		}
	}
	return out, nil
}

// decodeTokens reads an array of token ids.
func decodeTokens(param string, raw json.RawMessage) ([]int, error) {
	var tokens []int
	if err := json.Unmarshal(raw, &tokens); err != nil {
		return nil, domain.Invalid(param, "Invalid type for '%s': expected an array of integers (token ids).", param)
	}
	if len(tokens) == 0 {
		return nil, domain.Invalid(param, "Invalid '%s': empty array. Expected at least one token id.", param)
	}
	if len(tokens) > MaxInputTokens {
		return nil, domain.Invalid(param, "Invalid '%s': %d token ids; the maximum is %d.", param, len(tokens), MaxInputTokens)
	}
	for i, t := range tokens {
		if t < 0 {
			return nil, domain.Invalid(param, "Invalid '%s': token id %d at position %d is negative.", param, t, i)
		}
	}
	return tokens, nil
}

// AppendEmbeddingList writes the CreateEmbeddingResponse for e, each
// vector as float numbers or as base64 of its little-endian float32 bytes.
// Floats are written in the shortest form that reads back as the same
// float32, so both encodings give a client the very same vectors. b grows
// once, to the most the answer can take.
func AppendEmbeddingList(b []byte, model string, e domain.Embeddings, encoding string) []byte {
	b = slices.Grow(b, EmbeddingListSize(model, e, encoding))
	b = append(b, `{"object":"list","data":[`...)
	var raw []byte
	for i, v := range e.Vectors {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		if encoding == EncodingBase64 {
			raw = raw[:0]
			for _, f := range v {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			b = appendFloats(b, v)
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	b = wire.AppendString(b, model)
	prompt := 0
	if e.Usage != nil {
		prompt = e.Usage.PromptTokens
	}
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	return append(b, "}}"...)
}

// appendFloats writes v as a JSON array of numbers.
func appendFloats(b []byte, v []float32) []byte {
	b = append(b, '[')
	for j, f := range v {
		if j > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			f = 0 // JSON has no NaN or infinity; base64 keeps them
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	return append(b, ']')
}

// maxFloat32Text bounds a float32 in shortest form and its comma: at most
// nine digits, a sign, a point and an exponent ("-1.17549435e-38,").
const maxFloat32Text = 16

// EmbeddingListSize bounds the size of AppendEmbeddingList's answer.
func EmbeddingListSize(model string, e domain.Embeddings, encoding string) int {
	n := 128 + 6*len(model) // the members around the list; the model escaped at worst
	for _, v := range e.Vectors {
		n += 64 // the entry's members and its index
		if encoding == EncodingBase64 {
			n += base64.StdEncoding.EncodedLen(4 * len(v))
		} else {
			n += maxFloat32Text * len(v)
		}
	}
	return n
}
