package gatewaytest

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// streamEvent is one event of a stream: its event line's type and data.
type streamEvent struct {
	name string
	data string
}

// readEvents splits a Responses stream into its events, checking the
// framing: an event line, a data line, a blank line.
func readEvents(t *testing.T, stream string) []streamEvent {
	t.Helper()
	var out []streamEvent
	sc := bufio.NewScanner(strings.NewReader(stream))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, ok := strings.CutPrefix(sc.Text(), "event: ")
		if !ok || !sc.Scan() {
			t.Fatalf("event %d: no event line", len(out))
		}
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || !sc.Scan() || sc.Text() != "" {
			t.Fatalf("event %d (%s): no data line and blank line", len(out), name)
		}
		out = append(out, streamEvent{name, data})
	}
	return out
}

// checkEvents holds a stream's events to the rules every client relies on:
// the data's type is the event line's, sequence numbers run from 0, every
// event matches the spec's ResponseStreamEvent (the terminal event's
// response matches Response), and no event has a top-level error member
// but an error event. It returns the event types.
func checkEvents(t *testing.T, events []streamEvent) []string {
	t.Helper()
	var types []string
	for i, e := range events {
		var head struct {
			Type     string          `json:"type"`
			Seq      *int            `json:"sequence_number"`
			Error    json.RawMessage `json:"error"`
			Response json.RawMessage `json:"response"`
		}
		if err := json.Unmarshal([]byte(e.data), &head); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if head.Type != e.name || head.Seq == nil || *head.Seq != i {
			t.Errorf("event %d: type %q (event line %q), sequence number %v", i, head.Type, e.name, head.Seq)
		}
		if head.Error != nil && head.Type != "error" {
			t.Errorf("event %d (%s) has a top-level error member: the Go SDK would end the stream", i, head.Type)
		}
		openaispec.Must(t, "ResponseStreamEvent", []byte(e.data))
		if head.Response != nil {
			openaispec.Must(t, "Response", head.Response)
		}
		types = append(types, head.Type)
	}
	return types
}

// TestResponsesBytes holds the Responses answers to golden files (OpenAI's
// bytes) and to the spec: streams of text, of reasoning, text and a call,
// cut short, failed; whole answers.
func TestResponsesBytes(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	for _, tc := range []struct {
		name string
		set  func(*Server)
		body string
	}{
		{"text", func(s *Server) { s.Pieces = []string{"Hi", " there <&>"} },
			`{"model":"m","input":"Say hi","stream":true,"store":false,"instructions":"Be brief.","temperature":0.2,"metadata":{"k":"v"}}`},
		{"reasoning_text_call", func(s *Server) {
			s.Reasoning, s.Pieces, s.ToolCall = []string{"The user", " wants weather."}, []string{"Checking."}, &ToolCall{Name: "weather", Arguments: `{"city":"Zürich"}`}
		}, `{"model":"m","input":[{"role":"user","content":"Weather in Zürich?"}],"stream":true,` +
			`"tools":[{"type":"function","name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}],"tool_choice":"auto","parallel_tool_calls":false}`},
		{"call_only", func(s *Server) { s.ToolCall = &ToolCall{Name: "now", Arguments: `{}`} }, `{"model":"m","input":"time?","stream":true}`},
		{"incomplete", func(s *Server) { s.Pieces, s.Incomplete = []string{"Once", " upon"}, "max_output_tokens" },
			`{"model":"m","input":"Tell a story.","stream":true,"max_output_tokens":2}`},
		{"failed", func(s *Server) {
			s.Pieces, s.Failure = []string{"Once"}, &ResponseError{Code: "server_error", Message: "The server had an error."}
		},
			`{"model":"m","input":"Tell a story.","stream":true}`},
		{"whole", func(s *Server) { s.Reasoning, s.Pieces = []string{"Easy."}, []string{"Hi", " there"} }, `{"model":"m","input":"Say hi"}`},
		{"whole_failed", func(s *Server) { s.Failure = &ResponseError{Code: "rate_limit_exceeded", Message: "Slow down."} }, `{"model":"m","input":"Say hi"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.Set(func(s *Server) {
				s.Pieces, s.Reasoning, s.ToolCall, s.Incomplete, s.Failure = nil, nil, nil, "", nil
				tc.set(s)
			})
			status, got := post(t, s, PathResponses, tc.body)
			if status != 200 {
				t.Fatalf("%d %s", status, got)
			}
			if strings.HasPrefix(tc.name, "whole") {
				openaispec.Must(t, "Response", []byte(got))
				golden(t, "responses_"+tc.name+".json", got)
				return
			}
			checkEvents(t, readEvents(t, got))
			golden(t, "responses_"+tc.name+".sse", got)
		})
	}
}

// TestResponsesEventOrder: the order every client accepts (created,
// in_progress before any item; each item added, its parts, its deltas, its
// done events; a terminal event last).
func TestResponsesEventOrder(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	s.Reasoning, s.Pieces, s.ToolCall = []string{"r"}, []string{"a", "b"}, &ToolCall{Name: "f", Arguments: `{"x":1}`}
	_, got := post(t, s, PathResponses, `{"model":"m","input":"hi","stream":true}`)
	want := []string{"response.created", "response.in_progress",
		"response.output_item.added", "response.content_part.added", "response.reasoning_text.delta", "response.reasoning_text.done",
		"response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done",
		"response.completed"}
	if diff := cmp.Diff(want, checkEvents(t, readEvents(t, got))); diff != "" {
		t.Errorf("event types (-want +got):\n%s", diff)
	}
}

// TestResponsesSDK: OpenAI's Go SDK reads the fake's answers, streamed
// and whole.
func TestResponsesSDK(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	s.Pieces, s.ToolCall = []string{"Hi", " there"}, &ToolCall{Name: "f", Arguments: `{"x":1}`}
	client := openai.NewClient(option.WithBaseURL(s.URL+"/v1"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	params := responses.ResponseNewParams{Model: "m", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}}

	stream := client.Responses.NewStreaming(context.Background(), params)
	var text strings.Builder
	var final *responses.Response
	for stream.Next() {
		switch e := stream.Current().AsAny().(type) {
		case responses.ResponseTextDeltaEvent:
			text.WriteString(e.Delta)
		case responses.ResponseCompletedEvent:
			final = &e.Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != "Hi there" || final == nil || final.OutputText() != "Hi there" || final.Usage.TotalTokens != 17 {
		t.Fatalf("streamed %q, final %+v", text.String(), final)
	}
	if len(final.Output) != 2 || final.Output[1].Type != "function_call" || final.Output[1].Name != "f" || final.Output[1].Arguments.OfString != `{"x":1}` {
		t.Errorf("output %+v", final.Output)
	}

	whole, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if whole.OutputText() != "Hi there" || whole.Status != "completed" || whole.Usage.InputTokens != 12 {
		t.Errorf("whole answer %+v", whole)
	}
}

// TestResponsesRefusals: the errors OpenAI answers a Responses request
// with, recorded like any request.
func TestResponsesRefusals(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	for _, tc := range []struct {
		body        string
		status      int
		param, code string
	}{
		{`{"model":"x","input":"hi"}`, 404, "", "model_not_found"},
		{`{"model":"m","input":"hi","previous_response_id":"resp_1"}`, 400, "previous_response_id", "previous_response_not_found"},
		{`{"model":"m","input":{"role":"user"}}`, 400, "input", "invalid_type"},
		{`{"model":"m","input":`, 400, "", ""},
	} {
		status, got := post(t, s, PathResponses, tc.body)
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		if err := json.Unmarshal([]byte(got), &e); err != nil || e.Error.Message == "" || e.Error.Type != "invalid_request_error" ||
			status != tc.status || str(e.Error.Param) != tc.param || str(e.Error.Code) != tc.code {
			t.Errorf("%s: %d %s", tc.body, status, got)
		}
	}
	s.Status, s.ErrorMessage = http.StatusTooManyRequests, "Rate limit reached."
	if status, _ := post(t, s, PathResponses, `{"model":"m","input":"hi"}`); status != 429 {
		t.Errorf("status %d, want 429", status)
	}
	if n := len(s.RequestsTo(PathResponses)); n != 5 {
		t.Errorf("%d requests recorded, want 5", n)
	}
}
