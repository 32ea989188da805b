// Package wire is what the inbound OpenAI adapter and the outbound backend
// clients share of OpenAI-style wire formats: JSON string encoding, the ids
// OpenAI's objects carry, and the client's request as it travels opaque
// through the domain to backends that forward it.
package wire

import (
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// MaxChoices caps n (choices per request), as OpenAI does; a backend's
// choice index at or beyond it is refused as a protocol error.
const MaxChoices = 128

// NewToolCallID returns a fresh tool call id, call_ and 26 random characters.
func NewToolCallID() string { return RandomText("call_") }

const base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// RandomText returns prefix and 26 random base32 characters (130 bits) from
// the runtime's per-thread generator: unique for ids, cheap on the request
// path, not meant as a secret.
func RandomText(prefix string) string {
	b := make([]byte, len(prefix)+26)
	copy(b, prefix)
	tail := b[len(prefix):]
	for i := 0; i < len(tail); i += 12 {
		r := rand.Uint64()
		for j := i; j < i+12 && j < len(tail); j++ {
			tail[j] = base32[r&31]
			r >>= 5
		}
	}
	return string(b)
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string, byte for byte as an
// encoding/json Encoder told SetEscapeHTML(false) writes it: invalid UTF-8
// becomes U+FFFD, control characters, U+2028 and U+2029 are escaped, HTML
// characters are left alone.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendStringHTML is AppendString with <, > and & escaped too, as
// json.Marshal writes strings. Those three stand in AppendString's output
// only as themselves (its escapes are letters and hex digits), so they
// are replaced there.
func AppendStringHTML(b []byte, s string) []byte {
	if !strings.ContainsAny(s, "<>&") {
		return AppendString(b, s)
	}
	for _, c := range []byte(AppendString(nil, s)) {
		switch c {
		case '<', '>', '&':
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}

// ChatBody is the body of a client's POST /v1/chat/completions, as the
// inbound adapter received and validated it. It travels through the domain
// as domain.ChatRequest.Passthrough: an OpenAI-compatible backend forwards
// it with only the model rewritten, so fields this service does not model
// still arrive; Ollama reads its own settings (options, keep_alive, think)
// from it.
type ChatBody []byte

// CompletionBody is the body of a client's POST /v1/completions, carried
// like ChatBody.
type CompletionBody []byte

// EmbeddingsBody is the body of a client's POST /v1/embeddings, carried
// like ChatBody.
type EmbeddingsBody []byte

// ResponsesBody is a client's POST /v1/responses as it travels through the
// domain: the body it sent, and the conversation's whole input (the items
// of the turns previous_response_id names, then this request's own) as a
// JSON array of Responses input items. A backend speaking the Responses
// API forwards Raw with Input in place of its input; one speaking chat
// completions works from the domain request instead.
type ResponsesBody struct {
	Raw   []byte
	Input []byte
}
