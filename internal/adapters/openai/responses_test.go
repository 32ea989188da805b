package openai_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// codexRequest is the shape Codex CLI sends (trimmed): a developer message
// for instructions, items with ids, a namespace and a hosted tool, reasoning.
const codexRequest = `{"model":"qwen3","stream":true,"store":false,"tool_choice":"auto","parallel_tool_calls":true,
	"reasoning":{"summary":"auto"},"include":["reasoning.encrypted_content"],"prompt_cache_key":"s-1",
	"client_metadata":{"x":"y"},
	"input":[
	 {"type":"message","id":"msg_1","role":"developer","content":[{"type":"input_text","text":"You are Codex."}]},
	 {"type":"message","role":"user","content":[{"type":"input_text","text":"List the files."}]},
	 {"type":"function_call","status":"completed","id":"fc_1","name":"exec_command","arguments":"{\"cmd\":\"ls\"}","call_id":"call_a"},
	 {"type":"function_call_output","id":"fco_1","call_id":"call_a","output":"a.go\nb.go"},
	 {"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"hm"}],"encrypted_content":null},
	 {"type":"web_search_call","id":"ws_1","status":"completed"}],
	"tools":[
	 {"type":"function","name":"exec_command","description":"Run a command","strict":false,"parameters":{"type":"object","properties":{"cmd":{"type":"string"}},"required":["cmd"]}},
	 {"type":"namespace","name":"multi_agent_v1","description":"agents","tools":[{"type":"function","name":"spawn","parameters":{"type":"object"}}]},
	 {"type":"custom","name":"apply_patch","description":"Apply a patch","format":{"type":"grammar","syntax":"lark","definition":"start: x"}},
	 {"type":"web_search","external_web_access":false}]}`

func TestDecodeResponsesRequestAsCodexSendsIt(t *testing.T) {
	r, err := openai.DecodeResponsesRequest([]byte(codexRequest))
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Message{
		{Role: "developer", Content: "You are Codex."},
		{Role: "user", Content: "List the files."},
		{Role: "assistant", ToolCalls: []domain.ToolCall{{ID: "call_a", Name: "exec_command", Arguments: `{"cmd":"ls"}`}}},
		{Role: "tool", ToolCallID: "call_a", Content: "a.go\nb.go"},
	}
	if diff := cmp.Diff(want, r.Chat.Messages, imageURLs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	var names []string
	for _, tl := range r.Chat.Tools {
		names = append(names, tl.Name)
	}
	if diff := cmp.Diff([]string{"exec_command", "multi_agent_v1.spawn", "apply_patch"}, names); diff != "" {
		t.Errorf("tools the model sees (-want +got):\n%s; web_search is left out", diff)
	}
	if r.Store || !r.Stream || len(r.Items) != 6 {
		t.Errorf("store %v stream %v, %d items stored", r.Store, r.Stream, len(r.Items))
	}
	for i, it := range r.Items {
		var item struct {
			ID, Type string
		}
		if json.Unmarshal(it, &item) != nil || item.ID == "" || item.Type == "" {
			t.Errorf("stored item %d %s: want an id and a type", i, it)
		}
	}
}

func TestDecodeResponsesRequestForms(t *testing.T) {
	r, err := openai.DecodeResponsesRequest([]byte(`{"model":"gpt-4","input":"Hi","instructions":"Be brief.",
		"text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}},
		"reasoning":{"effort":"low"},"max_output_tokens":100,"temperature":0.5,"top_logprobs":2,
		"include":["message.output_text.logprobs"],"metadata":{"k":"v"},"user":"u"}`))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Chat
	if diff := cmp.Diff([]domain.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}}, c.Messages, imageURLs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if c.ResponseFormat == nil || c.ResponseFormat.Type != "json_schema" || c.ReasoningEffort != "low" || *c.Sampling.MaxTokens != 100 ||
		!c.Logprobs || *c.TopLogprobs != 2 || c.User != "u" || !r.Store || r.Stream {
		t.Errorf("chat %+v, store %v stream %v", c, r.Store, r.Stream)
	}
	// An easy input message (no type), as the Agents SDK sends it.
	r, err = openai.DecodeResponsesRequest([]byte(`{"model":"m","input":[{"role":"user","content":"Weather in Paris?"}]}`))
	if err != nil || len(r.Chat.Messages) != 1 || r.Chat.Messages[0].Content != "Weather in Paris?" {
		t.Fatalf("%+v %v", r, err)
	}
	var stored map[string]any
	_ = json.Unmarshal(r.Items[0], &stored)
	if stored["type"] != "message" || !strings.HasPrefix(stored["id"].(string), "msg_") {
		t.Errorf("stored item %s", r.Items[0])
	}
}

func TestDecodeResponsesRequestErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ body, param string }{
		{`{"input":"x"}`, "model"},
		{`{"model":"m"}`, "input"},
		{`{"model":"m","input":5}`, "input"},
		{`{"model":"m","input":[{"content":"x"}]}`, "input[0].type"},
		{`{"model":"m","input":[{"role":"robot","content":"x"}]}`, "input[0].role"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}`, "input[0].content[0].type"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]}`, "input[0].content[0].file_id"},
		{`{"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}`, "input[0].call_id"},
		{`{"model":"m","input":[{"type":"function_call_output","call_id":"c"}]}`, "input[0].output"},
		{`{"model":"m","input":[{"type":"item_reference","id":"nope"}]}`, "input[0].id"},
		{`{"model":"m","input":"x","background":true}`, "background"},
		{`{"model":"m","input":"x","conversation":"conv_1"}`, "conversation"},
		{`{"model":"m","input":"x","tools":[{"type":"web_search"}],"tool_choice":{"type":"web_search"}}`, "tool_choice"},
		{`{"model":"m","input":"x","tools":[{"type":"web_search"}],"tool_choice":"required"}`, "tool_choice"},
		{`{"model":"m","input":"x","tool_choice":{"type":"function","name":"f"}}`, "tool_choice"},
		{`{"model":"m","input":"x","tools":[{"type":"function"}]}`, "tools[0].name"},
		{`{"model":"m","input":"x","text":{"format":{"type":"xml"}}}`, "text.format.type"},
		{`{"model":"m","input":"x","reasoning":{"effort":"extreme"}}`, "reasoning.effort"},
		{`{"model":"m","input":"x","max_output_tokens":0}`, "max_output_tokens"},
		{`{"model":"m","input":"x","top_logprobs":21}`, "top_logprobs"},
		{`{"model":"m","input":"x","Input":"y"}`, "Input"},
		{`{"model":"m","input":"x","stream":true,"stream":false}`, "stream"},
	} {
		_, err := openai.DecodeResponsesRequest([]byte(tc.body))
		var inv *domain.InvalidRequestError
		if !errors.As(err, &inv) || inv.Param != tc.param {
			t.Errorf("%s: %v, want an invalid request naming %q", tc.body, err, tc.param)
		}
	}
}

// events splits a Responses stream into its events, checking the framing:
// an event line and a data line naming the same type, sequence numbers
// from 0 without gaps.
func events(t *testing.T, stream string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, frame := range strings.Split(strings.TrimSuffix(stream, "\n\n"), "\n\n") {
		lines := strings.Split(frame, "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
			t.Fatalf("frame %d %q: want an event line and a data line", i, frame)
		}
		data := strings.TrimPrefix(lines[1], "data: ")
		openaispec.Must(t, "ResponseStreamEvent", []byte(data))
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev["type"] != strings.TrimPrefix(lines[0], "event: ") || ev["sequence_number"] != float64(i) {
			t.Fatalf("event %d: %q with data %s", i, lines[0], data)
		}
		if _, ok := ev["error"]; ok {
			t.Errorf("event %d has a top-level error key, which openai-go takes for a stream error: %s", i, data)
		}
		out = append(out, ev)
	}
	return out
}

func types(evs []map[string]any) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e["type"].(string))
	}
	return out
}

func TestResponseStreamEventsInTheOrderClientsEnforce(t *testing.T) {
	req, err := openai.DecodeResponsesRequest([]byte(`{"model":"gpt-4","input":"Hi","stream":true,
		"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}},{"type":"web_search"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b := openai.NewResponseBuilder(req, "resp_1", "gpt-4", 100, func() int64 { return 101 })
	var s strings.Builder
	s.Write(b.Open())
	for _, c := range []domain.Chunk{
		{Reasoning: "Let me "}, {Reasoning: "think."},
		{Content: "Checking"}, {Content: " the weather."},
		{ToolCalls: []domain.ToolCallDelta{{Index: 0, ID: "call_1", Name: "get_weather", Arguments: `{"city":`}}},
		{ToolCalls: []domain.ToolCallDelta{{Index: 0, Arguments: `"Paris"}`}}},
		{FinishReason: "tool_calls", Usage: &domain.Usage{PromptTokens: 7, CompletionTokens: 9}},
	} {
		s.Write(b.Chunk(c))
	}
	s.Write(b.Close())
	evs := events(t, s.String())
	want := []string{
		"response.created", "response.in_progress",
		"response.output_item.added", "response.content_part.added", "response.reasoning_text.delta", "response.reasoning_text.delta",
		"response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
		"response.output_text.done", "response.content_part.done", "response.output_item.done",
		"response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
		"response.function_call_arguments.done", "response.output_item.done",
		"response.completed",
	}
	if diff := cmp.Diff(want, types(evs)); diff != "" {
		t.Fatalf("event order (-want +got):\n%s", diff)
	}
	final := evs[len(evs)-1]["response"].(map[string]any)
	out := final["output"].([]any)
	if len(out) != 3 || final["status"] != "completed" {
		t.Fatalf("final response %v", final)
	}
	call := out[2].(map[string]any)
	if call["type"] != "function_call" || call["call_id"] != "call_1" || call["name"] != "get_weather" || call["arguments"] != `{"city":"Paris"}` {
		t.Errorf("call item %v", call)
	}
	usage := final["usage"].(map[string]any)
	if usage["input_tokens"] != float64(7) || usage["total_tokens"] != float64(16) || usage["input_tokens_details"] == nil {
		t.Errorf("usage %v", usage)
	}
	tools, _ := json.Marshal(final["tools"])
	if !strings.Contains(string(tools), `"web_search"`) {
		t.Errorf("tools %s: the request's tools are echoed as sent", tools)
	}
	openaispec.Must(t, "Response", b.Object())
	// Output indexes run 0, 1, 2 in the order items were added.
	idx := 0
	for _, e := range evs {
		if e["type"] == "response.output_item.added" {
			if e["output_index"] != float64(idx) {
				t.Errorf("item added at output_index %v, want %d", e["output_index"], idx)
			}
			idx++
		}
	}
}

func TestResponseIncompleteAndFailed(t *testing.T) {
	req, _ := openai.DecodeResponsesRequest([]byte(`{"model":"m","input":"Hi","stream":true}`))
	b := openai.NewResponseBuilder(req, "resp_2", "m", 100, func() int64 { return 101 })
	var s strings.Builder
	s.Write(b.Open())
	s.Write(b.Chunk(domain.Chunk{Content: "cut", FinishReason: "length"}))
	s.Write(b.Close())
	evs := events(t, s.String())
	last := evs[len(evs)-1]
	r := last["response"].(map[string]any)
	if last["type"] != "response.incomplete" || r["status"] != "incomplete" ||
		r["incomplete_details"].(map[string]any)["reason"] != "max_output_tokens" {
		t.Errorf("last event %v", last)
	}

	b = openai.NewResponseBuilder(req, "resp_3", "m", 100, func() int64 { return 101 })
	s.Reset()
	s.Write(b.Open())
	s.Write(b.Chunk(domain.Chunk{Content: "half"}))
	s.Write(b.Fail("rate_limit_exceeded", "Backend gateway: rate limited."))
	evs = events(t, s.String())
	last = evs[len(evs)-1]
	r = last["response"].(map[string]any)
	if last["type"] != "response.failed" || r["status"] != "failed" || r["error"].(map[string]any)["code"] != "rate_limit_exceeded" {
		t.Errorf("last event %v", last)
	}
	openaispec.Must(t, "Response", b.Object())
}

func TestBufferedResponseObject(t *testing.T) {
	req, _ := openai.DecodeResponsesRequest([]byte(`{"model":"m","input":"Hi","include":["message.output_text.logprobs"]}`))
	b := openai.NewResponseBuilder(req, "resp_4", "m", 100, func() int64 { return 101 })
	text := "Hello"
	b.Completion(domain.Completion{
		Choices: []domain.Choice{{Content: &text, Reasoning: "greet", FinishReason: "stop",
			Logprobs: []domain.TokenLogprob{{Token: "Hello", Logprob: -0.1, Bytes: []byte("Hello")}}}},
		Usage: &domain.Usage{PromptTokens: 3, CompletionTokens: 1},
	})
	if ev := b.Close(); ev != nil {
		t.Errorf("a buffered answer wrote events: %s", ev)
	}
	obj := b.Object()
	openaispec.Must(t, "Response", obj)
	var r struct {
		Status string `json:"status"`
		Output []struct {
			Type    string `json:"type"`
			Content []struct {
				Type     string `json:"type"`
				Text     string `json:"text"`
				Logprobs []any  `json:"logprobs"`
			} `json:"content"`
		} `json:"output"`
	}
	if err := json.Unmarshal(obj, &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != "completed" || len(r.Output) != 2 || r.Output[0].Type != "reasoning" || r.Output[1].Content[0].Text != "Hello" ||
		len(r.Output[1].Content[0].Logprobs) != 1 {
		t.Errorf("response %s", obj)
	}
}

// TestContinueRebuildsTheConversation: previous_response_id's input and
// output come before the new input, instructions first, and a
// function_call_output answers the call the stored output made.
func TestContinueRebuildsTheConversation(t *testing.T) {
	prevInput := `[{"type":"message","id":"msg_a","role":"user","content":[{"type":"input_text","text":"Weather in Paris?"}],"status":"completed"}]`
	prevResponse := `{"id":"resp_1","output":[{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}","status":"completed"}]}`
	r, err := openai.DecodeResponsesRequest([]byte(`{"model":"m","previous_response_id":"resp_1","instructions":"Use tools.",
		"input":[{"type":"function_call_output","call_id":"call_1","output":"sunny"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Continue([]byte(prevInput), []byte(prevResponse)); err != nil {
		t.Fatal(err)
	}
	want := []domain.Message{
		{Role: "system", Content: "Use tools."},
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", ToolCalls: []domain.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
		{Role: "tool", ToolCallID: "call_1", Content: "sunny"},
	}
	if diff := cmp.Diff(want, r.Chat.Messages, imageURLs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	var conv []map[string]any
	if err := json.Unmarshal(r.Conversation(), &conv); err != nil || len(conv) != 3 || conv[1]["id"] != "fc_1" {
		t.Errorf("the conversation stored with the new response: %s (%v)", r.Conversation(), err)
	}
}
