// Package gateway is the client for OpenAI-compatible backends: the LLM
// gateway, vLLM, LiteLLM, llama.cpp's server, Ollama's /v1. The client's
// request body is forwarded with only the model rewritten.
package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Client speaks OpenAI's Chat Completions protocol to one backend.
type Client struct {
	call *upstream.Caller
}

var (
	_ ports.ChatBackend = (*Client)(nil)
	_ ports.ModelLister = (*Client)(nil)
)

// New builds a client; opts.BaseURL is the OpenAI base (…/v1).
func New(opts upstream.Options) *Client {
	return &Client{call: upstream.New(opts)}
}

// maxAnswer caps a buffered answer read from the upstream.
const maxAnswer = 64 << 20

// maxFrame caps one SSE line.
const maxFrame = 16 << 20

type messageWire struct {
	Content          *string        `json:"content"`
	Refusal          *string        `json:"refusal"`
	ReasoningContent *string        `json:"reasoning_content"`
	Reasoning        *string        `json:"reasoning"` // vLLM's and others' name for it
	ToolCalls        []toolCallWire `json:"tool_calls"`
	FunctionCall     *functionWire  `json:"function_call"`
}

type toolCallWire struct {
	Index    *int         `json:"index"`
	ID       string       `json:"id"`
	Function functionWire `json:"function"`
}

type functionWire struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

func (m *messageWire) reasoning() string {
	if m.ReasoningContent != nil {
		return *m.ReasoningContent
	}
	if m.Reasoning != nil {
		return *m.Reasoning
	}
	return ""
}

type completionWire struct {
	Choices []struct {
		Index        int             `json:"index"`
		Message      messageWire     `json:"message"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageWire `json:"usage"`
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

func logprobs(raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// Complete forwards a buffered request.
func (c *Client) Complete(ctx context.Context, req domain.ChatRequest) (domain.Completion, error) {
	var out domain.Completion
	body, err := RewriteBody(req.Raw, req.Model, false)
	if err != nil {
		return out, err
	}
	call, err := c.call.Do(ctx, http.MethodPost, "chat/completions", body)
	if err != nil {
		return out, err
	}
	defer call.Close()
	data, err := io.ReadAll(io.LimitReader(call.Resp.Body, maxAnswer))
	if err != nil {
		return out, call.Fail(err)
	}
	call.Started()
	var w completionWire
	if err := json.Unmarshal(data, &w); err != nil {
		return out, call.Protocol("unreadable chat.completion: %v", err)
	}
	if len(w.Choices) == 0 {
		return out, call.Protocol("chat.completion without choices")
	}
	out.Choices = make([]domain.Choice, len(w.Choices))
	for i, ch := range w.Choices {
		m := ch.Message
		choice := domain.Choice{Index: ch.Index, Content: m.Content, Refusal: m.Refusal, Reasoning: m.reasoning(), Logprobs: logprobs(ch.Logprobs)}
		for _, tc := range m.ToolCalls {
			id := tc.ID
			if id == "" {
				id = openai.NewToolCallID()
			}
			choice.ToolCalls = append(choice.ToolCalls, domain.ToolCall{ID: id, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		if f := m.FunctionCall; f != nil {
			choice.ToolCalls = append(choice.ToolCalls, domain.ToolCall{ID: openai.NewToolCallID(), Name: f.Name, Arguments: f.Arguments})
		}
		if ch.FinishReason != nil {
			choice.FinishReason = *ch.FinishReason
			if choice.FinishReason == "function_call" {
				choice.FinishReason = domain.FinishToolCalls
			}
		}
		out.Choices[i] = choice
	}
	out.Usage = w.Usage.domain()
	return out, nil
}

type chunkWire struct {
	Choices []struct {
		Index        int             `json:"index"`
		Delta        messageWire     `json:"delta"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageWire      `json:"usage"`
	Error json.RawMessage `json:"error"`
}

var (
	dataPrefix = []byte("data:")
	doneMarker = []byte("[DONE]")
)

// Stream forwards a streamed request and relays each SSE frame as chunks,
// one per choice it carries.
func (c *Client) Stream(ctx context.Context, req domain.ChatRequest, fn ports.ChunkFunc) error {
	body, err := RewriteBody(req.Raw, req.Model, true)
	if err != nil {
		return err
	}
	call, err := c.call.Do(ctx, http.MethodPost, "chat/completions", body)
	if err != nil {
		return err
	}
	defer call.Close()
	r := sseReader{backend: c.call.Name(), frame: call.Started, fail: call.Fail}
	return r.relay(call.Resp.Body, fn)
}

// sseReader turns an OpenAI event stream into chunks: one per choice of
// each data frame, until [DONE].
type sseReader struct {
	backend string
	frame   func()            // called for every data frame (timers)
	fail    func(error) error // classifies read errors
	usage   *domain.Usage
	calls   toolCallIndex
}

func (r *sseReader) protocol(format string, args ...any) error {
	return &domain.UpstreamError{Backend: r.backend, Kind: domain.FailureProtocol, Message: fmt.Sprintf(format, args...)}
}

// relay reads body to [DONE], calling fn for each chunk. A stream that ends
// without [DONE] is a failure: the answer may be cut.
func (r *sseReader) relay(body io.Reader, fn ports.ChunkFunc) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 16<<10), maxFrame)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, dataPrefix) {
			continue // blank separators, comments, event:/id: lines
		}
		data := bytes.TrimSpace(line[len(dataPrefix):])
		if bytes.Equal(data, doneMarker) {
			return flushUsage(fn, r.usage)
		}
		if err := r.frameOf(data, fn); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return r.fail(err)
	}
	return r.fail(io.ErrUnexpectedEOF)
}

func (r *sseReader) frameOf(data []byte, fn ports.ChunkFunc) error {
	var w chunkWire
	if err := json.Unmarshal(data, &w); err != nil {
		return r.protocol("unreadable stream frame: %v", err)
	}
	if len(w.Error) > 0 {
		e := &domain.UpstreamError{Backend: r.backend, Kind: domain.FailureStatus, Status: http.StatusBadGateway}
		upstream.ParseErrorBody(data, e)
		return e
	}
	r.frame()
	if w.Usage != nil {
		r.usage = w.Usage.domain()
	}
	for _, ch := range w.Choices {
		if ch.Index < 0 || ch.Index >= openai.MaxChoices {
			return r.protocol("choice index %d out of range", ch.Index)
		}
		d := ch.Delta
		chunk := domain.Chunk{Index: ch.Index, Reasoning: d.reasoning(), Logprobs: logprobs(ch.Logprobs)}
		if d.Content != nil {
			chunk.Content = *d.Content
		}
		if d.Refusal != nil {
			chunk.Refusal = *d.Refusal
		}
		for _, tc := range d.ToolCalls {
			chunk.ToolCalls = append(chunk.ToolCalls, r.calls.delta(ch.Index, tc))
		}
		if f := d.FunctionCall; f != nil {
			chunk.ToolCalls = append(chunk.ToolCalls, r.calls.delta(ch.Index, toolCallWire{Function: *f}))
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			chunk.FinishReason = *ch.FinishReason
			if chunk.FinishReason == "function_call" {
				chunk.FinishReason = domain.FinishToolCalls
			}
			chunk.Usage = r.usage
		}
		if err := fn(chunk); err != nil {
			return err
		}
	}
	return nil
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
		d.ID = openai.NewToolCallID()
	}
	d.Index = idx
	return d
}

// flushUsage hands over a usage that arrived after the finishing chunk (the
// include_usage form) on a chunk of its own.
func flushUsage(fn ports.ChunkFunc, usage *domain.Usage) error {
	if usage == nil {
		return nil
	}
	return fn(domain.Chunk{Usage: usage})
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

// RewriteBody returns the client's body with "model" set to the upstream's
// name; stream_options is dropped from a buffered request. Every other field
// passes untouched.
func RewriteBody(raw []byte, model string, stream bool) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, domain.Invalid("", "We could not parse the JSON body of your request.")
	}
	m, _ := json.Marshal(model)
	fields["model"] = m
	if !stream {
		delete(fields, "stream_options")
	}
	return json.Marshal(fields)
}
