package gatewaytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const completionID = "cmpl-gw0123456789abcdefghijklmn"

// completionRequest is what the fake reads of a text completion request.
type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	N             *int            `json:"n"`
	Echo          bool            `json:"echo"`
	Logprobs      *int            `json:"logprobs"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// promptsOf reads a prompt as OpenAI takes it: a string, strings, token
// ids, or lists of token ids (written as the ids' decimal text, space
// separated: the fake has no tokenizer). Absent or null is OpenAI's
// default, <|endoftext|>. ok is false for anything else, or no prompt.
func promptsOf(raw json.RawMessage) (prompts []string, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return []string{"<|endoftext|>"}, true
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil {
		return texts, len(texts) > 0
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return []string{idsText(ids)}, len(ids) > 0
	}
	var lists [][]int
	if json.Unmarshal(raw, &lists) != nil || len(lists) == 0 {
		return nil, false
	}
	for _, l := range lists {
		if len(l) == 0 {
			return nil, false
		}
		prompts = append(prompts, idsText(l))
	}
	return prompts, true
}

func idsText(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, " ")
}

// completions answers POST /v1/completions: for each prompt, n choices of
// the configured pieces (choice p*n+k is completion k of prompt p), the
// prompt first when echo is set, with logprobs when asked; whole, or as a
// stream of text_completion frames, the choices interleaved, ending with
// the usage frame when stream_options.include_usage is set and [DONE].
func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	body := s.record(r)
	cfg := s.snapshot()
	var req completionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	if !prelude(w, r, &cfg, garbageStream(w)) {
		return
	}
	if !cfg.has(req.Model) {
		modelNotFound(w, req.Model)
		return
	}
	prompts, ok := promptsOf(req.Prompt)
	if !ok {
		writeParamError(w, http.StatusBadRequest, "'$.prompt' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
			"invalid_request_error", "prompt", "")
		return
	}
	n := 1
	if req.N != nil && *req.N > 1 {
		n = *req.N
	}
	c := completion{cfg: &cfg, req: &req, pieces: cfg.pieces()}
	for _, p := range prompts {
		for range n {
			c.choices = append(c.choices, &textChoice{prompt: p})
		}
	}
	if req.Stream {
		c.stream(w, r)
	} else {
		c.whole(w, r)
	}
}

// completion is one text completion being answered.
type completion struct {
	cfg     *Server
	req     *completionRequest
	pieces  []string
	choices []*textChoice
}

// textChoice is the state of one choice: the text written so far (for
// text_offset) and how many tokens.
type textChoice struct {
	prompt string
	offset int // runes of prompt and completion so far
	tokens int
}

// token is one token of a choice's text, with its log probability; null
// for the first token of an echoed prompt, which follows nothing.
type token struct {
	text   string
	lp     float64
	null   bool
	offset int
}

// tokens advances choice ch over its next tokens and returns them with
// their log probabilities. Each piece of the answer is one token (a frame
// of a stream carries one); an echoed prompt is split before each word,
// GPT style, and its first token has no log probability.
func (c *completion) tokens(index int, ch *textChoice, texts []string, prompt bool) []token {
	var out []token
	for _, t := range texts {
		tok := token{text: t, lp: -float64(1+(ch.tokens*3+index)%8) / 16, offset: ch.offset}
		tok.null = prompt && ch.tokens == 0
		out = append(out, tok)
		ch.tokens++
		ch.offset += utf8.RuneCountInString(t)
	}
	return out
}

// words splits a prompt into the fake's tokens: a token begins at each
// space that follows another character.
func words(s string) []string {
	var out []string
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' && s[i-1] != ' ' {
			out = append(out, s[start:i])
			start = i
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// alternatives are the tokens the fake offers besides the chosen one.
var alternatives = []string{" the", " a", ",", ".", "\n", " and", " of", " to"}

// appendLogprobs writes a choice's logprobs as the legacy API does:
// parallel lists of tokens, their log probabilities, the top alternatives
// at each position (n of them, the chosen token first; each less likely
// than the last) and each token's offset in the prompt and completion text.
func appendLogprobs(b []byte, toks []token, n int) []byte {
	b = append(b, `{"tokens":[`...)
	for i, t := range toks {
		b = comma(b, i)
		b = append(b, jsonString(t.text)...)
	}
	b = append(b, `],"token_logprobs":[`...)
	for i, t := range toks {
		b = comma(b, i)
		if t.null {
			b = append(b, "null"...)
		} else {
			b = appendFloat(b, t.lp)
		}
	}
	b = append(b, `],"top_logprobs":[`...)
	for i, t := range toks {
		b = comma(b, i)
		if t.null {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '{')
		alts := 0
		for k := range n {
			alt := t.text
			if k > 0 {
				alt = alternative(t.text, &alts)
			}
			b = comma(b, k)
			b = append(b, jsonString(alt)...)
			b = append(b, ':')
			b = appendFloat(b, t.lp-0.75*float64(k))
		}
		b = append(b, '}')
	}
	b = append(b, `],"text_offset":[`...)
	for i, t := range toks {
		b = comma(b, i)
		b = strconv.AppendInt(b, int64(t.offset), 10)
	}
	return append(b, "]}"...)
}

// alternative returns the next alternative to chosen, counting in *used.
func alternative(chosen string, used *int) string {
	for *used < len(alternatives) {
		a := alternatives[*used]
		*used++
		if a != chosen {
			return a
		}
	}
	*used++
	return fmt.Sprintf(" alt%d", *used)
}

func comma(b []byte, i int) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	return b
}

// appendChoice writes one choice: {"text","index","logprobs","finish_reason"}.
func (c *completion) appendChoice(b []byte, index int, text string, toks []token, finish string) []byte {
	b = append(b, `{"text":`...)
	b = append(b, jsonString(text)...)
	b = append(b, `,"index":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"logprobs":`...)
	if c.req.Logprobs != nil {
		b = appendLogprobs(b, toks, *c.req.Logprobs)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, jsonString(finish)...)
	}
	return append(b, '}')
}

func (c *completion) usage() string {
	return fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`,
		c.cfg.PromptTokens, c.cfg.CompletionTokens, c.cfg.PromptTokens+c.cfg.CompletionTokens)
}

// whole answers with one text_completion, when all is generated, indented
// as OpenAI writes a whole answer.
func (c *completion) whole(w http.ResponseWriter, r *http.Request) {
	if c.cfg.PieceDelay > 0 {
		select {
		case <-time.After(time.Duration(len(c.pieces)) * c.cfg.PieceDelay):
		case <-r.Context().Done():
			return
		}
	}
	reply := strings.Join(c.pieces, "")
	b := fmt.Appendf(nil, `{"id":%s,"object":"text_completion","created":%d,"model":%s,"choices":[`,
		jsonString(completionID), created, jsonString(c.req.Model))
	for i, ch := range c.choices {
		b = comma(b, i)
		text := reply
		var toks []token
		if c.req.Echo {
			text = ch.prompt + reply
			toks = c.tokens(i, ch, words(ch.prompt), true)
		} else {
			ch.offset = utf8.RuneCountInString(ch.prompt)
		}
		toks = append(toks, c.tokens(i, ch, c.pieces, false)...)
		b = c.appendChoice(b, i, text, toks, c.cfg.FinishReason)
	}
	b = append(b, `],"usage":`...)
	b = append(b, c.usage()...)
	b = append(b, '}')
	var out bytes.Buffer
	json.Indent(&out, b, "", "  ")
	out.WriteByte('\n')
	w.Header().Set("Content-Type", "application/json")
	w.Write(out.Bytes())
}

// stream answers with text_completion frames, written as OpenAI writes
// them ("model" after "choices"; the usage frame has no choices).
func (c *completion) stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	flusher := w.(http.Flusher)
	model := jsonString(c.req.Model)
	head := fmt.Sprintf(`data: {"id":%s,"object":"text_completion","created":%d,`, jsonString(completionID), created)
	frame := func(index int, text string, toks []token, finish string) {
		b := append([]byte(head), `"choices":[`...)
		b = c.appendChoice(b, index, text, toks, finish)
		b = append(b, `],"model":`...)
		b = append(b, model...)
		b = append(b, "}\n\n"...)
		w.Write(b)
		flusher.Flush()
	}
	for i, ch := range c.choices {
		if c.req.Echo {
			frame(i, ch.prompt, c.tokens(i, ch, words(ch.prompt), true), "")
		} else {
			ch.offset = utf8.RuneCountInString(ch.prompt)
		}
	}
	for p, piece := range c.pieces {
		if c.cfg.BreakAfter > 0 && p == c.cfg.BreakAfter {
			panic(http.ErrAbortHandler)
		}
		for i, ch := range c.choices {
			frame(i, piece, c.tokens(i, ch, []string{piece}, false), "")
		}
		if c.cfg.PieceDelay > 0 {
			select {
			case <-time.After(c.cfg.PieceDelay):
			case <-r.Context().Done():
				return
			}
		}
	}
	for i := range c.choices {
		frame(i, "", nil, c.cfg.FinishReason)
	}
	if o := c.req.StreamOptions; o != nil && o.IncludeUsage {
		fmt.Fprintf(w, "%s\"model\":%s,\"usage\":%s,\"choices\":[]}\n\n", head, model, c.usage())
	}
	io.WriteString(w, "data: [DONE]\n\n")
	flusher.Flush()
	c.cfg.end(r)
}
