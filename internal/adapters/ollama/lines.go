package ollama

import (
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// lineScan reads the lines of /api/chat and /api/generate streams without
// reflection: the fast path of both readers. It gives up (false) on
// whatever it does not expect, and encoding/json reads the line instead;
// fuzz tests hold the two to the same results.
//
// A line costs one allocation for all its strings (content, thinking,
// done_reason and the tokens of its log probabilities, which share one
// string) and, with log probabilities, one each for the tokens, their
// alternatives and their bytes. The scratch space is kept from line to
// line; nothing handed out points into it or into the line.
type lineScan struct {
	s     jsonscan.Scanner
	text  []byte   // the line's strings, back to back
	bytes []byte   // the tokens' bytes, back to back
	toks  []tokRef // the line's log probabilities
	tops  []tokRef // their alternatives, token after token
	seen  bool     // the line's logprobs key was read
}

// span is a string of a line: text[at:end]. The zero span is "".
type span struct{ at, end int }

// byteSpan is a token's bytes: nil, none ([]), or bytes[at:end].
type byteSpan struct {
	at, end int
	state   uint8 // bytesNil, bytesEmpty or bytesSet
}

const (
	bytesNil = iota
	bytesEmpty
	bytesSet
)

// tokRef is a token's log probability as read, before its strings and
// bytes are allocated; top is its alternatives, tops[topAt:topEnd].
type tokRef struct {
	token         span
	logprob       float64
	bytes         byteSpan
	topAt, topEnd int
	topSeen       bool // its top_logprobs key was read
}

func (l *lineScan) reset(line []byte) {
	l.s.Reset(line)
	l.text = l.text[:0]
	l.bytes = l.bytes[:0]
	l.toks = l.toks[:0]
	l.tops = l.tops[:0]
	l.seen = false
}

// str reads a string into the line's text. A null leaves dst as it was,
// as encoding/json leaves the field.
func (l *lineScan) str(dst *span) bool {
	if l.s.Null() {
		return true
	}
	at := len(l.text)
	var ok bool
	if l.text, ok = l.s.AppendString(l.text); !ok {
		return false
	}
	*dst = span{at, len(l.text)}
	return true
}

// count reads a token count: a null leaves it as it was; a negative,
// fractional or huge number is left to encoding/json.
func (l *lineScan) count(dst *int) bool {
	if l.s.Null() {
		return true
	}
	n, ok := l.s.Int()
	if ok {
		*dst = n
	}
	return ok
}

// logprobs reads a line's logprobs: null, or an array of token objects.
// A second logprobs key is left to encoding/json, which would read it into
// the first one's elements.
func (l *lineScan) logprobs() bool {
	if l.seen {
		return false
	}
	l.seen = true
	if l.s.Null() {
		return true
	}
	return l.s.Array(func() bool {
		var t tokRef
		if !l.token(&t) {
			return false
		}
		l.toks = append(l.toks, t)
		return true
	})
}

// token reads one token object: Ollama's api.Logprob.
func (l *lineScan) token(t *tokRef) bool {
	return l.s.Object(func(key []byte) bool {
		if string(key) != "top_logprobs" {
			return l.tokenMember(t, key, true)
		}
		// A second list would be read into the first one's elements by
		// encoding/json: left to it.
		if t.topSeen {
			return false
		}
		t.topSeen = true
		if l.s.Null() {
			return true
		}
		t.topAt = len(l.tops)
		ok := l.s.Array(func() bool {
			var alt tokRef
			if !l.s.Object(func(key []byte) bool { return l.tokenMember(&alt, key, false) }) {
				return false
			}
			l.tops = append(l.tops, alt)
			return true
		})
		t.topEnd = len(l.tops)
		return ok
	})
}

// tokenMember reads a member of a token object other than top_logprobs,
// which a token has (hasTop) and an alternative does not.
func (l *lineScan) tokenMember(t *tokRef, key []byte, hasTop bool) bool {
	switch string(key) {
	case "token":
		return l.str(&t.token)
	case "logprob":
		if l.s.Null() {
			return true
		}
		f, ok := l.s.Float64()
		if ok {
			t.logprob = f
		}
		return ok
	case "bytes":
		return l.tokenBytes(&t.bytes)
	}
	if jsonscan.FoldsTo(key, "token", "logprob", "bytes") || hasTop && jsonscan.FoldsTo(key, "top_logprobs") {
		return false
	}
	return l.s.Skip()
}

// tokenBytes reads a token's bytes: null, or an array of byte values
// (taken modulo 256, as byteList does).
func (l *lineScan) tokenBytes(dst *byteSpan) bool {
	if l.s.Null() {
		*dst = byteSpan{}
		return true
	}
	at := len(l.bytes)
	ok := l.s.Array(func() bool {
		n, ok := l.s.Int()
		l.bytes = append(l.bytes, byte(n))
		return ok
	})
	if !ok {
		return false
	}
	*dst = byteSpan{at: at, end: len(l.bytes), state: bytesSet}
	if at == len(l.bytes) {
		dst.state = bytesEmpty
	}
	return true
}

// emptyBytes is a token's bytes when Ollama sent an empty list.
var emptyBytes = []byte{}

// finish allocates what the line read: its text as one string (returned,
// for the caller's spans) and its log probabilities (nil for none).
func (l *lineScan) finish() (string, []domain.TokenLogprob) {
	text := string(l.text)
	if len(l.toks) == 0 {
		return text, nil
	}
	var bs []byte
	if len(l.bytes) > 0 {
		bs = make([]byte, len(l.bytes))
		copy(bs, l.bytes)
	}
	bytesOf := func(b byteSpan) []byte {
		switch b.state {
		case bytesEmpty:
			return emptyBytes
		case bytesSet:
			return bs[b.at:b.end:b.end]
		}
		return nil
	}
	var tops []domain.TopLogprob
	if len(l.tops) > 0 {
		tops = make([]domain.TopLogprob, len(l.tops))
		for i, t := range l.tops {
			tops[i] = domain.TopLogprob{Token: text[t.token.at:t.token.end], Logprob: t.logprob, Bytes: bytesOf(t.bytes)}
		}
	}
	out := make([]domain.TokenLogprob, len(l.toks))
	for i, t := range l.toks {
		out[i] = domain.TokenLogprob{Token: text[t.token.at:t.token.end], Logprob: t.logprob, Bytes: bytesOf(t.bytes)}
		if t.topEnd > t.topAt {
			out[i].Top = tops[t.topAt:t.topEnd:t.topEnd]
		}
	}
	return text, out
}

// chat reads an /api/chat line into resp: one that carries text, thinking
// or log probabilities, the last one (done) included. Tool calls, images,
// errors and unexpected JSON are left to encoding/json. An unknown key is
// skipped, so every key chatResponse reads must be named here, and its
// case-folded spellings too, or the fast path would drop it.
func (l *lineScan) chat(line []byte, resp *chatResponse) bool {
	l.reset(line)
	var content, thinking, reason span
	ok := l.s.Object(func(key []byte) bool {
		switch string(key) {
		case "message":
			if l.s.Null() {
				return true
			}
			return l.s.Object(func(key []byte) bool {
				switch string(key) {
				case "role":
					return l.s.Skip()
				case "content":
					return l.str(&content)
				case "thinking":
					return l.str(&thinking)
				}
				return false // tool_calls, images, anything new: not here
			})
		case "done":
			return l.done(&resp.Done)
		case "done_reason":
			return l.str(&reason)
		case "prompt_eval_count":
			return l.count(&resp.PromptEvalCount)
		case "eval_count":
			return l.count(&resp.EvalCount)
		case "logprobs":
			return l.logprobs()
		case "error":
			return false
		}
		if jsonscan.FoldsTo(key, "message", "done", "done_reason", "prompt_eval_count", "eval_count", "logprobs", "error") {
			return false
		}
		return l.s.Skip()
	})
	if !ok || !l.s.Done() {
		return false
	}
	text, lps := l.finish()
	resp.Message.Content = text[content.at:content.end]
	resp.Message.Thinking = text[thinking.at:thinking.end]
	resp.DoneReason = text[reason.at:reason.end]
	resp.lps = lps
	return true
}

// generate reads an /api/generate line into resp, as chat does an
// /api/chat line. Thinking is skipped: a legacy completion has no place
// for it.
func (l *lineScan) generate(line []byte, resp *generateResponse) bool {
	l.reset(line)
	var response, reason span
	ok := l.s.Object(func(key []byte) bool {
		switch string(key) {
		case "response":
			return l.str(&response)
		case "done":
			return l.done(&resp.Done)
		case "done_reason":
			return l.str(&reason)
		case "prompt_eval_count":
			return l.count(&resp.PromptEvalCount)
		case "eval_count":
			return l.count(&resp.EvalCount)
		case "logprobs":
			return l.logprobs()
		case "error":
			return false
		}
		if jsonscan.FoldsTo(key, "response", "done", "done_reason", "prompt_eval_count", "eval_count", "logprobs", "error") {
			return false
		}
		return l.s.Skip()
	})
	if !ok || !l.s.Done() {
		return false
	}
	text, lps := l.finish()
	resp.Response = text[response.at:response.end]
	resp.DoneReason = text[reason.at:reason.end]
	resp.lps = lps
	return true
}

// done reads the done flag; a null leaves it as it was.
func (l *lineScan) done(dst *bool) bool {
	if l.s.Null() {
		return true
	}
	v, ok := l.s.Bool()
	if ok {
		*dst = v
	}
	return ok
}
