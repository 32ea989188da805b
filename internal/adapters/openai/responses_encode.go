package openai

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// ResponseBuilder turns a chat answer's chunks into a Responses API answer:
// the stream's events, in the order the SDKs and Codex enforce, and the
// response object (what response.completed carries, a buffered request is
// answered with, and the store keeps). Items open as their first piece
// arrives — reasoning, the message, then each function call — and close
// when the next kind begins or the answer ends.
type ResponseBuilder struct {
	req     *ResponsesRequest
	id      string
	model   string // as the client named it
	created int64
	now     func() int64

	seq    int
	items  []*outItem
	open   *outItem // the item receiving pieces
	calls  map[int]*outItem
	usage  *domain.Usage
	finish string
	buf    []byte
	events bool // write events (a stream), or only build the object
	failed *responseError
}

type outItem struct {
	kind      string // message, reasoning, function_call, custom_tool_call
	id        string
	index     int
	text      strings.Builder // the message's text, the reasoning, or the call's arguments
	refusal   strings.Builder
	hasText   bool // the message's output_text part is open
	hasRef    bool // the message's refusal part is open
	logprobs  []domain.TokenLogprob
	callID    string
	name      string // as the client named the tool
	namespace string
	done      bool
}

// NewResponseID returns a fresh id such as resp_Q2V7… (26 random base32
// characters).
func NewResponseID() string { return wire.RandomText("resp_") }

// NewResponseBuilder prepares the answer to req, named as the client
// asked (model), created at created (unix seconds); now stamps
// completed_at.
func NewResponseBuilder(req *ResponsesRequest, id, model string, created int64, now func() int64) *ResponseBuilder {
	return &ResponseBuilder{req: req, id: id, model: model, created: created, now: now, calls: map[int]*outItem{}, buf: make([]byte, 0, 1024)}
}

// ID is the response's id.
func (b *ResponseBuilder) ID() string { return b.id }

// Open returns the events that begin a stream: response.created, then
// response.in_progress, before any item.
func (b *ResponseBuilder) Open() []byte {
	b.events = true
	out := b.buf[:0]
	out = b.lifecycle(out, "response.created", "in_progress", nil)
	out = b.lifecycle(out, "response.in_progress", "in_progress", nil)
	b.buf = out
	return out
}

// Chunk takes one chunk of the answer and returns its events (nil when a
// buffered answer is being built).
func (b *ResponseBuilder) Chunk(c domain.Chunk) []byte {
	out := b.buf[:0]
	if c.Usage != nil {
		b.usage = c.Usage
	}
	if c.Reasoning != "" {
		out = b.reasoning(out, c.Reasoning)
	}
	if c.Content != "" || c.Refusal != "" || len(c.Logprobs) > 0 {
		out = b.message(out, c.Content, c.Refusal, c.Logprobs)
	}
	for _, d := range c.ToolCalls {
		out = b.call(out, d)
	}
	if c.FinishReason != "" {
		b.finish = c.FinishReason
	}
	b.buf = out
	return out
}

// Completion takes a whole answer (the first choice) at once.
func (b *ResponseBuilder) Completion(c domain.Completion) {
	b.usage = c.Usage
	if len(c.Choices) == 0 {
		return
	}
	ch := c.Choices[0]
	b.Chunk(domain.Chunk{Reasoning: ch.Reasoning})
	b.Chunk(domain.Chunk{Content: ch.Text(), Refusal: deref(ch.Refusal), Logprobs: ch.Logprobs})
	for i, tc := range ch.ToolCalls {
		b.Chunk(domain.Chunk{ToolCalls: []domain.ToolCallDelta{{Index: i, ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}}})
	}
	b.finish = ch.FinishReason
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Close ends the answer: every open item closes, and response.completed
// (or response.incomplete, when a token cap or a content filter cut it)
// carries the whole response. It returns those events.
func (b *ResponseBuilder) Close() []byte {
	out := b.closeOpen(b.buf[:0])
	status, reason := b.status()
	if !b.events {
		return nil
	}
	if reason != "" {
		out = b.lifecycle(out, "response.incomplete", status, nil)
	} else {
		out = b.lifecycle(out, "response.completed", status, nil)
	}
	b.buf = out
	return out
}

// Fail ends a stream that broke after it began: response.failed with the
// error's code (rate_limit_exceeded, server_error, …) and message.
func (b *ResponseBuilder) Fail(code, message string) []byte {
	out := b.closeOpen(b.buf[:0])
	b.failed = &responseError{code, message}
	out = b.lifecycle(out, "response.failed", "failed", &responseError{code, message})
	b.buf = out
	return out
}

// Usage is the answer's usage, when the backend reported it.
func (b *ResponseBuilder) Usage() *domain.Usage { return b.usage }

// SetUsage sets the usage (an estimate, when the backend reported none).
func (b *ResponseBuilder) SetUsage(u domain.Usage) { b.usage = &u }

// Object returns the response object as it stands: after Close, the
// completed (or incomplete) response.
func (b *ResponseBuilder) Object() []byte {
	if b.failed != nil {
		return b.appendResponse(nil, "failed", b.failed)
	}
	status, _ := b.status()
	return b.appendResponse(nil, status, nil)
}

type responseError struct{ code, message string }

// status is the response's status, and why it is incomplete.
func (b *ResponseBuilder) status() (status, reason string) {
	switch b.finish {
	case domain.FinishLength:
		return "incomplete", "max_output_tokens"
	case domain.FinishContentFilter:
		return "incomplete", "content_filter"
	}
	return "completed", ""
}

func (b *ResponseBuilder) add(kind, prefix string) *outItem {
	it := &outItem{kind: kind, id: wire.RandomText(prefix), index: len(b.items)}
	b.items = append(b.items, it)
	b.open = it
	return it
}

func (b *ResponseBuilder) reasoning(out []byte, delta string) []byte {
	it := b.open
	if it == nil || it.kind != "reasoning" {
		out = b.closeOpen(out)
		it = b.add("reasoning", "rs_")
		if b.events {
			out = b.event(out, "response.output_item.added", func(o []byte) []byte {
				o = appendIndex(o, it.index)
				o = append(o, `,"item":`...)
				return b.appendItem(o, it, false)
			})
			out = b.event(out, "response.content_part.added", func(o []byte) []byte {
				o = appendItemRef(o, it, 0)
				return append(o, `,"part":{"type":"reasoning_text","text":""}`...)
			})
		}
	}
	it.text.WriteString(delta)
	if b.events {
		out = b.event(out, "response.reasoning_text.delta", func(o []byte) []byte {
			o = appendItemRef(o, it, 0)
			o = append(o, `,"delta":`...)
			return wire.AppendString(o, delta)
		})
	}
	return out
}

func (b *ResponseBuilder) message(out []byte, text, refusal string, lps []domain.TokenLogprob) []byte {
	it := b.open
	if it == nil || it.kind != "message" {
		out = b.closeOpen(out)
		it = b.add("message", "msg_")
		if b.events {
			out = b.event(out, "response.output_item.added", func(o []byte) []byte {
				o = appendIndex(o, it.index)
				o = append(o, `,"item":`...)
				return b.appendItem(o, it, false)
			})
		}
	}
	if (text != "" || len(lps) > 0) && !it.hasText {
		it.hasText = true
		if b.events {
			out = b.event(out, "response.content_part.added", func(o []byte) []byte {
				o = appendItemRef(o, it, 0)
				return append(o, `,"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}`...)
			})
		}
	}
	if text != "" || len(lps) > 0 {
		it.text.WriteString(text)
		if b.req.Logprobs {
			it.logprobs = append(it.logprobs, lps...)
		}
		if b.events {
			out = b.event(out, "response.output_text.delta", func(o []byte) []byte {
				o = appendItemRef(o, it, 0)
				o = append(o, `,"delta":`...)
				o = wire.AppendString(o, text)
				o = append(o, `,"logprobs":`...)
				if b.req.Logprobs {
					return appendDeltaLogprobs(o, lps)
				}
				return append(o, "[]"...)
			})
		}
	}
	if refusal != "" {
		it.refusal.WriteString(refusal)
		if !it.hasRef && b.events {
			out = b.event(out, "response.content_part.added", func(o []byte) []byte {
				o = appendItemRef(o, it, it.refusalIndex())
				return append(o, `,"part":{"type":"refusal","refusal":""}`...)
			})
		}
		it.hasRef = true
		if b.events {
			out = b.event(out, "response.refusal.delta", func(o []byte) []byte {
				o = appendItemRef(o, it, it.refusalIndex())
				o = append(o, `,"delta":`...)
				return wire.AppendString(o, refusal)
			})
		}
	}
	return out
}

// refusalIndex is the content index of a message's refusal: after its
// text, if it has some.
func (it *outItem) refusalIndex() int {
	if it.hasText {
		return 1
	}
	return 0
}

func (b *ResponseBuilder) call(out []byte, d domain.ToolCallDelta) []byte {
	it, ok := b.calls[d.Index]
	if !ok {
		out = b.closeOpen(out)
		shown := b.req.tools[d.Name]
		kind, prefix := "function_call", "fc_"
		if shown.custom {
			kind, prefix = "custom_tool_call", "ctc_"
		}
		it = b.add(kind, prefix)
		it.callID, it.name, it.namespace = d.ID, shown.name, shown.namespace
		if it.callID == "" {
			it.callID = wire.NewToolCallID()
		}
		if it.name == "" {
			it.name = d.Name // a name the request did not offer: shown as the model wrote it
		}
		b.calls[d.Index] = it
		if b.events {
			out = b.event(out, "response.output_item.added", func(o []byte) []byte {
				o = appendIndex(o, it.index)
				o = append(o, `,"item":`...)
				return b.appendItem(o, it, false)
			})
		}
	}
	it.text.WriteString(d.Arguments)
	if b.events && d.Arguments != "" && it.kind == "function_call" {
		out = b.event(out, "response.function_call_arguments.delta", func(o []byte) []byte {
			o = appendItemRef(o, it, -1)
			o = append(o, `,"delta":`...)
			return wire.AppendString(o, d.Arguments)
		})
	}
	return out
}

// closeOpen finishes the open item (and every call still open): its done
// events, then response.output_item.done with the whole item.
func (b *ResponseBuilder) closeOpen(out []byte) []byte {
	for _, it := range b.items {
		if it.done || (it != b.open && it.kind != "function_call" && it.kind != "custom_tool_call") {
			continue
		}
		it.done = true
		if !b.events {
			continue
		}
		text := it.text.String()
		switch it.kind {
		case "reasoning":
			out = b.event(out, "response.reasoning_text.done", func(o []byte) []byte {
				o = appendItemRef(o, it, 0)
				o = append(o, `,"text":`...)
				return wire.AppendString(o, text)
			})
			out = b.event(out, "response.content_part.done", func(o []byte) []byte {
				o = appendItemRef(o, it, 0)
				o = append(o, `,"part":{"type":"reasoning_text","text":`...)
				o = wire.AppendString(o, text)
				return append(o, '}')
			})
		case "message":
			if it.hasText {
				out = b.event(out, "response.output_text.done", func(o []byte) []byte {
					o = appendItemRef(o, it, 0)
					o = append(o, `,"text":`...)
					o = wire.AppendString(o, text)
					o = append(o, `,"logprobs":`...)
					return appendDeltaLogprobs(o, it.logprobs)
				})
				out = b.event(out, "response.content_part.done", func(o []byte) []byte {
					o = appendItemRef(o, it, 0)
					o = append(o, `,"part":`...)
					return b.appendText(o, it)
				})
			}
			if it.hasRef {
				ref := it.refusal.String()
				out = b.event(out, "response.refusal.done", func(o []byte) []byte {
					o = appendItemRef(o, it, it.refusalIndex())
					o = append(o, `,"refusal":`...)
					return wire.AppendString(o, ref)
				})
				out = b.event(out, "response.content_part.done", func(o []byte) []byte {
					o = appendItemRef(o, it, it.refusalIndex())
					o = append(o, `,"part":{"type":"refusal","refusal":`...)
					o = wire.AppendString(o, ref)
					return append(o, '}')
				})
			}
		case "function_call":
			out = b.event(out, "response.function_call_arguments.done", func(o []byte) []byte {
				o = appendItemRef(o, it, -1)
				o = append(o, `,"name":`...)
				o = wire.AppendString(o, it.name)
				o = append(o, `,"arguments":`...)
				return wire.AppendString(o, arguments(text))
			})
		}
		out = b.event(out, "response.output_item.done", func(o []byte) []byte {
			o = appendIndex(o, it.index)
			o = append(o, `,"item":`...)
			return b.appendItem(o, it, true)
		})
	}
	b.open = nil
	return out
}

// arguments are a call's arguments as the client gets them: "{}" for none.
func arguments(s string) string {
	if strings.TrimSpace(s) == "" {
		return "{}"
	}
	return s
}

// event appends one SSE event: its type, and a data object that begins
// with type and sequence_number and goes on with fields.
func (b *ResponseBuilder) event(out []byte, typ string, fields func([]byte) []byte) []byte {
	out = append(out, "event: "...)
	out = append(out, typ...)
	out = append(out, "\ndata: {\"type\":\""...)
	out = append(out, typ...)
	out = append(out, `","sequence_number":`...)
	out = strconv.AppendInt(out, int64(b.seq), 10)
	b.seq++
	out = append(out, ',')
	out = fields(out)
	return append(out, "}\n\n"...)
}

func (b *ResponseBuilder) lifecycle(out []byte, typ, status string, e *responseError) []byte {
	return b.event(out, typ, func(o []byte) []byte {
		o = append(o, `"response":`...)
		return b.appendResponse(o, status, e)
	})
}

func appendIndex(o []byte, index int) []byte {
	o = append(o, `"output_index":`...)
	return strconv.AppendInt(o, int64(index), 10)
}

// appendItemRef writes item_id, output_index and (content >= 0) content_index.
func appendItemRef(o []byte, it *outItem, content int) []byte {
	o = append(o, `"item_id":`...)
	o = wire.AppendString(o, it.id)
	o = append(o, ',')
	o = appendIndex(o, it.index)
	if content >= 0 {
		o = append(o, `,"content_index":`...)
		o = strconv.AppendInt(o, int64(content), 10)
	}
	return o
}

// appendItem writes an output item, in progress or (done) whole.
func (b *ResponseBuilder) appendItem(o []byte, it *outItem, done bool) []byte {
	status := "in_progress"
	if done {
		status = "completed"
		if s, _ := b.status(); s == "incomplete" && it.kind == "message" {
			status = "incomplete"
		}
	}
	o = append(o, `{"type":"`...)
	o = append(o, it.kind...)
	o = append(o, `","id":`...)
	o = wire.AppendString(o, it.id)
	switch it.kind {
	case "reasoning":
		o = append(o, `,"summary":[],"content":[`...)
		if done {
			o = append(o, `{"type":"reasoning_text","text":`...)
			o = wire.AppendString(o, it.text.String())
			o = append(o, '}')
		}
		o = append(o, `],"encrypted_content":null`...)
	case "message":
		o = append(o, `,"role":"assistant","content":[`...)
		if done {
			if it.hasText {
				o = b.appendText(o, it)
			}
			if it.hasRef {
				if it.hasText {
					o = append(o, ',')
				}
				o = append(o, `{"type":"refusal","refusal":`...)
				o = wire.AppendString(o, it.refusal.String())
				o = append(o, '}')
			}
		}
		o = append(o, ']')
	case "function_call":
		o = append(o, `,"call_id":`...)
		o = wire.AppendString(o, it.callID)
		o = append(o, `,"name":`...)
		o = wire.AppendString(o, it.name)
		if it.namespace != "" {
			o = append(o, `,"namespace":`...)
			o = wire.AppendString(o, it.namespace)
		}
		o = append(o, `,"arguments":`...)
		if done {
			o = wire.AppendString(o, arguments(it.text.String()))
		} else {
			o = append(o, `""`...)
		}
	case "custom_tool_call":
		o = append(o, `,"call_id":`...)
		o = wire.AppendString(o, it.callID)
		o = append(o, `,"name":`...)
		o = wire.AppendString(o, it.name)
		o = append(o, `,"input":`...)
		o = wire.AppendString(o, customInputOf(it.text.String()))
	}
	o = append(o, `,"status":"`...)
	o = append(o, status...)
	return append(o, `"}`...)
}

// customInputOf is a custom tool call's input: the "input" argument of the
// function the model was offered in its place, or the text it wrote.
func customInputOf(args string) string {
	var a struct {
		Input *string `json:"input"`
	}
	if json.Unmarshal([]byte(args), &a) == nil && a.Input != nil {
		return *a.Input
	}
	return args
}

func (b *ResponseBuilder) appendText(o []byte, it *outItem) []byte {
	o = append(o, `{"type":"output_text","text":`...)
	o = wire.AppendString(o, it.text.String())
	o = append(o, `,"annotations":[],"logprobs":`...)
	o = appendItemLogprobs(o, it.logprobs)
	return append(o, '}')
}

// appendItemLogprobs writes an output_text part's logprobs (LogProb: with
// bytes and alternatives).
func appendItemLogprobs(o []byte, lps []domain.TokenLogprob) []byte {
	o = append(o, '[')
	for i, lp := range lps {
		if i > 0 {
			o = append(o, ',')
		}
		o = appendTokenLogprob(o, lp.Token, lp.Logprob, lp.Bytes)
		o = append(o, `,"top_logprobs":[`...)
		for j, t := range lp.Top {
			if j > 0 {
				o = append(o, ',')
			}
			o = appendTokenLogprob(o, t.Token, t.Logprob, t.Bytes)
			o = append(o, '}')
		}
		o = append(o, "]}"...)
	}
	return append(o, ']')
}

// appendDeltaLogprobs writes a delta event's logprobs (ResponseLogProb:
// token, logprob, alternatives).
func appendDeltaLogprobs(o []byte, lps []domain.TokenLogprob) []byte {
	o = append(o, '[')
	for i, lp := range lps {
		if i > 0 {
			o = append(o, ',')
		}
		o = append(o, `{"token":`...)
		o = wire.AppendString(o, lp.Token)
		o = append(o, `,"logprob":`...)
		o = AppendLogprob(o, lp.Logprob)
		o = append(o, `,"top_logprobs":[`...)
		for j, t := range lp.Top {
			if j > 0 {
				o = append(o, ',')
			}
			o = append(o, `{"token":`...)
			o = wire.AppendString(o, t.Token)
			o = append(o, `,"logprob":`...)
			o = AppendLogprob(o, t.Logprob)
			o = append(o, '}')
		}
		o = append(o, "]}"...)
	}
	return append(o, ']')
}

// appendResponse writes the response object with its output so far.
func (b *ResponseBuilder) appendResponse(o []byte, status string, e *responseError) []byte {
	r, echo := b.req, &b.req.echo
	o = append(o, `{"id":`...)
	o = wire.AppendString(o, b.id)
	o = append(o, `,"object":"response","created_at":`...)
	o = strconv.AppendInt(o, b.created, 10)
	o = append(o, `,"status":"`...)
	o = append(o, status...)
	o = append(o, `","completed_at":`...)
	if status == "completed" {
		o = strconv.AppendInt(o, b.now(), 10)
	} else {
		o = append(o, "null"...)
	}
	o = append(o, `,"error":`...)
	if e != nil {
		o = append(o, `{"code":`...)
		o = wire.AppendString(o, e.code)
		o = append(o, `,"message":`...)
		o = wire.AppendString(o, e.message)
		o = append(o, '}')
	} else {
		o = append(o, "null"...)
	}
	o = append(o, `,"incomplete_details":`...)
	if _, reason := b.status(); status == "incomplete" && reason != "" {
		o = append(o, `{"reason":"`...)
		o = append(o, reason...)
		o = append(o, `"}`...)
	} else {
		o = append(o, "null"...)
	}
	o = append(o, `,"instructions":`...)
	o = append(o, echo.instructions...)
	o = append(o, `,"max_output_tokens":`...)
	o = appendOptInt(o, echo.maxOutputTokens)
	o = append(o, `,"model":`...)
	o = wire.AppendString(o, b.model)
	o = append(o, `,"output":[`...)
	done := status != "in_progress"
	for i, it := range b.items {
		if i > 0 {
			o = append(o, ',')
		}
		o = b.appendItem(o, it, done || it.done)
	}
	o = append(o, `],"parallel_tool_calls":`...)
	o = strconv.AppendBool(o, echo.parallelToolCalls)
	o = append(o, `,"previous_response_id":`...)
	o = appendOptString(o, r.PreviousID)
	o = append(o, `,"reasoning":`...)
	if len(echo.reasoning) > 0 {
		o = append(o, echo.reasoning...)
	} else {
		o = append(o, `{"effort":null,"summary":null}`...)
	}
	o = append(o, `,"store":`...)
	o = strconv.AppendBool(o, r.Store)
	o = append(o, `,"temperature":`...)
	o = appendOptFloat(o, echo.temperature)
	o = append(o, `,"text":{"format":`...)
	o = append(o, echo.format...)
	o = append(o, `},"tool_choice":`...)
	o = append(o, echo.toolChoice...)
	o = append(o, `,"tools":`...)
	o = append(o, echo.tools...)
	o = append(o, `,"top_p":`...)
	o = appendOptFloat(o, echo.topP)
	o = append(o, `,"truncation":"`...)
	o = append(o, echo.truncation...)
	o = append(o, '"')
	if u := b.usage; u != nil && status != "in_progress" {
		o = append(o, `,"usage":{"input_tokens":`...)
		o = strconv.AppendInt(o, int64(u.PromptTokens), 10)
		o = append(o, `,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},"output_tokens":`...)
		o = strconv.AppendInt(o, int64(u.CompletionTokens), 10)
		o = append(o, `,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":`...)
		o = strconv.AppendInt(o, int64(u.TotalTokens()), 10)
		o = append(o, '}')
	}
	if echo.user != "" {
		o = append(o, `,"user":`...)
		o = wire.AppendString(o, echo.user)
	}
	if echo.promptCacheKey != "" {
		o = append(o, `,"prompt_cache_key":`...)
		o = wire.AppendString(o, echo.promptCacheKey)
	}
	o = append(o, `,"metadata":`...)
	if len(echo.metadata) > 0 {
		o = append(o, echo.metadata...)
	} else {
		o = append(o, "{}"...)
	}
	return append(o, '}')
}

func appendOptString(o []byte, s string) []byte {
	if s == "" {
		return append(o, "null"...)
	}
	return wire.AppendString(o, s)
}

func appendOptInt(o []byte, v *int) []byte {
	if v == nil {
		return append(o, "null"...)
	}
	return strconv.AppendInt(o, int64(*v), 10)
}

func appendOptFloat(o []byte, v *float64) []byte {
	if v == nil {
		return append(o, "null"...)
	}
	return strconv.AppendFloat(o, *v, 'g', -1, 64)
}
