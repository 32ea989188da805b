package openai

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Input items of the Responses API: what each becomes for the model, and
// how it is stored (with an id, message content as typed parts) for
// previous_response_id and GET /v1/responses/{id}/input_items.

type itemWire struct {
	Type      *string         `json:"type"`
	ID        *string         `json:"id"`
	Role      *string         `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    *string         `json:"call_id"`
	Name      *string         `json:"name"`
	Namespace *string         `json:"namespace"`
	Arguments *string         `json:"arguments"`
	Output    json.RawMessage `json:"output"`
	Input     *string         `json:"input"`
}

type itemPartWire struct {
	Type     *string `json:"type"`
	Text     *string `json:"text"`
	Refusal  *string `json:"refusal"`
	ImageURL *string `json:"image_url"`
	FileID   *string `json:"file_id"`
}

// idPrefix is the id prefix of each item type, as OpenAI's ids read.
var idPrefix = map[string]string{
	"message": "msg_", "function_call": "fc_", "function_call_output": "fco_", "reasoning": "rs_",
	"custom_tool_call": "ctc_", "custom_tool_call_output": "ctco_",
}

// item reads one input item: the messages it means to the model (none for
// reasoning and items only OpenAI's hosted tools make), and the item as
// it is stored. An item_reference is the item it names, which must be
// among the conversation's earlier items.
func (r *ResponsesRequest) item(param string, raw json.RawMessage) ([]domain.Message, json.RawMessage, error) {
	if jsonKind(raw) != "an object" {
		return nil, nil, domain.Invalid(param, "Invalid type for '%s': expected an input item (an object), but got %s instead.", param, jsonKind(raw))
	}
	var w itemWire
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, nil, jsonError(param, err)
	}
	typ := ""
	switch {
	case w.Type != nil:
		typ = *w.Type
	case w.Role != nil:
		typ = "message" // an easy input message: {"role", "content"}
	default:
		return nil, nil, domain.Invalid(param+".type", "Missing required parameter: '%s.type'.", param)
	}
	if typ == "item_reference" {
		if w.ID == nil || r.byID[*w.ID] == nil {
			return nil, nil, domain.Invalid(param+".id", "Invalid '%s.id': no earlier item of this conversation has that id.", param)
		}
		return r.item(param, r.byID[*w.ID])
	}
	var msgs []domain.Message
	var err error
	stored := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &stored); err != nil {
		return nil, nil, jsonError(param, err)
	}
	stored["type"] = mustJSON(typ)
	switch typ {
	case "message":
		msgs, err = r.messageItem(param, &w, stored)
	case "function_call", "custom_tool_call":
		msgs, err = r.callItem(param, typ, &w)
	case "function_call_output", "custom_tool_call_output":
		msgs, err = outputItem(param, &w)
	default:
		// Reasoning, and what OpenAI's hosted tools leave (web searches,
		// shell calls, …): kept in the conversation, not shown the model.
	}
	if err != nil {
		return nil, nil, err
	}
	if _, ok := stored["status"]; !ok && idPrefix[typ] != "" && typ != "reasoning" {
		stored["status"] = mustJSON("completed") // as a stored item reads back
	}
	if w.ID == nil || *w.ID == "" {
		prefix := idPrefix[typ]
		if prefix == "" {
			prefix = "item_"
		}
		id := wire.RandomText(prefix)
		stored["id"] = mustJSON(id)
		w.ID = &id
	}
	out, _ := json.Marshal(stored)
	r.byID[*w.ID] = out
	return msgs, out, nil
}

func (r *ResponsesRequest) messageItem(param string, w *itemWire, stored map[string]json.RawMessage) ([]domain.Message, error) {
	if w.Role == nil {
		return nil, domain.Invalid(param+".role", "Missing required parameter: '%s.role'.", param)
	}
	m := domain.Message{Role: *w.Role}
	textType := "input_text"
	switch m.Role {
	case domain.RoleUser, domain.RoleSystem, domain.RoleDeveloper:
	case domain.RoleAssistant:
		textType = "output_text"
	default:
		return nil, domain.Invalid(param+".role", "Invalid value: '%s'. Supported values are: 'user', 'assistant', 'system' and 'developer'.", m.Role)
	}
	cparam := param + ".content"
	raw := w.Content
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, domain.Invalid(cparam, "Missing required parameter: '%s'.", cparam)
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &m.Content); err != nil {
			return nil, jsonError(cparam, err)
		}
		part := []byte(`[{"type":`)
		part = wire.AppendString(part, textType)
		part = append(part, `,"text":`...)
		part = wire.AppendString(part, m.Content)
		if m.Role == domain.RoleAssistant {
			part = append(part, `,"annotations":[],"logprobs":[]`...)
		}
		stored["content"] = append(part, "}]"...)
		return []domain.Message{m}, nil
	case raw[0] != '[':
		return nil, domain.Invalid(cparam, "Invalid type for '%s': expected a string or an array of content parts, but got %s instead.", cparam, jsonKind(raw))
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, jsonError(cparam, err)
	}
	var text []string
	for j, praw := range parts {
		pparam := cparam + "[" + strconv.Itoa(j) + "]"
		var p itemPartWire
		if jsonKind(praw) != "an object" {
			return nil, domain.Invalid(pparam, "Invalid type for '%s': expected an object, but got %s instead.", pparam, jsonKind(praw))
		}
		if err := json.Unmarshal(praw, &p); err != nil {
			return nil, jsonError(pparam, err)
		}
		if p.Type == nil {
			return nil, domain.Invalid(pparam+".type", "Missing required parameter: '%s.type'.", pparam)
		}
		switch *p.Type {
		case "input_text", "output_text", "text", "summary_text", "reasoning_text":
			if p.Text == nil {
				return nil, domain.Invalid(pparam+".text", "Missing required parameter: '%s.text'.", pparam)
			}
			text = append(text, *p.Text)
		case "refusal":
			if p.Refusal != nil {
				text = append(text, *p.Refusal)
			}
		case "input_image":
			url, err := imageOf(pparam, &p)
			if err != nil {
				return nil, err
			}
			m.Images = append(m.Images, domain.NewImage(url))
		case "input_file":
			return nil, domain.Invalid(pparam+".type", "Invalid value: 'input_file'. Files are not served here; send their text as input_text.")
		default:
			return nil, domain.Invalid(pparam+".type", "Invalid value: '%s'. Supported content parts are 'input_text', 'input_image' and, in assistant messages, 'output_text' and 'refusal'.", *p.Type)
		}
	}
	m.Content = strings.Join(text, "\n")
	return []domain.Message{m}, nil
}

func imageOf(param string, p *itemPartWire) (string, error) {
	switch {
	case p.ImageURL != nil && *p.ImageURL != "":
		return *p.ImageURL, nil
	case p.FileID != nil && *p.FileID != "":
		return "", domain.Invalid(param+".file_id", "Invalid '%s.file_id': files are not served here; send the image as image_url (a data: URL or an http(s) URL).", param)
	}
	return "", domain.Invalid(param+".image_url", "Missing required parameter: '%s.image_url'.", param)
}

// callItem is a call the model made in an earlier turn.
func (r *ResponsesRequest) callItem(param, typ string, w *itemWire) ([]domain.Message, error) {
	if w.CallID == nil || *w.CallID == "" {
		return nil, domain.Invalid(param+".call_id", "Missing required parameter: '%s.call_id'.", param)
	}
	if w.Name == nil || *w.Name == "" {
		return nil, domain.Invalid(param+".name", "Missing required parameter: '%s.name'.", param)
	}
	call := domain.ToolCall{ID: *w.CallID, Name: *w.Name}
	if w.Namespace != nil && *w.Namespace != "" {
		call.Name = *w.Namespace + "." + *w.Name
	}
	switch {
	case typ == "custom_tool_call":
		input := ""
		if w.Input != nil {
			input = *w.Input
		}
		args, _ := json.Marshal(map[string]string{"input": input})
		call.Arguments = string(args)
	case w.Arguments != nil:
		call.Arguments = *w.Arguments
	}
	return []domain.Message{{Role: domain.RoleAssistant, ToolCalls: []domain.ToolCall{call}}}, nil
}

// outputItem is what a call gave, as the client sends it back.
func outputItem(param string, w *itemWire) ([]domain.Message, error) {
	if w.CallID == nil || *w.CallID == "" {
		return nil, domain.Invalid(param+".call_id", "Missing required parameter: '%s.call_id'.", param)
	}
	m := domain.Message{Role: domain.RoleTool, ToolCallID: *w.CallID}
	raw := w.Output
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, domain.Invalid(param+".output", "Missing required parameter: '%s.output'.", param)
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &m.Content); err != nil {
			return nil, jsonError(param+".output", err)
		}
	case raw[0] == '[':
		var parts []itemPartWire
		if err := json.Unmarshal(raw, &parts); err != nil {
			return nil, jsonError(param+".output", err)
		}
		var text []string
		for j, p := range parts {
			pparam := param + ".output[" + strconv.Itoa(j) + "]"
			switch {
			case p.Text != nil:
				text = append(text, *p.Text)
			case p.Type != nil && *p.Type == "input_image":
				url, err := imageOf(pparam, &p)
				if err != nil {
					return nil, err
				}
				m.Images = append(m.Images, domain.NewImage(url))
			}
		}
		m.Content = strings.Join(text, "\n")
	default:
		return nil, domain.Invalid(param+".output", "Invalid type for '%s.output': expected a string or an array of content parts, but got %s instead.", param, jsonKind(raw))
	}
	return []domain.Message{m}, nil
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
