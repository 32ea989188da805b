// Package gateway is the client for OpenAI-compatible backends: the LLM
// gateway, vLLM, LiteLLM, llama.cpp's server, Ollama's /v1. The client's
// request body is forwarded with only the model rewritten.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
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
		Logprobs     rawUnlessNull `json:"logprobs"`
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
	return r.relay(call.Body(ctx), fn)
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
// without [DONE] is a failure: the answer may be cut. The common frame (text
// deltas of one choice) is read by a reflection-free fast path; any other
// goes through encoding/json.
func (r *sseReader) relay(body io.Reader, fn ports.ChunkFunc) error {
	data := &sseData{lines: upstream.NewLines(body, 4<<10, maxFrame)}
	var scan jsonscan.Scanner
	var w chunkWire
	for {
		payload, err := data.next()
		switch {
		case err == io.EOF && data.done:
			return flushUsage(fn, r.usage)
		case err == io.EOF:
			return r.fail(io.ErrUnexpectedEOF)
		case err != nil:
			return r.fail(err)
		}
		if chunk, ok := fastFrame(&scan, payload); ok {
			r.frame()
			if chunk.FinishReason != "" {
				chunk.Usage = r.usage
			}
			if err := fn(chunk); err != nil {
				return err
			}
			continue
		}
		w = chunkWire{}
		if err := json.Unmarshal(payload, &w); err != nil {
			return r.protocol("unreadable stream frame: %v", err)
		}
		if err := r.frameOf(&w, fn); err != nil {
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
			return ok && c.Index < openai.MaxChoices
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
// Lines longer than maxFrame are refused.
type sseData struct {
	lines *upstream.Lines
	done  bool // [DONE] was seen
}

// next returns the next data payload, valid until the next call; io.EOF
// at the end (done says whether [DONE] was seen).
func (s *sseData) next() ([]byte, error) {
	for {
		if s.done {
			return nil, io.EOF
		}
		line, err := s.lines.Next()
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

func (r *sseReader) frameOf(w *chunkWire, fn ports.ChunkFunc) error {
	if len(w.Error) > 0 {
		e := &domain.UpstreamError{Backend: r.backend, Kind: domain.FailureStatus, Status: http.StatusBadGateway}
		upstream.ParseErrorBody(append([]byte(`{"error":`), append(w.Error, '}')...), e)
		return e
	}
	r.frame()
	if w.Usage != nil {
		r.usage = w.Usage.domain()
	}
	for i := range w.Choices {
		ch := &w.Choices[i]
		if ch.Index < 0 || ch.Index >= openai.MaxChoices {
			return r.protocol("choice index %d out of range", ch.Index)
		}
		d := &ch.Delta
		chunk := domain.Chunk{Index: ch.Index, Content: d.Content, Refusal: d.Refusal, Reasoning: d.ReasoningContent}
		if chunk.Reasoning == "" {
			chunk.Reasoning = d.Reasoning
		}
		if len(ch.Logprobs) > 0 {
			chunk.Logprobs = ch.Logprobs
		}
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
// name; stream_options is dropped from a buffered request. Every other
// byte passes untouched: the body is spliced, not decoded and re-encoded.
// raw must be a JSON object (DecodeChatRequest checked it).
func RewriteBody(raw []byte, model string, stream bool) ([]byte, error) {
	members, ok := topLevelMembers(raw)
	if !ok {
		return nil, domain.Invalid("", "We could not parse the JSON body of your request.")
	}
	out := make([]byte, 0, len(raw)+len(model)+16)
	out = append(out, raw[:members[0].start]...) // up to and including '{'
	wrote, modelSet := false, false
	for _, m := range members[1:] {
		if (m.key == "model" && modelSet) || (m.key == "stream_options" && !stream) {
			continue
		}
		if wrote {
			out = append(out, ',')
		}
		wrote = true
		if m.key == "model" { // in its place, once
			out = append(out, `"model":`...)
			out = openai.AppendString(out, model)
			modelSet = true
			continue
		}
		out = append(out, raw[m.start:m.end]...)
	}
	if !modelSet {
		if wrote {
			out = append(out, ',')
		}
		out = append(out, `"model":`...)
		out = openai.AppendString(out, model)
	}
	return append(out, '}'), nil
}

// member is one "key": value of the top-level object, as the byte span
// [start, end) of raw.
type member struct {
	key        string
	start, end int
}

// topLevelMembers lists the members of the JSON object raw. The first entry
// only marks where the members begin (just after '{').
func topLevelMembers(raw []byte) ([]member, bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, false
	}
	members := []member{{start: i + 1}}
	i++
	for {
		i = skipSpace(raw, i)
		if i < len(raw) && raw[i] == '}' {
			return members, true
		}
		start := i
		keyEnd, ok := skipString(raw, i)
		if !ok {
			return nil, false
		}
		key := string(raw[i+1 : keyEnd-1])
		if bytes.IndexByte(raw[i:keyEnd], '\\') >= 0 && json.Unmarshal(raw[i:keyEnd], &key) != nil {
			return nil, false
		}
		i = skipSpace(raw, keyEnd)
		if i >= len(raw) || raw[i] != ':' {
			return nil, false
		}
		end, ok := skipValue(raw, skipSpace(raw, i+1))
		if !ok {
			return nil, false
		}
		members = append(members, member{key: key, start: start, end: end})
		i = skipSpace(raw, end)
		if i < len(raw) && raw[i] == ',' {
			i++
			continue
		}
		if i < len(raw) && raw[i] == '}' {
			return members, true
		}
		return nil, false
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	}
	for ; i < len(b); i++ { // number, true, false, null
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, true
		}
	}
	return i, true
}
