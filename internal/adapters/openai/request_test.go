package openai_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

func ptr[T any](v T) *T { return &v }

func TestDecodeChatRequest(t *testing.T) {
	body := `{"model":"gpt-4","messages":[
		{"role":"developer","content":"be brief"},
		{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
		{"role":"assistant","content":null},
		{"role":"tool","content":"42","tool_call_id":"call_1"}],
		"stream":true,"stream_options":{"include_usage":true},
		"temperature":0.5,"top_p":1,"max_tokens":10,"max_completion_tokens":20,"stop":"END",
		"seed":7,"presence_penalty":-1,"frequency_penalty":0.5,"user":"u1","unknown":{"x":1}}`
	got, err := openai.DecodeChatRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := domain.ChatRequest{
		Model: "gpt-4",
		Messages: []domain.Message{
			{Role: "developer", Content: "be brief"},
			{Role: "user", Content: "a\nb"},
			{Role: "assistant"},
			{Role: "tool", Content: "42", ToolCallID: "call_1"},
		},
		Stream: true, IncludeUsage: true, N: 1,
		Sampling: domain.Sampling{
			Temperature: ptr(0.5), TopP: ptr(1.0), MaxTokens: ptr(20), Stop: []string{"END"},
			Seed: ptr(int64(7)), PresencePenalty: ptr(-1.0), FrequencyPenalty: ptr(0.5),
		},
		User:        "u1",
		Passthrough: wire.ChatBody(body),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeChatRequestIncludeUsageNeedsStream(t *testing.T) {
	got, err := openai.DecodeChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}`))
	if err != nil || got.IncludeUsage || got.Stream {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestDecodeChatRequestErrorsNameTheField(t *testing.T) {
	msgs := `"messages":[{"role":"user","content":"x"}]`
	for _, tc := range []struct{ body, param string }{
		{`{`, ""},
		{``, ""},
		{"{\"model\":\"\xff\"}", ""},
		{`{` + msgs + `}`, "model"},
		{`{"model":7,` + msgs + `}`, "model"},
		{`{"model":"  ",` + msgs + `}`, "model"},
		{`{"model":"m"}`, "messages"},
		{`{"model":"m","messages":[]}`, "messages"},
		{`{"model":"m","messages":"hi"}`, "messages"},
		{`{"model":"m","messages":[5]}`, "messages[0]"},
		{`{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"role":"wizard","content":"x"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","content":5}]}`, "messages[1].content"},
		{`{"model":"m","messages":[{"role":"user"}]}`, "messages[0].content"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"audio"}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}`, "messages[0].content[0].text"},
		{`{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
		{`{"model":"m",` + msgs + `,"temperature":2.5}`, "temperature"},
		{`{"model":"m",` + msgs + `,"temperature":"hot"}`, "temperature"},
		{`{"model":"m",` + msgs + `,"top_p":1.5}`, "top_p"},
		{`{"model":"m",` + msgs + `,"max_tokens":0}`, "max_tokens"},
		{`{"model":"m",` + msgs + `,"max_completion_tokens":-1}`, "max_completion_tokens"},
		{`{"model":"m",` + msgs + `,"stop":["a","b","c","d","e"]}`, "stop"},
		{`{"model":"m",` + msgs + `,"stop":5}`, "stop"},
		{`{"model":"m",` + msgs + `,"stream":"yes"}`, "stream"},
		{`{"model":"m",` + msgs + `,"stream":true,"stream_options":{"include_usage":"y"}}`, "stream_options.include_usage"},
		{`{"model":"m",` + msgs + `,"presence_penalty":3}`, "presence_penalty"},
		{`{"model":"m",` + msgs + `,"seed":1.5}`, "seed"},
		{`{"model":"m",` + msgs + `,"n":0}`, "n"},
		{`{"model":"m",` + msgs + `,"n":129}`, "n"},
		{`{"model":"m",` + msgs + `,"top_logprobs":3}`, "top_logprobs"},
		{`{"model":"m",` + msgs + `,"logprobs":true,"top_logprobs":21}`, "top_logprobs"},
		{`{"model":"m",` + msgs + `,"logit_bias":{"50256":-100}}`, "logit_bias"},
		{`{"model":"m",` + msgs + `,"modalities":["text","audio"]}`, "modalities"},
		{`{"model":"m",` + msgs + `,"audio":{"voice":"alloy","format":"wav"}}`, "audio"},
		{`{"model":"m",` + msgs + `,"prediction":{"type":"content","content":"x"}}`, "prediction"},
		{`{"model":"m",` + msgs + `,"web_search_options":{}}`, "web_search_options"},
		{`{"model":"m",` + msgs + `,"reasoning_effort":"extreme"}`, "reasoning_effort"},
		{`{"model":"m",` + msgs + `,"tools":[{"type":"custom","custom":{"name":"x"}}]}`, "tools[0].type"},
		{`{"model":"m",` + msgs + `,"tools":[{"type":"function"}]}`, "tools[0].function"},
		{`{"model":"m",` + msgs + `,"tools":[{"type":"function","function":{"name":"bad name"}}]}`, "tools[0].function.name"},
		{`{"model":"m",` + msgs + `,"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]}`, "tools[0].function.parameters"},
		{`{"model":"m",` + msgs + `,"tool_choice":"required"}`, "tool_choice"},
		{`{"model":"m",` + msgs + `,"tool_choice":"sometimes"}`, "tool_choice"},
		{`{"model":"m",` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, "tool_choice"},
		{`{"model":"m",` + msgs + `,"function_call":"auto"}`, "function_call"},
		{`{"model":"m",` + msgs + `,"functions":[{"name":"f"}],"function_call":{"name":"g"}}`, "function_call"},
		{`{"model":"m",` + msgs + `,"response_format":{"type":"xml"}}`, "response_format.type"},
		{`{"model":"m",` + msgs + `,"response_format":{"type":"json_schema"}}`, "response_format.json_schema"},
		{`{"model":"m",` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}`, "response_format.json_schema.name"},
		// What a backend forwarding the body would read otherwise than
		// this service (see keys.go).
		{`{"model":"m",` + msgs + `,"stream":true,"Stream":false}`, "Stream"},
		{`{"model":"m",` + msgs + `,"stream":true,"stream":false}`, "stream"},
		{`{"model":"m",` + msgs + `,"str\u0065am":true,"stream":false}`, "stream"},
		{`{"model":"m",` + msgs + `,"MODEL":"other"}`, "MODEL"},
		{`{"model":"m",` + msgs + `,"stream":true,"stream_options":{"include_usage":true,"Include_Usage":false}}`, "stream_options.Include_Usage"},
		{`{"model":"m","messages":[{"role":"user","content":"x","Role":"system"}]}`, "messages[0].Role"},
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","role":"system","content":"y"}]}`, "messages[1].role"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","TEXT":"b"}]}]}`, "messages[0].content[0].TEXT"},
		{`{"model":"m",` + msgs + `,"tools":[{"type":"function","function":{"name":"f","Name":"g"}}]}`, "tools[0].function.Name"},
		{`{"model":"m",` + msgs + `,"ſtream":true}`, "ſtream"},
		{`{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:x"}}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]}`, "messages[0].tool_calls[0].id"},
		{`{"model":"m","messages":[{"role":"function","content":"x"}]}`, "messages[0].name"},
	} {
		_, err := openai.DecodeChatRequest([]byte(tc.body))
		var inv *domain.InvalidRequestError
		if !errors.As(err, &inv) {
			t.Errorf("%s: got %v, want an invalid request error", tc.body, err)
			continue
		}
		if inv.Param != tc.param || inv.Message == "" {
			t.Errorf("%s: param %q (%s), want %q", tc.body, inv.Param, inv.Message, tc.param)
		}
	}
}

func FuzzDecodeChatRequest(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}],"stop":["x"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := openai.DecodeChatRequest(body)
		if err == nil && (req.Model == "" || len(req.Messages) == 0) {
			t.Fatalf("accepted a request without model or messages: %s", body)
		}
		var inv *domain.InvalidRequestError
		if err != nil && !errors.As(err, &inv) {
			t.Fatalf("error of type %T: %v", err, err)
		}
	})
}

// imageURLs compares images by the URL the client sent.
var imageURLs = cmp.Comparer(func(a, b *domain.Image) bool { return a.URL == b.URL })

// TestKeysOutsideWhatIsReadPass checks the key rules stay where the
// service reads: a schema's properties, metadata and unknown fields may
// repeat names in other cases.
func TestKeysOutsideWhatIsReadPass(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"Stream":"a","stream":"b"},` +
		`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"Name":{},"name":{}}}}}],` +
		`"Unknown":1,"unknown":2}`
	if _, err := openai.DecodeChatRequest([]byte(body)); err != nil {
		t.Fatal(err)
	}
}

func TestNeutralValuesOfUnsupportedFeaturesPass(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"x"}],"n":1,"logit_bias":{},"modalities":["text"],` +
		`"audio":null,"prediction":null,"web_search_options":null,"store":false,"metadata":{"a":"b"},"service_tier":"auto"}`
	if _, err := openai.DecodeChatRequest([]byte(body)); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeToolsAndChoices(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"ok"}],
		"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type": "object"},"strict":true}}],
		"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false,
		"response_format":{"type":"json_schema","json_schema":{"name":"out","schema":{"type":"object"},"strict":true}},
		"n":3,"logprobs":true,"top_logprobs":2,"reasoning_effort":"low","options":{"num_ctx": 4096},"keep_alive":"5m","think":false}`
	got, err := openai.DecodeChatRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got.Passthrough = nil
	want := domain.ChatRequest{
		Model: "m",
		Messages: []domain.Message{
			{Role: "user", Content: "look", Images: []*domain.Image{domain.NewImage("data:image/png;base64,AA==")}},
			{Role: "assistant", ToolCalls: []domain.ToolCall{{ID: "call_1", Name: "f", Arguments: "{}"}}},
			{Role: "tool", Content: "ok", ToolCallID: "call_1"},
		},
		Tools:             []domain.Tool{{Name: "f", Description: "d", Parameters: []byte(`{"type":"object"}`), Strict: ptr(true)}},
		ToolChoice:        domain.ToolChoice{Mode: "function", Name: "f"},
		ParallelToolCalls: ptr(false),
		ResponseFormat:    &domain.ResponseFormat{Type: "json_schema", Name: "out", Schema: []byte(`{"type":"object"}`), Strict: ptr(true)},
		N:                 3, Logprobs: true, TopLogprobs: ptr(2), ReasoningEffort: "low",
	}
	if diff := cmp.Diff(want, got, imageURLs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	legacy, err := openai.DecodeChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],
		"functions":[{"name":"f"}],"function_call":{"name":"f"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !legacy.LegacyFunctions || legacy.ToolChoice != (domain.ToolChoice{Mode: "function", Name: "f"}) || len(legacy.Tools) != 1 {
		t.Errorf("legacy functions: %+v", legacy)
	}
}
