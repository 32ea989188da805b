package openai

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Completion is the chat.completion object.
type Completion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
}

// Choice is one entry of Completion.Choices.
type Choice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

// ResponseMessage is the assistant message of a choice. Content is null
// only beside tool calls.
type ResponseMessage struct {
	Role             string          `json:"role"`
	Content          *string         `json:"content"`
	Refusal          *string         `json:"refusal"`
	ReasoningContent string          `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall      `json:"tool_calls,omitempty"`
	FunctionCall     *FunctionCall   `json:"function_call,omitempty"`
	Annotations      json.RawMessage `json:"annotations,omitempty"`
}

// ToolCall is a function call in a response message.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names a function and its JSON arguments.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Usage is CompletionUsage.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func usageOf(u *domain.Usage) *Usage {
	if u == nil {
		return nil
	}
	return &Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens()}
}

var null = json.RawMessage("null")

// NewCompletion builds the chat.completion object for c, named as the
// client asked (model). legacy answers with the deprecated function_call
// for a request that used functions.
func NewCompletion(id string, created int64, model string, c domain.Completion, legacy bool) Completion {
	out := Completion{ID: id, Object: "chat.completion", Created: created, Model: model,
		Choices: make([]Choice, len(c.Choices)), Usage: usageOf(c.Usage)}
	for i, ch := range c.Choices {
		msg := ResponseMessage{Role: domain.RoleAssistant, Content: ch.Content, Refusal: ch.Refusal, ReasoningContent: ch.Reasoning}
		finish := ch.FinishReason
		if finish == "" {
			finish = domain.FinishStop
		}
		if len(ch.ToolCalls) > 0 {
			if legacy {
				tc := ch.ToolCalls[0]
				msg.FunctionCall = &FunctionCall{Name: tc.Name, Arguments: tc.Arguments}
				if finish == domain.FinishToolCalls {
					finish = "function_call"
				}
			} else {
				msg.ToolCalls = make([]ToolCall, len(ch.ToolCalls))
				for j, tc := range ch.ToolCalls {
					msg.ToolCalls[j] = ToolCall{ID: tc.ID, Type: "function", Function: FunctionCall{Name: tc.Name, Arguments: tc.Arguments}}
				}
			}
		} else if msg.Content == nil {
			empty := ""
			msg.Content = &empty
		}
		lp := null
		if len(ch.Logprobs) > 0 {
			lp = appendLogprobs(nil, ch.Logprobs)
		}
		out.Choices[i] = Choice{Index: ch.Index, Message: msg, Logprobs: lp, FinishReason: finish}
	}
	return out
}

// ChunkEncoder writes chat.completion.chunk objects as SSE frames. The id,
// created and model are fixed per stream and encoded once; a frame reuses
// one buffer, so encoding a chunk does not allocate once the buffer grew.
type ChunkEncoder struct {
	head   []byte // `data: {"id":…,"model":…,"choices":[`
	buf    []byte
	opened []bool // per choice index: the role-carrying first delta went out
	legacy bool   // tool calls go out as the deprecated function_call
}

// NewChunkEncoder prepares the frames of one stream.
func NewChunkEncoder(id string, created int64, model string, legacy bool) *ChunkEncoder {
	h := make([]byte, 0, 96+len(id)+len(model))
	h = append(h, `data: {"id":`...)
	h = wire.AppendString(h, id)
	h = append(h, `,"object":"chat.completion.chunk","created":`...)
	h = strconv.AppendInt(h, created, 10)
	h = append(h, `,"model":`...)
	h = wire.AppendString(h, model)
	h = append(h, `,"choices":[`...)
	return &ChunkEncoder{head: h, buf: make([]byte, 0, 512), legacy: legacy}
}

// Chunk encodes one chunk; the first of each choice carries role
// "assistant". The returned frame is valid until the next call.
func (e *ChunkEncoder) Chunk(c domain.Chunk) []byte {
	b := e.buf[:0]
	first := e.open(c.Index)
	if first && len(c.Logprobs) > 0 {
		// A choice's first chunk carries the role and no tokens, as OpenAI
		// sends it: the SDKs' stream accumulators start a choice from its
		// first chunk and then add that chunk's logprobs again, so tokens
		// there would be counted twice.
		b = append(b, e.head...)
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(c.Index), 10)
		b = append(b, `,"delta":{"role":"assistant","content":""},"logprobs":{"content":[],"refusal":null},"finish_reason":null}]}`+"\n\n"...)
		first = false
	}
	b = append(b, e.head...)
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(c.Index), 10)
	b = append(b, `,"delta":{`...)
	comma := false
	field := func(name string) {
		if comma {
			b = append(b, ',')
		}
		comma = true
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	if first {
		field("role")
		b = append(b, `"assistant"`...)
	}
	switch {
	case c.Content != "":
		field("content")
		b = wire.AppendString(b, c.Content)
	case first && len(c.ToolCalls) > 0:
		field("content")
		b = append(b, "null"...)
	case first && c.FinishReason == "" && c.Reasoning == "" && c.Refusal == "":
		field("content")
		b = append(b, `""`...)
	}
	if c.Reasoning != "" {
		field("reasoning_content")
		b = wire.AppendString(b, c.Reasoning)
	}
	if c.Refusal != "" {
		field("refusal")
		b = wire.AppendString(b, c.Refusal)
	}
	if len(c.ToolCalls) > 0 {
		if e.legacy {
			tc := c.ToolCalls[0]
			field("function_call")
			b = appendFunction(b, tc.Name, tc.Arguments)
		} else {
			field("tool_calls")
			b = append(b, '[')
			for i, tc := range c.ToolCalls {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"index":`...)
				b = strconv.AppendInt(b, int64(tc.Index), 10)
				if tc.ID != "" {
					b = append(b, `,"id":`...)
					b = wire.AppendString(b, tc.ID)
					b = append(b, `,"type":"function"`...)
				}
				b = append(b, `,"function":`...)
				b = appendFunction(b, tc.Name, tc.Arguments)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
	}
	b = append(b, `},"logprobs":`...)
	if len(c.Logprobs) > 0 {
		b = appendLogprobs(b, c.Logprobs)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"finish_reason":`...)
	switch {
	case c.FinishReason == "":
		b = append(b, "null"...)
	case e.legacy && c.FinishReason == domain.FinishToolCalls:
		b = append(b, `"function_call"`...)
	default:
		b = wire.AppendString(b, c.FinishReason)
	}
	b = append(b, "}]}\n\n"...)
	e.buf = b
	return b
}

// appendFunction writes {"name":…,"arguments":…}; name is left out on
// argument-only fragments.
func appendFunction(b []byte, name, args string) []byte {
	b = append(b, '{')
	if name != "" {
		b = append(b, `"name":`...)
		b = wire.AppendString(b, name)
		b = append(b, ',')
	}
	b = append(b, `"arguments":`...)
	b = wire.AppendString(b, args)
	return append(b, '}')
}

// open marks choice i as started and reports whether it was not before.
func (e *ChunkEncoder) open(i int) bool {
	if i < 0 {
		i = 0
	}
	for len(e.opened) <= i {
		e.opened = append(e.opened, false)
	}
	if e.opened[i] {
		return false
	}
	e.opened[i] = true
	return true
}

// Usage encodes the final usage chunk sent when the client asked for
// stream_options.include_usage: no choices, only usage.
func (e *ChunkEncoder) Usage(u domain.Usage) []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `],"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CompletionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens()), 10)
	b = append(b, "}}\n\n"...)
	e.buf = b
	return b
}

// Done is the stream's last frame.
var Done = []byte("data: [DONE]\n\n")

// ErrorFrame is an in-band error for a stream that already started.
func ErrorFrame(body ErrorBody) []byte {
	j, _ := json.Marshal(body)
	b := make([]byte, 0, len(j)+8)
	b = append(b, "data: "...)
	b = append(b, j...)
	return append(b, "\n\n"...)
}

// AppendJSON appends c as JSON, byte for byte what encoding/json writes for
// it except that <, > and & are not escaped (as for stream chunks). It keeps
// the buffered answer off reflection.
func (c *Completion) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = wire.AppendString(b, c.ID)
	b = append(b, `,"object":`...)
	b = wire.AppendString(b, c.Object)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, c.Created, 10)
	b = append(b, `,"model":`...)
	b = wire.AppendString(b, c.Model)
	b = append(b, `,"choices":[`...)
	for i := range c.Choices {
		if i > 0 {
			b = append(b, ',')
		}
		b = c.Choices[i].appendJSON(b)
	}
	b = append(b, ']')
	if u := c.Usage; u != nil {
		b = append(b, `,"usage":{"prompt_tokens":`...)
		b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
		b = append(b, `,"completion_tokens":`...)
		b = strconv.AppendInt(b, int64(u.CompletionTokens), 10)
		b = append(b, `,"total_tokens":`...)
		b = strconv.AppendInt(b, int64(u.TotalTokens), 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

func (ch *Choice) appendJSON(b []byte) []byte {
	m := &ch.Message
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(ch.Index), 10)
	b = append(b, `,"message":{"role":`...)
	b = wire.AppendString(b, m.Role)
	b = append(b, `,"content":`...)
	b = appendNullable(b, m.Content)
	b = append(b, `,"refusal":`...)
	b = appendNullable(b, m.Refusal)
	if m.ReasoningContent != "" {
		b = append(b, `,"reasoning_content":`...)
		b = wire.AppendString(b, m.ReasoningContent)
	}
	if len(m.ToolCalls) > 0 {
		b = append(b, `,"tool_calls":[`...)
		for j, tc := range m.ToolCalls {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = wire.AppendString(b, tc.ID)
			b = append(b, `,"type":`...)
			b = wire.AppendString(b, tc.Type)
			b = append(b, `,"function":{"name":`...)
			b = wire.AppendString(b, tc.Function.Name)
			b = append(b, `,"arguments":`...)
			b = wire.AppendString(b, tc.Function.Arguments)
			b = append(b, `}}`...)
		}
		b = append(b, ']')
	}
	if f := m.FunctionCall; f != nil {
		b = append(b, `,"function_call":{"name":`...)
		b = wire.AppendString(b, f.Name)
		b = append(b, `,"arguments":`...)
		b = wire.AppendString(b, f.Arguments)
		b = append(b, '}')
	}
	if len(m.Annotations) > 0 {
		b = append(b, `,"annotations":`...)
		b = append(b, m.Annotations...)
	}
	b = append(b, `},"logprobs":`...)
	if len(ch.Logprobs) > 0 {
		b = append(b, ch.Logprobs...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"finish_reason":`...)
	b = wire.AppendString(b, ch.FinishReason)
	return append(b, '}')
}

func appendNullable(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return wire.AppendString(b, *s)
}

// NewCompletionID returns a fresh id such as chatcmpl-Q2V7… (26 random
// base32 characters).
func NewCompletionID() string { return wire.RandomText("chatcmpl-") }

// appendLogprobs writes a choice's logprobs object: {"content":[…],"refusal":null}.
func appendLogprobs(b []byte, lps []domain.TokenLogprob) []byte {
	b = append(b, `{"content":[`...)
	for i, lp := range lps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTokenLogprob(b, lp.Token, lp.Logprob, lp.Bytes)
		b = append(b, `,"top_logprobs":[`...)
		for j, t := range lp.Top {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendTokenLogprob(b, t.Token, t.Logprob, t.Bytes)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, `],"refusal":null}`...)
}

// appendTokenLogprob writes {"token":…,"logprob":…,"bytes":[…] without
// the closing brace.
func appendTokenLogprob(b []byte, token string, logprob float64, bytes []byte) []byte {
	b = append(b, `{"token":`...)
	b = wire.AppendString(b, token)
	b = append(b, `,"logprob":`...)
	b = AppendLogprob(b, logprob)
	b = append(b, `,"bytes":[`...)
	for k, c := range bytes {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(c), 10)
	}
	return append(b, ']')
}

// AppendLogprob writes a log probability as a JSON number; one JSON cannot
// hold (-Inf, NaN) is written as -9999, the value OpenAI uses for a token
// of no probability.
func AppendLogprob(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < -9999 {
		v = -9999
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
