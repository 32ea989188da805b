package openai

import (
	"encoding/json"
	"strconv"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
)

// The fast path of DecodeChatRequest: most requests (chat UIs, SDK calls
// without tools) hold only a model, plain messages, stream settings and
// sampling numbers. For those, one pass of jsonscan fills the same wire
// structs encoding/json would, and checks the key rules checkKeys would;
// the same validation then runs on them. Anything else (tools, content
// parts, a null, an escaped or case-variant key, a number encoding/json
// would read differently) is left to encoding/json and checkKeys: the fast
// path reports false and has changed nothing that matters. The fuzz test
// FuzzChatFastPath holds the two to the same results.

// Top-level keys the fast path reads, each a bit of a seen-set.
const (
	fkModel = 1 << iota
	fkMessages
	fkStream
	fkStreamOptions
	fkTemperature
	fkTopP
	fkMaxTokens
	fkMaxCompletionTokens
	fkSeed
	fkPresencePenalty
	fkFrequencyPenalty
	fkUser
	fkN
	fkPromptCacheKey
)

var fastKeys = map[string]uint32{
	"model": fkModel, "messages": fkMessages, "stream": fkStream, "stream_options": fkStreamOptions,
	"temperature": fkTemperature, "top_p": fkTopP, "max_tokens": fkMaxTokens,
	"max_completion_tokens": fkMaxCompletionTokens, "seed": fkSeed, "presence_penalty": fkPresencePenalty,
	"frequency_penalty": fkFrequencyPenalty, "user": fkUser, "n": fkN, "prompt_cache_key": fkPromptCacheKey,
}

// chatKeyNames are the top-level keys the service interprets (chatShape's,
// and prompt_cache_key): an unknown key that matches one of them but for
// case is encoding/json's to read, so the fast path gives up.
var chatKeyNames = func() []string {
	out := []string{"prompt_cache_key"}
	for k := range chatShape {
		out = append(out, k)
	}
	return out
}()

var messageKeyNames = func() []string {
	out := make([]string, 0, len(messageShape))
	for k := range messageShape {
		out = append(out, k)
	}
	return out
}()

// fastChat fills w, and msgs with each message's wire form, when body is
// an object of the common fields only; see above.
func fastChat(body []byte, w *requestWire, msgs *[]messageWire) bool {
	var s jsonscan.Scanner
	s.Reset(body)
	var seen uint32
	ok := s.Object(func(key []byte) bool {
		bit, known := fastKeys[string(key)]
		if !known {
			if jsonscan.FoldsTo(key, chatKeyNames...) {
				return false
			}
			if _, interpreted := chatShape[string(key)]; interpreted {
				return false // tools, response_format, …: the full path
			}
			return s.Skip()
		}
		if seen&bit != 0 {
			return false // a repeat: checkKeys names it
		}
		seen |= bit
		switch bit {
		case fkModel:
			raw, ok := rawStringValue(&s, body)
			w.Model = raw
			return ok
		case fkMessages:
			return fastMessages(&s, body, w, msgs)
		case fkStream:
			v, ok := s.Bool()
			w.Stream = &v
			return ok
		case fkStreamOptions:
			var o streamOptions
			w.StreamOptions = &o
			inner := false
			return s.Object(func(key []byte) bool {
				if string(key) != "include_usage" {
					return false
				}
				if inner {
					return false
				}
				inner = true
				v, ok := s.Bool()
				o.IncludeUsage = &v
				return ok
			})
		case fkTemperature:
			return fastFloat(&s, body, &w.Temperature)
		case fkTopP:
			return fastFloat(&s, body, &w.TopP)
		case fkPresencePenalty:
			return fastFloat(&s, body, &w.PresencePenalty)
		case fkFrequencyPenalty:
			return fastFloat(&s, body, &w.FrequencyPenalty)
		case fkMaxTokens:
			return fastInt(&s, &w.MaxTokens)
		case fkMaxCompletionTokens:
			return fastInt(&s, &w.MaxCompletionTokens)
		case fkN:
			return fastInt(&s, &w.N)
		case fkSeed:
			var n *int
			if !fastInt(&s, &n) {
				return false
			}
			v := int64(*n)
			w.Seed = &v
			return true
		case fkUser:
			return fastString(&s, &w.User)
		case fkPromptCacheKey:
			return fastString(&s, &w.PromptCacheKey)
		}
		return false
	})
	return ok && s.Done()
}

// fastMessages reads the messages array: objects of role, content (a
// string), name and tool_call_id only.
func fastMessages(s *jsonscan.Scanner, body []byte, w *requestWire, msgs *[]messageWire) bool {
	raws := make([]json.RawMessage, 0, 8)
	wires := make([]messageWire, 0, 8)
	ok := s.Array(func() bool {
		if s.Peek() != '{' {
			return false
		}
		start := s.Pos()
		var m messageWire
		var seen uint8
		ok := s.Object(func(key []byte) bool {
			var bit uint8
			switch string(key) {
			case "role":
				bit = 1
			case "content":
				bit = 2
			case "name":
				bit = 4
			case "tool_call_id":
				bit = 8
			default:
				if jsonscan.FoldsTo(key, messageKeyNames...) {
					return false
				}
				if _, interpreted := messageShape[string(key)]; interpreted {
					return false // tool_calls, function_call
				}
				return s.Skip()
			}
			if seen&bit != 0 {
				return false
			}
			seen |= bit
			switch bit {
			case 1:
				return fastString(s, &m.Role)
			case 2:
				raw, ok := rawStringValue(s, body)
				m.Content = raw
				return ok
			case 4:
				return fastString(s, &m.Name)
			default:
				return fastString(s, &m.ToolCallID)
			}
		})
		if !ok {
			return false
		}
		raws = append(raws, body[start:s.Pos()])
		wires = append(wires, m)
		return true
	})
	if !ok {
		return false
	}
	w.Messages, *msgs = raws, wires
	return true
}

// rawStringValue returns the string at the cursor as its JSON text
// (quotes included), a part of body; not a string (null included): false.
func rawStringValue(s *jsonscan.Scanner, body []byte) (json.RawMessage, bool) {
	if s.Peek() != '"' {
		return nil, false
	}
	start := s.Pos()
	if !s.Skip() {
		return nil, false
	}
	return body[start:s.Pos()], true
}

func fastString(s *jsonscan.Scanner, dst **string) bool {
	if s.Peek() != '"' {
		return false // null, or not a string: encoding/json decides
	}
	v, ok := s.String()
	*dst = &v
	return ok
}

// fastFloat reads a number as encoding/json reads one into a float64;
// one out of its range is encoding/json's to refuse.
func fastFloat(s *jsonscan.Scanner, body []byte, dst **float64) bool {
	if c := s.Peek(); c != '-' && (c < '0' || c > '9') {
		return false
	}
	start := s.Pos()
	if !s.Skip() {
		return false
	}
	v, err := strconv.ParseFloat(string(body[start:s.Pos()]), 64)
	*dst = &v
	return err == nil
}

// fastInt reads a small non-negative integer; anything else (negative,
// fraction, exponent, large) is encoding/json's to judge.
func fastInt(s *jsonscan.Scanner, dst **int) bool {
	v, ok := s.Int()
	*dst = &v
	return ok
}
