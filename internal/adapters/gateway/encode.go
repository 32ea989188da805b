package gateway

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// chatRequestWire is OpenAI's CreateChatCompletionRequest, as much of it as
// a domain.ChatRequest holds, in the order OpenAI documents it. Optional
// members are written only when the request set them.
type chatRequestWire struct {
	Model               string              `json:"model"`
	Messages            []messageWire       `json:"messages"`
	Tools               []toolWire          `json:"tools,omitempty"`
	ToolChoice          any                 `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool               `json:"parallel_tool_calls,omitempty"`
	ResponseFormat      *responseFormatWire `json:"response_format,omitempty"`
	Temperature         *float64            `json:"temperature,omitempty"`
	TopP                *float64            `json:"top_p,omitempty"`
	MaxCompletionTokens *int                `json:"max_completion_tokens,omitempty"`
	Stop                []string            `json:"stop,omitempty"`
	Seed                *int64              `json:"seed,omitempty"`
	PresencePenalty     *float64            `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64            `json:"frequency_penalty,omitempty"`
	N                   int                 `json:"n,omitempty"`
	Logprobs            bool                `json:"logprobs,omitempty"`
	TopLogprobs         *int                `json:"top_logprobs,omitempty"`
	ReasoningEffort     string              `json:"reasoning_effort,omitempty"`
	User                string              `json:"user,omitempty"`
	Stream              bool                `json:"stream"`
	StreamOptions       json.RawMessage     `json:"stream_options"`
}

// messageWire is one message. Content is a string, an array of parts (text
// and images), or nil (null: an assistant message with tool calls only).
type messageWire struct {
	Role       string        `json:"role"`
	Content    any           `json:"content"`
	Name       string        `json:"name,omitempty"`
	ToolCalls  []callOutWire `json:"tool_calls,omitempty"`
	ToolCallID string        `json:"tool_call_id,omitempty"`
}

type partWire struct {
	Type     string        `json:"type"`
	Text     string        `json:"text,omitempty"`
	ImageURL *imageURLWire `json:"image_url,omitempty"`
}

type imageURLWire struct {
	URL string `json:"url"`
}

type callOutWire struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionWire `json:"function"`
}

type toolWire struct {
	Type     string           `json:"type"`
	Function toolFunctionWire `json:"function"`
}

type toolFunctionWire struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

type namedToolChoiceWire struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type responseFormatWire struct {
	Type       string          `json:"type"`
	JSONSchema *jsonSchemaWire `json:"json_schema,omitempty"`
}

type jsonSchemaWire struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema,omitempty"`
	Strict *bool           `json:"strict,omitempty"`
}

// defaultSchemaName names a json_schema format that came without a name
// (OpenAI requires one; the Responses API's text.format does too, so only
// a request built by the service itself lacks it).
const defaultSchemaName = "response"

// EncodeChat writes req as the body of a POST /chat/completions, for a
// request that did not come as one (a Responses API request, or one the
// service built): the model, the messages (text, images as image_url parts,
// tool calls and results), tools and how they may be called, the response
// format, the sampling settings the client sent and no others, n when more
// than one, logprobs, reasoning_effort and user; always asked as a stream
// with usage, as forwarded bodies are. tool_choice and parallel_tool_calls
// go only with tools (OpenAI refuses them alone). An invalid JSON schema
// (a tool's parameters, a response format's schema) is refused.
func EncodeChat(req domain.ChatRequest) ([]byte, error) {
	w := chatRequestWire{
		Model:               req.Model,
		Messages:            make([]messageWire, 0, len(req.Messages)),
		Temperature:         req.Sampling.Temperature,
		TopP:                req.Sampling.TopP,
		MaxCompletionTokens: req.Sampling.MaxTokens,
		Stop:                req.Sampling.Stop,
		Seed:                req.Sampling.Seed,
		PresencePenalty:     req.Sampling.PresencePenalty,
		FrequencyPenalty:    req.Sampling.FrequencyPenalty,
		ReasoningEffort:     req.ReasoningEffort,
		User:                req.User,
		Stream:              true,
		StreamOptions:       includeUsage,
	}
	for _, m := range req.Messages {
		w.Messages = append(w.Messages, encodeMessage(m))
	}
	for i, t := range req.Tools {
		if len(t.Parameters) > 0 && !json.Valid(t.Parameters) {
			return nil, domain.Invalid("tools["+strconv.Itoa(i)+"].parameters", "Invalid 'tools[%d].parameters': not a valid JSON schema.", i)
		}
		w.Tools = append(w.Tools, toolWire{Type: "function", Function: toolFunctionWire{
			Name: t.Name, Description: t.Description, Parameters: trimmed(t.Parameters), Strict: t.Strict,
		}})
	}
	if len(w.Tools) > 0 {
		w.ToolChoice = encodeToolChoice(req.ToolChoice)
		w.ParallelToolCalls = req.ParallelToolCalls
	}
	if f := req.ResponseFormat; f != nil && f.Type != "" {
		w.ResponseFormat = &responseFormatWire{Type: f.Type}
		if f.Type == domain.FormatJSONSchema {
			if len(f.Schema) > 0 && !json.Valid(f.Schema) {
				return nil, domain.Invalid("response_format.json_schema.schema", "Invalid 'response_format.json_schema.schema': not a valid JSON schema.")
			}
			s := &jsonSchemaWire{Name: f.Name, Schema: trimmed(f.Schema), Strict: f.Strict}
			if s.Name == "" {
				s.Name = defaultSchemaName
			}
			w.ResponseFormat.JSONSchema = s
		}
	}
	if req.N > 1 {
		w.N = req.N
	}
	if req.Logprobs {
		w.Logprobs, w.TopLogprobs = true, req.TopLogprobs
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&w); err != nil {
		return nil, domain.Invalid("", "We could not encode your request for this backend: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encodeMessage writes one message: a tool result with the call it
// answers; an assistant turn with its calls (content null when it has
// none); text, with the images as image_url parts after it when there are
// any. The name goes with every role but tool, which OpenAI's tool
// message lacks.
func encodeMessage(m domain.Message) messageWire {
	w := messageWire{Role: m.Role, Content: m.Content, Name: m.Name}
	switch {
	case m.Role == domain.RoleTool:
		w.Name, w.ToolCallID = "", m.ToolCallID
	case len(m.ToolCalls) > 0:
		for _, tc := range m.ToolCalls {
			w.ToolCalls = append(w.ToolCalls, callOutWire{ID: tc.ID, Type: "function", Function: functionWire{Name: tc.Name, Arguments: tc.Arguments}})
		}
		if m.Content == "" {
			w.Content = nil
		}
	}
	if len(m.Images) > 0 {
		var parts []partWire
		if m.Content != "" {
			parts = append(parts, partWire{Type: "text", Text: m.Content})
		}
		for _, im := range m.Images {
			if im != nil {
				parts = append(parts, partWire{Type: "image_url", ImageURL: &imageURLWire{URL: im.URL}})
			}
		}
		if len(parts) > 0 {
			w.Content = parts
		}
	}
	return w
}

// encodeToolChoice writes tool_choice: a mode, or the named function; the
// zero value (the client did not say) is left out.
func encodeToolChoice(c domain.ToolChoice) any {
	switch c.Mode {
	case "":
		return nil
	case domain.ToolChoiceFunction:
		var n namedToolChoiceWire
		n.Type, n.Function.Name = "function", c.Name
		return n
	}
	return c.Mode
}

// trimmed is raw JSON text without surrounding white space, nil when empty
// (so that omitempty leaves it out).
func trimmed(b []byte) json.RawMessage {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	return b
}
