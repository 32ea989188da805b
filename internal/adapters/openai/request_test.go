package openai_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
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
		User: "u1",
		Raw:  []byte(body),
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
