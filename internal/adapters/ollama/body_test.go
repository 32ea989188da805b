package ollama

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// encodingJSON is what encoding/json's Encoder writes of v, HTML
// characters left alone: the reference of the body writers.
func encodingJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return b.Bytes(), err
}

// FuzzRequestBody holds the body writers and the options writer to
// encoding/json, byte for byte, whatever the strings (invalid UTF-8,
// control and HTML characters, U+2028), raw JSON and numbers.
func FuzzRequestBody(f *testing.F) {
	f.Add("qwen3:8b", "Say <b>hi</b> & \u2028 \x01\"\\\n\b\f\xff", []byte(`{"type": "object", "properties": {}}`), 0.7, 1e-7, int64(42), uint16(0xffff))
	f.Add("m", "", []byte(`"json"`), math.Inf(1), -0.0, int64(-3), uint16(0x5555))
	f.Add("m", "é", []byte(``), 1e21, 123456789.125, int64(0), uint16(0xaaaa))
	f.Add("m", "x", []byte(`{"a":[1, 2]`), 5e-324, 1e300, int64(1<<40), uint16(0x0f0f))
	f.Add("m", "x", []byte(`{"num_ctx":8,"seed":1,"stop":["<x>"] , "mirostat" : 2}`), 0.0, 2.0, int64(7), uint16(0xf0f0))
	f.Add("0", "0", []byte("0"), 1e21, 1.23456810125e8, int64(88), uint16(0xaa00)) // a seed override alone
	f.Fuzz(func(t *testing.T, a, b string, raw []byte, f1, f2 float64, n int64, flags uint16) {
		on := func(bit int) bool { return flags&(1<<bit) != 0 }
		rawOr := func(bit int) json.RawMessage {
			if on(bit) {
				return raw
			}
			return nil
		}
		idx := int(n % 1000)
		maxTokens := int(n)
		s := domain.Sampling{}
		if on(0) {
			s.Temperature = &f1
		}
		if on(1) {
			s.TopP = &f2
		}
		if on(2) {
			s.MaxTokens = &maxTokens
		}
		if on(3) {
			s.Stop = []string{a, b}
		}
		if on(4) {
			s.Seed = &n
		}
		if on(5) {
			s.PresencePenalty = &f2
		}
		if on(6) {
			s.FrequencyPenalty = &f1
		}
		o := optionSet{s: s}
		if on(7) {
			o.numCtx = int(n & 0xffff)
		}
		if on(8) && json.Unmarshal(raw, &o.client) != nil {
			o.client = nil
		}
		var seed *int64
		if on(9) {
			next := n + 1
			seed = &next
		}
		opts := o.json(seed)
		if merged := o.merged(seed); len(merged) == 0 {
			if opts != nil {
				t.Fatalf("empty options written as %s", opts)
			}
		} else if want, _ := json.Marshal(merged); !bytes.Equal(opts, want) {
			t.Fatalf("options:\nwant %s\ngot  %s", want, opts)
		}

		call := ToolCall{}
		call.Function.Name = b
		call.Function.Arguments = raw
		if on(10) {
			call.Function.Index = &idx
		}
		msg := Message{Role: a, Content: b, ToolName: a}
		if on(11) {
			msg.Thinking, msg.Images, msg.ToolCalls = a, []string{a, b}, []ToolCall{call}
		}
		chat := ChatRequest{Model: a, Messages: []Message{msg, {Role: b}}, Format: rawOr(12), Stream: on(13), Options: opts,
			KeepAlive: rawOr(14), Think: rawOr(15), Logprobs: on(13), TopLogprobs: idx}
		if on(12) {
			chat.Tools = []Tool{{Type: "function", Function: ToolFunction{Name: a, Description: b, Parameters: raw}}}
		}
		if on(14) {
			chat.Messages = nil
		}
		got, err := encodeChat(&chat)
		want, werr := encodingJSON(chat)
		if (err != nil) != (werr != nil) || err == nil && !bytes.Equal(got, want) {
			t.Fatalf("chat body:\nwant %s (%v)\ngot  %s (%v)", want, werr, got, err)
		}

		gen := GenerateRequest{Model: a, Prompt: b, Suffix: a, Raw: on(11), Stream: on(13), Options: opts,
			KeepAlive: rawOr(14), Think: rawOr(15), Logprobs: on(12), TopLogprobs: idx}
		got, err = encodeGenerate(&gen)
		want, werr = encodingJSON(gen)
		if (err != nil) != (werr != nil) || err == nil && !bytes.Equal(got, want) {
			t.Fatalf("generate body:\nwant %s (%v)\ngot  %s (%v)", want, werr, got, err)
		}
	})
}
