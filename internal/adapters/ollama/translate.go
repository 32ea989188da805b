package ollama

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// ChatRequest is the body of POST /api/chat.
type ChatRequest struct {
	Model     string          `json:"model"`
	Messages  []Message       `json:"messages"`
	Tools     []Tool          `json:"tools,omitempty"`
	Format    json.RawMessage `json:"format,omitempty"`
	Stream    bool            `json:"stream"`
	Options   json.RawMessage `json:"options,omitempty"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
	Think     json.RawMessage `json:"think,omitempty"`
	// Logprobs asks for the log probability of each generated token, and
	// TopLogprobs (0-20) for that many alternatives at each position.
	Logprobs    bool `json:"logprobs,omitempty"`
	TopLogprobs int  `json:"top_logprobs,omitempty"`
}

// Message is one message of an Ollama chat.
type Message struct {
	Role      string     `json:"role"`
	Content   string     `json:"content"`
	Thinking  string     `json:"thinking,omitempty"`
	Images    []string   `json:"images,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	ToolName  string     `json:"tool_name,omitempty"`
}

// ToolCall is a call in Ollama's form: arguments are a JSON object.
type ToolCall struct {
	Function struct {
		Index     *int            `json:"index,omitempty"`
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// Tool is a function definition, in the same form OpenAI uses.
type Tool struct {
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

// ToolFunction describes a function to the model.
type ToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ImageLoader turns an image_url value (a data: URL, or an http(s) URL when
// allowed) into standard base64. Its errors are meant for the client.
type ImageLoader interface {
	Load(ctx context.Context, url string) (string, error)
}

// forcing says how a tool call is enforced through Ollama's format, which
// constrains decoding: Ollama itself has no tool_choice.
type forcing int

const (
	forceNone forcing = iota
	forceOne          // the answer is the arguments of tool forcedName
	forceAny          // the answer is {"name": …, "arguments": {…}}
)

// plan is what translating a request decided, needed to read the answer
// and to vary it per choice.
type plan struct {
	force      forcing
	forcedName string
	single     bool // parallel_tool_calls false: keep the first call only
	// options and seed, kept to give each further choice its own seed.
	options optionSet
	seed    *int64
}

// optionsFor returns the options of choice i: a client seed is varied per
// choice so that the choices differ, as they do with OpenAI.
func (p *plan) optionsFor(i int) json.RawMessage {
	if i == 0 || p.seed == nil {
		return nil
	}
	seed := *p.seed + int64(i)
	return p.options.json(&seed)
}

// Translate returns the /api/chat body for req, as it would be sent.
func (c *Client) Translate(ctx context.Context, req domain.ChatRequest, stream bool) (ChatRequest, error) {
	out, _, err := c.translate(ctx, req, stream)
	return out, err
}

// translate builds the /api/chat body. developer becomes system, text parts
// are joined, images inlined as base64, tool results named after the call
// they answer, and no option is set that the client did not send (beyond a
// configured num_ctx).
func (c *Client) translate(ctx context.Context, req domain.ChatRequest, stream bool) (ChatRequest, plan, error) {
	var p plan
	out := ChatRequest{Model: req.Model, Stream: stream, Messages: make([]Message, 0, len(req.Messages)+1)}
	var names map[string]string // tool call id -> function name, when there are calls
	for _, m := range req.Messages {
		if len(m.ToolCalls) > 0 {
			names = map[string]string{}
			break
		}
	}
	for i, m := range req.Messages {
		msg, err := c.message(ctx, i, m, names)
		if err != nil {
			return out, p, err
		}
		out.Messages = append(out.Messages, msg)
	}
	p.single = req.ParallelToolCalls != nil && !*req.ParallelToolCalls
	if err := p.tools(req, &out); err != nil {
		return out, p, err
	}
	// A forced tool call is the model's answer read as a call, and OpenAI
	// reports no log probabilities for tool calls: none are asked for then.
	if req.Logprobs && p.force == forceNone {
		out.Logprobs = true
		if req.TopLogprobs != nil {
			out.TopLogprobs = *req.TopLogprobs
		}
	}
	if p.force == forceNone && req.ResponseFormat != nil {
		switch req.ResponseFormat.Type {
		case domain.FormatJSONObject:
			out.Format = json.RawMessage(`"json"`)
		case domain.FormatJSONSchema:
			out.Format = json.RawMessage(`"json"`)
			if len(req.ResponseFormat.Schema) > 0 {
				out.Format = req.ResponseFormat.Schema
			}
		}
	}
	ext, err := readExtras(req.Passthrough)
	if err != nil {
		return out, p, err
	}
	p.options, err = c.optionSet(req.Model, req.Sampling, ext.options)
	if err != nil {
		return out, p, err
	}
	out.Options = p.options.json(nil)
	p.seed = req.Sampling.Seed
	out.KeepAlive = ext.keepAlive
	out.Think = ext.think
	if out.Think == nil && req.ReasoningEffort != "" {
		out.Think = thinkFor(req.ReasoningEffort)
	}
	return out, p, nil
}

func (c *Client) message(ctx context.Context, i int, m domain.Message, names map[string]string) (Message, error) {
	role := m.Role
	if role == domain.RoleDeveloper {
		role = domain.RoleSystem
	}
	msg := Message{Role: role, Content: m.Content}
	for j, im := range m.Images {
		param := "messages[" + strconv.Itoa(i) + "]"
		if c.images == nil {
			return msg, domain.Invalid(param+".content", "Images are not supported by this backend.")
		}
		b64, err := im.Load(ctx, c.images.Load)
		if err != nil {
			if ctx.Err() != nil {
				return msg, ctx.Err()
			}
			return msg, domain.Invalid(param+".content", "Invalid image %d in '%s.content': %v", j, param, err)
		}
		msg.Images = append(msg.Images, b64)
	}
	for _, tc := range m.ToolCalls {
		names[tc.ID] = tc.Name
		var call ToolCall
		call.Function.Name = tc.Name
		call.Function.Arguments = argumentsObject(tc.Arguments)
		msg.ToolCalls = append(msg.ToolCalls, call)
	}
	if role == domain.RoleTool {
		msg.ToolName = names[m.ToolCallID]
		if msg.ToolName == "" {
			msg.ToolName = m.Name
		}
	}
	return msg, nil
}

// argumentsObject turns a past call's arguments into the JSON object Ollama
// requires. OpenAI takes any string there, and a conversation may hold
// arguments that are not an object: a call the model cut short at the
// token cap (finish_reason "length"), or a model that wrote an array. Such
// arguments go as {"raw_arguments": "<the text as it was>"}, so the
// history stays readable to the model and the agent loop goes on.
func argumentsObject(args string) json.RawMessage {
	t := strings.TrimSpace(args)
	if t == "" {
		return json.RawMessage(`{}`)
	}
	if t[0] == '{' && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	b, _ := json.Marshal(map[string]string{"raw_arguments": args})
	return b
}

// tools decides what the model is offered: nothing for tool_choice none;
// for required or a named function, the call is enforced with a format
// schema and an instruction, since Ollama cannot force a tool call.
func (p *plan) tools(req domain.ChatRequest, out *ChatRequest) error {
	if len(req.Tools) == 0 || req.ToolChoice.Mode == domain.ToolChoiceNone {
		return nil
	}
	choice := req.ToolChoice
	if choice.Mode == domain.ToolChoiceRequired && len(req.Tools) == 1 {
		choice = domain.ToolChoice{Mode: domain.ToolChoiceFunction, Name: req.Tools[0].Name}
	}
	switch choice.Mode {
	case domain.ToolChoiceFunction:
		for _, t := range req.Tools {
			if t.Name != choice.Name {
				continue
			}
			p.force, p.forcedName = forceOne, t.Name
			out.Format = schemaOrObject(t.Parameters)
			out.Messages = append(out.Messages, Message{Role: domain.RoleSystem, Content: fmt.Sprintf(
				"Call the function %q now. Reply with nothing but its arguments as one JSON object.%s", t.Name, describe(t))})
			return nil
		}
		return domain.Invalid("tool_choice", "Invalid 'tool_choice': function '%s' is not among the tools provided.", choice.Name)
	case domain.ToolChoiceRequired:
		p.force = forceAny
		variants := make([]string, len(req.Tools))
		var list strings.Builder
		for i, t := range req.Tools {
			name, _ := json.Marshal(t.Name)
			variants[i] = fmt.Sprintf(`{"type":"object","properties":{"name":{"const":%s},"arguments":%s},"required":["name","arguments"]}`,
				name, schemaOrObject(t.Parameters))
			list.WriteString("\n- " + t.Name + describe(t))
		}
		out.Format = json.RawMessage(`{"anyOf":[` + strings.Join(variants, ",") + `]}`)
		out.Messages = append(out.Messages, Message{Role: domain.RoleSystem, Content: "Call one of these functions now. " +
			`Reply with nothing but one JSON object {"name": <function name>, "arguments": {…}}.` + list.String()})
		return nil
	}
	for _, t := range req.Tools {
		out.Tools = append(out.Tools, Tool{Type: "function", Function: ToolFunction{Name: t.Name, Description: t.Description, Parameters: t.Parameters}})
	}
	return nil
}

func describe(t domain.Tool) string {
	if t.Description == "" {
		return ""
	}
	return " (" + t.Description + ")"
}

func schemaOrObject(schema []byte) json.RawMessage {
	if len(schema) == 0 {
		return json.RawMessage(`{"type":"object"}`)
	}
	return schema
}

// thinkFor maps reasoning_effort onto Ollama's think.
func thinkFor(effort string) json.RawMessage {
	switch effort {
	case "none":
		return json.RawMessage(`false`)
	case "minimal", "low":
		return json.RawMessage(`"low"`)
	case "medium":
		return json.RawMessage(`"medium"`)
	case "max", "xhigh":
		return json.RawMessage(`"max"`)
	}
	return json.RawMessage(`"high"`)
}

// options merges the client's Ollama options with the OpenAI sampling
// fields it sent (those win) and the configured num_ctx for the model
// (unless the client set one). Chat, text completions and embeddings (no
// sampling) share it, so a setting means the same on every endpoint.
func (c *Client) options(model string, s domain.Sampling, client json.RawMessage) (map[string]json.RawMessage, error) {
	o, err := c.optionSet(model, s, client)
	if err != nil {
		return nil, err
	}
	return o.merged(nil), nil
}

// optionSet is options unmerged: chat and text completions write it
// straight into their bodies.
func (c *Client) optionSet(model string, s domain.Sampling, client json.RawMessage) (optionSet, error) {
	o := optionSet{s: s}
	if len(client) > 0 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(client, &m); err != nil {
			return o, domain.Invalid("options", "Invalid 'options': expected an object of Ollama model options.")
		}
		o.client = m
	}
	if _, ok := o.client["num_ctx"]; !ok {
		if n, ok := c.numCtx[model]; ok && n > 0 {
			o.numCtx = n
		}
	}
	return o, nil
}

// extras are the Ollama settings a client may send in the request body
// (the SDKs' extra_body): options, keep_alive and think.
type extras struct {
	options, keepAlive, think json.RawMessage
}

// readExtras reads the extras from the client's body, when the request
// carries it (a wire.ChatBody, wire.CompletionBody or wire.EmbeddingsBody),
// checking their types. An embeddings body has no think: Ollama's
// /api/embed takes none, so the key is left alone there.
func readExtras(passthrough any) (extras, error) {
	var ext extras
	var body []byte
	thinks := true
	switch b := passthrough.(type) {
	case wire.ChatBody:
		body = b
	case wire.CompletionBody:
		body = b
	case wire.EmbeddingsBody:
		body, thinks = b, false
	default:
		return ext, nil
	}
	var sc jsonscan.Scanner
	sc.Reset(body)
	sc.Members(func(key []byte, _ int) bool {
		start := sc.Pos()
		if !sc.Skip() {
			return false
		}
		v := json.RawMessage(bytes.TrimSpace(body[start:sc.Pos()]))
		if string(v) == "null" {
			return true
		}
		switch string(key) {
		case "options":
			ext.options = v
		case "keep_alive":
			ext.keepAlive = v
		case "think":
			if thinks {
				ext.think = v
			}
		}
		return true
	})
	if v := ext.options; v != nil && v[0] != '{' {
		return ext, domain.Invalid("options", "Invalid type for 'options': expected an object of Ollama model options, but got %s instead.", kind(v))
	}
	if v := ext.keepAlive; v != nil && v[0] != '"' && v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return ext, domain.Invalid("keep_alive", "Invalid type for 'keep_alive': expected a duration string or a number of seconds, but got %s instead.", kind(v))
	}
	if v := ext.think; v != nil && v[0] != '"' && v[0] != 't' && v[0] != 'f' {
		return ext, domain.Invalid("think", "Invalid type for 'think': expected a boolean or a level ('low', 'medium', 'high'), but got %s instead.", kind(v))
	}
	ext.options = compact(ext.options)
	return ext, nil
}

func kind(v []byte) string {
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

func compact(v json.RawMessage) json.RawMessage {
	if v == nil {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}
