// Package openai is OpenAI's Chat Completions wire format: decoding and
// validating client requests into domain types, and encoding completions,
// stream chunks, model lists and errors exactly as OpenAI's API does.
package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// requestWire mirrors the fields of CreateChatCompletionRequest the service
// interprets. Everything else stays in the raw body for OpenAI backends.
type requestWire struct {
	Model               json.RawMessage   `json:"model"`
	Messages            []json.RawMessage `json:"messages"`
	Stream              *bool             `json:"stream"`
	StreamOptions       *streamOptions    `json:"stream_options"`
	Temperature         *float64          `json:"temperature"`
	TopP                *float64          `json:"top_p"`
	MaxTokens           *int              `json:"max_tokens"`
	MaxCompletionTokens *int              `json:"max_completion_tokens"`
	Stop                json.RawMessage   `json:"stop"`
	Seed                *int64            `json:"seed"`
	PresencePenalty     *float64          `json:"presence_penalty"`
	FrequencyPenalty    *float64          `json:"frequency_penalty"`
	User                *string           `json:"user"`
	N                   *int              `json:"n"`
	Logprobs            *bool             `json:"logprobs"`
	TopLogprobs         *int              `json:"top_logprobs"`
	Tools               []json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls"`
	Functions           []json.RawMessage `json:"functions"`
	FunctionCall        json.RawMessage   `json:"function_call"`
	ResponseFormat      json.RawMessage   `json:"response_format"`
	ReasoningEffort     *string           `json:"reasoning_effort"`
	PromptCacheKey      *string           `json:"prompt_cache_key"`

	// Features no backend here can honour: only their neutral values pass.
	LogitBias        map[string]json.RawMessage `json:"logit_bias"`
	Modalities       []string                   `json:"modalities"`
	Audio            json.RawMessage            `json:"audio"`
	Prediction       json.RawMessage            `json:"prediction"`
	WebSearchOptions json.RawMessage            `json:"web_search_options"`
}

type streamOptions struct {
	IncludeUsage *bool `json:"include_usage"`
}

type messageWire struct {
	Role         *string         `json:"role"`
	Content      json.RawMessage `json:"content"`
	Name         *string         `json:"name"`
	ToolCallID   *string         `json:"tool_call_id"`
	ToolCalls    []toolCallWire  `json:"tool_calls"`
	FunctionCall *functionWire   `json:"function_call"`
}

type toolCallWire struct {
	ID       *string       `json:"id"`
	Type     *string       `json:"type"`
	Function *functionWire `json:"function"`
}

type functionWire struct {
	Name      *string `json:"name"`
	Arguments *string `json:"arguments"`
}

type partWire struct {
	Type     *string `json:"type"`
	Text     *string `json:"text"`
	Refusal  *string `json:"refusal"`
	ImageURL *struct {
		URL    *string `json:"url"`
		Detail *string `json:"detail"`
	} `json:"image_url"`
}

type toolWire struct {
	Type     *string          `json:"type"`
	Function *functionDefWire `json:"function"`
}

type functionDefWire struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

type responseFormatWire struct {
	Type       *string `json:"type"`
	JSONSchema *struct {
		Name   *string         `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict *bool           `json:"strict"`
	} `json:"json_schema"`
}

// MaxChoices caps n, as OpenAI does.
const MaxChoices = wire.MaxChoices

// DecodeChatRequest parses and validates a Chat Completions request body.
// Every client mistake comes back as *domain.InvalidRequestError naming the
// offending field. The returned request carries body as its Passthrough
// (a wire.ChatBody), for backends that forward it.
func DecodeChatRequest(body []byte) (domain.ChatRequest, error) {
	return decodeChatRequest(body, true)
}

// decodeChatRequest is DecodeChatRequest, with the fast path or without.
func decodeChatRequest(body []byte, fast bool) (domain.ChatRequest, error) {
	var req domain.ChatRequest
	if err := checkBody(body, "`model` and `messages`"); err != nil {
		return req, err
	}
	var w requestWire
	var msgs []messageWire
	if !fast || !fastChat(body, &w, &msgs) {
		w, msgs = requestWire{}, nil
		if err := json.Unmarshal(body, &w); err != nil {
			return req, jsonError("", err)
		}
		if err := checkKeys(body, chatShape); err != nil {
			return req, err
		}
	}
	d := decoder{w: &w, req: &req, msgs: msgs}
	for _, step := range []func() error{
		d.model, d.messages, d.stream, d.sampling, d.choices, d.tools, d.legacyFunctions,
		d.toolChoice, d.responseFormat, d.unsupported,
	} {
		if err := step(); err != nil {
			return req, err
		}
	}
	req.Passthrough = wire.ChatBody(body)
	return req, nil
}

type decoder struct {
	w    *requestWire
	req  *domain.ChatRequest
	msgs []messageWire // the messages read by the fast path; nil: decode each
}

func (d decoder) model() error {
	model, err := decodeModel(d.w.Model)
	d.req.Model = model
	return err
}

// decodeModel reads the required model name.
func decodeModel(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", domain.Invalid("model", "Missing required parameter: 'model'.")
	}
	model, ok := plainString(raw)
	if !ok {
		if err := json.Unmarshal(raw, &model); err != nil {
			return "", domain.Invalid("model", "Invalid type for 'model': expected a string, but got %s instead.", jsonKind(raw))
		}
	}
	if strings.TrimSpace(model) == "" {
		return "", domain.Invalid("model", "Invalid 'model': empty string. Expected the name of a model.")
	}
	return model, nil
}

func (d decoder) messages() error {
	if len(d.w.Messages) == 0 {
		if d.w.Messages == nil {
			return domain.Invalid("messages", "Missing required parameter: 'messages'.")
		}
		return domain.Invalid("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1.")
	}
	d.req.Messages = make([]domain.Message, len(d.w.Messages))
	for i, raw := range d.w.Messages {
		var m domain.Message
		var err error
		if d.msgs != nil {
			m, err = decodeMessageWire(i, &d.msgs[i])
		} else {
			m, err = decodeMessage(i, raw)
		}
		if err != nil {
			return err
		}
		d.req.Messages[i] = m
	}
	return nil
}

func (d decoder) stream() error {
	if d.w.Stream != nil {
		d.req.Stream = *d.w.Stream
	}
	if d.req.Stream && d.w.StreamOptions != nil && d.w.StreamOptions.IncludeUsage != nil {
		d.req.IncludeUsage = *d.w.StreamOptions.IncludeUsage
	}
	return nil
}

func (d decoder) sampling() error {
	w, s := d.w, &d.req.Sampling
	var err error
	if s.Temperature, err = inRange("temperature", w.Temperature, 0, 2); err != nil {
		return err
	}
	if s.TopP, err = inRange("top_p", w.TopP, 0, 1); err != nil {
		return err
	}
	if s.PresencePenalty, err = inRange("presence_penalty", w.PresencePenalty, -2, 2); err != nil {
		return err
	}
	if s.FrequencyPenalty, err = inRange("frequency_penalty", w.FrequencyPenalty, -2, 2); err != nil {
		return err
	}
	for _, mt := range []struct {
		name string
		v    *int
	}{{"max_tokens", w.MaxTokens}, {"max_completion_tokens", w.MaxCompletionTokens}} {
		if mt.v != nil && *mt.v < 1 {
			return domain.Invalid(mt.name, "Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", mt.name, *mt.v)
		}
	}
	s.MaxTokens = w.MaxTokens
	if w.MaxCompletionTokens != nil {
		s.MaxTokens = w.MaxCompletionTokens
	}
	if s.Stop, err = decodeStop(w.Stop); err != nil {
		return err
	}
	s.Seed = w.Seed
	if w.User != nil {
		d.req.User = *w.User
	}
	if w.PromptCacheKey != nil {
		d.req.Session = *w.PromptCacheKey // names the conversation: its turns stay on one host
	}
	return nil
}

func (d decoder) choices() error {
	d.req.N = 1
	if n := d.w.N; n != nil {
		if *n < 1 || *n > MaxChoices {
			return domain.Invalid("n", "Invalid 'n': expected a value between 1 and %d, but got %d instead.", MaxChoices, *n)
		}
		d.req.N = *n
	}
	if d.w.Logprobs != nil {
		d.req.Logprobs = *d.w.Logprobs
	}
	if t := d.w.TopLogprobs; t != nil {
		if *t < 0 || *t > 20 {
			return domain.Invalid("top_logprobs", "Invalid 'top_logprobs': expected a value between 0 and 20, but got %d instead.", *t)
		}
		if !d.req.Logprobs {
			return domain.Invalid("top_logprobs", "Invalid 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.")
		}
		d.req.TopLogprobs = t
	}
	if e := d.w.ReasoningEffort; e != nil {
		switch *e {
		case "none", "minimal", "low", "medium", "high", "max", "xhigh":
			d.req.ReasoningEffort = *e
		default:
			return domain.Invalid("reasoning_effort", "Invalid value: '%s'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high' and 'max'.", *e)
		}
	}
	return nil
}

var functionName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

func (d decoder) tools() error {
	for i, raw := range d.w.Tools {
		param := "tools[" + strconv.Itoa(i) + "]"
		if jsonKind(raw) != "an object" {
			return domain.Invalid(param, "Invalid type for '%s': expected an object, but got %s instead.", param, jsonKind(raw))
		}
		var t toolWire
		if err := json.Unmarshal(raw, &t); err != nil {
			return jsonError(param, err)
		}
		if t.Type == nil {
			return domain.Invalid(param+".type", "Missing required parameter: '%s.type'.", param)
		}
		if *t.Type != "function" {
			return domain.Invalid(param+".type", "Invalid value: '%s'. This service supports tools of type 'function'.", *t.Type)
		}
		if t.Function == nil {
			return domain.Invalid(param+".function", "Missing required parameter: '%s.function'.", param)
		}
		tool, err := decodeFunctionDef(param+".function", t.Function)
		if err != nil {
			return err
		}
		d.req.Tools = append(d.req.Tools, tool)
	}
	d.req.ParallelToolCalls = d.w.ParallelToolCalls
	return nil
}

func decodeFunctionDef(param string, f *functionDefWire) (domain.Tool, error) {
	if f.Name == nil {
		return domain.Tool{}, domain.Invalid(param+".name", "Missing required parameter: '%s.name'.", param)
	}
	if !functionName.MatchString(*f.Name) {
		return domain.Tool{}, domain.Invalid(param+".name", "Invalid '%s.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.", param)
	}
	t := domain.Tool{Name: *f.Name, Strict: f.Strict}
	if f.Description != nil {
		t.Description = *f.Description
	}
	if len(f.Parameters) > 0 && string(f.Parameters) != "null" {
		if jsonKind(f.Parameters) != "an object" {
			return t, domain.Invalid(param+".parameters", "Invalid type for '%s.parameters': expected an object, but got %s instead.", param, jsonKind(f.Parameters))
		}
		t.Parameters = compact(f.Parameters)
	}
	return t, nil
}

// legacyFunctions maps the deprecated functions/function_call onto tools.
func (d decoder) legacyFunctions() error {
	if len(d.w.Functions) == 0 {
		if len(d.w.FunctionCall) > 0 && string(d.w.FunctionCall) != "null" {
			return domain.Invalid("function_call", "Invalid 'function_call': 'functions' must be provided when 'function_call' is used.")
		}
		return nil
	}
	if len(d.w.Tools) > 0 {
		return domain.Invalid("functions", "Invalid 'functions': use either 'tools' or the deprecated 'functions', not both.")
	}
	for i, raw := range d.w.Functions {
		param := "functions[" + strconv.Itoa(i) + "]"
		var f functionDefWire
		if jsonKind(raw) != "an object" {
			return domain.Invalid(param, "Invalid type for '%s': expected an object, but got %s instead.", param, jsonKind(raw))
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return jsonError(param, err)
		}
		tool, err := decodeFunctionDef(param, &f)
		if err != nil {
			return err
		}
		d.req.Tools = append(d.req.Tools, tool)
	}
	d.req.LegacyFunctions = true
	if len(d.w.FunctionCall) > 0 && string(d.w.FunctionCall) != "null" {
		choice, err := decodeChoice("function_call", d.w.FunctionCall, true)
		if err != nil {
			return err
		}
		d.req.ToolChoice = choice
	}
	return nil
}

func (d decoder) toolChoice() error {
	raw := d.w.ToolChoice
	if len(raw) == 0 || string(raw) == "null" {
		return d.checkChoice("function_call")
	}
	if d.req.LegacyFunctions {
		return domain.Invalid("tool_choice", "Invalid 'tool_choice': use 'function_call' with the deprecated 'functions'.")
	}
	choice, err := decodeChoice("tool_choice", raw, false)
	if err != nil {
		return err
	}
	d.req.ToolChoice = choice
	return d.checkChoice("tool_choice")
}

// checkChoice makes sure a forcing choice names a tool that exists.
func (d decoder) checkChoice(param string) error {
	c := d.req.ToolChoice
	switch c.Mode {
	case domain.ToolChoiceRequired:
		if len(d.req.Tools) == 0 {
			return domain.Invalid(param, "Invalid '%s': 'required' needs at least one tool in 'tools'.", param)
		}
	case domain.ToolChoiceFunction:
		for _, t := range d.req.Tools {
			if t.Name == c.Name {
				return nil
			}
		}
		return domain.Invalid(param, "Invalid '%s': function '%s' is not among the tools provided.", param, c.Name)
	}
	return nil
}

func decodeChoice(param string, raw json.RawMessage, legacy bool) (domain.ToolChoice, error) {
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case domain.ToolChoiceAuto, domain.ToolChoiceNone:
			return domain.ToolChoice{Mode: mode}, nil
		case domain.ToolChoiceRequired:
			if !legacy {
				return domain.ToolChoice{Mode: mode}, nil
			}
		}
		return domain.ToolChoice{}, domain.Invalid(param, "Invalid value for '%s': '%s'. Expected 'none', 'auto', 'required' or an object naming a function.", param, mode)
	}
	if jsonKind(raw) != "an object" {
		return domain.ToolChoice{}, domain.Invalid(param, "Invalid type for '%s': expected a string or an object, but got %s instead.", param, jsonKind(raw))
	}
	var named struct {
		Type     *string `json:"type"`
		Name     *string `json:"name"`
		Function *struct {
			Name *string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return domain.ToolChoice{}, jsonError(param, err)
	}
	name := named.Name // function_call: {"name": …}
	if !legacy {
		if named.Type == nil || *named.Type != "function" || named.Function == nil {
			return domain.ToolChoice{}, domain.Invalid(param, "Invalid '%s': expected {\"type\": \"function\", \"function\": {\"name\": …}}.", param)
		}
		name = named.Function.Name
	}
	if name == nil || *name == "" {
		return domain.ToolChoice{}, domain.Invalid(param, "Invalid '%s': the function's name is missing.", param)
	}
	return domain.ToolChoice{Mode: domain.ToolChoiceFunction, Name: *name}, nil
}

func (d decoder) responseFormat() error {
	raw := d.w.ResponseFormat
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if jsonKind(raw) != "an object" {
		return domain.Invalid("response_format", "Invalid type for 'response_format': expected an object, but got %s instead.", jsonKind(raw))
	}
	var f responseFormatWire
	if err := json.Unmarshal(raw, &f); err != nil {
		return jsonError("response_format", err)
	}
	if f.Type == nil {
		return domain.Invalid("response_format.type", "Missing required parameter: 'response_format.type'.")
	}
	rf := &domain.ResponseFormat{Type: *f.Type}
	switch *f.Type {
	case domain.FormatText:
		return nil
	case domain.FormatJSONObject:
	case domain.FormatJSONSchema:
		s := f.JSONSchema
		if s == nil {
			return domain.Invalid("response_format.json_schema", "Missing required parameter: 'response_format.json_schema'.")
		}
		if s.Name == nil || !functionName.MatchString(*s.Name) {
			return domain.Invalid("response_format.json_schema.name", "Invalid 'response_format.json_schema.name': expected a string matching '^[a-zA-Z0-9_-]{1,64}$'.")
		}
		rf.Name, rf.Strict = *s.Name, s.Strict
		if len(s.Schema) > 0 && string(s.Schema) != "null" {
			if jsonKind(s.Schema) != "an object" {
				return domain.Invalid("response_format.json_schema.schema", "Invalid type for 'response_format.json_schema.schema': expected an object, but got %s instead.", jsonKind(s.Schema))
			}
			rf.Schema = compact(s.Schema)
		}
	default:
		return domain.Invalid("response_format.type", "Invalid value: '%s'. Supported values are: 'text', 'json_object' and 'json_schema'.", *f.Type)
	}
	d.req.ResponseFormat = rf
	return nil
}

// unsupported rejects features no backend here can honour, while their
// neutral values pass.
func (d decoder) unsupported() error {
	w := d.w
	if len(w.LogitBias) > 0 {
		return domain.Invalid("logit_bias", "'logit_bias' is not supported by this service's backends; send an empty object or leave it out.")
	}
	for _, m := range w.Modalities {
		if m != "text" {
			return domain.Invalid("modalities", "Invalid 'modalities': only [\"text\"] is supported by this service's backends, got '%s'.", m)
		}
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"audio", w.Audio}, {"prediction", w.Prediction}, {"web_search_options", w.WebSearchOptions}} {
		if len(f.raw) > 0 && string(f.raw) != "null" {
			return domain.Invalid(f.name, "'%s' is not supported by this service's backends.", f.name)
		}
	}
	return nil
}

func compact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

func decodeMessage(i int, raw json.RawMessage) (domain.Message, error) {
	param := "messages[" + strconv.Itoa(i) + "]"
	var m domain.Message
	if jsonKind(raw) != "an object" {
		return m, domain.Invalid(param, "Invalid type for '%s': expected an object, but got %s instead.", param, jsonKind(raw))
	}
	var w messageWire
	if err := json.Unmarshal(raw, &w); err != nil {
		return m, jsonError(param, err)
	}
	return decodeMessageWire(i, &w)
}

// decodeMessageWire validates message i as read from the wire.
func decodeMessageWire(i int, w *messageWire) (domain.Message, error) {
	param := "messages[" + strconv.Itoa(i) + "]"
	var m domain.Message
	if w.Role == nil {
		return m, domain.Invalid(param+".role", "Missing required parameter: '%s.role'.", param)
	}
	m.Role = *w.Role
	switch m.Role {
	case domain.RoleSystem, domain.RoleDeveloper, domain.RoleUser, domain.RoleAssistant, domain.RoleTool:
	case "function": // deprecated: the answer to a function_call
		m.Role = domain.RoleTool
		if w.Name == nil {
			return m, domain.Invalid(param+".name", "Missing required parameter: '%s.name'.", param)
		}
		m.ToolCallID = LegacyCallID
	default:
		return m, domain.Invalid(param+".role", "Invalid value: '%s'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and 'function'.", m.Role)
	}
	if err := decodeContent(param+".content", w.Content, m.Role, &m); err != nil {
		return m, err
	}
	if w.Name != nil {
		m.Name = *w.Name
	}
	switch m.Role {
	case domain.RoleTool:
		if m.ToolCallID == "" {
			if w.ToolCallID == nil {
				return m, domain.Invalid(param+".tool_call_id", "Missing required parameter: '%s.tool_call_id'.", param)
			}
			m.ToolCallID = *w.ToolCallID
		}
	case domain.RoleAssistant:
		calls, err := decodeToolCalls(param, w.ToolCalls, w.FunctionCall)
		if err != nil {
			return m, err
		}
		m.ToolCalls = calls
	}
	return m, nil
}

// plainString reads a JSON string of printable ASCII without escapes
// (what most are) without encoding/json; anything else: false.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	for _, c := range in {
		if c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(in), true
}

// LegacyCallID stands for the call of the deprecated function_call API,
// which has no ids: a "function" message answers the last function_call.
const LegacyCallID = "call_legacy_function"

func decodeToolCalls(param string, calls []toolCallWire, legacy *functionWire) ([]domain.ToolCall, error) {
	var out []domain.ToolCall
	for j, c := range calls {
		p := param + ".tool_calls[" + strconv.Itoa(j) + "]"
		if c.ID == nil || *c.ID == "" {
			return nil, domain.Invalid(p+".id", "Missing required parameter: '%s.id'.", p)
		}
		if c.Type != nil && *c.Type != "function" {
			return nil, domain.Invalid(p+".type", "Invalid value: '%s'. Supported values are: 'function'.", *c.Type)
		}
		if c.Function == nil || c.Function.Name == nil {
			return nil, domain.Invalid(p+".function.name", "Missing required parameter: '%s.function.name'.", p)
		}
		call := domain.ToolCall{ID: *c.ID, Name: *c.Function.Name}
		if c.Function.Arguments != nil {
			call.Arguments = *c.Function.Arguments
		}
		out = append(out, call)
	}
	if legacy != nil && legacy.Name != nil {
		call := domain.ToolCall{ID: LegacyCallID, Name: *legacy.Name}
		if legacy.Arguments != nil {
			call.Arguments = *legacy.Arguments
		}
		out = append(out, call)
	}
	return out, nil
}

// decodeContent accepts a string, null (assistant messages only), or an
// array of parts: text (joined with a newline), image_url (user messages),
// and refusal (assistant messages).
func decodeContent(param string, raw json.RawMessage, role string, m *domain.Message) error {
	if len(raw) == 0 || string(raw) == "null" {
		if role == domain.RoleAssistant {
			return nil
		}
		return domain.Invalid(param, "Missing required parameter: '%s'.", param)
	}
	switch raw[0] {
	case '"':
		if s, ok := plainString(raw); ok {
			m.Content = s
			return nil
		}
		if err := json.Unmarshal(raw, &m.Content); err != nil {
			return jsonError(param, err)
		}
		return nil
	case '[':
	default:
		return domain.Invalid(param, "Invalid type for '%s': expected one of a string or array of objects, but got %s instead.", param, jsonKind(raw))
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return jsonError(param, err)
	}
	var b strings.Builder
	for j, praw := range parts {
		pparam := param + "[" + strconv.Itoa(j) + "]"
		if jsonKind(praw) != "an object" {
			return domain.Invalid(pparam, "Invalid type for '%s': expected an object, but got %s instead.", pparam, jsonKind(praw))
		}
		var p partWire
		if err := json.Unmarshal(praw, &p); err != nil {
			return jsonError(pparam, err)
		}
		if p.Type == nil {
			return domain.Invalid(pparam+".type", "Missing required parameter: '%s.type'.", pparam)
		}
		text := ""
		switch {
		case *p.Type == "text":
			if p.Text == nil {
				return domain.Invalid(pparam+".text", "Missing required parameter: '%s.text'.", pparam)
			}
			text = *p.Text
		case *p.Type == "refusal" && role == domain.RoleAssistant:
			if p.Refusal == nil {
				return domain.Invalid(pparam+".refusal", "Missing required parameter: '%s.refusal'.", pparam)
			}
			text = *p.Refusal
		case *p.Type == "image_url" && role == domain.RoleUser:
			if p.ImageURL == nil || p.ImageURL.URL == nil || *p.ImageURL.URL == "" {
				return domain.Invalid(pparam+".image_url.url", "Missing required parameter: '%s.image_url.url'.", pparam)
			}
			m.Images = append(m.Images, domain.NewImage(*p.ImageURL.URL))
			continue
		default:
			return domain.Invalid(pparam+".type", "Invalid value: '%s'. This service supports content parts of type 'text' and 'image_url' (user messages) and 'refusal' (assistant messages).", *p.Type)
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(text)
	}
	m.Content = b.String()
	return nil
}

func decodeStop(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, jsonError("stop", err)
		}
		return []string{s}, nil
	case '[':
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, domain.Invalid("stop", "Invalid type for 'stop': expected a string or an array of strings.")
		}
		if len(list) > 4 {
			return nil, domain.Invalid("stop", "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length %d instead.", len(list))
		}
		return list, nil
	}
	return nil, domain.Invalid("stop", "Invalid type for 'stop': expected a string or an array of strings, but got %s instead.", jsonKind(raw))
}

func inRange(param string, v *float64, lo, hi float64) (*float64, error) {
	if v != nil && (*v < lo || *v > hi) {
		return nil, domain.Invalid(param, "Invalid '%s': expected a value between %g and %g, but got %g instead.", param, lo, hi, *v)
	}
	return v, nil
}

// jsonError turns a decoding error into a client error naming the field.
func jsonError(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		param := te.Field
		if prefix != "" && param != "" {
			param = prefix + "." + param
		} else if prefix != "" {
			param = prefix
		}
		return domain.Invalid(param, "Invalid type for '%s': expected %s, but got a JSON %s instead.", param, goTypeName(te.Type.String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return domain.Invalid("", "We could not parse the JSON body of your request (%s at byte %d). Please send valid JSON.", se.Error(), se.Offset)
	}
	return domain.Invalid(prefix, "We could not parse the JSON body of your request: %s", err.Error())
}

func goTypeName(t string) string {
	t = strings.TrimPrefix(t, "*")
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "int"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map"), strings.Contains(t, "struct"), strings.HasPrefix(t, "openai."):
		return "an object"
	}
	return fmt.Sprintf("a %s", t)
}

func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
