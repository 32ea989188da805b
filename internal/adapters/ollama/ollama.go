// Package ollama is the client for Ollama's native API: /api/chat and
// /api/generate (NDJSON streams), /api/embed and /api/tags. It translates
// OpenAI-style requests into Ollama's form and Ollama's answers back.
package ollama

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Client speaks Ollama's native protocol to one host.
type Client struct {
	call   *upstream.Caller
	images ImageLoader
	numCtx map[string]int
	detok  Detokenizer
}

var (
	_ ports.ChatBackend = (*Client)(nil)
	_ ports.ModelLister = (*Client)(nil)
	_ ports.TextBackend = (*Client)(nil)
	_ ports.Embedder    = (*Client)(nil)
)

// Options are the Ollama-specific settings of a client.
type Options struct {
	// Images loads image_url parts; nil rejects images.
	Images ImageLoader
	// NumCtx sets num_ctx per model name, so long prompts are not cut to
	// Ollama's small default context.
	NumCtx map[string]int
	// Detokenizer turns prompts and embedding inputs a client sent as token
	// ids back into text, which is all Ollama takes; nil refuses them.
	Detokenizer Detokenizer
}

// MaxChoices caps n: each choice is one more generation on the host.
const MaxChoices = 8

// New builds a client; opts.BaseURL is the Ollama host (http://host:11434).
func New(opts upstream.Options, o Options) *Client {
	return &Client{call: upstream.New(opts), images: o.Images, numCtx: o.NumCtx, detok: o.Detokenizer}
}

const (
	maxAnswer = 64 << 20
	maxFrame  = 16 << 20
)

// chatResponse is one /api/chat answer or stream line.
type chatResponse struct {
	Message struct {
		Content   string     `json:"content"`
		Thinking  string     `json:"thinking"`
		ToolCalls []ToolCall `json:"tool_calls"`
	} `json:"message"`
	Done            bool            `json:"done"`
	DoneReason      string          `json:"done_reason"`
	PromptEvalCount int             `json:"prompt_eval_count"`
	EvalCount       int             `json:"eval_count"`
	Logprobs        []logprobWire   `json:"logprobs"`
	Error           json.RawMessage `json:"error"`
	// lps are the log probabilities as the domain has them: read so by
	// the fast path, converted from Logprobs (then nil) by the slow one.
	lps []domain.TokenLogprob
}

func (r *chatResponse) usage() *domain.Usage {
	return &domain.Usage{PromptTokens: r.PromptEvalCount, CompletionTokens: r.EvalCount}
}

// logprobWire is one generated token's log probability on a stream line
// (Ollama's api.Logprob), with the alternatives when top_logprobs was set.
// Bytes are a list of numbers, not encoding/json's base64 of a []byte.
type logprobWire struct {
	tokenLogprobWire
	TopLogprobs []tokenLogprobWire `json:"top_logprobs"`
}

type tokenLogprobWire struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// tokenLogprobs maps a line's logprobs onto the domain's; nil for none.
func tokenLogprobs(lps []logprobWire) []domain.TokenLogprob {
	if len(lps) == 0 {
		return nil
	}
	out := make([]domain.TokenLogprob, len(lps))
	for i, lp := range lps {
		out[i] = domain.TokenLogprob{Token: lp.Token, Logprob: lp.Logprob, Bytes: byteList(lp.Bytes)}
		if len(lp.TopLogprobs) > 0 {
			out[i].Top = make([]domain.TopLogprob, len(lp.TopLogprobs))
			for j, t := range lp.TopLogprobs {
				out[i].Top[j] = domain.TopLogprob{Token: t.Token, Logprob: t.Logprob, Bytes: byteList(t.Bytes)}
			}
		}
	}
	return out
}

// byteList turns Ollama's byte values back into bytes (none for an empty
// token, whose bytes Ollama leaves out).
func byteList(v []int) []byte {
	if v == nil {
		return nil
	}
	b := make([]byte, len(v))
	for i, c := range v {
		b[i] = byte(c)
	}
	return b
}

// finishReason maps Ollama's done_reason onto OpenAI's finish_reason.
// "load" and "unload" end requests that generated nothing.
func finishReason(doneReason string, calledTools bool) string {
	switch {
	case doneReason == "length":
		return domain.FinishLength
	case calledTools:
		return domain.FinishToolCalls
	}
	return domain.FinishStop
}

func checkChoices(req domain.ChatRequest) error {
	if req.N > MaxChoices {
		return domain.Invalid("n", "Invalid 'n': the Ollama backend serves at most %d choices per request (each is a separate generation), got %d.", MaxChoices, req.N)
	}
	return nil
}

// Chat answers a chat request as a stream of chunks: Ollama is always asked
// to stream (a buffered request is assembled by the caller, so the
// first-byte timeout bounds the wait for the first token, not the answer).
// The request is translated once (images loaded once); n > 1 runs the
// choices one after the other on the same concurrency slot, each with its
// index, a client seed varied per choice so that they differ.
func (c *Client) Chat(ctx context.Context, req domain.ChatRequest, out ports.Sink[domain.Chunk]) error {
	if err := checkChoices(req); err != nil {
		return err
	}
	body, p, err := c.translate(ctx, req, true)
	if err != nil {
		return err
	}
	n := max(req.N, 1)
	sink := choiceSink{out: out}
	for i := range n {
		choice := body
		if opts := p.optionsFor(i); opts != nil {
			choice.Options = opts
		}
		data, err := encodeChat(&choice)
		if err != nil {
			return err
		}
		sink.index, sink.last = i, i == n-1
		if err := c.stream(ctx, data, p, &sink); err != nil {
			return err
		}
	}
	return nil
}

// choiceSink numbers one choice's chunks and sums the usage of all
// choices, reported once, on the last choice's final chunk.
type choiceSink struct {
	out   ports.Sink[domain.Chunk]
	index int
	last  bool
	total domain.Usage
}

func (s *choiceSink) Send(ch domain.Chunk) error {
	ch.Index = s.index
	if u := ch.Usage; u != nil {
		if s.index == 0 {
			s.total.PromptTokens = u.PromptTokens
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

func (s *choiceSink) Flush() error { return s.out.Flush() }

// encode writes a request body as sent: HTML characters left alone, as
// the client wrote them.
func encode(body any) ([]byte, error) {
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, err
	}
	return data.Bytes(), nil
}

func (c *Client) stream(ctx context.Context, body []byte, p plan, out ports.Sink[domain.Chunk]) error {
	call, err := c.call.Do(ctx, http.MethodPost, "api/chat", body)
	if err != nil {
		return err
	}
	defer call.Close()
	r := ndjsonReader{backend: c.call.Name(), where: call.Where(), plan: p, call: call}
	return call.End(r.relay(call.Body(out.Flush), out))
}

// progress is what a stream reader tells the call it reads (an
// *upstream.Call): a line arrived (its timers), and what a read error
// means.
type progress interface {
	Started()
	Fail(error) error
}

// eachLine hands each non-blank line of an NDJSON stream to line until it
// says the stream is done. A stream that ends before is a failure: Ollama
// always ends with a line saying done (or an error line).
func eachLine(body io.Reader, call progress, line func([]byte) (done bool, err error)) error {
	lines := upstream.NewLines(body, upstream.LineBuffer, maxFrame)
	defer lines.Release() // line is done with every line it was given
	for {
		l, err := lines.Next()
		switch {
		case err == io.EOF:
			return call.Fail(io.ErrUnexpectedEOF)
		case err != nil:
			return call.Fail(err)
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		done, err := line(l)
		if err != nil || done {
			return err
		}
	}
}

// errorLine is an {"error": …} line in the middle of a stream: the host
// failed while generating.
func errorLine(backend, where string, raw json.RawMessage) error {
	e := &domain.UpstreamError{Backend: backend, Kind: domain.FailureServer, Detail: "error line in the stream of " + where}
	upstream.ParseErrorBody(append(append([]byte(`{"error":`), raw...), '}'), e)
	return e
}

// convertCalls gives Ollama's calls ids and JSON-text arguments.
func convertCalls(calls []ToolCall) []domain.ToolCall {
	var out []domain.ToolCall
	for _, tc := range calls {
		out = append(out, domain.ToolCall{ID: wire.NewToolCallID(), Name: tc.Function.Name, Arguments: argumentsText(tc.Function.Arguments)})
	}
	return out
}

func argumentsText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "{}"
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	var v any
	if json.Unmarshal(raw, &v) != nil || enc.Encode(v) != nil {
		return string(raw)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// parseForcedCall reads {"name": …, "arguments": {…}} produced under a
// required tool_choice.
func parseForcedCall(content string) (domain.ToolCall, bool) {
	var w struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if json.Unmarshal([]byte(content), &w) != nil || w.Name == "" {
		return domain.ToolCall{}, false
	}
	return domain.ToolCall{ID: wire.NewToolCallID(), Name: w.Name, Arguments: argumentsText(w.Arguments)}, true
}

// call0Error is a model's answer that is not the tool call it was required
// to make: the backend is healthy, the model fell short.
func call0Error(backend, where, content string) error {
	if len(content) > 200 {
		content = content[:200] + "…"
	}
	return &domain.UpstreamError{Backend: backend, Kind: domain.FailureBadOutput,
		Message: "the model did not produce the required tool call", Detail: where + ": the model answered " + content}
}

// ndjsonReader turns an /api/chat stream into chunks, one per line, until
// the line that says done.
type ndjsonReader struct {
	backend string
	where   string // the request, for errors
	plan    plan
	call    progress
	calls   int    // tool calls sent so far
	forced  string // forceAny: the answer, read whole before it becomes a call
}

// relay reads lines to the one that says done. Lines of text, thinking
// and log probabilities, and the last one, are read by a reflection-free
// fast path; any other goes through encoding/json.
func (r *ndjsonReader) relay(body io.Reader, out ports.Sink[domain.Chunk]) error {
	var scan lineScan
	var resp chatResponse
	return eachLine(body, r.call, func(line []byte) (bool, error) {
		resp = chatResponse{}
		if !scan.chat(line, &resp) {
			if err := slowLine(line, &resp); err != nil {
				return false, &domain.UpstreamError{Backend: r.backend, Kind: domain.FailureProtocol, Message: "unreadable /api/chat stream line: " + err.Error(), Detail: r.where}
			}
		}
		return r.chunk(&resp, out)
	})
}

// slowLine reads a line the fast path left with encoding/json, into a
// value of its own (so that the reader's stays off the heap).
func slowLine(line []byte, resp *chatResponse) error {
	var w chatResponse
	if err := json.Unmarshal(line, &w); err != nil {
		return err
	}
	w.lps, w.Logprobs = tokenLogprobs(w.Logprobs), nil
	*resp = w
	return nil
}

// chunk turns one decoded line into a chunk for fn; done says it was the last.
func (r *ndjsonReader) chunk(resp *chatResponse, out ports.Sink[domain.Chunk]) (done bool, err error) {
	if len(resp.Error) > 0 {
		return false, errorLine(r.backend, r.where, resp.Error)
	}
	r.call.Started()
	chunk := domain.Chunk{Reasoning: resp.Message.Thinking}
	content := resp.Message.Content
	switch r.plan.force {
	case forceOne:
		if content != "" {
			d := domain.ToolCallDelta{Arguments: content}
			if r.calls == 0 {
				d.ID, d.Name = wire.NewToolCallID(), r.plan.forcedName
				r.calls++
			}
			chunk.ToolCalls = append(chunk.ToolCalls, d)
		}
	case forceAny:
		r.forced += content
		if resp.Done {
			tc, ok := parseForcedCall(r.forced)
			if !ok {
				return false, call0Error(r.backend, r.where, r.forced)
			}
			chunk.ToolCalls = append(chunk.ToolCalls, domain.ToolCallDelta{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
			r.calls++
		}
	default:
		// Under a forced call (above) the text is the call: its log
		// probabilities are dropped, as OpenAI reports none for calls.
		chunk.Content = content
		chunk.Logprobs = resp.lps
		for _, tc := range convertCalls(resp.Message.ToolCalls) {
			if r.plan.single && r.calls > 0 {
				break
			}
			chunk.ToolCalls = append(chunk.ToolCalls, domain.ToolCallDelta{Index: r.calls, ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
			r.calls++
		}
	}
	if resp.Done {
		chunk.FinishReason = finishReason(resp.DoneReason, r.calls > 0)
		chunk.Usage = resp.usage()
	}
	return resp.Done, out.Send(chunk)
}

type tagsWire struct {
	Models []struct {
		Name       string    `json:"name"`
		Model      string    `json:"model"`
		ModifiedAt time.Time `json:"modified_at"`
	} `json:"models"`
}

// Owner is the owned_by reported for models listed by Ollama.
const Owner = "ollama"

// ListModels reads GET /api/tags.
func (c *Client) ListModels(ctx context.Context) ([]domain.Model, error) {
	call, err := c.call.Do(ctx, http.MethodGet, "api/tags", nil)
	if err != nil {
		return nil, err
	}
	defer call.Close()
	var w tagsWire
	if err := json.NewDecoder(io.LimitReader(call.Resp.Body, maxAnswer)).Decode(&w); err != nil {
		return nil, call.Protocol("unreadable /api/tags answer: %v", err)
	}
	out := make([]domain.Model, 0, len(w.Models))
	for _, m := range w.Models {
		id := m.Name
		if id == "" {
			id = m.Model
		}
		var created int64
		if !m.ModifiedAt.IsZero() {
			created = m.ModifiedAt.Unix()
		}
		out = append(out, domain.Model{ID: id, Created: created, OwnedBy: Owner})
	}
	return out, nil
}

// psWire is the answer of GET /api/ps.
type psWire struct {
	Models []struct {
		Name  string `json:"name"`
		Model string `json:"model"`
	} `json:"models"`
}

// LoadedModels reads GET /api/ps: the models this host holds in memory
// now. It implements ports.ResidencyLister.
func (c *Client) LoadedModels(ctx context.Context) ([]string, error) {
	call, err := c.call.Do(ctx, http.MethodGet, "api/ps", nil)
	if err != nil {
		return nil, err
	}
	defer call.Close()
	var w psWire
	if err := json.NewDecoder(io.LimitReader(call.Resp.Body, maxAnswer)).Decode(&w); err != nil {
		return nil, call.Protocol("unreadable /api/ps answer: %v", err)
	}
	out := make([]string, 0, len(w.Models))
	for _, m := range w.Models {
		id := m.Name
		if id == "" {
			id = m.Model
		}
		out = append(out, id)
	}
	return out, nil
}
