package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

var _ ports.TextBackend = (*Client)(nil)

// Complete forwards a legacy text completion request (POST /completions)
// and relays the answer's text_completion frames as chunks, one per choice
// a frame carries. Like Chat, the upstream is always asked to stream, with
// usage: a buffered request is assembled by the caller, so the first-byte
// timeout bounds the wait for the first token only.
func (c *Client) Complete(ctx context.Context, req domain.TextRequest, out ports.Sink[domain.TextChunk]) error {
	raw, ok := req.Passthrough.(wire.CompletionBody)
	if !ok {
		return domain.Invalid("", "This backend forwards text completion requests only.")
	}
	body, err := RewriteBody(raw, req.Model)
	if err != nil {
		return err
	}
	call, err := c.call.Do(ctx, http.MethodPost, "completions", body)
	if err != nil {
		return err
	}
	defer call.Close()
	r := sseReader{backend: c.call.Name(), frame: call.Started, fail: call.Fail, where: call.Where()}
	return call.End(r.relayText(call.Body(out.Flush), out, textChoices(req)))
}

// textChoices is how many choices a text completion has: n for each
// prompt, choice p*n+k being completion k of prompt p. A choice index at or
// beyond it is a protocol error (it would make the caller's assembler grow
// without bound).
func textChoices(req domain.TextRequest) int {
	return max(len(req.Prompts), 1) * max(req.N, 1)
}

// textChunkWire is one text_completion frame of a stream. As in chunkWire,
// absent and empty strings mean the same.
type textChunkWire struct {
	Choices []struct {
		Index        int               `json:"index"`
		Text         string            `json:"text"`
		Logprobs     *textLogprobsWire `json:"logprobs"`
		FinishReason string            `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageWire    `json:"usage"`
	Error rawUnlessNull `json:"error"`
}

// textLogprobsWire is a text completion choice's logprobs: parallel lists,
// one entry per token of its text. The first token of an echoed prompt has
// a null log probability and null alternatives.
type textLogprobsWire struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []*float64           `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
}

// domain maps the lists onto tokens. A null log probability is 0 (the
// domain has no "unknown"); lists shorter than tokens leave the missing
// entries empty rather than failing an answer over its metadata. The
// alternatives come as a JSON object, whose order says nothing: they are
// sorted most likely first.
func (l *textLogprobsWire) domain() []domain.TokenLogprob {
	if l == nil || len(l.Tokens) == 0 {
		return nil
	}
	out := make([]domain.TokenLogprob, len(l.Tokens))
	for i, tok := range l.Tokens {
		t := domain.TokenLogprob{Token: tok, Bytes: tokenBytes(tok)}
		if i < len(l.TokenLogprobs) && l.TokenLogprobs[i] != nil {
			t.Logprob = *l.TokenLogprobs[i]
		}
		if i < len(l.TopLogprobs) && len(l.TopLogprobs[i]) > 0 {
			t.Top = make([]domain.TopLogprob, 0, len(l.TopLogprobs[i]))
			for alt, lp := range l.TopLogprobs[i] {
				t.Top = append(t.Top, domain.TopLogprob{Token: alt, Logprob: lp, Bytes: tokenBytes(alt)})
			}
			slices.SortFunc(t.Top, func(a, b domain.TopLogprob) int {
				if c := cmp.Compare(b.Logprob, a.Logprob); c != 0 {
					return c
				}
				return strings.Compare(a.Token, b.Token)
			})
		}
		out[i] = t
	}
	return out
}

// tokenBytes is a token's bytes: its UTF-8 text, except that a token
// holding part of a character comes from OpenAI as "bytes:\xe2\x80" (the
// text of its bytes' escapes), which is decoded.
func tokenBytes(tok string) []byte {
	const prefix = "bytes:"
	rest, ok := strings.CutPrefix(tok, prefix)
	if !ok || rest == "" || len(rest)%4 != 0 {
		return []byte(tok)
	}
	b := make([]byte, 0, len(rest)/4)
	for i := 0; i < len(rest); i += 4 {
		hi, ok1 := unhex(rest[i+2])
		lo, ok2 := unhex(rest[i+3])
		if rest[i] != '\\' || rest[i+1] != 'x' || !ok1 || !ok2 {
			return []byte(tok)
		}
		b = append(b, hi<<4|lo)
	}
	return b
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// relayText reads a text completion stream to [DONE], as relay does a chat
// stream: one chunk per choice of each frame, usage on the finishing chunk
// when it came before, else on a chunk of its own at the end; choices is
// the number of choices asked for. The common frame (one choice's text, no
// logprobs) is read by a reflection-free fast path; any other goes through
// encoding/json.
func (r *sseReader) relayText(body io.Reader, out ports.Sink[domain.TextChunk], choices int) error {
	data := newSSEData(body)
	defer data.lines.Release()
	var scan jsonscan.Scanner
	var w textChunkWire
	for {
		payload, err := data.next()
		if err == io.EOF {
			if r.usage == nil {
				return nil
			}
			return out.Send(domain.TextChunk{Usage: r.usage})
		}
		if err != nil {
			return r.fail(err)
		}
		if chunk, ok := fastTextFrame(&scan, payload, choices); ok {
			r.frame()
			if chunk.FinishReason != "" {
				chunk.Usage = r.usage
			}
			if err := out.Send(chunk); err != nil {
				return err
			}
			continue
		}
		w = textChunkWire{}
		if err := json.Unmarshal(payload, &w); err != nil {
			return r.protocol("unreadable stream frame: %v", err)
		}
		if err := r.textFrameOf(&w, out, choices); err != nil {
			return err
		}
	}
}

func (r *sseReader) textFrameOf(w *textChunkWire, out ports.Sink[domain.TextChunk], choices int) error {
	if len(w.Error) > 0 {
		return inBandError(r.backend, r.where, w.Error)
	}
	r.frame()
	if w.Usage != nil {
		r.usage = w.Usage.domain()
	}
	for i := range w.Choices {
		ch := &w.Choices[i]
		if ch.Index < 0 || ch.Index >= choices {
			return r.protocol("choice index %d out of range (%d choices asked for)", ch.Index, choices)
		}
		chunk := domain.TextChunk{Index: ch.Index, Text: ch.Text, Logprobs: ch.Logprobs.domain()}
		if ch.FinishReason != "" {
			chunk.FinishReason = ch.FinishReason
			chunk.Usage = r.usage
		}
		if err := out.Send(chunk); err != nil {
			return err
		}
	}
	return nil
}

// fastTextFrame reads a frame whose only choice carries text and perhaps a
// finish_reason, with null logprobs: almost every frame of a stream. ok is
// false for anything else (logprobs, usage, errors, several choices, an
// index out of range, JSON it does not expect), which encoding/json reads.
func fastTextFrame(s *jsonscan.Scanner, payload []byte, choices int) (c domain.TextChunk, ok bool) {
	s.Reset(payload)
	n := 0
	ok = s.Object(func(key []byte) bool {
		switch string(key) {
		case "choices":
			return s.Array(func() bool {
				if n++; n > 1 {
					return false
				}
				return fastTextChoice(s, &c, choices)
			})
		case "usage", "error":
			return s.Null()
		default:
			if jsonscan.FoldsTo(key, "choices", "usage", "error") {
				return false
			}
			return s.Skip()
		}
	})
	return c, ok && n == 1 && s.Done()
}

func fastTextChoice(s *jsonscan.Scanner, c *domain.TextChunk, choices int) bool {
	return s.Object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "index":
			c.Index, ok = s.Int()
			return ok && c.Index < choices
		case "text":
			if s.Null() {
				return true // encoding/json leaves the field as it was
			}
			c.Text, ok = s.String()
			return ok
		case "logprobs":
			return s.Null()
		case "finish_reason":
			if s.Null() {
				return true
			}
			c.FinishReason, ok = s.String()
			return ok
		default:
			// Members of other servers (vLLM's stop_reason) are skipped;
			// one encoding/json would take for a known field is not.
			if jsonscan.FoldsTo(key, "index", "text", "logprobs", "finish_reason") {
				return false
			}
			return s.Skip()
		}
	})
}
