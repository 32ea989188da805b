package openai

import (
	"strconv"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// What the service validates must be what a backend receives. encoding/json
// matches keys without regard to case and keeps the last of duplicates, while
// the body goes to an OpenAI-compatible backend as sent, and that backend
// (Python, Node) matches keys exactly and may keep the first: with
// {"stream":true,"Stream":false} the two would read different requests. So
// in the objects this service reads, a key it interprets may appear once,
// and only in its exact spelling; everything else passes untouched.

// shape lists the keys the service reads in an object, with the shape of
// each value it reads into (nil: not looked into). A shape applies to an
// object value, and to each object element of an array value.
type shape map[string]shape

var (
	functionShape = shape{"name": nil, "arguments": nil}
	toolCallShape = shape{"id": nil, "type": nil, "function": functionShape}
	partShape     = shape{"type": nil, "text": nil, "refusal": nil, "image_url": {"url": nil, "detail": nil}}
	messageShape  = shape{
		"role": nil, "content": partShape, "name": nil, "tool_call_id": nil,
		"tool_calls": toolCallShape, "function_call": functionShape,
	}
	functionDefShape = shape{"name": nil, "description": nil, "parameters": nil, "strict": nil}

	// chatShape is CreateChatCompletionRequest as requestWire reads it.
	chatShape = shape{
		"model": nil, "messages": messageShape, "stream": nil, "stream_options": {"include_usage": nil},
		"temperature": nil, "top_p": nil, "max_tokens": nil, "max_completion_tokens": nil, "stop": nil,
		"seed": nil, "presence_penalty": nil, "frequency_penalty": nil, "user": nil, "n": nil,
		"logprobs": nil, "top_logprobs": nil,
		"tools":       {"type": nil, "function": functionDefShape},
		"tool_choice": {"type": nil, "name": nil, "function": {"name": nil}},
		"functions":   functionDefShape, "function_call": {"name": nil}, "parallel_tool_calls": nil,
		"response_format":  {"type": nil, "json_schema": {"name": nil, "schema": nil, "strict": nil}},
		"reasoning_effort": nil, "logit_bias": nil, "modalities": nil, "audio": nil, "prediction": nil,
		"web_search_options": nil,
		// Ollama's own settings, which the Ollama backend reads from the body.
		"options": nil, "keep_alive": nil, "think": nil,
	}
)

// checkKeys refuses, in the objects of body that shape describes, a key
// the service interprets that appears twice or in another case. body is
// valid JSON (checked before).
func checkKeys(body []byte, s shape) error {
	var sc jsonscan.Scanner
	sc.Reset(body)
	var bad error
	walkShape(&sc, s, "", &bad)
	return bad
}

// walkShape consumes the value at the cursor, checking it against s; it
// returns false to stop (bad is set, or the JSON ended early).
func walkShape(sc *jsonscan.Scanner, s shape, path string, bad *error) bool {
	switch sc.Peek() {
	case '[':
		i := 0
		return sc.Array(func() bool {
			ok := walkShape(sc, s, path+"["+strconv.Itoa(i)+"]", bad)
			i++
			return ok
		})
	case '{':
	default:
		return sc.Skip()
	}
	// The interpreted keys met so far. No shape has 64 keys, so a key met
	// when the array is full is a repeat, and is found as one.
	var seen [64]string
	n := 0
	return sc.Members(func(raw []byte, _ int) bool {
		inner, known := s[string(raw)]
		if known {
			for _, k := range seen[:min(n, len(seen))] {
				if k == string(raw) {
					*bad = domain.Invalid(join(path, k), "Duplicate key '%s': each key may appear once in a JSON object.", join(path, k))
					return false
				}
			}
			if n < len(seen) {
				seen[n] = string(raw)
			}
			n++
			if inner != nil {
				return walkShape(sc, inner, join(path, string(raw)), bad)
			}
			return sc.Skip()
		}
		for name := range s {
			if strings.EqualFold(string(raw), name) {
				*bad = domain.Invalid(join(path, string(raw)), "Unrecognized key '%s': keys are case-sensitive; did you mean '%s'?",
					join(path, string(raw)), join(path, name))
				return false
			}
		}
		return sc.Skip()
	})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
