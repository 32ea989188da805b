package gatewaytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ToolCall is a function call the fake's Responses answer makes.
// Arguments is JSON text, as the API sends it.
type ToolCall struct {
	Name      string
	Arguments string
}

// ResponseError is the error of a failed Responses answer: a
// ResponseErrorCode (server_error, rate_limit_exceeded, invalid_prompt…)
// and a message.
type ResponseError struct {
	Code    string
	Message string
}

// The ids of the fake's Responses answer and its items.
const (
	responseID  = "resp_gw0123456789abcdefghijklmn"
	reasoningID = "rs_gw0123456789abcdefghijklmn"
	messageID   = "msg_gw0123456789abcdefghijklmn"
	functionID  = "fc_gw0123456789abcdefghijklmn"
	callID      = "call_gw0123456789abcdefghijklmn"
)

// responsesRequest is what the fake reads of a Responses request; the
// settings a Response echoes are kept as the client wrote them.
type responsesRequest struct {
	Model              string          `json:"model"`
	Input              json.RawMessage `json:"input"`
	Stream             bool            `json:"stream"`
	PreviousResponseID *string         `json:"previous_response_id"`
	Instructions       json.RawMessage `json:"instructions"`
	MaxOutputTokens    json.RawMessage `json:"max_output_tokens"`
	ParallelToolCalls  json.RawMessage `json:"parallel_tool_calls"`
	Reasoning          json.RawMessage `json:"reasoning"`
	Store              json.RawMessage `json:"store"`
	Temperature        json.RawMessage `json:"temperature"`
	Text               json.RawMessage `json:"text"`
	ToolChoice         json.RawMessage `json:"tool_choice"`
	Tools              json.RawMessage `json:"tools"`
	TopP               json.RawMessage `json:"top_p"`
	User               json.RawMessage `json:"user"`
	Metadata           json.RawMessage `json:"metadata"`
}

// responses answers POST /v1/responses as OpenAI does: a Response object,
// or a stream of its events in the order every client accepts
// (response.created, response.in_progress; for each item
// output_item.added, its parts and their deltas, output_item.done; then
// response.completed, incomplete or failed), each an "event:" line and a
// "data:" line with consecutive sequence numbers, without [DONE]. The
// answer is the reasoning of Reasoning, the text of Pieces (or Reply) and
// the call of ToolCall; Status, Hang, FirstDelay, PieceDelay, BreakAfter
// (counting the deltas of every kind) and Garbage act as they do for chat.
// The fake keeps no responses: a previous_response_id is not found.
func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	body := s.record(r)
	cfg := s.snapshot()
	var req responsesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	if !prelude(w, r, &cfg, garbageStream(w)) {
		return
	}
	if !cfg.has(req.Model) {
		modelNotFound(w, req.Model)
		return
	}
	if in := bytes.TrimSpace(req.Input); len(in) > 0 && in[0] != '"' && in[0] != '[' && string(in) != "null" {
		writeParamError(w, http.StatusBadRequest, "Invalid type for 'input': expected a string or an array of input items.", "invalid_request_error", "input", "invalid_type")
		return
	}
	if id := req.PreviousResponseID; id != nil {
		writeParamError(w, http.StatusBadRequest, fmt.Sprintf("Previous response with id '%s' not found.", *id), "invalid_request_error", "previous_response_id", "previous_response_not_found")
		return
	}
	a := &answer{cfg: &cfg, req: &req, w: w, r: r}
	if cfg.ToolCall == nil || cfg.Pieces != nil {
		a.pieces = cfg.pieces()
	}
	if req.Stream {
		a.stream()
	} else {
		a.whole()
	}
}

// answer is one Responses answer being written.
type answer struct {
	cfg    *Server
	req    *responsesRequest
	pieces []string
	w      http.ResponseWriter
	r      *http.Request
	seq    int
	deltas int
}

// status is how the answer ends: completed, incomplete or failed.
func (a *answer) status() string {
	switch {
	case a.cfg.Failure != nil:
		return "failed"
	case a.cfg.Incomplete != "":
		return "incomplete"
	}
	return "completed"
}

// itemStatus is the status of a finished item: incomplete when the answer
// was cut.
func (a *answer) itemStatus() string {
	if a.cfg.Incomplete != "" {
		return "incomplete"
	}
	return "completed"
}

func (a *answer) reasoningItem(status string, text *string) string {
	content := "[]"
	if text != nil {
		content = `[{"type":"reasoning_text","text":` + jsonString(*text) + `}]`
	}
	return fmt.Sprintf(`{"id":%q,"type":"reasoning","status":%q,"summary":[],"content":%s}`, reasoningID, status, content)
}

func textPart(text string) string {
	return `{"type":"output_text","text":` + jsonString(text) + `,"annotations":[],"logprobs":[]}`
}

func (a *answer) messageItem(status string, text *string) string {
	content := "[]"
	if text != nil {
		content = "[" + textPart(*text) + "]"
	}
	return fmt.Sprintf(`{"id":%q,"type":"message","status":%q,"role":"assistant","content":%s}`, messageID, status, content)
}

func (a *answer) callItem(status, arguments string) string {
	return fmt.Sprintf(`{"id":%q,"type":"function_call","status":%q,"arguments":%s,"call_id":%q,"name":%s}`,
		functionID, status, jsonString(arguments), callID, jsonString(a.cfg.ToolCall.Name))
}

// output is the answer's finished items.
func (a *answer) output() []string {
	var out []string
	st := a.itemStatus()
	if len(a.cfg.Reasoning) > 0 {
		text := strings.Join(a.cfg.Reasoning, "")
		out = append(out, a.reasoningItem(st, &text))
	}
	if len(a.pieces) > 0 {
		text := strings.Join(a.pieces, "")
		out = append(out, a.messageItem(st, &text))
	}
	if a.cfg.ToolCall != nil {
		out = append(out, a.callItem(st, a.cfg.ToolCall.Arguments))
	}
	return out
}

func (a *answer) usage() string {
	c := a.cfg
	return fmt.Sprintf(`{"input_tokens":%d,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},"output_tokens":%d,`+
		`"output_tokens_details":{"reasoning_tokens":%d},"total_tokens":%d}`,
		c.PromptTokens, c.CompletionTokens, min(len(c.Reasoning), c.CompletionTokens), c.PromptTokens+c.CompletionTokens)
}

// or is raw, compacted, or def when the client did not send it.
func or(raw json.RawMessage, def string) string {
	if len(raw) == 0 || string(raw) == "null" {
		return def
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return def
	}
	return b.String()
}

// response writes the Response object, its members in OpenAI's order;
// usage "" while there is none.
func (a *answer) response(status string, output []string, usage string) string {
	q := a.req
	errJSON, incomplete := "null", "null"
	if status == "failed" {
		errJSON = `{"code":` + jsonString(a.cfg.Failure.Code) + `,"message":` + jsonString(a.cfg.Failure.Message) + `}`
	}
	if status == "incomplete" {
		incomplete = `{"reason":` + jsonString(a.cfg.Incomplete) + `}`
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":%q,"object":"response","created_at":%d,"status":%q,"error":%s,"incomplete_details":%s,`,
		responseID, created, status, errJSON, incomplete)
	fmt.Fprintf(&b, `"instructions":%s,"max_output_tokens":%s,"model":%s,"output":[%s],"parallel_tool_calls":%s,"previous_response_id":null,`,
		or(q.Instructions, "null"), or(q.MaxOutputTokens, "null"), jsonString(q.Model), strings.Join(output, ","), or(q.ParallelToolCalls, "true"))
	fmt.Fprintf(&b, `"reasoning":%s,"store":%s,"temperature":%s,"text":%s,"tool_choice":%s,"tools":%s,"top_p":%s,"truncation":"disabled",`,
		or(q.Reasoning, `{"effort":null,"summary":null}`), or(q.Store, "true"), or(q.Temperature, "1.0"), or(q.Text, `{"format":{"type":"text"}}`),
		or(q.ToolChoice, `"auto"`), or(q.Tools, "[]"), or(q.TopP, "1.0"))
	// OpenAI writes "usage":null until the answer is done and "user":null
	// when none was sent, but its schema has neither nullable: they are left
	// out then, which every client reads the same.
	if usage != "" {
		fmt.Fprintf(&b, `"usage":%s,`, usage)
	}
	if user := or(q.User, ""); user != "" {
		fmt.Fprintf(&b, `"user":%s,`, user)
	}
	fmt.Fprintf(&b, `"metadata":%s}`, or(q.Metadata, "{}"))
	return b.String()
}

// whole answers with the Response, when all is generated, indented as
// OpenAI writes a whole answer.
func (a *answer) whole() {
	n := len(a.cfg.Reasoning) + len(a.pieces)
	if a.cfg.PieceDelay > 0 {
		select {
		case <-time.After(time.Duration(n) * a.cfg.PieceDelay):
		case <-a.r.Context().Done():
			return
		}
	}
	status := a.status()
	var output []string
	if status != "failed" {
		output = a.output()
	}
	var out bytes.Buffer
	json.Indent(&out, []byte(a.response(status, output, a.usage())), "", "  ")
	out.WriteByte('\n')
	a.w.Header().Set("Content-Type", "application/json")
	a.w.Write(out.Bytes())
}

// event writes one event: its type, its sequence number, then members
// (JSON object members, without braces).
func (a *answer) event(typ, members string) {
	b := make([]byte, 0, 64+2*len(typ)+len(members))
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":"...)
	b = append(b, jsonString(typ)...)
	b = append(b, `,"sequence_number":`...)
	b = strconv.AppendInt(b, int64(a.seq), 10)
	if members != "" {
		b = append(b, ',')
		b = append(b, members...)
	}
	b = append(b, "}\n\n"...)
	a.seq++
	a.w.Write(b)
	a.w.(http.Flusher).Flush()
}

// delta writes a delta event, acting out BreakAfter and PieceDelay. It
// reports whether the answer goes on.
func (a *answer) delta(typ, members string) bool {
	if a.cfg.BreakAfter > 0 && a.deltas == a.cfg.BreakAfter {
		panic(http.ErrAbortHandler)
	}
	a.deltas++
	a.event(typ, members)
	if a.cfg.PieceDelay > 0 {
		select {
		case <-time.After(a.cfg.PieceDelay):
		case <-a.r.Context().Done():
			return false
		}
	}
	return true
}

func itemRef(id string, output int) string {
	return fmt.Sprintf(`"item_id":%q,"output_index":%d`, id, output)
}

// stream answers with the events of the Response.
func (a *answer) stream() {
	a.w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	a.w.Header().Set("Cache-Control", "no-cache")
	a.event("response.created", `"response":`+a.response("in_progress", nil, ""))
	a.event("response.in_progress", `"response":`+a.response("in_progress", nil, ""))
	st := a.itemStatus()
	var done []string // the finished items
	index := 0
	if len(a.cfg.Reasoning) > 0 {
		a.event("response.output_item.added", fmt.Sprintf(`"output_index":%d,"item":%s`, index, a.reasoningItem("in_progress", nil)))
		ref := itemRef(reasoningID, index) + `,"content_index":0`
		a.event("response.content_part.added", ref+`,"part":{"type":"reasoning_text","text":""}`)
		for _, p := range a.cfg.Reasoning {
			if !a.delta("response.reasoning_text.delta", ref+`,"delta":`+jsonString(p)) {
				return
			}
		}
		text := strings.Join(a.cfg.Reasoning, "")
		a.event("response.reasoning_text.done", ref+`,"text":`+jsonString(text))
		a.event("response.content_part.done", ref+`,"part":{"type":"reasoning_text","text":`+jsonString(text)+`}`)
		item := a.reasoningItem(st, &text)
		a.event("response.output_item.done", fmt.Sprintf(`"output_index":%d,"item":%s`, index, item))
		done = append(done, item)
		index++
	}
	if len(a.pieces) > 0 {
		a.event("response.output_item.added", fmt.Sprintf(`"output_index":%d,"item":%s`, index, a.messageItem("in_progress", nil)))
		ref := itemRef(messageID, index) + `,"content_index":0`
		a.event("response.content_part.added", ref+`,"part":`+textPart(""))
		for _, p := range a.pieces {
			if !a.delta("response.output_text.delta", ref+`,"delta":`+jsonString(p)+`,"logprobs":[]`) {
				return
			}
		}
		if a.cfg.Failure != nil {
			a.event("response.failed", `"response":`+a.response("failed", nil, ""))
			return
		}
		text := strings.Join(a.pieces, "")
		a.event("response.output_text.done", ref+`,"text":`+jsonString(text)+`,"logprobs":[]`)
		a.event("response.content_part.done", ref+`,"part":`+textPart(text))
		item := a.messageItem(st, &text)
		a.event("response.output_item.done", fmt.Sprintf(`"output_index":%d,"item":%s`, index, item))
		done = append(done, item)
		index++
	}
	if c := a.cfg.ToolCall; c != nil {
		a.event("response.output_item.added", fmt.Sprintf(`"output_index":%d,"item":%s`, index, a.callItem("in_progress", "")))
		ref := itemRef(functionID, index)
		half := len(c.Arguments) / 2
		for half > 0 && !utf8.RuneStart(c.Arguments[half]) {
			half--
		}
		for _, p := range []string{c.Arguments[:half], c.Arguments[half:]} {
			if p != "" && !a.delta("response.function_call_arguments.delta", ref+`,"delta":`+jsonString(p)) {
				return
			}
		}
		a.event("response.function_call_arguments.done", ref+`,"name":`+jsonString(c.Name)+`,"arguments":`+jsonString(c.Arguments))
		item := a.callItem(st, c.Arguments)
		a.event("response.output_item.done", fmt.Sprintf(`"output_index":%d,"item":%s`, index, item))
		done = append(done, item)
	}
	switch status := a.status(); status {
	case "failed":
		a.event("response.failed", `"response":`+a.response(status, nil, ""))
	default:
		a.event("response."+status, `"response":`+a.response(status, done, a.usage()))
	}
}
