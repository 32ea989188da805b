// Package gateway is the client for OpenAI-compatible backends: the LLM
// gateway, vLLM, LiteLLM, llama.cpp's server, Ollama's /v1. The client's
// request body is forwarded with only the model (and streaming, or an
// embeddings batch's input) rewritten. A chat request that did not come as
// a chat completions body (a Responses API request, or one built by the
// service) is encoded from the domain request (encode.go); with
// Options.Responses, a Responses API request is forwarded to the gateway's
// own /responses instead (responses.go).
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Client speaks OpenAI's API to one backend: chat completions, legacy text
// completions (text.go), embeddings (embed.go), the model list and, when
// the backend serves it, the Responses API (responses.go).
type Client struct {
	call *upstream.Caller
	opts Options
}

// Options say what a gateway serves beyond chat completions. The zero
// value is a chat completions gateway.
type Options struct {
	// Responses: the gateway serves OpenAI's Responses API (POST
	// {base}/responses). A Responses API request (passthrough
	// wire.ResponsesBody) is then forwarded there, the client's body with
	// the model, the whole conversation's input, store false and stream
	// true spliced in, and the answer's events read back as chunks.
	// Without it, such a request is served through /chat/completions,
	// encoded from the domain request.
	Responses bool
}

var (
	_ ports.ChatBackend = (*Client)(nil)
	_ ports.ModelLister = (*Client)(nil)
)

// New builds a client; opts.BaseURL is the OpenAI base (…/v1). gw, when
// given, says what the gateway serves beyond chat completions (the last
// one counts); without it, chat completions only.
func New(opts upstream.Options, gw ...Options) *Client {
	c := &Client{call: upstream.New(opts)}
	if len(gw) > 0 {
		c.opts = gw[len(gw)-1]
	}
	return c
}

// maxAnswer caps an answer read in one piece (a model list, embeddings).
const maxAnswer = 64 << 20

// maxFrame caps one SSE line.
const maxFrame = 16 << 20

type toolCallWire struct {
	Index    *int         `json:"index"`
	ID       string       `json:"id"`
	Function functionWire `json:"function"`
}

type functionWire struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type usageWire struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

func (u *usageWire) domain() *domain.Usage {
	if u == nil {
		return nil
	}
	return &domain.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
}

// logprobsWire is a choice's logprobs object; only content is kept.
type logprobsWire struct {
	Content []tokenLogprobWire `json:"content"`
}

type tokenLogprobWire struct {
	Token       string             `json:"token"`
	Logprob     float64            `json:"logprob"`
	RawBytes    []int              `json:"bytes"`
	TopLogprobs []tokenLogprobWire `json:"top_logprobs"`
}

func (l *logprobsWire) domain() []domain.TokenLogprob {
	if l == nil || len(l.Content) == 0 {
		return nil
	}
	out := make([]domain.TokenLogprob, len(l.Content))
	for i, t := range l.Content {
		out[i] = domain.TokenLogprob{Token: t.Token, Logprob: t.Logprob, Bytes: byteList(t.RawBytes)}
		for _, top := range t.TopLogprobs {
			out[i].Top = append(out[i].Top, domain.TopLogprob{Token: top.Token, Logprob: top.Logprob, Bytes: byteList(top.RawBytes)})
		}
	}
	return out
}

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

// chunkWire is one chat.completion.chunk. Absent and empty strings mean the
// same here, so plain strings spare an allocation per field and frame.
type chunkWire struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content          string         `json:"content"`
			Refusal          string         `json:"refusal"`
			ReasoningContent string         `json:"reasoning_content"`
			Reasoning        string         `json:"reasoning"`
			ToolCalls        []toolCallWire `json:"tool_calls"`
			FunctionCall     *functionWire  `json:"function_call"`
		} `json:"delta"`
		Logprobs     *logprobsWire `json:"logprobs"`
		FinishReason string        `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageWire    `json:"usage"`
	Error rawUnlessNull `json:"error"`
}

// rawUnlessNull keeps a JSON value as it is, and null as nothing (without
// the allocation json.RawMessage makes for it).
type rawUnlessNull []byte

func (r *rawUnlessNull) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = nil
		return nil
	}
	*r = append((*r)[:0], b...)
	return nil
}

var (
	dataPrefix = []byte("data:")
	doneMarker = []byte("[DONE]")
)

// Chat forwards a chat request and relays the answer's SSE frames as
// chunks, one per choice a frame carries. The upstream is always asked to
// stream, with usage: a buffered request is assembled by the caller, so
// the first-byte timeout bounds the wait for the first token, not the
// answer.
//
// A chat completions body (wire.ChatBody) is forwarded as the client wrote
// it, the model and streaming rewritten. A Responses API request goes to
// the gateway's /responses when it serves them (Options.Responses). Any
// other request (a Responses API one otherwise, or one without a
// passthrough) is encoded from the domain request as a chat completions
// body.
func (c *Client) Chat(ctx context.Context, req domain.ChatRequest, out ports.Sink[domain.Chunk]) error {
	var body []byte
	var err error
	switch p := req.Passthrough.(type) {
	case wire.ChatBody:
		body, err = RewriteBody(p, req.Model)
	case wire.ResponsesBody:
		if c.opts.Responses {
			return c.respond(ctx, req, p, out)
		}
		body, err = EncodeChat(req)
	default:
		body, err = EncodeChat(req)
	}
	if err != nil {
		return err
	}
	call, err := c.call.Do(ctx, http.MethodPost, "chat/completions", body)
	if err != nil {
		return err
	}
	defer call.Close()
	r := sseReader{backend: c.call.Name(), frame: call.Started, fail: call.Fail, where: call.Where()}
	return call.End(r.relay(call.Body(out.Flush), out))
}

// sseReader turns an OpenAI event stream into chunks: one per choice of
// each data frame, until [DONE].
type sseReader struct {
	backend string
	where   string            // the request, for errors
	frame   func()            // called for every data frame (timers)
	fail    func(error) error // classifies read errors
	usage   *domain.Usage
	calls   toolCallIndex
}

func (r *sseReader) protocol(format string, args ...any) error {
	return &domain.UpstreamError{Backend: r.backend, Kind: domain.FailureProtocol, Message: fmt.Sprintf(format, args...), Detail: r.where}
}

// relay reads body to [DONE], calling fn for each chunk. A stream that ends
// without [DONE] is a failure: the answer may be cut. The common frame (text
// deltas of one choice) is read by a reflection-free fast path; any other
// goes through encoding/json.
func (r *sseReader) relay(body io.Reader, out ports.Sink[domain.Chunk]) error {
	data := newSSEData(body)
	defer data.lines.Release()
	var scan jsonscan.Scanner
	var w chunkWire
	for {
		payload, err := data.next()
		if err == io.EOF {
			return flushUsage(out, r.usage)
		}
		if err != nil {
			return r.fail(err)
		}
		if chunk, ok := fastFrame(&scan, payload); ok {
			r.frame()
			if chunk.FinishReason != "" {
				chunk.Usage = r.usage
			}
			if err := out.Send(chunk); err != nil {
				return err
			}
			continue
		}
		w = chunkWire{}
		if err := json.Unmarshal(payload, &w); err != nil {
			return r.protocol("unreadable stream frame: %v", err)
		}
		if err := r.frameOf(&w, out); err != nil {
			return err
		}
	}
}

// fastFrame reads a frame whose only choice carries text (content,
// reasoning, refusal, role) and perhaps a finish_reason, the shape of almost
// every frame of a stream. ok is false for anything else: tool calls,
// logprobs, usage, errors, several choices, or JSON it does not expect.
func fastFrame(s *jsonscan.Scanner, payload []byte) (c domain.Chunk, ok bool) {
	s.Reset(payload)
	choices := 0
	ok = s.Object(func(key []byte) bool {
		switch string(key) {
		case "choices":
			return s.Array(func() bool {
				if choices++; choices > 1 {
					return false
				}
				return fastChoice(s, &c)
			})
		case "usage", "error":
			return s.Null()
		default:
			if jsonscan.FoldsTo(key, "choices", "usage", "error") {
				return false
			}
			return s.Skip()
		}
	})
	return c, ok && choices == 1 && s.Done()
}

func fastChoice(s *jsonscan.Scanner, c *domain.Chunk) bool {
	return s.Object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "index":
			c.Index, ok = s.Int()
			return ok && c.Index < wire.MaxChoices
		case "delta":
			return s.Object(func(key []byte) bool {
				var ok bool
				switch string(key) {
				case "content":
					c.Content, ok = s.String()
				case "reasoning_content":
					c.Reasoning, ok = s.String()
				case "reasoning":
					var r string
					r, ok = s.String()
					if c.Reasoning == "" {
						c.Reasoning = r
					}
				case "refusal":
					c.Refusal, ok = s.String()
				case "role":
					_, ok = s.String()
				default:
					return false // tool_calls, function_call, anything new
				}
				return ok
			})
		case "logprobs":
			return s.Null()
		case "finish_reason":
			c.FinishReason, ok = s.String()
			if c.FinishReason == "function_call" {
				c.FinishReason = domain.FinishToolCalls
			}
			return ok
		}
		return false
	})
}

// sseData reads an event stream and yields the payloads of its data lines.
// Comments, blank lines and other fields are skipped; [DONE] ends it.
// Lines longer than maxFrame are refused. Chat and text completion streams
// both read their frames through it.
type sseData struct {
	lines *upstream.Lines
	done  bool // [DONE] was seen
}

func newSSEData(body io.Reader) *sseData {
	return &sseData{lines: upstream.NewLines(body, upstream.LineBuffer, maxFrame)}
}

// next returns the next data payload, valid until the next call. It returns
// io.EOF once [DONE] was seen, and io.ErrUnexpectedEOF when the stream ends
// without it: the answer may be cut, which is a failure.
func (s *sseData) next() ([]byte, error) {
	for {
		if s.done {
			return nil, io.EOF
		}
		line, err := s.lines.Next()
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(line, dataPrefix) {
			continue // blank separators, comments, event:/id: lines
		}
		payload := bytes.TrimSpace(line[len(dataPrefix):])
		if bytes.Equal(payload, doneMarker) {
			s.done = true
			return nil, io.EOF
		}
		return payload, nil
	}
}

func (r *sseReader) frameOf(w *chunkWire, out ports.Sink[domain.Chunk]) error {
	if len(w.Error) > 0 {
		return inBandError(r.backend, r.where, w.Error)
	}
	r.frame()
	if w.Usage != nil {
		r.usage = w.Usage.domain()
	}
	for i := range w.Choices {
		ch := &w.Choices[i]
		if ch.Index < 0 || ch.Index >= wire.MaxChoices {
			return r.protocol("choice index %d out of range", ch.Index)
		}
		d := &ch.Delta
		chunk := domain.Chunk{Index: ch.Index, Content: d.Content, Refusal: d.Refusal, Reasoning: d.ReasoningContent}
		if chunk.Reasoning == "" {
			chunk.Reasoning = d.Reasoning
		}
		chunk.Logprobs = ch.Logprobs.domain()
		for _, tc := range d.ToolCalls {
			chunk.ToolCalls = append(chunk.ToolCalls, r.calls.delta(ch.Index, tc))
		}
		if f := d.FunctionCall; f != nil {
			chunk.ToolCalls = append(chunk.ToolCalls, r.calls.delta(ch.Index, toolCallWire{Function: *f}))
		}
		if ch.FinishReason != "" {
			chunk.FinishReason = ch.FinishReason
			if chunk.FinishReason == "function_call" {
				chunk.FinishReason = domain.FinishToolCalls
			}
			chunk.Usage = r.usage
		}
		if err := out.Send(chunk); err != nil {
			return err
		}
	}
	return nil
}

// inBandError reads an error an upstream sent inside its stream, after a
// 200: a rate limit when its code says so, else a server error.
func inBandError(backend, where string, raw []byte) *domain.UpstreamError {
	e := &domain.UpstreamError{Backend: backend, Kind: domain.FailureServer, Detail: "error frame in the stream of " + where}
	upstream.ParseErrorBody(append(append([]byte(`{"error":`), raw...), '}'), e)
	if e.Code == "rate_limit_exceeded" || e.Type == "rate_limit_exceeded" {
		e.Kind = domain.FailureRateLimited
	}
	return e
}

// toolCallIndex numbers streamed tool calls per choice 0, 1, 2… even when an
// upstream repeats an index for parallel calls (telling them apart by id),
// and gives a call without an id one.
type toolCallIndex struct {
	choices map[int]*callState
}

type callState struct {
	byUpstream map[int]int    // upstream index -> our index of its latest call
	byID       map[string]int // call id -> our index
	next       int
}

func (t *toolCallIndex) delta(choice int, tc toolCallWire) domain.ToolCallDelta {
	if t.choices == nil {
		t.choices = map[int]*callState{}
	}
	s := t.choices[choice]
	if s == nil {
		s = &callState{byUpstream: map[int]int{}, byID: map[string]int{}}
		t.choices[choice] = s
	}
	up := 0
	if tc.Index != nil {
		up = *tc.Index
	}
	// A continuation carries arguments only: some upstreams repeat the id
	// and name on every fragment, which accumulators would concatenate.
	d := domain.ToolCallDelta{Arguments: tc.Function.Arguments}
	idx, known := s.byUpstream[up]
	switch {
	case tc.ID != "":
		if i, ok := s.byID[tc.ID]; ok {
			d.Index = i
			return d
		}
		d.Name = tc.Function.Name
		idx = s.next
		s.next++
		s.byID[tc.ID] = idx
		s.byUpstream[up] = idx
		d.ID = tc.ID
	case !known || (tc.Function.Name != "" && tc.Index == nil):
		d.Name = tc.Function.Name
		idx = s.next
		s.next++
		s.byUpstream[up] = idx
		d.ID = wire.NewToolCallID()
	}
	d.Index = idx
	return d
}

// flushUsage hands over a usage that arrived after the finishing chunk (the
// include_usage form) on a chunk of its own.
func flushUsage(out ports.Sink[domain.Chunk], usage *domain.Usage) error {
	if usage == nil {
		return nil
	}
	return out.Send(domain.Chunk{Usage: usage})
}

type modelsWire struct {
	Data []struct {
		ID      string `json:"id"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	} `json:"data"`
}

// ListModels reads GET /models.
func (c *Client) ListModels(ctx context.Context) ([]domain.Model, error) {
	call, err := c.call.Do(ctx, http.MethodGet, "models", nil)
	if err != nil {
		return nil, err
	}
	defer call.Close()
	var w modelsWire
	if err := json.NewDecoder(io.LimitReader(call.Resp.Body, maxAnswer)).Decode(&w); err != nil {
		return nil, call.Protocol("unreadable model list: %v", err)
	}
	out := make([]domain.Model, 0, len(w.Data))
	for _, m := range w.Data {
		out = append(out, domain.Model{ID: m.ID, Created: m.Created, OwnedBy: m.OwnedBy})
	}
	return out, nil
}

// RewriteBody returns the client's body as the upstream gets it: "model"
// set to the upstream's name, and the answer asked for as a stream with
// usage ("stream": true, "stream_options": {"include_usage": true}),
// whether or not the client streams. Every other member passes untouched:
// the body is spliced, not decoded and re-encoded. raw must be a JSON
// object (the inbound adapter checked it, and refused repeated or
// differently cased "model" and "stream" keys). Chat and text completion
// requests are both forwarded this way.
func RewriteBody(raw []byte, model string) ([]byte, error) {
	return splice(raw, member{key: "model", text: model}, member{key: "stream", json: jsonTrue},
		member{key: "stream_options", json: includeUsage})
}

var (
	jsonTrue     = []byte("true")
	includeUsage = []byte(`{"include_usage":true}`)
)

// member is a top-level member splice sets: its key, and its value as
// JSON text, or (json nil) as a string to be written as a JSON string.
// With drop, the key is removed and nothing written in its place.
type member struct {
	key  string
	json []byte
	text string
	drop bool
}

// splice returns the JSON object raw with the members of set in place of
// any it had by the same keys (repeated ones included), appended after the
// members it keeps, in set's order; members to drop are removed. What it
// keeps passes byte for byte; keys are compared as encoding/json reads
// them (escapes resolved).
func splice(raw []byte, set ...member) ([]byte, error) {
	size := len(raw) + 2
	for _, m := range set {
		size += len(m.key) + len(m.json) + len(m.text) + 8
	}
	var sc jsonscan.Scanner
	sc.Reset(raw)
	out := make([]byte, 1, size)
	out[0] = '{'
	ok := sc.Members(func(key []byte, at int) bool {
		if !sc.Skip() {
			return false
		}
		for _, m := range set {
			if string(key) == m.key {
				return true // written below
			}
		}
		out = append(out, raw[at:sc.Pos()]...)
		out = append(out, ',')
		return true
	})
	if !ok || !sc.Done() {
		return nil, domain.Invalid("", "We could not parse the JSON body of your request.")
	}
	for _, m := range set {
		if m.drop {
			continue
		}
		out = wire.AppendString(out, m.key)
		out = append(out, ':')
		if m.json != nil {
			out = append(out, m.json...)
		} else {
			out = wire.AppendString(out, m.text)
		}
		out = append(out, ',')
	}
	if len(out) > 1 {
		out = out[:len(out)-1] // the last comma
	}
	return append(out, '}'), nil
}
