package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
)

// The Responses API end to end through OpenAI's Go SDK: buffered and
// streamed, a function-tool round trip continued with
// previous_response_id, stored responses read back, listed and deleted.

var weatherFunction = responses.ToolParamOfFunction("get_weather",
	map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}}, true)

func TestE2EResponsesToolRoundTripViaOllama(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, upstreamModel)
	ol.CallTools = []ollamatest.ToolCall{ollamatest.Call("get_weather", `{"city":"Paris"}`)}
	ol.Reply = "It is sunny in Paris."
	r := startApp(t, testConfig("", ol.URL))
	client := sdkClient(t, r)
	ctx := ctxFor(t)

	first, err := client.Responses.New(ctx, responses.ResponseNewParams{
		Model:        "gpt-4",
		Instructions: openai.String("Use the tools."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("Weather in Paris?")},
		Tools:        []responses.ToolUnionParam{weatherFunction, {OfWebSearch: &responses.WebSearchToolParam{Type: "web_search"}}},
	})
	if err != nil {
		t.Fatalf("responses.create: %v", err)
	}
	if !strings.HasPrefix(first.ID, "resp_") || first.Status != "completed" || len(first.Output) != 1 {
		t.Fatalf("first response %s", first.RawJSON())
	}
	call := first.Output[0].AsFunctionCall()
	if call.Type != "function_call" || call.Name != "get_weather" || call.Arguments != `{"city":"Paris"}` || !strings.HasPrefix(call.CallID, "call_") {
		t.Fatalf("function call %+v", call)
	}
	if first.Usage.InputTokens != int64(ol.PromptEvalCount) {
		t.Errorf("usage %+v", first.Usage)
	}
	openaispec.Must(t, "Response", []byte(first.RawJSON()))

	// The next turn sends only the call's output; the service rebuilds the rest.
	output := responses.ResponseInputItemParamOfFunctionCallOutput("sunny, 22°C")
	output.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	second, err := client.Responses.New(ctx, responses.ResponseNewParams{
		Model:              "gpt-4",
		PreviousResponseID: openai.String(first.ID),
		Input:              responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{output}},
		Tools:              []responses.ToolUnionParam{weatherFunction},
	})
	if err != nil {
		t.Fatalf("responses.create with previous_response_id: %v", err)
	}
	if second.OutputText() != "It is sunny in Paris." || second.PreviousResponseID != first.ID {
		t.Fatalf("second response %s", second.RawJSON())
	}
	var sent struct {
		Messages []struct {
			Role      string `json:"role"`
			Content   string `json:"content"`
			ToolCalls []any  `json:"tool_calls"`
			ToolName  string `json:"tool_name"`
		} `json:"messages"`
	}
	reqs := ol.Requests()
	if err := json.Unmarshal(reqs[len(reqs)-1], &sent); err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, m := range sent.Messages {
		roles = append(roles, m.Role)
	}
	// Instructions are not carried over (OpenAI's rule): the second turn
	// has none. The user's question, the call and its output are.
	if strings.Join(roles, ",") != "user,assistant,tool" || len(sent.Messages[1].ToolCalls) != 1 ||
		sent.Messages[2].Content != "sunny, 22°C" || sent.Messages[2].ToolName != "get_weather" {
		t.Errorf("Ollama got %s", reqs[len(reqs)-1])
	}

	// Stored: read back, listed, deleted.
	got, err := client.Responses.Get(ctx, second.ID, responses.ResponseGetParams{})
	if err != nil || got.ID != second.ID || got.OutputText() != second.OutputText() {
		t.Fatalf("responses.retrieve: %v", err)
	}
	items, err := client.Responses.InputItems.List(ctx, second.ID, responses.InputItemListParams{Order: "asc"})
	if err != nil {
		t.Fatalf("input_items.list: %v", err)
	}
	var types []string
	for _, it := range items.Data {
		types = append(types, it.Type)
		if it.ID == "" {
			t.Errorf("input item without an id: %s", it.RawJSON())
		}
	}
	if strings.Join(types, ",") != "message,function_call,function_call_output" {
		t.Errorf("input items %v", types)
	}
	if err := client.Responses.Delete(ctx, first.ID); err != nil {
		t.Fatalf("responses.delete: %v", err)
	}
	_, err = client.Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
	apiError(t, err, http.StatusNotFound, "")
	_, err = client.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-4", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("and tomorrow?")},
	})
	if e := apiError(t, err, http.StatusNotFound, ""); e.Param != "previous_response_id" {
		t.Errorf("param %q", e.Param)
	}
}

func TestE2EResponsesStreamedViaOllama(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, upstreamModel)
	ol.Thinking = []string{"The user ", "greets."}
	ol.Pieces = []string{"Hello", " there"}
	r := startApp(t, testConfig("", ol.URL))
	client := sdkClient(t, r)

	stream := client.Responses.NewStreaming(ctxFor(t), responses.ResponseNewParams{
		Model: "gpt-4", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi")},
		Reasoning: openai.ReasoningParam{Effort: "low"},
		Store:     openai.Bool(false),
	})
	var types []string
	var text strings.Builder
	var final responses.Response
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
		if ev.Type == "response.completed" {
			final = ev.Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if len(types) < 3 || types[0] != "response.created" || types[1] != "response.in_progress" || types[len(types)-1] != "response.completed" {
		t.Fatalf("events %v", types)
	}
	if text.String() != "Hello there" || final.OutputText() != "Hello there" || len(final.Output) != 2 ||
		final.Output[0].Type != "reasoning" || final.Usage.TotalTokens == 0 {
		t.Errorf("streamed %q, final %s", text.String(), final.RawJSON())
	}
	if sent := ol.LastRequest(); sent["think"] != "low" {
		t.Errorf("reasoning.effort low reached Ollama as think %v", sent["think"])
	}
	// store: false keeps nothing.
	_, err := client.Responses.Get(ctxFor(t), final.ID, responses.ResponseGetParams{})
	apiError(t, err, http.StatusNotFound, "")
}

// TestE2EResponsesViaGateway: through the gateway's chat completions by
// default, through its own /v1/responses when it says it serves them.
func TestE2EResponsesViaGateway(t *testing.T) {
	t.Parallel()
	for _, native := range []bool{false, true} {
		gw := newGateway(t, upstreamModel)
		cfg := testConfig(gw.URL, "")
		cfg.Gateway.ResponsesAPI = native
		r := startApp(t, cfg)
		client := sdkClient(t, r)
		var resp *http.Response
		got, err := client.Responses.New(ctxFor(t), responses.ResponseNewParams{
			Model: "gpt-4", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi")},
			Metadata: map[string]string{"team": "search"},
		}, option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("native=%v: %v", native, err)
		}
		if got.OutputText() != gatewayReply || resp.Header.Get("X-Backend") != "gateway" || got.Metadata["team"] != "search" {
			t.Errorf("native=%v: %s", native, got.RawJSON())
		}
		chats, natives := len(gw.Requests()), len(gw.RequestsTo(gatewaytest.PathResponses))
		if native && (natives != 1 || chats != 0) || !native && (natives != 0 || chats != 1) {
			t.Errorf("native=%v: gateway got %d chat and %d responses requests", native, chats, natives)
		}
	}
}
