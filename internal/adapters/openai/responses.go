package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// The Responses API (POST /v1/responses), as Codex CLI, the Agents SDK
// and responses.create speak it. A request becomes a chat request for the
// backends: instructions and the conversation's items turned into
// messages, function, namespace and custom tools into functions. Hosted
// tools a local model cannot run (web_search, file_search, …) are left out
// of what the model sees; only a tool_choice that requires one is refused.

// ResponsesRequest is a decoded POST /v1/responses.
type ResponsesRequest struct {
	// Chat is what the backends are asked: instructions, the
	// conversation (the turns previous_response_id names first, once
	// Continue added them), tools and sampling.
	Chat domain.ChatRequest
	// Items are this request's input items as they are stored and listed:
	// each with an id, message content as typed parts.
	Items []json.RawMessage
	// History are the items of the turns previous_response_id names
	// (their input, then their output), set by Continue.
	History    []json.RawMessage
	PreviousID string
	Store      bool
	Stream     bool
	// Logprobs: include asked for message.output_text.logprobs.
	Logprobs bool

	raw      []byte
	deferred bool // an item_reference names an item of the earlier turns: resolved by Continue
	echo     responseEcho
	tools    map[string]toolShown // the name the model calls -> how the call is shown
	system   int                  // leading messages made of the instructions
	byID     map[string]json.RawMessage
	current  []domain.Message // this request's own messages, after the history
}

// toolShown says how a call of one model-facing function is written back:
// as a function_call (in a namespace, when it came from one) or as a
// custom_tool_call whose input is the function's "input" argument.
type toolShown struct {
	name, namespace string
	custom          bool
}

// responseEcho is what a response object repeats of its request, as sent.
type responseEcho struct {
	instructions, tools, toolChoice, format, reasoning, metadata json.RawMessage
	temperature, topP                                            *float64
	maxOutputTokens                                              *int
	parallelToolCalls                                            bool
	user, truncation, promptCacheKey                             string
}

type responsesWire struct {
	Model             json.RawMessage `json:"model"`
	Input             json.RawMessage `json:"input"`
	Instructions      json.RawMessage `json:"instructions"`
	Tools             json.RawMessage `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	Text              *struct {
		Format json.RawMessage `json:"format"`
	} `json:"text"`
	Reasoning *struct {
		Effort *string `json:"effort"`
	} `json:"reasoning"`
	MaxOutputTokens    *int            `json:"max_output_tokens"`
	Temperature        *float64        `json:"temperature"`
	TopP               *float64        `json:"top_p"`
	TopLogprobs        *int            `json:"top_logprobs"`
	Metadata           json.RawMessage `json:"metadata"`
	User               *string         `json:"user"`
	Store              *bool           `json:"store"`
	Stream             *bool           `json:"stream"`
	PreviousResponseID *string         `json:"previous_response_id"`
	Include            []string        `json:"include"`
	Truncation         *string         `json:"truncation"`
	Background         *bool           `json:"background"`
	Conversation       json.RawMessage `json:"conversation"`
	Prompt             json.RawMessage `json:"prompt"`
	PromptCacheKey     *string         `json:"prompt_cache_key"`
}

var (
	responsePartShape = shape{"type": nil, "text": nil, "image_url": nil, "file_id": nil, "file_data": nil,
		"detail": nil, "refusal": nil, "annotations": nil, "logprobs": nil}
	responseItemShape = shape{"type": nil, "id": nil, "role": nil, "content": responsePartShape, "status": nil,
		"call_id": nil, "name": nil, "namespace": nil, "arguments": nil, "output": responsePartShape, "input": nil,
		"summary": nil, "encrypted_content": nil}
	responseToolShape = shape{"type": nil, "name": nil, "description": nil, "parameters": nil, "strict": nil,
		"format": nil, "tools": nil}
	responsesShape = shape{
		"model": nil, "input": responseItemShape, "instructions": nil, "tools": responseToolShape,
		"tool_choice": {"type": nil, "name": nil, "mode": nil, "tools": nil}, "parallel_tool_calls": nil,
		"text":      {"format": {"type": nil, "name": nil, "schema": nil, "strict": nil, "description": nil}, "verbosity": nil},
		"reasoning": {"effort": nil, "summary": nil}, "max_output_tokens": nil, "temperature": nil, "top_p": nil,
		"top_logprobs": nil, "metadata": nil, "user": nil, "store": nil, "stream": nil, "previous_response_id": nil,
		"include": nil, "truncation": nil, "background": nil, "conversation": nil, "prompt": nil, "prompt_cache_key": nil,
		// Ollama's own settings, which the Ollama backend reads from a chat body.
		"options": nil, "keep_alive": nil, "think": nil,
	}
)

// MaxResponseTopLogprobs is the most alternatives per token a response may
// ask for.
const MaxResponseTopLogprobs = 20

// DecodeResponsesRequest parses and validates a CreateResponse request.
// Every client mistake comes back as *domain.InvalidRequestError naming the
// field. Fields it does not read go to a backend speaking the Responses API
// untouched (see Passthrough).
func DecodeResponsesRequest(body []byte) (*ResponsesRequest, error) {
	if err := checkBody(body, "`model` and `input`"); err != nil {
		return nil, err
	}
	var w responsesWire
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, jsonError("", err)
	}
	if err := checkKeys(body, responsesShape); err != nil {
		return nil, err
	}
	r := &ResponsesRequest{raw: body, Store: true, tools: map[string]toolShown{}, byID: map[string]json.RawMessage{}}
	model, err := decodeModel(w.Model)
	if err != nil {
		return nil, err
	}
	r.Chat.Model, r.Chat.N = model, 1
	for _, s := range []struct {
		param string
		raw   json.RawMessage
		what  string
	}{
		{"conversation", w.Conversation, "the Conversations API is not served here; continue a conversation with previous_response_id"},
		{"prompt", w.Prompt, "reusable prompts are not served here; send the instructions and input themselves"},
	} {
		if len(s.raw) > 0 && string(s.raw) != "null" {
			return nil, domain.Invalid(s.param, "'%s' is not supported: %s.", s.param, s.what)
		}
	}
	if w.Background != nil && *w.Background {
		return nil, domain.Invalid("background", "'background' is not supported: responses are answered while the request waits (use stream: true for long ones).")
	}
	if w.Store != nil {
		r.Store = *w.Store
	}
	if w.Stream != nil {
		r.Stream = *w.Stream
		r.Chat.Stream = r.Stream
	}
	if p := w.PreviousResponseID; p != nil {
		if strings.TrimSpace(*p) == "" {
			return nil, domain.Invalid("previous_response_id", "Invalid 'previous_response_id': empty string.")
		}
		r.PreviousID = *p
	}
	if err := r.decodeSampling(&w); err != nil {
		return nil, err
	}
	if err := r.decodeTools(w.Tools, w.ToolChoice); err != nil {
		return nil, err
	}
	if err := r.decodeFormat(&w); err != nil {
		return nil, err
	}
	if err := r.decodeInstructions(w.Instructions); err != nil {
		return nil, err
	}
	if err := r.decodeInput(w.Input); err != nil {
		return nil, err
	}
	r.Chat.Messages = append(r.Chat.Messages, r.current...)
	r.Chat.Passthrough = r.Passthrough()
	return r, nil
}

func (r *ResponsesRequest) decodeSampling(w *responsesWire) error {
	s, e := &r.Chat.Sampling, &r.echo
	var err error
	if s.Temperature, err = inRange("temperature", w.Temperature, 0, 2); err != nil {
		return err
	}
	if s.TopP, err = inRange("top_p", w.TopP, 0, 1); err != nil {
		return err
	}
	e.temperature, e.topP = s.Temperature, s.TopP
	if m := w.MaxOutputTokens; m != nil {
		if *m < 1 {
			return domain.Invalid("max_output_tokens", "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 1, but got %d instead.", *m)
		}
		s.MaxTokens, e.maxOutputTokens = m, m
	}
	for _, inc := range w.Include {
		if inc == "message.output_text.logprobs" {
			r.Logprobs = true
		}
	}
	if t := w.TopLogprobs; t != nil {
		if *t < 0 || *t > MaxResponseTopLogprobs {
			return domain.Invalid("top_logprobs", "Invalid 'top_logprobs': expected a value between 0 and %d, but got %d instead.", MaxResponseTopLogprobs, *t)
		}
		if *t > 0 {
			r.Logprobs = true
			r.Chat.TopLogprobs = t
		}
	}
	r.Chat.Logprobs = r.Logprobs
	if w.User != nil {
		r.Chat.User, e.user = *w.User, *w.User
	}
	if w.PromptCacheKey != nil {
		e.promptCacheKey = *w.PromptCacheKey
		r.Chat.Session = *w.PromptCacheKey // Codex sends its conversation id here
	}
	e.truncation = "disabled"
	if t := w.Truncation; t != nil {
		if *t != "auto" && *t != "disabled" {
			return domain.Invalid("truncation", "Invalid value: '%s'. Supported values are: 'auto' and 'disabled'.", *t)
		}
		e.truncation = *t
	}
	if len(w.Metadata) > 0 && string(w.Metadata) != "null" {
		if jsonKind(w.Metadata) != "an object" {
			return domain.Invalid("metadata", "Invalid type for 'metadata': expected an object of strings, but got %s instead.", jsonKind(w.Metadata))
		}
		var m map[string]string
		if err := json.Unmarshal(w.Metadata, &m); err != nil {
			return domain.Invalid("metadata", "Invalid 'metadata': expected an object of strings.")
		}
		if len(m) > 16 {
			return domain.Invalid("metadata", "Invalid 'metadata': at most 16 keys, got %d.", len(m))
		}
		e.metadata = compact(w.Metadata)
	}
	if w.Reasoning != nil && w.Reasoning.Effort != nil {
		switch *w.Reasoning.Effort {
		case "none", "minimal", "low", "medium", "high", "xhigh", "max":
			r.Chat.ReasoningEffort = *w.Reasoning.Effort
		default:
			return domain.Invalid("reasoning.effort", "Invalid value: '%s'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high' and 'xhigh'.", *w.Reasoning.Effort)
		}
	}
	if w.Reasoning != nil {
		e.reasoning, _ = json.Marshal(w.Reasoning)
	}
	e.parallelToolCalls = true
	if p := w.ParallelToolCalls; p != nil {
		r.Chat.ParallelToolCalls, e.parallelToolCalls = p, *p
	}
	return nil
}

// hostedTools are tool types OpenAI runs on its side; a local model cannot.
var hostedTools = map[string]bool{
	"web_search": true, "web_search_preview": true, "web_search_preview_2025_03_11": true, "web_search_2025_08_26": true,
	"file_search": true, "code_interpreter": true, "computer_use_preview": true, "computer_use": true,
	"image_generation": true, "mcp": true, "local_shell": true, "shell": true, "apply_patch": true,
	"tool_search": true,
}

// customInput is the schema of a custom (free-form) tool offered to the
// model as a function: its whole input as one string.
var customInput = []byte(`{"type":"object","properties":{"input":{"type":"string","description":"The tool's whole input, as free-form text."}},"required":["input"]}`)

func (r *ResponsesRequest) decodeTools(raw, choice json.RawMessage) error {
	r.echo.tools = json.RawMessage("[]")
	if len(raw) > 0 && string(raw) != "null" {
		if jsonKind(raw) != "an array" {
			return domain.Invalid("tools", "Invalid type for 'tools': expected an array, but got %s instead.", jsonKind(raw))
		}
		r.echo.tools = echoTools(raw)
		var tools []json.RawMessage
		if err := json.Unmarshal(raw, &tools); err != nil {
			return jsonError("tools", err)
		}
		for i, t := range tools {
			if err := r.decodeTool("tools["+strconv.Itoa(i)+"]", "", t); err != nil {
				return err
			}
		}
	}
	return r.decodeToolChoice(choice)
}

type responseToolWire struct {
	Type        *string           `json:"type"`
	Name        *string           `json:"name"`
	Description *string           `json:"description"`
	Parameters  json.RawMessage   `json:"parameters"`
	Strict      *bool             `json:"strict"`
	Tools       []json.RawMessage `json:"tools"`
}

func (r *ResponsesRequest) decodeTool(param, namespace string, raw json.RawMessage) error {
	if jsonKind(raw) != "an object" {
		return domain.Invalid(param, "Invalid type for '%s': expected an object, but got %s instead.", param, jsonKind(raw))
	}
	var t responseToolWire
	if err := json.Unmarshal(raw, &t); err != nil {
		return jsonError(param, err)
	}
	if t.Type == nil {
		return domain.Invalid(param+".type", "Missing required parameter: '%s.type'.", param)
	}
	named := func() (string, error) {
		if t.Name == nil || *t.Name == "" {
			return "", domain.Invalid(param+".name", "Missing required parameter: '%s.name'.", param)
		}
		return *t.Name, nil
	}
	switch *t.Type {
	case "function", "custom":
		name, err := named()
		if err != nil {
			return err
		}
		tool := domain.Tool{Name: name, Strict: t.Strict}
		if t.Description != nil {
			tool.Description = *t.Description
		}
		shown := toolShown{name: name, namespace: namespace, custom: *t.Type == "custom"}
		if namespace != "" {
			tool.Name = namespace + "." + name
		}
		if shown.custom {
			tool.Parameters = customInput
		} else if len(t.Parameters) > 0 && string(t.Parameters) != "null" {
			if jsonKind(t.Parameters) != "an object" {
				return domain.Invalid(param+".parameters", "Invalid type for '%s.parameters': expected an object, but got %s instead.", param, jsonKind(t.Parameters))
			}
			tool.Parameters = compact(t.Parameters)
		}
		if _, dup := r.tools[tool.Name]; dup {
			return domain.Invalid(param+".name", "Invalid '%s.name': a tool named '%s' is given twice.", param, tool.Name)
		}
		r.tools[tool.Name] = shown
		r.Chat.Tools = append(r.Chat.Tools, tool)
	case "namespace":
		name, err := named()
		if err != nil {
			return err
		}
		for i, inner := range t.Tools {
			if err := r.decodeTool(param+".tools["+strconv.Itoa(i)+"]", name, inner); err != nil {
				return err
			}
		}
	default:
		// A hosted tool (web_search, file_search, …), or one this
		// service does not know: the model is not offered it.
	}
	return nil
}

func (r *ResponsesRequest) decodeToolChoice(raw json.RawMessage) error {
	r.echo.toolChoice = json.RawMessage(`"auto"`)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	r.echo.toolChoice = compact(raw)
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case domain.ToolChoiceAuto, domain.ToolChoiceNone:
		case domain.ToolChoiceRequired:
			if len(r.Chat.Tools) == 0 {
				return domain.Invalid("tool_choice", "Invalid 'tool_choice': 'required' needs at least one function tool in 'tools' (hosted tools are not run here).")
			}
		default:
			return domain.Invalid("tool_choice", "Invalid value for 'tool_choice': '%s'. Expected 'none', 'auto', 'required' or an object naming a tool.", mode)
		}
		r.Chat.ToolChoice = domain.ToolChoice{Mode: mode}
		return nil
	}
	if jsonKind(raw) != "an object" {
		return domain.Invalid("tool_choice", "Invalid type for 'tool_choice': expected a string or an object, but got %s instead.", jsonKind(raw))
	}
	var c struct {
		Type  string `json:"type"`
		Name  string `json:"name"`
		Mode  string `json:"mode"`
		Tools []struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return jsonError("tool_choice", err)
	}
	switch c.Type {
	case "function", "custom":
		if _, ok := r.tools[c.Name]; !ok {
			return domain.Invalid("tool_choice", "Invalid 'tool_choice': tool '%s' is not among the tools provided.", c.Name)
		}
		r.Chat.ToolChoice = domain.ToolChoice{Mode: domain.ToolChoiceFunction, Name: c.Name}
	case "allowed_tools":
		allowed := map[string]bool{}
		for _, t := range c.Tools {
			if hostedTools[t.Type] {
				continue
			}
			allowed[t.Name] = true
		}
		kept := r.Chat.Tools[:0]
		for _, t := range r.Chat.Tools {
			if allowed[t.Name] {
				kept = append(kept, t)
			}
		}
		r.Chat.Tools = kept
		switch c.Mode {
		case "", domain.ToolChoiceAuto:
		case domain.ToolChoiceRequired:
			if len(kept) == 0 {
				return domain.Invalid("tool_choice", "Invalid 'tool_choice': 'required' among allowed tools none of which is a function tool (hosted tools are not run here).")
			}
			r.Chat.ToolChoice = domain.ToolChoice{Mode: domain.ToolChoiceRequired}
		default:
			return domain.Invalid("tool_choice.mode", "Invalid value: '%s'. Supported values are: 'auto' and 'required'.", c.Mode)
		}
	default:
		return domain.Invalid("tool_choice", "Invalid 'tool_choice': it requires the hosted tool '%s', which a local model cannot run; offer a function tool instead.", c.Type)
	}
	return nil
}

func (r *ResponsesRequest) decodeFormat(w *responsesWire) error {
	r.echo.format = json.RawMessage(`{"type":"text"}`)
	if w.Text == nil || len(w.Text.Format) == 0 || string(w.Text.Format) == "null" {
		return nil
	}
	raw := w.Text.Format
	if jsonKind(raw) != "an object" {
		return domain.Invalid("text.format", "Invalid type for 'text.format': expected an object, but got %s instead.", jsonKind(raw))
	}
	var f struct {
		Type   *string         `json:"type"`
		Name   *string         `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict *bool           `json:"strict"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return jsonError("text.format", err)
	}
	r.echo.format = compact(raw)
	if f.Type == nil {
		return domain.Invalid("text.format.type", "Missing required parameter: 'text.format.type'.")
	}
	switch *f.Type {
	case domain.FormatText:
	case domain.FormatJSONObject:
		r.Chat.ResponseFormat = &domain.ResponseFormat{Type: domain.FormatJSONObject}
	case domain.FormatJSONSchema:
		if f.Name == nil || !functionName.MatchString(*f.Name) {
			return domain.Invalid("text.format.name", "Invalid 'text.format.name': expected a string matching '^[a-zA-Z0-9_-]{1,64}$'.")
		}
		rf := &domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: *f.Name, Strict: f.Strict}
		if len(f.Schema) == 0 || jsonKind(f.Schema) != "an object" {
			return domain.Invalid("text.format.schema", "Invalid 'text.format.schema': expected a JSON schema object.")
		}
		rf.Schema = compact(f.Schema)
		r.Chat.ResponseFormat = rf
	default:
		return domain.Invalid("text.format.type", "Invalid value: '%s'. Supported values are: 'text', 'json_object' and 'json_schema'.", *f.Type)
	}
	return nil
}

func (r *ResponsesRequest) decodeInstructions(raw json.RawMessage) error {
	r.echo.instructions = json.RawMessage("null")
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	r.echo.instructions = compact(raw)
	switch jsonKind(raw) {
	case "a string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return jsonError("instructions", err)
		}
		if s != "" {
			r.Chat.Messages = append(r.Chat.Messages, domain.Message{Role: domain.RoleSystem, Content: s})
		}
	case "an array":
		// Input items standing for instructions (as a response echoes
		// them): their messages lead the conversation.
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return jsonError("instructions", err)
		}
		for i, it := range items {
			msgs, _, err := r.item("instructions["+strconv.Itoa(i)+"]", it)
			if err != nil {
				return err
			}
			r.Chat.Messages = append(r.Chat.Messages, msgs...)
		}
	default:
		return domain.Invalid("instructions", "Invalid type for 'instructions': expected a string, but got %s instead.", jsonKind(raw))
	}
	r.system = len(r.Chat.Messages)
	return nil
}

func (r *ResponsesRequest) decodeInput(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		if r.PreviousID != "" {
			return nil // continuing with nothing new is allowed
		}
		return domain.Invalid("input", "Missing required parameter: 'input'.")
	}
	if jsonKind(raw) == "a string" {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return jsonError("input", err)
		}
		item := newMessageItem(domain.RoleUser, "input_text", s)
		r.Items = append(r.Items, item)
		r.current = append(r.current, domain.Message{Role: domain.RoleUser, Content: s})
		return nil
	}
	if jsonKind(raw) != "an array" {
		return domain.Invalid("input", "Invalid type for 'input': expected a string or an array of input items, but got %s instead.", jsonKind(raw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return jsonError("input", err)
	}
	for i, it := range items {
		msgs, stored, err := r.item("input["+strconv.Itoa(i)+"]", it)
		if err != nil && r.PreviousID != "" && isReference(it) {
			// It may name an item of the turns previous_response_id
			// stands for: Continue resolves it.
			r.deferred = true
			r.Items = append(r.Items, it)
			continue
		}
		if err != nil {
			return err
		}
		r.current = appendMessages(r.current, msgs)
		r.Items = append(r.Items, stored)
	}
	return nil
}

func isReference(raw json.RawMessage) bool {
	var w struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(raw, &w) == nil && w.Type == "item_reference"
}

// Continue makes the request continue a stored response: that response's
// input items, then its output items, come before this request's, in what
// the model is asked and in what this response stores.
func (r *ResponsesRequest) Continue(prevInput, prevResponse []byte) error {
	var input []json.RawMessage
	if len(prevInput) > 0 {
		if err := json.Unmarshal(prevInput, &input); err != nil {
			return err
		}
	}
	var resp struct {
		Output []json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(prevResponse, &resp); err != nil {
		return err
	}
	history := append(input, resp.Output...)
	var msgs []domain.Message
	for i, it := range history {
		m, _, err := r.item("previous_response_id item "+strconv.Itoa(i), it)
		if err != nil {
			return err
		}
		msgs = appendMessages(msgs, m)
	}
	r.History = history
	if r.deferred {
		items := r.Items
		r.Items, r.current = nil, nil
		for i, it := range items {
			m, stored, err := r.item("input["+strconv.Itoa(i)+"]", it)
			if err != nil {
				return err
			}
			r.current = appendMessages(r.current, m)
			r.Items = append(r.Items, stored)
		}
		r.deferred = false
	}
	// Instructions, then the earlier turns, then this request's items.
	out := append([]domain.Message(nil), r.Chat.Messages[:r.system]...)
	out = appendMessages(out, msgs)
	r.Chat.Messages = appendMessages(out, r.current)
	r.Chat.Passthrough = r.Passthrough()
	return nil
}

// Conversation is every input item this response answers: the earlier
// turns' items, then this request's, as a JSON array.
func (r *ResponsesRequest) Conversation() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, it := range append(append([]json.RawMessage(nil), r.History...), r.Items...) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// Passthrough is the request as it travels to the backends: the client's
// body and the whole conversation's input.
func (r *ResponsesRequest) Passthrough() wire.ResponsesBody {
	return wire.ResponsesBody{Raw: r.raw, Input: r.Conversation()}
}

// appendMessages adds msgs to a conversation, joining a function call to
// the assistant message right before it (and parallel calls to each
// other), as chat completions carry them.
func appendMessages(conv []domain.Message, msgs []domain.Message) []domain.Message {
	for _, m := range msgs {
		if n := len(conv); n > 0 && m.Role == domain.RoleAssistant && len(m.ToolCalls) > 0 && m.Content == "" &&
			conv[n-1].Role == domain.RoleAssistant {
			conv[n-1].ToolCalls = append(conv[n-1].ToolCalls, m.ToolCalls...)
			continue
		}
		conv = append(conv, m)
	}
	return conv
}

// newMessageItem is a stored message item made from text.
func newMessageItem(role, partType, text string) json.RawMessage {
	b := []byte(`{"type":"message","id":`)
	b = wire.AppendString(b, wire.RandomText("msg_"))
	b = append(b, `,"role":`...)
	b = wire.AppendString(b, role)
	b = append(b, `,"content":[{"type":`...)
	b = wire.AppendString(b, partType)
	b = append(b, `,"text":`...)
	b = wire.AppendString(b, text)
	return append(b, `}]}`...)
}

// echoTools is the request's tools as the response repeats them: as sent,
// with the fields a response's tool always has filled in where the client
// left them out (a function's strict, true by default, and parameters; a
// namespace's description), as OpenAI's API fills them.
func echoTools(raw json.RawMessage) json.RawMessage {
	var tools []map[string]json.RawMessage
	if json.Unmarshal(raw, &tools) != nil {
		return compact(raw)
	}
	for _, t := range tools {
		fill := func(key, value string) {
			if _, ok := t[key]; !ok {
				t[key] = json.RawMessage(value)
			}
		}
		var typ string
		_ = json.Unmarshal(t["type"], &typ)
		switch typ {
		case "function":
			fill("strict", "true")
			fill("parameters", "null")
		case "namespace":
			fill("description", `""`)
			if inner, ok := t["tools"]; ok {
				t["tools"] = echoTools(inner)
			}
		}
	}
	out, err := json.Marshal(tools)
	if err != nil {
		return compact(raw)
	}
	return out
}
