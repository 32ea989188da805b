package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// respond forwards a Responses API request to a gateway that serves them
// (Options.Responses) and relays the answer's events as chunks of choice
// 0. Like Chat, the upstream is always asked to stream.
func (c *Client) respond(ctx context.Context, req domain.ChatRequest, p wire.ResponsesBody, out ports.Sink[domain.Chunk]) error {
	if req.N > 1 {
		return domain.Invalid("n", "This backend answers through the Responses API, which has no 'n': ask for one choice.")
	}
	body, err := RewriteResponsesBody(p, req.Model)
	if err != nil {
		return err
	}
	call, err := c.call.Do(ctx, http.MethodPost, "responses", body)
	if err != nil {
		return err
	}
	defer call.Close()
	r := responsesReader{backend: c.call.Name(), event: call.Started, fail: call.Fail, where: call.Where()}
	return call.End(r.relay(call.Body(out.Flush), out))
}

var jsonFalse = []byte("false")

// RewriteResponsesBody returns a Responses API request as the upstream gets
// it: the client's body with "model" set to the upstream's name, "input"
// replaced by the whole conversation's input (p.Input; the client's own
// input stays when p.Input is empty), "previous_response_id" removed (the
// service keeps the conversation, the upstream never saw it), "store":
// false (nothing to keep upstream) and "stream": true. Every other member
// passes untouched, as RewriteBody leaves them.
func RewriteResponsesBody(p wire.ResponsesBody, model string) ([]byte, error) {
	var set [5]member
	n := 0
	add := func(m member) { set[n] = m; n++ }
	add(member{key: "model", text: model})
	if len(bytes.TrimSpace(p.Input)) > 0 {
		add(member{key: "input", json: p.Input})
	}
	add(member{key: "previous_response_id", drop: true})
	add(member{key: "store", json: jsonFalse})
	add(member{key: "stream", json: jsonTrue})
	return splice(p.Raw, set[:n]...)
}

// The Responses API stream events read (every other is ignored).
const (
	evTextDelta      = "response.output_text.delta"
	evRefusalDelta   = "response.refusal.delta"
	evReasoningDelta = "response.reasoning_text.delta"
	evSummaryDelta   = "response.reasoning_summary_text.delta"
	evItemDone       = "response.output_item.done"
	evCompleted      = "response.completed"
	evIncomplete     = "response.incomplete"
	evFailed         = "response.failed"
	evError          = "error"
)

// responsesEventWire is one event of a Responses API stream, as much of
// it as the reader uses. As in chunkWire, absent and empty strings mean
// the same.
type responsesEventWire struct {
	Type     string             `json:"type"`
	Delta    string             `json:"delta"`
	Item     *responseItemWire  `json:"item"`
	Response *responseStateWire `json:"response"`
	Error    rawUnlessNull      `json:"error"`
}

// responseItemWire is an output item; only function calls are read.
type responseItemWire struct {
	Type      string `json:"type"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// responseStateWire is the Response a lifecycle event carries.
type responseStateWire struct {
	Usage *struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
	Error             rawUnlessNull `json:"error"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
}

func (s *responseStateWire) usage() *domain.Usage {
	if s == nil || s.Usage == nil {
		return nil
	}
	return &domain.Usage{PromptTokens: s.Usage.InputTokens, CompletionTokens: s.Usage.OutputTokens}
}

// responsesReader turns a Responses API event stream into chunks of
// choice 0: text, refusal and reasoning deltas as they come; each function
// call whole, from its output_item.done (the item is authoritative, its
// argument deltas are not read, as Codex reads them); the finish reason
// and usage from the terminal event.
type responsesReader struct {
	backend string
	where   string            // the request, for errors
	event   func()            // called for every event (timers)
	fail    func(error) error // classifies read errors
	calls   int               // function calls so far
}

func (r *responsesReader) protocol(format string, args ...any) error {
	return &domain.UpstreamError{Backend: r.backend, Kind: domain.FailureProtocol, Message: fmt.Sprintf(format, args...), Detail: r.where}
}

// relay reads body to its terminal event (response.completed, incomplete
// or failed, or an error event), calling out for each chunk. A stream that
// ends before one, [DONE] or not, is a failure: the answer may be cut.
// Text deltas, almost every event of a stream, are read by a
// reflection-free fast path; any other event goes through encoding/json.
func (r *responsesReader) relay(body io.Reader, out ports.Sink[domain.Chunk]) error {
	data := newSSEData(body)
	defer data.lines.Release()
	var scan jsonscan.Scanner
	var w responsesEventWire
	for {
		payload, err := data.next()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // [DONE] before the response ended
		}
		if err != nil {
			return r.fail(err)
		}
		if chunk, ok := fastEvent(&scan, payload); ok {
			r.event()
			if chunk.Empty() {
				continue
			}
			if err := out.Send(chunk); err != nil {
				return err
			}
			continue
		}
		w = responsesEventWire{}
		if err := json.Unmarshal(payload, &w); err != nil {
			return r.protocol("unreadable stream event: %v", err)
		}
		done, err := r.eventOf(&w, payload, out)
		if done || err != nil {
			return err
		}
	}
}

// eventOf handles one decoded event; done reports a terminal one.
func (r *responsesReader) eventOf(w *responsesEventWire, payload []byte, out ports.Sink[domain.Chunk]) (done bool, err error) {
	r.event()
	if w.Type == evError || (w.Type == "" && len(w.Error) > 0) {
		// An error event carries its code and message at the top level;
		// some servers nest them in an error object instead.
		raw := []byte(w.Error)
		if len(raw) == 0 {
			raw = payload
		}
		e := inBandError(r.backend, r.where, raw)
		if e.Type == evError {
			e.Type = ""
		}
		if e.Message == "" {
			e.Message = "the upstream's stream reported an error"
		}
		return true, e
	}
	var chunk domain.Chunk
	switch w.Type {
	case evTextDelta, evRefusalDelta, evReasoningDelta, evSummaryDelta:
		chunk = deltaChunk(w.Type, w.Delta)
		if chunk.Empty() {
			return false, nil
		}
	case evItemDone:
		if w.Item == nil || w.Item.Type != "function_call" {
			return false, nil
		}
		id := w.Item.CallID
		if id == "" {
			id = wire.NewToolCallID()
		}
		chunk.ToolCalls = []domain.ToolCallDelta{{Index: r.calls, ID: id, Name: w.Item.Name, Arguments: w.Item.Arguments}}
		r.calls++
	case evCompleted:
		done = true
		chunk = domain.Chunk{FinishReason: domain.FinishStop, Usage: w.Response.usage()}
		if r.calls > 0 {
			chunk.FinishReason = domain.FinishToolCalls
		}
	case evIncomplete:
		done = true
		chunk = domain.Chunk{FinishReason: domain.FinishLength, Usage: w.Response.usage()}
		if d := w.Response; d != nil && d.IncompleteDetails != nil && d.IncompleteDetails.Reason == "content_filter" {
			chunk.FinishReason = domain.FinishContentFilter
		}
	case evFailed:
		var raw []byte
		if w.Response != nil {
			raw = w.Response.Error
		}
		if len(raw) == 0 {
			raw = []byte(`{}`)
		}
		e := inBandError(r.backend, r.where, raw)
		e.Detail = "response.failed in the stream of " + r.where
		if e.Message == "" {
			e.Message = "the upstream's response failed"
		}
		return true, e
	default:
		return false, nil // lifecycle, item and part events, anything new
	}
	return done, out.Send(chunk)
}

// deltaChunk is the chunk of a text delta event.
func deltaChunk(typ, delta string) domain.Chunk {
	switch typ {
	case evTextDelta:
		return domain.Chunk{Content: delta}
	case evRefusalDelta:
		return domain.Chunk{Refusal: delta}
	}
	return domain.Chunk{Reasoning: delta}
}

// deltaTypes are the delta event types as they appear in a stream, quoted.
var deltaTypes = [...]struct {
	quoted []byte
	typ    string
}{
	{[]byte(`"` + evTextDelta + `"`), evTextDelta},
	{[]byte(`"` + evReasoningDelta + `"`), evReasoningDelta},
	{[]byte(`"` + evSummaryDelta + `"`), evSummaryDelta},
	{[]byte(`"` + evRefusalDelta + `"`), evRefusalDelta},
}

// fastEvent reads a delta event (text, refusal, reasoning) without
// reflection. ok is false for any other event, and for any member
// encoding/json would read differently: the fields of responsesEventWire
// other than type and delta, keys that match them only when case is
// ignored, a type written with escapes.
func fastEvent(s *jsonscan.Scanner, payload []byte) (c domain.Chunk, ok bool) {
	s.Reset(payload)
	typ, delta := "", ""
	ok = s.Object(func(key []byte) bool {
		switch string(key) {
		case "type":
			start := s.Pos()
			if !s.Skip() {
				return false
			}
			v := bytes.TrimSpace(payload[start:s.Pos()])
			typ = ""
			for _, d := range deltaTypes {
				if bytes.Equal(v, d.quoted) {
					typ = d.typ
				}
			}
			return typ != ""
		case "delta":
			if s.Null() {
				return true // encoding/json leaves the field as it was
			}
			var ok bool
			delta, ok = s.String()
			return ok
		case "item", "response", "error":
			return false
		default:
			if jsonscan.FoldsTo(key, "type", "delta", "item", "response", "error") {
				return false
			}
			return s.Skip()
		}
	})
	if !ok || typ == "" || !s.Done() {
		return domain.Chunk{}, false
	}
	return deltaChunk(typ, delta), true
}
