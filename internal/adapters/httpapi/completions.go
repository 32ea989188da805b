package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
)

// Texter is the text completion use case the handler drives.
type Texter interface {
	Text(ctx context.Context, req domain.TextRequest) (domain.TextCompletion, domain.Route, error)
	StreamText(ctx context.Context, req domain.TextRequest, out dispatch.Out[domain.TextChunk]) (domain.Route, error)
}

// completionsHandler serves the legacy POST /v1/completions.
type completionsHandler struct {
	session      string // the session header's name, if any
	text         Texter
	maxBodyBytes int64
	now          func() time.Time
	metrics      Recorder
	tokens       TokenCounter
	streams      *streamDeps
}

func (h *completionsHandler) serve(c *gin.Context) {
	start := time.Now()
	body, err := readBody(c, h.maxBodyBytes)
	if err != nil {
		writeError(c, toAPIError(err))
		return
	}
	req, err := openai.DecodeCompletionRequest(body)
	if err != nil {
		writeError(c, toAPIError(err))
		return
	}
	sessionOf(c, h.session, &req.Session)
	if ce := baseLogger(c).Check(zap.DebugLevel, "completion request"); ce != nil {
		ce.Write(zap.String("request_id", c.GetString(requestIDKey)), zap.String("model", req.Model),
			zap.Bool("stream", req.Stream), zap.ByteString("body", body))
	}
	enc := openai.NewTextEncoder(openai.NewTextCompletionID(), h.now().Unix(), req.Model, req.Logprobs != nil)
	if req.Stream {
		frames := &textFrames{enc: enc, req: req}
		if req.IncludeUsage && h.tokens != nil {
			frames.tokens, frames.text = h.tokens, new(strings.Builder)
		}
		w := newSSEWriter[domain.TextChunk](c, frames, h.streams, req.Model, start, frames.tokens != nil)
		route, err := h.text.StreamText(c.Request.Context(), req, w)
		w.finish(route, err, func(err error) { fail(c, err) })
		return
	}
	out, route, err := h.text.Text(c.Request.Context(), req)
	if err != nil {
		fail(c, err)
		return
	}
	setRoute(c, route)
	if out.Usage == nil && h.tokens != nil {
		var answer strings.Builder
		for _, ch := range out.Choices {
			answer.WriteString(ch.Text)
		}
		u := estimateText(h.tokens, req, answer.String())
		out.Usage = &u
		c.Header(HeaderUsageEstimated, "true")
	}
	if out.Usage != nil {
		h.metrics.Tokens(route, req.Model, *out.Usage)
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", enc.Completion(make([]byte, 0, 512), out))
}

// estimateText counts a text completion's usage: its prompts (token ids as
// sent) and the answer's text.
func estimateText(tokens TokenCounter, req domain.TextRequest, answer string) domain.Usage {
	u := domain.Usage{CompletionTokens: tokens.Text(req.Model, answer)}
	for _, p := range req.Prompts {
		if p.Tokens != nil {
			u.PromptTokens += len(p.Tokens)
		} else {
			u.PromptTokens += tokens.Text(req.Model, p.Text)
		}
	}
	return u
}

// textFrames is the encoder of text completion streams: text_completion
// chunks, the usage chunk when asked for (counted here when the upstream
// reported none), and [DONE].
type textFrames struct {
	enc       *openai.TextEncoder
	req       domain.TextRequest
	sent      bool
	usage     *domain.Usage
	estimated bool
	tokens    TokenCounter     // set when usage may need an estimate
	text      *strings.Builder // the answer so far, for the estimate
	buf       []byte
}

func (f *textFrames) Open() []byte { return nil }

func (f *textFrames) Frame(c domain.TextChunk) []byte {
	if c.Usage != nil {
		f.usage = c.Usage
	}
	if f.text != nil {
		f.text.WriteString(c.Text)
	}
	if c.Text == "" && c.FinishReason == "" && len(c.Logprobs) == 0 {
		return nil // a usage-only chunk
	}
	f.sent = true
	return f.enc.Chunk(c)
}

func (f *textFrames) Close() []byte {
	b := f.buf[:0]
	if !f.sent { // the upstream ended without a single frame
		b = append(b, f.enc.Chunk(domain.TextChunk{FinishReason: domain.FinishStop})...)
	}
	if f.usage == nil && f.tokens != nil {
		u := estimateText(f.tokens, f.req, f.text.String())
		f.usage, f.estimated = &u, true
	}
	if f.req.IncludeUsage && f.usage != nil {
		b = append(b, f.enc.Usage(*f.usage)...)
	}
	f.buf = append(b, openai.Done...)
	return f.buf
}

func (f *textFrames) Fail(e apiError) []byte {
	b := f.buf[:0]
	if f.req.IncludeUsage && f.usage != nil {
		b = append(b, f.enc.Usage(*f.usage)...)
	}
	f.buf = append(b, openai.ErrorFrame(e.Body)...)
	return f.buf
}

func (f *textFrames) Usage() (*domain.Usage, bool) { return f.usage, f.estimated }
