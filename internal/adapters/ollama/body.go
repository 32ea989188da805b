package ollama

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// The request bodies of /api/chat and /api/generate, written without
// reflection into one buffer: byte for byte what encoding/json's Encoder
// writes with SetEscapeHTML(false) (HTML characters left as the client
// wrote them), newline included. Tests hold the two to the same bytes.

// encodeChat writes an /api/chat body as sent.
func encodeChat(r *ChatRequest) ([]byte, error) {
	n := 160 + len(r.Model) + len(r.Format) + len(r.Options) + len(r.KeepAlive) + len(r.Think)
	for i := range r.Messages {
		m := &r.Messages[i]
		n += 48 + len(m.Role) + len(m.Content) + len(m.Thinking) + len(m.ToolName)
		for _, im := range m.Images {
			n += 3 + len(im)
		}
		for _, tc := range m.ToolCalls {
			n += 48 + len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	for _, t := range r.Tools {
		n += 64 + len(t.Type) + len(t.Function.Name) + len(t.Function.Description) + len(t.Function.Parameters)
	}
	return appendChat(make([]byte, 0, n+n/8), r)
}

func appendChat(b []byte, r *ChatRequest) (_ []byte, err error) {
	b = append(b, `{"model":`...)
	b = wire.AppendString(b, r.Model)
	b = append(b, `,"messages":`...)
	if r.Messages == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Messages {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendMessage(b, &r.Messages[i]); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if len(r.Tools) > 0 {
		b = append(b, `,"tools":[`...)
		for i := range r.Tools {
			t := &r.Tools[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = wire.AppendString(b, t.Type)
			b = append(b, `,"function":{"name":`...)
			b = wire.AppendString(b, t.Function.Name)
			if t.Function.Description != "" {
				b = append(b, `,"description":`...)
				b = wire.AppendString(b, t.Function.Description)
			}
			if b, err = appendRawMember(b, `,"parameters":`, t.Function.Parameters); err != nil {
				return nil, err
			}
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	if b, err = appendRawMember(b, `,"format":`, r.Format); err != nil {
		return nil, err
	}
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, r.Stream)
	if b, err = appendSettings(b, r.Options, r.KeepAlive, r.Think, r.Logprobs, r.TopLogprobs); err != nil {
		return nil, err
	}
	return append(b, "}\n"...), nil
}

func appendMessage(b []byte, m *Message) (_ []byte, err error) {
	b = append(b, `{"role":`...)
	b = wire.AppendString(b, m.Role)
	b = append(b, `,"content":`...)
	b = wire.AppendString(b, m.Content)
	if m.Thinking != "" {
		b = append(b, `,"thinking":`...)
		b = wire.AppendString(b, m.Thinking)
	}
	if len(m.Images) > 0 {
		b = append(b, `,"images":[`...)
		for i, im := range m.Images {
			if i > 0 {
				b = append(b, ',')
			}
			b = wire.AppendString(b, im)
		}
		b = append(b, ']')
	}
	if len(m.ToolCalls) > 0 {
		b = append(b, `,"tool_calls":[`...)
		for i := range m.ToolCalls {
			f := &m.ToolCalls[i].Function
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"function":{`...)
			if f.Index != nil {
				b = append(b, `"index":`...)
				b = strconv.AppendInt(b, int64(*f.Index), 10)
				b = append(b, ',')
			}
			b = append(b, `"name":`...)
			b = wire.AppendString(b, f.Name)
			b = append(b, `,"arguments":`...)
			if b, err = appendRaw(b, f.Arguments); err != nil {
				return nil, err
			}
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	if m.ToolName != "" {
		b = append(b, `,"tool_name":`...)
		b = wire.AppendString(b, m.ToolName)
	}
	return append(b, '}'), nil
}

// encodeGenerate writes an /api/generate body as sent.
func encodeGenerate(r *GenerateRequest) ([]byte, error) {
	n := 160 + len(r.Model) + len(r.Prompt) + len(r.Suffix) + len(r.Options) + len(r.KeepAlive) + len(r.Think)
	b := make([]byte, 0, n+n/8)
	b = append(b, `{"model":`...)
	b = wire.AppendString(b, r.Model)
	b = append(b, `,"prompt":`...)
	b = wire.AppendString(b, r.Prompt)
	if r.Suffix != "" {
		b = append(b, `,"suffix":`...)
		b = wire.AppendString(b, r.Suffix)
	}
	if r.Raw {
		b = append(b, `,"raw":true`...)
	}
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, r.Stream)
	b, err := appendSettings(b, r.Options, r.KeepAlive, r.Think, r.Logprobs, r.TopLogprobs)
	if err != nil {
		return nil, err
	}
	return append(b, "}\n"...), nil
}

// appendSettings writes the members both bodies end with.
func appendSettings(b []byte, options, keepAlive, think json.RawMessage, logprobs bool, top int) (_ []byte, err error) {
	if b, err = appendRawMember(b, `,"options":`, options); err != nil {
		return nil, err
	}
	if b, err = appendRawMember(b, `,"keep_alive":`, keepAlive); err != nil {
		return nil, err
	}
	if b, err = appendRawMember(b, `,"think":`, think); err != nil {
		return nil, err
	}
	if logprobs {
		b = append(b, `,"logprobs":true`...)
	}
	if top != 0 {
		b = append(b, `,"top_logprobs":`...)
		b = strconv.AppendInt(b, int64(top), 10)
	}
	return b, nil
}

// appendRawMember writes an omitempty json.RawMessage member: nothing when
// it is empty.
func appendRawMember(b []byte, key string, raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return b, nil
	}
	return appendRaw(append(b, key...), raw)
}

// appendRaw writes a json.RawMessage as encoding/json does: null when nil,
// else compacted, and an error when it is not JSON.
func appendRaw(b []byte, raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return append(b, "null"...), nil
	}
	if bytes.IndexAny(raw, " \t\r\n") < 0 && json.Valid(raw) {
		return append(b, raw...), nil // compact already
	}
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		return nil, err
	}
	return append(b, c.Bytes()...), nil
}

// appendFloat writes f as encoding/json does; NaN and the infinities,
// which it refuses, as null.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 is written e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// optionSet is the options object of a request: the client's own options
// (extra_body), the OpenAI sampling fields it sent (those win) and the
// configured num_ctx (unless the client set one).
type optionSet struct {
	client map[string]json.RawMessage // nil when the client sent none
	s      domain.Sampling
	numCtx int // 0: none
}

// empty reports whether the object, with seed, has no member: it is then
// left out.
func (o *optionSet) empty(seed *int64) bool {
	s := &o.s
	return len(o.client) == 0 && o.numCtx == 0 && s.Temperature == nil && s.TopP == nil && s.MaxTokens == nil &&
		len(s.Stop) == 0 && seed == nil && s.PresencePenalty == nil && s.FrequencyPenalty == nil
}

// merged returns the options as one map, seed replaced when given.
func (o *optionSet) merged(seed *int64) map[string]json.RawMessage {
	opts := make(map[string]json.RawMessage, len(o.client)+8)
	for k, v := range o.client {
		opts[k] = v
	}
	set := func(key string, v any) {
		b, _ := json.Marshal(v)
		opts[key] = b
	}
	s := &o.s
	if s.Temperature != nil {
		set("temperature", *s.Temperature)
	}
	if s.TopP != nil {
		set("top_p", *s.TopP)
	}
	if s.MaxTokens != nil {
		set("num_predict", *s.MaxTokens)
	}
	if len(s.Stop) > 0 {
		set("stop", s.Stop)
	}
	if seed == nil {
		seed = s.Seed
	}
	if seed != nil {
		set("seed", *seed)
	}
	if s.PresencePenalty != nil {
		set("presence_penalty", *s.PresencePenalty)
	}
	if s.FrequencyPenalty != nil {
		set("frequency_penalty", *s.FrequencyPenalty)
	}
	if o.numCtx > 0 {
		set("num_ctx", o.numCtx)
	}
	return opts
}

// json returns the options object as json.Marshal writes the merged map
// (keys sorted, HTML characters escaped), seed replaced when given; nil
// when it is empty.
func (o *optionSet) json(seed *int64) json.RawMessage {
	s := &o.s
	if seed == nil {
		seed = s.Seed
	}
	if o.empty(seed) {
		return nil
	}
	if len(o.client) > 0 {
		b, _ := json.Marshal(o.merged(seed))
		return b
	}
	// Only the sampling fields and num_ctx: written in key order directly.
	b := make([]byte, 0, 128)
	sep := byte('{')
	key := func(k string) {
		b = append(b, sep, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		sep = ','
	}
	if s.FrequencyPenalty != nil {
		key("frequency_penalty")
		b = appendFloat(b, *s.FrequencyPenalty)
	}
	if o.numCtx > 0 {
		key("num_ctx")
		b = strconv.AppendInt(b, int64(o.numCtx), 10)
	}
	if s.MaxTokens != nil {
		key("num_predict")
		b = strconv.AppendInt(b, int64(*s.MaxTokens), 10)
	}
	if s.PresencePenalty != nil {
		key("presence_penalty")
		b = appendFloat(b, *s.PresencePenalty)
	}
	if seed != nil {
		key("seed")
		b = strconv.AppendInt(b, *seed, 10)
	}
	if len(s.Stop) > 0 {
		key("stop")
		for i, stop := range s.Stop {
			if i == 0 {
				b = append(b, '[')
			} else {
				b = append(b, ',')
			}
			b = wire.AppendStringHTML(b, stop)
		}
		b = append(b, ']')
	}
	if s.Temperature != nil {
		key("temperature")
		b = appendFloat(b, *s.Temperature)
	}
	if s.TopP != nil {
		key("top_p")
		b = appendFloat(b, *s.TopP)
	}
	return append(b, '}')
}
