package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Detokenizer turns token ids back into text. OpenAI's API takes prompts
// and embedding inputs as token ids of the model's tokenizer; Ollama takes
// text only, so ids are decoded here first. model is the name the client
// asked for: its tokenizer produced the ids.
type Detokenizer interface {
	Decode(model string, ids []int) (string, error)
}

// GenerateRequest is the body of POST /api/generate.
type GenerateRequest struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	// Suffix asks for the text between Prompt and Suffix. It needs the
	// model's template (fill-in-the-middle markers), so it never goes raw.
	Suffix string `json:"suffix,omitempty"`
	// Raw sends the prompt as it is, without the model's chat template: a
	// legacy completion continues the client's text.
	Raw         bool            `json:"raw,omitempty"`
	Stream      bool            `json:"stream"`
	Options     json.RawMessage `json:"options,omitempty"`
	KeepAlive   json.RawMessage `json:"keep_alive,omitempty"`
	Think       json.RawMessage `json:"think,omitempty"`
	Logprobs    bool            `json:"logprobs,omitempty"`
	TopLogprobs int             `json:"top_logprobs,omitempty"`
}

// maxTopLogprobs is the most alternatives per token Ollama reports.
const maxTopLogprobs = 20

// textPlan is a text completion request translated: the body shared by all
// its generations, the prompts as text and what varies per completion.
type textPlan struct {
	body    GenerateRequest
	prompts []string
	n       int
	vary    plan // options and seed, varied per completion as chat's choices
}

// generation returns the body of completion k of prompt p.
func (t *textPlan) generation(p, k int) GenerateRequest {
	body := t.body
	body.Prompt = t.prompts[p]
	if opts := t.vary.optionsFor(k); opts != nil {
		body.Options = opts
	}
	return body
}

// TranslateText returns the /api/generate bodies for req, one per
// generation in the order they are sent (prompt by prompt, each prompt's
// completions in turn), as they would be sent.
func (c *Client) TranslateText(req domain.TextRequest) ([]GenerateRequest, error) {
	t, err := c.translateText(req)
	if err != nil {
		return nil, err
	}
	var out []GenerateRequest
	for p := range t.prompts {
		for k := range t.n {
			out = append(out, t.generation(p, k))
		}
	}
	return out, nil
}

// translateText checks req and builds what its generations share. Nothing
// is sent before every prompt is known to be readable, so a bad prompt
// fails the request before any generation runs.
func (c *Client) translateText(req domain.TextRequest) (textPlan, error) {
	t := textPlan{n: max(req.N, 1)}
	if t.n > MaxChoices {
		return t, domain.Invalid("n", "Invalid 'n': the Ollama backend makes at most %d completions per prompt (each is a separate generation), got %d.", MaxChoices, t.n)
	}
	if req.Logprobs != nil && req.Echo {
		return t, domain.Invalid("echo", "Invalid 'echo': the Ollama backend cannot report the log probabilities of the prompt, which 'echo' with 'logprobs' asks for.")
	}
	if req.Logprobs != nil && (*req.Logprobs < 0 || *req.Logprobs > maxTopLogprobs) {
		return t, domain.Invalid("logprobs", "Invalid 'logprobs': expected a value between 0 and %d, but got %d instead.", maxTopLogprobs, *req.Logprobs)
	}
	t.prompts = make([]string, len(req.Prompts))
	for i, in := range req.Prompts {
		text, err := c.inputText(req.Requested, req.Model, in)
		if err != nil {
			return t, domain.Invalid("prompt", "Invalid 'prompt': prompt %d: %v.", i, err)
		}
		t.prompts[i] = text
	}
	ext, err := readExtras(req.Passthrough)
	if err != nil {
		return t, err
	}
	opts, err := c.optionSet(req.Model, req.Sampling, ext.options)
	if err != nil {
		return t, err
	}
	t.vary = plan{options: opts, seed: req.Sampling.Seed}
	t.body = GenerateRequest{Model: req.Model, Suffix: req.Suffix, Raw: req.Suffix == "", Stream: true,
		KeepAlive: ext.keepAlive, Think: ext.think}
	t.body.Options = opts.json(nil)
	if req.Logprobs != nil {
		t.body.Logprobs, t.body.TopLogprobs = true, *req.Logprobs
	}
	return t, nil
}

// errNoDetokenizer refuses token ids when no Detokenizer is configured.
var errNoDetokenizer = errors.New("it is given as token ids, which this Ollama backend cannot read (it takes text only); send it as text")

// inputText returns an input as text, decoding token ids with the
// configured Detokenizer for the model the client named (requested, or
// model when the request did not come through routing). Its errors are
// the client's, worded to follow the input's name.
func (c *Client) inputText(requested, model string, in domain.Input) (string, error) {
	if in.Tokens == nil {
		return in.Text, nil
	}
	if c.detok == nil {
		return "", errNoDetokenizer
	}
	if requested == "" {
		requested = model
	}
	text, err := c.detok.Decode(requested, in.Tokens)
	if err != nil {
		return "", fmt.Errorf("its token ids cannot be read as tokens of model %s: %v", requested, err)
	}
	return text, nil
}

// Complete continues each prompt N times through /api/generate, always
// streamed (a buffered answer is assembled by the caller, so the
// first-byte timeout bounds the wait for each first token). The
// generations run one after the other on the same concurrency slot;
// completion k of prompt p is choice p*N+k, with a client seed varied per
// completion (k) so that a prompt's completions differ.
func (c *Client) Complete(ctx context.Context, req domain.TextRequest, out ports.Sink[domain.TextChunk]) error {
	t, err := c.translateText(req)
	if err != nil {
		return err
	}
	sink := textSink{out: out}
	for p := range t.prompts {
		for k := range t.n {
			body := t.generation(p, k)
			data, err := encodeGenerate(&body)
			if err != nil {
				return err
			}
			sink.index, sink.first, sink.last = p*t.n+k, k == 0, p == len(t.prompts)-1 && k == t.n-1
			sink.echo = ""
			if req.Echo {
				sink.echo = t.prompts[p]
			}
			if err := c.generate(ctx, data, &sink); err != nil {
				return err
			}
		}
	}
	return nil
}

// textSink numbers one completion's chunks, puts the echoed prompt in its
// first chunk and sums the usage of all generations: a prompt's tokens
// once per prompt (its completions read the same prompt), the completions'
// tokens all added, reported once, on the very last chunk.
//
// The echo rides on the first chunk the host answered rather than going
// out before the request: a chunk sent to the client commits the request
// to this backend, and a host that then fails could not be replaced.
type textSink struct {
	out   ports.Sink[domain.TextChunk]
	index int
	echo  string // the prompt, until the first chunk carried it
	first bool   // the prompt's first completion: its prompt tokens count
	last  bool   // the request's last generation: the usage goes out
	total domain.Usage
}

func (s *textSink) Send(ch domain.TextChunk) error {
	ch.Index = s.index
	if s.echo != "" {
		ch.Text = s.echo + ch.Text
		s.echo = ""
	}
	if u := ch.Usage; u != nil {
		if s.first {
			s.total.PromptTokens += u.PromptTokens
		}
		s.total.CompletionTokens += u.CompletionTokens
		ch.Usage = nil
		if s.last {
			*u = s.total // the reader's, made for this chunk
			ch.Usage = u
		}
	}
	return s.out.Send(ch)
}

func (s *textSink) Flush() error { return s.out.Flush() }

// generateResponse is one /api/generate stream line.
//
// Its thinking is not read: a legacy completion has no place for it.
type generateResponse struct {
	Response        string                `json:"response"`
	Done            bool                  `json:"done"`
	DoneReason      string                `json:"done_reason"`
	PromptEvalCount int                   `json:"prompt_eval_count"`
	EvalCount       int                   `json:"eval_count"`
	Logprobs        []logprobWire         `json:"logprobs"`
	Error           json.RawMessage       `json:"error"`
	lps             []domain.TokenLogprob // as chatResponse's
}

func (c *Client) generate(ctx context.Context, body []byte, out ports.Sink[domain.TextChunk]) error {
	call, err := c.call.Do(ctx, http.MethodPost, "api/generate", body)
	if err != nil {
		return err
	}
	defer call.Close()
	r := generateReader{backend: c.call.Name(), where: call.Where(), call: call}
	return call.End(r.relay(call.Body(out.Flush), out))
}

// generateReader turns an /api/generate stream into text chunks, one per
// line that carries something, until the line that says done.
type generateReader struct {
	backend string
	where   string
	call    progress
}

// relay reads lines to the one that says done: as ndjsonReader's, by a
// fast path, anything unusual by encoding/json.
func (r *generateReader) relay(body io.Reader, out ports.Sink[domain.TextChunk]) error {
	var scan lineScan
	var resp generateResponse
	return eachLine(body, r.call, func(line []byte) (bool, error) {
		resp = generateResponse{}
		if !scan.generate(line, &resp) {
			if err := slowGenerateLine(line, &resp); err != nil {
				return false, &domain.UpstreamError{Backend: r.backend, Kind: domain.FailureProtocol, Message: "unreadable /api/generate stream line: " + err.Error(), Detail: r.where}
			}
		}
		if len(resp.Error) > 0 {
			return false, errorLine(r.backend, r.where, resp.Error)
		}
		r.call.Started()
		chunk := domain.TextChunk{Text: resp.Response, Logprobs: resp.lps}
		if resp.Done {
			chunk.FinishReason = finishReason(resp.DoneReason, false)
			chunk.Usage = &domain.Usage{PromptTokens: resp.PromptEvalCount, CompletionTokens: resp.EvalCount}
		} else if chunk.Text == "" && len(chunk.Logprobs) == 0 {
			return false, nil // a line of thinking only: nothing for the client
		}
		return resp.Done, out.Send(chunk)
	})
}

// slowGenerateLine is slowLine for /api/generate.
func slowGenerateLine(line []byte, resp *generateResponse) error {
	var w generateResponse
	if err := json.Unmarshal(line, &w); err != nil {
		return err
	}
	w.lps, w.Logprobs = tokenLogprobs(w.Logprobs), nil
	*resp = w
	return nil
}
