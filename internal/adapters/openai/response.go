package openai

import (
	"crypto/rand"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// NewCompletionID returns a fresh id such as chatcmpl-Q2V7… (26 random
// base32 characters from crypto/rand).
func NewCompletionID() string { return "chatcmpl-" + rand.Text() }

// Completion is the chat.completion object.
type Completion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
}

// Choice is one entry of Completion.Choices.
type Choice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

// ResponseMessage is the assistant message of a choice.
type ResponseMessage struct {
	Role    string  `json:"role"`
	Content *string `json:"content"`
	Refusal *string `json:"refusal"`
}

// Usage is CompletionUsage.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func usageOf(u *domain.Usage) *Usage {
	if u == nil {
		return nil
	}
	return &Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens()}
}

// NewCompletion builds the chat.completion object for c, named as the
// client asked (model).
func NewCompletion(id string, created int64, model string, c domain.Completion) Completion {
	content := c.Content
	finish := c.FinishReason
	if finish == "" {
		finish = domain.FinishStop
	}
	return Completion{
		ID:      id,
		Object:  "chat.completion",
		Created: created,
		Model:   model,
		Choices: []Choice{{
			Message:      ResponseMessage{Role: domain.RoleAssistant, Content: &content},
			FinishReason: finish,
		}},
		Usage: usageOf(c.Usage),
	}
}

// ChunkEncoder writes chat.completion.chunk objects as SSE frames. The id,
// created and model are fixed per stream and encoded once; a frame reuses
// one buffer, so encoding a chunk does not allocate once the buffer grew.
type ChunkEncoder struct {
	head []byte // `data: {"id":…,"model":…,"choices":[`
	buf  []byte
	sent bool // the role-carrying first delta went out
}

// NewChunkEncoder prepares the frames of one stream.
func NewChunkEncoder(id string, created int64, model string) *ChunkEncoder {
	h := make([]byte, 0, 96+len(id)+len(model))
	h = append(h, `data: {"id":`...)
	h = AppendString(h, id)
	h = append(h, `,"object":"chat.completion.chunk","created":`...)
	h = strconv.AppendInt(h, created, 10)
	h = append(h, `,"model":`...)
	h = AppendString(h, model)
	h = append(h, `,"choices":[`...)
	return &ChunkEncoder{head: h, buf: make([]byte, 0, 512)}
}

// Chunk encodes one content chunk (the first carries role "assistant").
// The returned frame is valid until the next call.
func (e *ChunkEncoder) Chunk(c domain.Chunk) []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `{"index":0,"delta":{`...)
	comma := false
	if !e.sent {
		b = append(b, `"role":"assistant"`...)
		comma = true
		e.sent = true
	}
	if c.Content != "" || (comma && c.FinishReason == "") {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"content":`...)
		b = AppendString(b, c.Content)
	}
	b = append(b, `},"logprobs":null,"finish_reason":`...)
	if c.FinishReason == "" {
		b = append(b, "null"...)
	} else {
		b = AppendString(b, c.FinishReason)
	}
	b = append(b, "}]}\n\n"...)
	e.buf = b
	return b
}

// Usage encodes the final usage chunk sent when the client asked for
// stream_options.include_usage: no choices, only usage.
func (e *ChunkEncoder) Usage(u domain.Usage) []byte {
	b := append(e.buf[:0], e.head...)
	b = append(b, `],"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CompletionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens()), 10)
	b = append(b, "}}\n\n"...)
	e.buf = b
	return b
}

// Done is the stream's last frame.
var Done = []byte("data: [DONE]\n\n")

// ErrorFrame is an in-band error for a stream that already started.
func ErrorFrame(body ErrorBody) []byte {
	j, _ := json.Marshal(body)
	b := make([]byte, 0, len(j)+8)
	b = append(b, "data: "...)
	b = append(b, j...)
	return append(b, "\n\n"...)
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does; HTML characters are left alone.
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
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
