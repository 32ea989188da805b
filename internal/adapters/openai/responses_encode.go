package openai

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

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

	seq     int
	items   []*outItem
	open    *outItem // the item receiving pieces
	calls   map[int]*outItem
	usage   *domain.Usage // nil, or &usageOf
	usageOf domain.Usage
	finish  string
	buf     []byte
	events  bool // write events (a stream), or only build the object
	failed  *responseError

	object      []byte              // the final response object, once Close or Fail built it (a slice of buf)
	completedAt int64               // completed_at, stamped once
	storeIf     func(size int) bool // whether a response of this size will be stored
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

// NewResponseID returns a fresh id: resp_, the time in milliseconds (12
// hex digits), then 80 random bits (20 hex digits), such as
// resp_019ad3f2c4a18c0f3b2e91d54a6e07b1c2d3. Ids sort by when they were
// made, as OpenAI's do: the embedded store, which keeps responses in id
// order, then adds each one at the end of its index instead of rewriting
// a page somewhere in the middle. The random part comes from the
// runtime's per-thread generator: unique, not a secret (as every id of
// package wire).
func NewResponseID() string {
	const n = len("resp_") + 12 + 20
	var b [n]byte
	copy(b[:], "resp_")
	ms := uint64(time.Now().UnixMilli())
	for i := len("resp_") + 11; i >= len("resp_"); i-- {
		b[i] = hexDigits[ms&15]
		ms >>= 4
	}
	r1, r2 := rand.Uint64(), rand.Uint64()
	for i := len("resp_") + 12; i < n; i++ {
		if i < len("resp_")+12+16 {
			b[i] = hexDigits[r1&15]
			r1 >>= 4
		} else {
			b[i] = hexDigits[r2&15]
			r2 >>= 4
		}
	}
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

// NewResponseBuilder prepares the answer to req, named as the client
// asked (model), created at created (unix seconds); now stamps
// completed_at.
func NewResponseBuilder(req *ResponsesRequest, id, model string, created int64, now func() int64) *ResponseBuilder {
	return &ResponseBuilder{req: req, id: id, model: model, created: created, now: now, buf: make([]byte, 0, 4096)}
}

// ID is the response's id.
func (b *ResponseBuilder) ID() string { return b.id }

// StoreIf makes Close (and Fail) ask fits, with the final response
// object's size, whether a response the request asked to store (store:
// true) will be; when it says no, the request's Store turns false and the
// final response says so. Call it before Close.
func (b *ResponseBuilder) StoreIf(fits func(size int) bool) { b.storeIf = fits }

// Open returns the events that begin a stream: response.created, then
// response.in_progress, before any item.
func (b *ResponseBuilder) Open() []byte {
	b.events = true
	out := b.eventStart(b.buf[:0], "response.created")
	out = append(out, `"response":`...)
	start := len(out)
	out = b.appendResponse(out, "in_progress", nil)
	end := len(out)
	out = append(out, "}\n\n"...)
	// The same object again (appending part of out to itself is safe:
	// when out grows, the part is copied from the old array).
	out = b.eventStart(out, "response.in_progress")
	out = append(out, `"response":`...)
	out = append(out, out[start:end]...)
	out = append(out, "}\n\n"...)
	b.buf = out
	return out
}

// Chunk takes one chunk of the answer and returns its events (nil when a
// buffered answer is being built), valid until the next call. It keeps
// nothing of c past the call (it copies what it needs) but its logprobs,
// when the request asked for them: a backend may hand it text that lives
// in a buffer it reuses.
func (b *ResponseBuilder) Chunk(c domain.Chunk) []byte {
	out := b.buf[:0]
	if c.Usage != nil {
		b.SetUsage(*c.Usage)
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
		b.finish = finishOf(c.FinishReason)
	}
	b.buf = out
	return out
}

// Completion takes a whole answer (the first choice) at once.
func (b *ResponseBuilder) Completion(c domain.Completion) {
	b.usage = nil
	if c.Usage != nil {
		b.SetUsage(*c.Usage)
	}
	if len(c.Choices) == 0 {
		return
	}
	ch := c.Choices[0]
	b.Chunk(domain.Chunk{Reasoning: ch.Reasoning})
	b.Chunk(domain.Chunk{Content: ch.Text(), Refusal: deref(ch.Refusal), Logprobs: ch.Logprobs})
	for i, tc := range ch.ToolCalls {
		b.Chunk(domain.Chunk{ToolCalls: []domain.ToolCallDelta{{Index: i, ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}}})
	}
	b.finish = finishOf(ch.FinishReason)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Close ends the answer: every open item closes, and response.completed
// (or response.incomplete, when a token cap or a content filter cut it)
// carries the whole response. It returns those events (nil when a
// buffered answer is being built); Object then returns the response.
func (b *ResponseBuilder) Close() []byte {
	out := b.closeOpen(b.buf[:0])
	status, reason := b.status()
	typ := "response.completed"
	if reason != "" {
		typ = "response.incomplete"
	}
	out = b.final(out, typ, status, nil)
	b.buf = out
	if !b.events {
		return nil
	}
	return out
}

// Fail ends a stream that broke after it began: response.failed with the
// error's code (rate_limit_exceeded, server_error, …) and message.
func (b *ResponseBuilder) Fail(code, message string) []byte {
	out := b.closeOpen(b.buf[:0])
	b.failed = &responseError{code, message}
	out = b.final(out, "response.failed", "failed", b.failed)
	b.buf = out
	return out
}

// final appends the final response (in the event typ, when a stream is
// written) to out, and keeps it as the object. When the request asked to
// store the response and StoreIf says it will not be, it is written once
// more, saying store: false.
func (b *ResponseBuilder) final(out []byte, typ, status string, e *responseError) []byte {
	mark, seq := len(out), b.seq
	for {
		start := len(out)
		if b.events {
			out = b.eventStart(out, typ)
			out = append(out, `"response":`...)
			start = len(out)
		}
		out = b.appendResponse(out, status, e)
		b.object = out[start:len(out):len(out)]
		if b.events {
			out = append(out, "}\n\n"...)
		}
		if !b.req.Store || b.storeIf == nil || b.storeIf(len(b.object)) {
			return out
		}
		b.req.Store = false
		out, b.seq = out[:mark], seq
	}
}

// Usage is the answer's usage, when the backend reported it.
func (b *ResponseBuilder) Usage() *domain.Usage { return b.usage }

// SetUsage sets the usage (an estimate, when the backend reported none).
func (b *ResponseBuilder) SetUsage(u domain.Usage) { b.usageOf, b.usage = u, &b.usageOf }

// Object returns the response object: after Close (or Fail), the final
// response, the same bytes the last event carried, which the caller must
// not modify; before, the response as it stands.
func (b *ResponseBuilder) Object() []byte {
	if b.object != nil {
		return b.object
	}
	if b.failed != nil {
		return b.appendResponse(nil, "failed", b.failed)
	}
	status, _ := b.status()
	return b.appendResponse(nil, status, nil)
}

// Text is the answer's text as a token count sees it: the reasoning, the
// message, and each call's name and arguments, one after the other.
func (b *ResponseBuilder) Text() string {
	n := 0
	for _, it := range b.items {
		n += len(it.name) + it.text.Len()
	}
	var s strings.Builder
	s.Grow(n)
	for _, it := range b.items {
		s.WriteString(it.name)
		s.WriteString(it.text.String())
	}
	return s.String()
}

type responseError struct{ code, message string }

// finishOf is what the builder keeps of a finish reason (not the chunk's
// string): the two that make a response incomplete, else stop.
func finishOf(reason string) string {
	switch reason {
	case domain.FinishLength:
		return domain.FinishLength
	case domain.FinishContentFilter:
		return domain.FinishContentFilter
	case "":
		return ""
	}
	return domain.FinishStop
}

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
		it.callID, it.name, it.namespace = strings.Clone(d.ID), shown.name, shown.namespace
		if it.callID == "" {
			it.callID = wire.NewToolCallID()
		}
		if it.name == "" {
			it.name = strings.Clone(d.Name) // a name the request did not offer: shown as the model wrote it
		}
		if b.calls == nil {
			b.calls = map[int]*outItem{}
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
	out = b.eventStart(out, typ)
	out = fields(out)
	return append(out, "}\n\n"...)
}

// eventStart appends an event's beginning, up to its fields.
func (b *ResponseBuilder) eventStart(out []byte, typ string) []byte {
	out = append(out, "event: "...)
	out = append(out, typ...)
	out = append(out, "\ndata: {\"type\":\""...)
	out = append(out, typ...)
	out = append(out, `","sequence_number":`...)
	out = strconv.AppendInt(out, int64(b.seq), 10)
	b.seq++
	return append(out, ',')
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
		if b.completedAt == 0 {
			b.completedAt = b.now()
		}
		o = strconv.AppendInt(o, b.completedAt, 10)
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
