package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// EmbedRequest is the body of POST /api/embed.
type EmbedRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
	// Truncate is always sent: Ollama cuts over-long inputs unless told
	// not to, and OpenAI refuses them instead.
	Truncate   bool            `json:"truncate"`
	Dimensions int             `json:"dimensions,omitempty"`
	Options    json.RawMessage `json:"options,omitempty"`
	KeepAlive  json.RawMessage `json:"keep_alive,omitempty"`
}

// embedResponse is /api/embed's answer. prompt_eval_count is absent when
// zero (or from hosts that do not count), hence the pointer.
type embedResponse struct {
	Embeddings      [][]float32 `json:"embeddings"`
	PromptEvalCount *int        `json:"prompt_eval_count"`
}

// fastDecode reads the usual answer without reflection: embeddings an
// array of arrays of numbers, prompt_eval_count a non-negative integer or
// null, other members skipped; the vectors share one allocation. It
// reports false for anything else (a member repeated or spelled in another
// case, a null vector, a value encoding/json would refuse or read
// differently), and w is then to be read by encoding/json.
func (w *embedResponse) fastDecode(raw []byte, inputs int) bool {
	var s jsonscan.Scanner
	s.Reset(raw)
	var seen [2]bool
	ok := s.Object(func(key []byte) bool {
		switch string(key) {
		case "embeddings":
			if seen[0] || s.Peek() != '[' {
				return false
			}
			seen[0] = true
			w.Embeddings = make([][]float32, 0, inputs)
			// The vectors share a slab, made for the rest once the first
			// tells their size.
			slab, sized := make([]float32, 0, 1024), false
			return s.Array(func() bool {
				start := len(slab)
				var ok bool
				if slab, ok = s.Float32s(slab); !ok {
					return false
				}
				v := slab[start:len(slab):len(slab)]
				w.Embeddings = append(w.Embeddings, v)
				if more := inputs - len(w.Embeddings); !sized && len(v) > 0 {
					sized = true
					if more > 0 {
						slab = make([]float32, 0, more*len(v))
					}
				}
				return true
			})
		case "prompt_eval_count":
			if seen[1] {
				return false
			}
			seen[1] = true
			if s.Null() {
				return true
			}
			n, ok := s.Int()
			w.PromptEvalCount = &n
			return ok
		default:
			if jsonscan.FoldsTo(key, "embeddings", "prompt_eval_count") {
				return false
			}
			return s.Skip()
		}
	})
	return ok && s.Done()
}

// answerBufs holds the buffers embeddings answers are read into, hundreds
// of KiB each: an answer is done with once decoded, its vectors copied out.
var answerBufs = wire.Buffers{Max: 8 << 20}

// TranslateEmbed returns the /api/embed body for req, as it would be sent.
func (c *Client) TranslateEmbed(req domain.EmbedRequest) (EmbedRequest, error) {
	out := EmbedRequest{Model: req.Model, Input: make([]string, len(req.Inputs)), Truncate: req.Truncate}
	for i, in := range req.Inputs {
		text, err := c.inputText(req.Requested, req.Model, in)
		if err != nil {
			// An InputError, not an invalid request naming input[i]: the
			// inputs may be one batch of the client's, and the use case
			// rebases the index onto the whole request.
			return out, &domain.InputError{Index: i, Message: err.Error() + "."}
		}
		out.Input[i] = text
	}
	if req.Dimensions != nil {
		out.Dimensions = *req.Dimensions
	}
	ext, err := readExtras(req.Passthrough)
	if err != nil {
		return out, err
	}
	// The configured num_ctx applies here too: it is also the longest
	// input Ollama embeds.
	opts, err := c.options(req.Model, domain.Sampling{}, ext.options)
	if err != nil {
		return out, err
	}
	if len(opts) > 0 {
		out.Options, _ = json.Marshal(opts)
	}
	out.KeepAlive = ext.keepAlive
	return out, nil
}

// Embed turns the inputs into vectors through /api/embed, in one call.
// Ollama answers it whole, so the first-byte timeout bounds it all.
//
// Ollama refuses a batch holding an input longer than the model's context
// without saying which input it was; the client must be told. Only then
// are the inputs embedded one by one to find the first that fails.
func (c *Client) Embed(ctx context.Context, req domain.EmbedRequest) (domain.Embeddings, error) {
	body, err := c.TranslateEmbed(req)
	if err != nil {
		return domain.Embeddings{}, err
	}
	out, err := c.embed(ctx, body)
	if tooLong(err) {
		out, err = c.findTooLong(ctx, body, err)
	}
	if err != nil {
		return domain.Embeddings{}, err
	}
	if req.Dimensions != nil {
		for _, v := range out.Vectors {
			if len(v) != *req.Dimensions {
				// Ollama cuts vectors to a smaller size but cannot make
				// them larger: it answers the model's own size then.
				model := req.Requested
				if model == "" {
					model = req.Model
				}
				return domain.Embeddings{}, domain.Invalid("dimensions", "Invalid 'dimensions': model %s makes %d-dimensional embeddings; it cannot make %d-dimensional ones.", model, len(v), *req.Dimensions)
			}
		}
	}
	return out, nil
}

// embed makes one /api/embed call and checks there is a vector per input.
func (c *Client) embed(ctx context.Context, body EmbedRequest) (domain.Embeddings, error) {
	data, err := encode(body)
	if err != nil {
		return domain.Embeddings{}, err
	}
	call, err := c.call.Do(ctx, http.MethodPost, "api/embed", data)
	if err != nil {
		return domain.Embeddings{}, err
	}
	defer call.Close()
	raw, err := answerBufs.ReadAll(call.Resp.Body, call.Resp.ContentLength, maxAnswer)
	defer answerBufs.Put(raw) // what is returned holds nothing of it
	if err != nil {
		return domain.Embeddings{}, call.Fail(err)
	}
	if len(raw) > maxAnswer {
		return domain.Embeddings{}, call.Protocol("/api/embed answer larger than %d bytes", maxAnswer)
	}
	var w embedResponse
	if !w.fastDecode(raw, len(body.Input)) {
		w = embedResponse{}
		if err := json.Unmarshal(raw, &w); err != nil {
			return domain.Embeddings{}, call.Protocol("unreadable /api/embed answer: %v", err)
		}
	}
	if len(w.Embeddings) != len(body.Input) {
		return domain.Embeddings{}, call.Protocol("%d embeddings for %d inputs", len(w.Embeddings), len(body.Input))
	}
	out := domain.Embeddings{Vectors: w.Embeddings}
	if w.PromptEvalCount != nil {
		out.Usage = &domain.Usage{PromptTokens: *w.PromptEvalCount}
	}
	return out, nil
}

// tooLong reports whether Ollama refused an input as longer than the
// model's context: a 400 saying "the input length exceeds the context
// length" (or, when no input fits at all, "input after truncation exceeds
// maximum context length").
func tooLong(err error) bool {
	var ue *domain.UpstreamError
	return errors.As(err, &ue) && ue.Kind == domain.FailureRejected && strings.Contains(ue.Message, "context length")
}

// findTooLong embeds a refused batch's inputs one by one and names the
// first too long for the model. Should every input pass on its own (the
// host's context changed in between), their vectors are the answer.
func (c *Client) findTooLong(ctx context.Context, body EmbedRequest, refused error) (domain.Embeddings, error) {
	if len(body.Input) == 1 {
		return domain.Embeddings{}, longInput(0, refused)
	}
	out := domain.Embeddings{Vectors: make([][]float32, 0, len(body.Input)), Usage: &domain.Usage{}}
	for i, text := range body.Input {
		one := body
		one.Input = []string{text}
		got, err := c.embed(ctx, one)
		if tooLong(err) {
			return domain.Embeddings{}, longInput(i, err)
		}
		if err != nil {
			return domain.Embeddings{}, err
		}
		out.Vectors = append(out.Vectors, got.Vectors...)
		if got.Usage == nil || out.Usage == nil {
			out.Usage = nil
		} else {
			out.Usage.PromptTokens += got.Usage.PromptTokens
		}
	}
	return out, nil
}

func longInput(i int, err error) error {
	var ue *domain.UpstreamError
	errors.As(err, &ue)
	return &domain.InputError{Index: i, Message: "the input is longer than the model's context (Ollama: " + ue.Message + "); shorten it."}
}
