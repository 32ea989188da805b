package openai

import (
	"encoding/json"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// The legacy /v1/completions API: raw prompts continued, or filled in
// between a prompt and a suffix (editor autocomplete, code completion).

// DefaultCompletionTokens is OpenAI's max_tokens when a completion request
// sends none: 16. It is sent to backends that are not forwarded the
// client's body as it is (Ollama), so that they stop where OpenAI would.
const DefaultCompletionTokens = 16

// MaxCompletionLogprobs is the most alternatives per token a legacy
// completion may ask for.
const MaxCompletionLogprobs = 5

type completionWire struct {
	Model            json.RawMessage            `json:"model"`
	Prompt           json.RawMessage            `json:"prompt"`
	Suffix           *string                    `json:"suffix"`
	Echo             *bool                      `json:"echo"`
	MaxTokens        *int                       `json:"max_tokens"`
	Temperature      *float64                   `json:"temperature"`
	TopP             *float64                   `json:"top_p"`
	N                *int                       `json:"n"`
	BestOf           *int                       `json:"best_of"`
	Logprobs         *int                       `json:"logprobs"`
	Stop             json.RawMessage            `json:"stop"`
	Seed             *int64                     `json:"seed"`
	PresencePenalty  *float64                   `json:"presence_penalty"`
	FrequencyPenalty *float64                   `json:"frequency_penalty"`
	Stream           *bool                      `json:"stream"`
	StreamOptions    *streamOptions             `json:"stream_options"`
	User             *string                    `json:"user"`
	LogitBias        map[string]json.RawMessage `json:"logit_bias"`
}

var completionShape = shape{
	"model": nil, "prompt": nil, "suffix": nil, "echo": nil, "max_tokens": nil, "temperature": nil, "top_p": nil,
	"n": nil, "best_of": nil, "logprobs": nil, "stop": nil, "seed": nil, "presence_penalty": nil,
	"frequency_penalty": nil, "stream": nil, "stream_options": {"include_usage": nil}, "user": nil, "logit_bias": nil,
	"options": nil, "keep_alive": nil,
}

// DecodeCompletionRequest parses and validates a CreateCompletionRequest.
// Every client mistake comes back as *domain.InvalidRequestError naming the
// field. The request carries body as its Passthrough (a wire.CompletionBody).
func DecodeCompletionRequest(body []byte) (domain.TextRequest, error) {
	var req domain.TextRequest
	if err := checkBody(body, "`model` and `prompt`"); err != nil {
		return req, err
	}
	var w completionWire
	if err := json.Unmarshal(body, &w); err != nil {
		return req, jsonError("", err)
	}
	if err := checkKeys(body, completionShape); err != nil {
		return req, err
	}
	var err error
	if req.Model, err = decodeModel(w.Model); err != nil {
		return req, err
	}
	if req.Prompts, err = decodeInputs("prompt", w.Prompt, MaxEmbeddingInputs, true); err != nil {
		return req, err
	}
	if w.Suffix != nil {
		req.Suffix = *w.Suffix
	}
	if w.Echo != nil {
		req.Echo = *w.Echo
	}
	s := &req.Sampling
	if s.Temperature, err = inRange("temperature", w.Temperature, 0, 2); err != nil {
		return req, err
	}
	if s.TopP, err = inRange("top_p", w.TopP, 0, 1); err != nil {
		return req, err
	}
	if s.PresencePenalty, err = inRange("presence_penalty", w.PresencePenalty, -2, 2); err != nil {
		return req, err
	}
	if s.FrequencyPenalty, err = inRange("frequency_penalty", w.FrequencyPenalty, -2, 2); err != nil {
		return req, err
	}
	maxTokens := DefaultCompletionTokens
	if w.MaxTokens != nil {
		if *w.MaxTokens < 0 {
			return req, domain.Invalid("max_tokens", "Invalid 'max_tokens': integer below minimum value. Expected a value >= 0, but got %d instead.", *w.MaxTokens)
		}
		maxTokens = *w.MaxTokens
	}
	s.MaxTokens = &maxTokens
	if s.Stop, err = decodeStop(w.Stop); err != nil {
		return req, err
	}
	s.Seed = w.Seed
	req.N = 1
	if n := w.N; n != nil {
		if *n < 1 || *n > MaxChoices {
			return req, domain.Invalid("n", "Invalid 'n': expected a value between 1 and %d, but got %d instead.", MaxChoices, *n)
		}
		req.N = *n
	}
	if b := w.BestOf; b != nil && *b != req.N && !(*b <= 1 && req.N == 1) {
		return req, domain.Invalid("best_of", "Invalid 'best_of': this service generates no extra candidates to pick from, so best_of must equal n (%d), but got %d.", req.N, *b)
	}
	if lp := w.Logprobs; lp != nil {
		if *lp < 0 || *lp > MaxCompletionLogprobs {
			return req, domain.Invalid("logprobs", "Invalid 'logprobs': expected a value between 0 and %d, but got %d instead.", MaxCompletionLogprobs, *lp)
		}
		req.Logprobs = lp
	}
	if w.Stream != nil {
		req.Stream = *w.Stream
	}
	if req.Stream && w.StreamOptions != nil && w.StreamOptions.IncludeUsage != nil {
		req.IncludeUsage = *w.StreamOptions.IncludeUsage
	}
	if w.User != nil {
		req.User = *w.User
	}
	if len(w.LogitBias) > 0 {
		return req, domain.Invalid("logit_bias", "'logit_bias' is not supported by this service's backends; send an empty object or leave it out.")
	}
	req.Passthrough = wire.CompletionBody(body)
	return req, nil
}

// NewTextCompletionID returns a fresh id such as cmpl-Q2V7… (26 random
// base32 characters).
func NewTextCompletionID() string { return wire.RandomText("cmpl-") }

// TextEncoder writes text_completion objects: whole, or as the chunks of a
// stream. The id, created and model are fixed per answer and encoded once.
// It keeps, per choice, the offset of the next token in the choice's text,
// which legacy logprobs report (text_offset).
type TextEncoder struct {
	head     []byte // `{"id":…,"object":"text_completion","created":…,"model":…,"choices":[`
	buf      []byte
	logprobs bool  // the client asked for logprobs: each choice carries the object, else null
	offsets  []int // per choice: characters of text written so far
}

// NewTextEncoder prepares the objects of one answer. logprobs says whether
// the client asked for log probabilities.
func NewTextEncoder(id string, created int64, model string, logprobs bool) *TextEncoder {
	h := make([]byte, 0, 96+len(id)+len(model))
	h = append(h, `{"id":`...)
	h = wire.AppendString(h, id)
	h = append(h, `,"object":"text_completion","created":`...)
	h = strconv.AppendInt(h, created, 10)
	h = append(h, `,"model":`...)
	h = wire.AppendString(h, model)
	h = append(h, `,"choices":[`...)
	return &TextEncoder{head: h, buf: make([]byte, 0, 512), logprobs: logprobs}
}

// Chunk encodes one chunk as an SSE frame; the frame is valid until the
// next call.
func (e *TextEncoder) Chunk(c domain.TextChunk) []byte {
	b := append(e.buf[:0], "data: "...)
	b = append(b, e.head...)
	b = e.appendChoice(b, c.Index, c.Text, c.FinishReason, c.Logprobs)
	b = append(b, "]}\n\n"...)
	e.buf = b
	return b
}

// Usage encodes the usage chunk of a stream that asked for it.
func (e *TextEncoder) Usage(u domain.Usage) []byte {
	b := append(e.buf[:0], "data: "...)
	b = append(b, e.head...)
	b = append(b, ']')
	b = appendUsage(b, u)
	b = append(b, "}\n\n"...)
	e.buf = b
	return b
}

// Completion appends the whole text_completion object for c.
func (e *TextEncoder) Completion(b []byte, c domain.TextCompletion) []byte {
	b = append(b, e.head...)
	for i, ch := range c.Choices {
		if i > 0 {
			b = append(b, ',')
		}
		finish := ch.FinishReason
		if finish == "" {
			finish = domain.FinishStop
		}
		b = e.appendChoice(b, ch.Index, ch.Text, finish, ch.Logprobs)
	}
	b = append(b, ']')
	if c.Usage != nil {
		b = appendUsage(b, *c.Usage)
	}
	return append(b, '}')
}

func appendUsage(b []byte, u domain.Usage) []byte {
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CompletionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens()), 10)
	return append(b, '}')
}

func (e *TextEncoder) appendChoice(b []byte, index int, text, finish string, lps []domain.TokenLogprob) []byte {
	b = append(b, `{"text":`...)
	b = wire.AppendString(b, text)
	b = append(b, `,"index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"logprobs":`...)
	if e.logprobs {
		b = e.appendLogprobs(b, index, text, lps)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = wire.AppendString(b, finish)
	}
	return append(b, '}')
}

// appendLogprobs writes the legacy logprobs object: tokens, their log
// probabilities, the alternatives at each position as a token -> logprob
// map, and each token's character offset in the choice's text so far. Text
// without token log probabilities (an echoed prompt) only moves the offset.
func (e *TextEncoder) appendLogprobs(b []byte, index int, text string, lps []domain.TokenLogprob) []byte {
	for len(e.offsets) <= index {
		e.offsets = append(e.offsets, 0)
	}
	offset := e.offsets[index]
	b = append(b, `{"tokens":[`...)
	for i, lp := range lps {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendString(b, lp.Token)
	}
	b = append(b, `],"token_logprobs":[`...)
	for i, lp := range lps {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendLogprob(b, lp.Logprob)
	}
	b = append(b, `],"top_logprobs":[`...)
	for i, lp := range lps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTopMap(b, lp.Top)
	}
	b = append(b, `],"text_offset":[`...)
	at := offset
	if len(lps) == 0 {
		at += utf8.RuneCountInString(text)
	}
	for i, lp := range lps {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(at), 10)
		at += utf8.RuneCountInString(lp.Token)
	}
	e.offsets[index] = max(at, offset+utf8.RuneCountInString(text))
	return append(b, "]}"...)
}

// appendTopMap writes the alternatives as {"token": logprob, …}, most
// likely first; a token that appears twice keeps its best log probability.
func appendTopMap(b []byte, top []domain.TopLogprob) []byte {
	sorted := append([]domain.TopLogprob(nil), top...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Logprob > sorted[j].Logprob })
	b = append(b, '{')
	seen := make(map[string]bool, len(sorted))
	for _, t := range sorted {
		if seen[t.Token] {
			continue
		}
		if len(seen) > 0 {
			b = append(b, ',')
		}
		seen[t.Token] = true
		b = wire.AppendString(b, t.Token)
		b = append(b, ':')
		b = AppendLogprob(b, t.Logprob)
	}
	return append(b, '}')
}
