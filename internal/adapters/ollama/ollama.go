// Package ollama is the client for Ollama's native API: /api/chat (NDJSON
// stream) and /api/tags. It translates OpenAI-style requests into Ollama's
// form and Ollama's answers back.
package ollama

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
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
}

var (
	_ ports.ChatBackend = (*Client)(nil)
	_ ports.ModelLister = (*Client)(nil)
)

// Options are the Ollama-specific settings of a client.
type Options struct {
	// Images loads image_url parts; nil rejects images.
	Images ImageLoader
	// NumCtx sets num_ctx per model name, so long prompts are not cut to
	// Ollama's small default context.
	NumCtx map[string]int
}

// MaxChoices caps n: each choice is one more generation on the host.
const MaxChoices = 8

// New builds a client; opts.BaseURL is the Ollama host (http://host:11434).
func New(opts upstream.Options, o Options) *Client {
	return &Client{call: upstream.New(opts), images: o.Images, numCtx: o.NumCtx}
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
	Error           json.RawMessage `json:"error"`
}

func (r *chatResponse) usage() *domain.Usage {
	return &domain.Usage{PromptTokens: r.PromptEvalCount, CompletionTokens: r.EvalCount}
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
	total := domain.Usage{}
	sink := choiceSink{out: out}
	for i := range n {
		choice := body
		if opts := p.optionsFor(i); opts != nil {
			choice.Options = opts
		}
		data, err := encode(choice)
		if err != nil {
			return err
		}
		sink.index, sink.last, sink.total = i, i == n-1, &total
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
	total *domain.Usage
}

func (s *choiceSink) Send(ch domain.Chunk) error {
	ch.Index = s.index
	if ch.Usage != nil {
		if s.index == 0 {
			s.total.PromptTokens = ch.Usage.PromptTokens
		}
		s.total.CompletionTokens += ch.Usage.CompletionTokens
		ch.Usage = nil
		if s.last {
			u := *s.total
			ch.Usage = &u
		}
	}
	return s.out.Send(ch)
}

func (s *choiceSink) Flush() error { return s.out.Flush() }

func encode(body ChatRequest) ([]byte, error) {
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
	r := ndjsonReader{backend: c.call.Name(), where: call.Where(), plan: p, frame: call.Started, fail: call.Fail}
	return r.relay(call.Body(out.Flush), out)
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
	frame   func()            // called for every line (timers)
	fail    func(error) error // classifies read errors
	calls   int               // tool calls sent so far
	forced  string            // forceAny: the answer, read whole before it becomes a call
}

// relay reads lines to the one that says done. The common line (a piece
// of text, not the last) is read by a reflection-free fast path; any other
// goes through encoding/json.
func (r *ndjsonReader) relay(body io.Reader, out ports.Sink[domain.Chunk]) error {
	lines := upstream.NewLines(body, 4<<10, maxFrame)
	var scan jsonscan.Scanner
	var resp chatResponse
	for {
		line, err := lines.Next()
		switch {
		case err == io.EOF:
			return r.fail(io.ErrUnexpectedEOF)
		case err != nil:
			return r.fail(err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		resp = chatResponse{}
		if !fastLine(&scan, line, &resp) {
			resp = chatResponse{}
			if err := json.Unmarshal(line, &resp); err != nil {
				return &domain.UpstreamError{Backend: r.backend, Kind: domain.FailureProtocol, Message: "unreadable /api/chat stream line: " + err.Error(), Detail: r.where}
			}
		}
		done, err := r.chunk(&resp, out)
		if err != nil || done {
			return err
		}
	}
}

// fastLine reads a line that carries a piece of text or thinking and is not
// the last: the shape of almost every line of a stream. It reports false for
// anything else (tool calls, images, errors, the final line, unexpected
// JSON), which encoding/json then reads.
func fastLine(s *jsonscan.Scanner, line []byte, resp *chatResponse) bool {
	s.Reset(line)
	ok := s.Object(func(key []byte) bool {
		switch string(key) {
		case "message":
			return s.Object(func(key []byte) bool {
				var ok bool
				switch string(key) {
				case "role":
					_, ok = s.String()
				case "content":
					resp.Message.Content, ok = s.String()
				case "thinking":
					resp.Message.Thinking, ok = s.String()
				}
				return ok // tool_calls, images, anything new: not here
			})
		case "done":
			done, ok := s.Bool()
			return ok && !done
		case "error", "done_reason", "prompt_eval_count", "eval_count":
			return false
		default:
			if jsonscan.FoldsTo(key, "message", "done", "error", "done_reason", "prompt_eval_count", "eval_count") {
				return false
			}
			return s.Skip()
		}
	})
	return ok && s.Done()
}

// chunk turns one decoded line into a chunk for fn; done says it was the last.
func (r *ndjsonReader) chunk(resp *chatResponse, out ports.Sink[domain.Chunk]) (done bool, err error) {
	if len(resp.Error) > 0 {
		e := &domain.UpstreamError{Backend: r.backend, Kind: domain.FailureServer, Detail: "error line in the stream of " + r.where}
		upstream.ParseErrorBody(append(append([]byte(`{"error":`), resp.Error...), '}'), e)
		return false, e
	}
	r.frame()
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
		chunk.Content = content
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
