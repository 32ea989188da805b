// Package openai is OpenAI's Chat Completions wire format: decoding and
// validating client requests into domain types, and encoding completions,
// stream chunks, model lists and errors exactly as OpenAI's API does.
package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

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
}

type streamOptions struct {
	IncludeUsage *bool `json:"include_usage"`
}

type messageWire struct {
	Role       *string         `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       *string         `json:"name"`
	ToolCallID *string         `json:"tool_call_id"`
}

type partWire struct {
	Type *string `json:"type"`
	Text *string `json:"text"`
}

// DecodeChatRequest parses and validates a Chat Completions request body.
// Every client mistake comes back as *domain.InvalidRequestError naming the
// offending field. The returned request keeps body as Raw.
func DecodeChatRequest(body []byte) (domain.ChatRequest, error) {
	var req domain.ChatRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, domain.Invalid("", "The request body is empty; expected a JSON object with `model` and `messages`.")
	}
	if !utf8.Valid(body) {
		return req, domain.Invalid("", "The request body is not valid UTF-8.")
	}
	var w requestWire
	if err := json.Unmarshal(body, &w); err != nil {
		return req, jsonError("", err)
	}
	model, err := decodeModel(w.Model)
	if err != nil {
		return req, err
	}
	req.Model = model
	if len(w.Messages) == 0 {
		if w.Messages == nil {
			return req, domain.Invalid("messages", "Missing required parameter: 'messages'.")
		}
		return req, domain.Invalid("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1.")
	}
	req.Messages = make([]domain.Message, len(w.Messages))
	for i, raw := range w.Messages {
		m, err := decodeMessage(i, raw)
		if err != nil {
			return req, err
		}
		req.Messages[i] = m
	}
	if w.Stream != nil {
		req.Stream = *w.Stream
	}
	if req.Stream && w.StreamOptions != nil && w.StreamOptions.IncludeUsage != nil {
		req.IncludeUsage = *w.StreamOptions.IncludeUsage
	}
	s := &req.Sampling
	if s.Temperature, err = inRange("temperature", w.Temperature, 0, 2); err != nil {
		return req, err
	}
	if s.TopP, err = inRange("top_p", w.TopP, 0, 1); err != nil {
		return req, err
	}
	if s.PresencePenalty, err = inRange("presence_penalty", w.PresencePenalty, -2, 2); err != nil {
		return req, err
	}
	if s.FrequencyPenalty, err = inRange("frequency_penalty", w.FrequencyPenalty, -2, 2); err != nil {
		return req, err
	}
	for _, mt := range []struct {
		name string
		v    *int
	}{{"max_tokens", w.MaxTokens}, {"max_completion_tokens", w.MaxCompletionTokens}} {
		if mt.v != nil && *mt.v < 1 {
			return req, domain.Invalid(mt.name, "Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", mt.name, *mt.v)
		}
	}
	s.MaxTokens = w.MaxTokens
	if w.MaxCompletionTokens != nil {
		s.MaxTokens = w.MaxCompletionTokens
	}
	if s.Stop, err = decodeStop(w.Stop); err != nil {
		return req, err
	}
	s.Seed = w.Seed
	if w.User != nil {
		req.User = *w.User
	}
	req.Raw = body
	return req, nil
}

func decodeModel(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", domain.Invalid("model", "Missing required parameter: 'model'.")
	}
	var model string
	if err := json.Unmarshal(raw, &model); err != nil {
		return "", domain.Invalid("model", "Invalid type for 'model': expected a string, but got %s instead.", jsonKind(raw))
	}
	if strings.TrimSpace(model) == "" {
		return "", domain.Invalid("model", "Invalid 'model': empty string. Expected the name of a model.")
	}
	return model, nil
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
	if w.Role == nil {
		return m, domain.Invalid(param+".role", "Missing required parameter: '%s.role'.", param)
	}
	m.Role = *w.Role
	switch m.Role {
	case domain.RoleSystem, domain.RoleDeveloper, domain.RoleUser, domain.RoleAssistant, domain.RoleTool:
	default:
		return m, domain.Invalid(param+".role", "Invalid value: '%s'. Supported values are: 'system', 'developer', 'user', 'assistant', and 'tool'.", m.Role)
	}
	content, present, err := decodeContent(param+".content", w.Content)
	if err != nil {
		return m, err
	}
	if !present && m.Role != domain.RoleAssistant {
		return m, domain.Invalid(param+".content", "Missing required parameter: '%s.content'.", param)
	}
	m.Content = content
	if w.Name != nil {
		m.Name = *w.Name
	}
	if m.Role == domain.RoleTool {
		if w.ToolCallID == nil {
			return m, domain.Invalid(param+".tool_call_id", "Missing required parameter: '%s.tool_call_id'.", param)
		}
		m.ToolCallID = *w.ToolCallID
	}
	return m, nil
}

// decodeContent accepts a string or an array of text parts (joined with a
// newline). present is false for a missing or null content.
func decodeContent(param string, raw json.RawMessage) (text string, present bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", false, jsonError(param, err)
		}
		return text, true, nil
	case '[':
		var parts []json.RawMessage
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", false, jsonError(param, err)
		}
		var b strings.Builder
		for j, praw := range parts {
			pparam := param + "[" + strconv.Itoa(j) + "]"
			var p partWire
			if jsonKind(praw) != "an object" {
				return "", false, domain.Invalid(pparam, "Invalid type for '%s': expected an object, but got %s instead.", pparam, jsonKind(praw))
			}
			if err := json.Unmarshal(praw, &p); err != nil {
				return "", false, jsonError(pparam, err)
			}
			if p.Type == nil {
				return "", false, domain.Invalid(pparam+".type", "Missing required parameter: '%s.type'.", pparam)
			}
			if *p.Type != "text" {
				return "", false, domain.Invalid(pparam+".type", "Invalid value: '%s'. This service supports content parts of type 'text'.", *p.Type)
			}
			if p.Text == nil {
				return "", false, domain.Invalid(pparam+".text", "Missing required parameter: '%s.text'.", pparam)
			}
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(*p.Text)
		}
		return b.String(), true, nil
	default:
		return "", false, domain.Invalid(param, "Invalid type for '%s': expected one of a string or array of objects, but got %s instead.", param, jsonKind(raw))
	}
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
	case strings.HasPrefix(t, "map"), strings.HasPrefix(t, "openai."):
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
