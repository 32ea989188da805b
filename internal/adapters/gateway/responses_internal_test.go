package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// sseEvents writes Responses API events as a server sends them: an event
// line, a data line, a blank line.
func sseEvents(payloads ...string) string {
	var b strings.Builder
	for _, p := range payloads {
		typ := p[len(`{"type":"`):]
		typ = typ[:strings.IndexByte(typ, '"')]
		b.WriteString("event: " + typ + "\ndata: " + p + "\n\n")
	}
	return b.String()
}

const (
	evCreated    = `{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[],"usage":null,"error":null}}`
	evInProgress = `{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[],"usage":null}}`
	evMsgAdded   = `{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}`
	evPartAdded  = `{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}}`
	evTextDone   = `{"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"Hi there","logprobs":[]}`
	evMsgDone    = `{"type":"response.output_item.done","sequence_number":7,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there","annotations":[],"logprobs":[]}]}}`
	evDone       = `{"type":"response.completed","sequence_number":8,"response":{"id":"resp_1","object":"response","status":"completed","error":null,"incomplete_details":null,"output":[],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":17}}}`
)

func textDelta(d string) string {
	return `{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":` + jsonText(d) + `,"logprobs":[]}`
}

func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func callDone(index int, id, callID, name, args string) string {
	return fmt.Sprintf(`{"type":"response.output_item.done","sequence_number":9,"output_index":%d,"item":{"id":%s,"type":"function_call","status":"completed","arguments":%s,"call_id":%s,"name":%s}}`,
		index, jsonText(id), jsonText(args), jsonText(callID), jsonText(name))
}

var usage = &domain.Usage{PromptTokens: 12, CompletionTokens: 5}

// TestResponsesEvents reads Responses API streams into chunks: text,
// refusal and reasoning deltas as they come; function calls whole from
// their done items (argument deltas and message items are not read
// twice); the finish reason and usage from the terminal event; failures
// as upstream errors of the right kind; and a stream without a terminal
// event as cut.
func TestResponsesEvents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream string
		want   []domain.Chunk
		err    error // an *domain.UpstreamError (Kind, Message, Code compared) or io.ErrUnexpectedEOF
	}{
		{name: "text",
			stream: sseEvents(evCreated, evInProgress, evMsgAdded, evPartAdded, textDelta("Hi"), textDelta(" there"), evTextDone, evMsgDone, evDone),
			want:   []domain.Chunk{{Content: "Hi"}, {Content: " there"}, {FinishReason: "stop", Usage: usage}}},
		{name: "reasoning, then text",
			stream: sseEvents(evCreated,
				`{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[],"content":[]}}`,
				`{"type":"response.content_part.added","sequence_number":3,"item_id":"rs_1","output_index":0,"content_index":0,"part":{"type":"reasoning_text","text":""}}`,
				`{"type":"response.reasoning_text.delta","sequence_number":4,"item_id":"rs_1","output_index":0,"content_index":0,"delta":"Let me"}`,
				`{"type":"response.reasoning_text.delta","sequence_number":5,"item_id":"rs_1","output_index":0,"content_index":0,"delta":" think."}`,
				`{"type":"response.reasoning_text.done","sequence_number":6,"item_id":"rs_1","output_index":0,"content_index":0,"text":"Let me think."}`,
				`{"type":"response.reasoning_summary_part.added","sequence_number":7,"item_id":"rs_1","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}}`,
				`{"type":"response.reasoning_summary_text.delta","sequence_number":8,"item_id":"rs_1","output_index":0,"summary_index":0,"delta":"Thought."}`,
				`{"type":"response.output_item.done","sequence_number":9,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"Thought."}],"content":[{"type":"reasoning_text","text":"Let me think."}]}}`,
				textDelta("Done."), evDone),
			want: []domain.Chunk{{Reasoning: "Let me"}, {Reasoning: " think."}, {Reasoning: "Thought."}, {Content: "Done."}, {FinishReason: "stop", Usage: usage}}},
		{name: "refusal",
			stream: sseEvents(evCreated, `{"type":"response.refusal.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"I can't"}`,
				`{"type":"response.refusal.done","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"refusal":"I can't"}`, evDone),
			want: []domain.Chunk{{Refusal: "I can't"}, {FinishReason: "stop", Usage: usage}}},
		{name: "function calls, whole from their done items",
			stream: sseEvents(evCreated, textDelta("Checking."),
				`{"type":"response.output_item.added","sequence_number":5,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"","call_id":"call_a","name":"weather"}}`,
				`{"type":"response.function_call_arguments.delta","sequence_number":6,"item_id":"fc_1","output_index":1,"delta":"{\"city\":"}`,
				`{"type":"response.function_call_arguments.delta","sequence_number":7,"item_id":"fc_1","output_index":1,"delta":"\"Paris\"}"}`,
				`{"type":"response.function_call_arguments.done","sequence_number":8,"item_id":"fc_1","output_index":1,"name":"weather","arguments":"{\"city\":\"Paris\"}"}`,
				callDone(1, "fc_1", "call_a", "weather", `{"city":"Paris"}`),
				callDone(2, "fc_2", "call_b", "time", `{}`),
				evDone),
			want: []domain.Chunk{{Content: "Checking."},
				{ToolCalls: []domain.ToolCallDelta{{Index: 0, ID: "call_a", Name: "weather", Arguments: `{"city":"Paris"}`}}},
				{ToolCalls: []domain.ToolCallDelta{{Index: 1, ID: "call_b", Name: "time", Arguments: `{}`}}},
				{FinishReason: "tool_calls", Usage: usage}}},
		{name: "incomplete at max_output_tokens",
			stream: sseEvents(evCreated, textDelta("Once upon"),
				`{"type":"response.incomplete","sequence_number":5,"response":{"id":"resp_1","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":12,"output_tokens":5,"total_tokens":17}}}`),
			want: []domain.Chunk{{Content: "Once upon"}, {FinishReason: "length", Usage: usage}}},
		{name: "incomplete by the content filter",
			stream: sseEvents(`{"type":"response.incomplete","sequence_number":0,"response":{"status":"incomplete","incomplete_details":{"reason":"content_filter"},"usage":null}}`),
			want:   []domain.Chunk{{FinishReason: "content_filter"}}},
		{name: "failed, rate limited",
			stream: sseEvents(evCreated, textDelta("Hi"),
				`{"type":"response.failed","sequence_number":5,"response":{"id":"resp_1","status":"failed","error":{"code":"rate_limit_exceeded","message":"Slow down."},"usage":null}}`),
			want: []domain.Chunk{{Content: "Hi"}},
			err:  &domain.UpstreamError{Kind: domain.FailureRateLimited, Message: "Slow down.", Code: "rate_limit_exceeded"}},
		{name: "failed, server error",
			stream: sseEvents(evCreated,
				`{"type":"response.failed","sequence_number":1,"response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"The model crashed."}}}`),
			err: &domain.UpstreamError{Kind: domain.FailureServer, Message: "The model crashed.", Code: "server_error"}},
		{name: "failed without an error",
			stream: sseEvents(`{"type":"response.failed","sequence_number":1,"response":{"status":"failed","error":null}}`),
			err:    &domain.UpstreamError{Kind: domain.FailureServer, Message: "the upstream's response failed"}},
		{name: "error event",
			stream: sseEvents(evCreated, textDelta("Hi"), `{"type":"error","sequence_number":5,"code":"server_error","message":"Something broke.","param":null}`),
			want:   []domain.Chunk{{Content: "Hi"}},
			err:    &domain.UpstreamError{Kind: domain.FailureServer, Message: "Something broke.", Code: "server_error"}},
		{name: "error event, nested",
			stream: sseEvents(`{"type":"error","sequence_number":0,"error":{"type":"invalid_request_error","code":"context_length_exceeded","message":"Too long.","param":"input"}}`),
			err:    &domain.UpstreamError{Kind: domain.FailureServer, Message: "Too long.", Code: "context_length_exceeded"}},
		{name: "in-band error without a type",
			stream: "data: {\"error\":{\"message\":\"Rate limit reached.\",\"code\":\"rate_limit_exceeded\"}}\n\n",
			err:    &domain.UpstreamError{Kind: domain.FailureRateLimited, Message: "Rate limit reached.", Code: "rate_limit_exceeded"}},
		{name: "cut before completed",
			stream: sseEvents(evCreated, textDelta("Hi")),
			want:   []domain.Chunk{{Content: "Hi"}},
			err:    io.ErrUnexpectedEOF},
		{name: "[DONE] before completed",
			stream: sseEvents(evCreated, textDelta("Hi")) + "data: [DONE]\n\n",
			want:   []domain.Chunk{{Content: "Hi"}},
			err:    io.ErrUnexpectedEOF},
		{name: "unknown events and fields ignored, comments skipped",
			stream: ": keep-alive\n\n" + sseEvents(`{"type":"response.queued","sequence_number":0,"response":{}}`,
				`{"type":"keepalive","sequence_number":1}`,
				`{"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"a","logprobs":[{"token":"a","logprob":-0.1,"top_logprobs":[]}],"obfuscation":"xyz"}`,
				`{"type":"response.output_text.delta","delta":""}`,
				`{"type":"response.custom_tool_call_input.delta","sequence_number":3,"delta":"not text"}`,
				`{"type":"response.output_item.done","output_index":1,"item":{"type":"custom_tool_call","call_id":"c","name":"apply_patch","input":"x"}}`,
				evDone),
			want: []domain.Chunk{{Content: "a"}, {FinishReason: "stop", Usage: usage}}},
		{name: "unreadable event",
			stream: "data: <html>not an event</html>\n\n",
			err:    &domain.UpstreamError{Kind: domain.FailureProtocol, Message: "unreadable stream event: invalid character '<' looking for beginning of value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []domain.Chunk
			n := 0
			r := responsesReader{backend: "gw", where: "POST /responses", event: func() { n++ }, fail: func(err error) error { return err }}
			err := r.relay(strings.NewReader(tc.stream), sinkFunc(func(c domain.Chunk) error { got = append(got, c); return nil }))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("chunks (-want +got):\n%s", diff)
			}
			var ue *domain.UpstreamError
			switch want := tc.err.(type) {
			case nil:
				if err != nil {
					t.Fatalf("error %v", err)
				}
			case *domain.UpstreamError:
				if !errors.As(err, &ue) || ue.Kind != want.Kind || ue.Message != want.Message || ue.Code != want.Code || ue.Backend != "gw" {
					t.Fatalf("error %#v, want %#v", err, want)
				}
			default:
				if err != want {
					t.Fatalf("error %v, want %v", err, want)
				}
			}
			if events := strings.Count(tc.stream, "data: {"); n != events && ue == nil {
				t.Errorf("the timers were told of %d events, want %d", n, events)
			}
		})
	}
}

// TestResponsesCallWithoutID: a call whose item lacks its call_id gets one.
func TestResponsesCallWithoutID(t *testing.T) {
	var got []domain.Chunk
	r := responsesReader{backend: "gw", event: func() {}, fail: func(err error) error { return err }}
	stream := sseEvents(`{"type":"response.output_item.done","output_index":0,"item":{"type":"function_call","name":"f","arguments":"{}"}}`, evDone)
	if err := r.relay(strings.NewReader(stream), sinkFunc(func(c domain.Chunk) error { got = append(got, c); return nil })); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0].ToolCalls) != 1 || !strings.HasPrefix(got[0].ToolCalls[0].ID, "call_") || got[1].FinishReason != "tool_calls" {
		t.Errorf("%+v", got)
	}
}

// TestResponsesSinkError: a sink error ends the read with it.
func TestResponsesSinkError(t *testing.T) {
	stop := errors.New("client gone")
	r := responsesReader{backend: "gw", event: func() {}, fail: func(err error) error { return err }}
	sent := 0
	err := r.relay(strings.NewReader(sseEvents(textDelta("a"), textDelta("b"), evDone)), sinkFunc(func(domain.Chunk) error { sent++; return stop }))
	if err != stop || sent != 1 {
		t.Errorf("error %v after %d chunks, want the sink's after 1", err, sent)
	}
}
