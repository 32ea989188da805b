package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
)

// Response headers naming who served a request, and saying whether the
// usage was counted here (true) because the upstream reported none. On
// streams the latter is a trailer: it is known only at the end.
const (
	HeaderBackend        = "X-Backend"
	HeaderUpstreamModel  = "X-Upstream-Model"
	HeaderBackendHost    = "X-Backend-Host" // the host of the backend's pool that served
	HeaderAffinity       = "X-Affinity"     // hit, moved or new: see pool.AffinityHit
	HeaderUsageEstimated = "X-Usage-Estimated"
)

// TokenCounter counts tokens when an upstream reports no usage.
type TokenCounter interface {
	// Estimate counts a chat request's prompt and an answer.
	Estimate(model string, req domain.ChatRequest, answer string) domain.Usage
	// Text counts the tokens of text as model would read it.
	Text(model, text string) int
}

// Chatter is the chat use case the handler drives.
type Chatter interface {
	Chat(ctx context.Context, req domain.ChatRequest) (domain.Completion, domain.Route, error)
	StreamChat(ctx context.Context, req *domain.ChatRequest, out dispatch.Out[domain.Chunk]) (domain.Route, error)
}

type chatHandler struct {
	session      string // the session header's name, if any
	chat         Chatter
	maxBodyBytes int64
	now          func() time.Time
	metrics      Recorder
	usage        TokenCounter
	streams      *streamDeps
}

// answerText is what an estimate counts of a buffered answer.
func answerText(out domain.Completion) string {
	var b strings.Builder
	for _, ch := range out.Choices {
		b.WriteString(ch.Text())
		b.WriteString(ch.Reasoning)
		for _, tc := range ch.ToolCalls {
			b.WriteString(tc.Name)
			b.WriteString(tc.Arguments)
		}
	}
	return b.String()
}

// readBody reads a request body within the size limit; a failure is an
// error ready for the client.
func readBody(c *gin.Context, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			logger(c).Info("reading the request body failed", zap.Error(err))
			err = domain.Invalid("", "The request body could not be read.")
		}
		return nil, err
	}
	return body, nil
}

// serve answers a chat request. It stays shallow: a stream's handler
// goroutine waits the whole answer long below it, and what its frames
// hold sets the stack every open stream keeps (the request goes by
// pointer; decoding and the buffered answer run in frames of their own).
func (h *chatHandler) serve(c *gin.Context) {
	start := time.Now()
	req := h.decode(c)
	if req == nil {
		return
	}
	if req.Stream {
		h.stream(c, req, start)
		return
	}
	h.whole(c, req)
}

// decode reads and validates the request, or answers the client's mistake
// and returns nil.
func (h *chatHandler) decode(c *gin.Context) *domain.ChatRequest {
	body, err := readBody(c, h.maxBodyBytes)
	if err != nil {
		writeError(c, toAPIError(err))
		return nil
	}
	req, err := openai.DecodeChatRequest(body)
	if err != nil {
		writeError(c, toAPIError(err))
		return nil
	}
	sessionOf(c, h.session, &req.Session)
	if ce := baseLogger(c).Check(zap.DebugLevel, "chat request"); ce != nil {
		ce.Write(zap.String("request_id", c.GetString(requestIDKey)), zap.String("model", req.Model),
			zap.Bool("stream", req.Stream), zap.ByteString("body", redactImages(body)))
	}
	return &req
}

// whole answers a buffered chat request.
func (h *chatHandler) whole(c *gin.Context, req *domain.ChatRequest) {
	id, created := openai.NewCompletionID(), h.now().Unix()
	out, route, err := h.chat.Chat(c.Request.Context(), *req)
	if err != nil {
		fail(c, err)
		return
	}
	setRoute(c, route)
	if out.Usage == nil && h.usage != nil {
		u := h.usage.Estimate(req.Model, *req, answerText(out))
		out.Usage = &u
		c.Header(HeaderUsageEstimated, "true")
	}
	if out.Usage != nil {
		h.metrics.Tokens(route, req.Model, *out.Usage)
	}
	if ce := baseLogger(c).Check(zap.DebugLevel, "chat answer"); ce != nil {
		ce.Write(zap.String("request_id", c.GetString(requestIDKey)), zap.Any("choices", out.Choices))
	}
	completion := openai.NewCompletion(id, created, req.Model, out, req.LegacyFunctions)
	c.Data(http.StatusOK, "application/json; charset=utf-8", completion.AppendJSON(make([]byte, 0, 1024)))
}

func setRoute(c *gin.Context, r domain.Route) {
	routeHeaders(c.Writer.Header(), r)
}

// routeHeaders says who served the request: the backend, its host, the
// model it was asked for, and whether the conversation stayed with its
// host (only when the backend is a pool and the request continues one).
func routeHeaders(h http.Header, r domain.Route) {
	h.Set(HeaderBackend, r.Backend)
	h.Set(HeaderUpstreamModel, r.Model)
	if r.Host != "" {
		h.Set(HeaderBackendHost, r.Host)
	}
	if r.Affinity != "" {
		h.Set(HeaderAffinity, r.Affinity)
	}
}

// sessionOf puts the conversation the client named in its session header
// (when one is configured and sent) into *session.
func sessionOf(c *gin.Context, header string, session *string) {
	if header == "" {
		return
	}
	if v := c.GetHeader(header); v != "" {
		*session = v
	}
}

// fail answers a request that produced nothing yet.
func fail(c *gin.Context, err error) {
	if c.Request.Context().Err() != nil {
		// The client went away; there is no one to answer.
		logger(c).Info("client closed the request", zap.Error(err))
		c.Status(499)
		return
	}
	writeError(c, toAPIError(err))
}

// ErrShuttingDown is the cancel cause of requests still open when the
// drain timeout ends; their streams get an error frame saying so.
var ErrShuttingDown = errors.New("the server is shutting down")

// stream relays chunks as server-sent events.
func (h *chatHandler) stream(c *gin.Context, req *domain.ChatRequest, start time.Time) {
	frames := &chatFrames{enc: openai.NewChunkEncoder(openai.NewCompletionID(), h.now().Unix(), req.Model, req.LegacyFunctions), req: req}
	if req.IncludeUsage && h.usage != nil {
		frames.est, frames.text = h.usage, new(strings.Builder)
	}
	w := newSSEWriter[domain.Chunk](c, frames, h.streams, req.Model, start, frames.est != nil)
	route, err := h.chat.StreamChat(c.Request.Context(), req, w)
	w.finish(route, err, func(err error) { fail(c, err) })
}

// chatFrames is the encoder of chat streams: chat.completion.chunk frames,
// the usage chunk when asked for (counted here when the upstream reported
// none), and [DONE].
type chatFrames struct {
	enc       *openai.ChunkEncoder
	req       *domain.ChatRequest
	sent      bool // a chunk went out
	usage     *domain.Usage
	estimated bool
	est       TokenCounter     // set when usage may need an estimate
	text      *strings.Builder // the answer so far, for the estimate
	buf       []byte
}

func (f *chatFrames) Open() []byte { return nil }

func (f *chatFrames) Frame(ch domain.Chunk) []byte {
	if ch.Usage != nil {
		f.usage = ch.Usage
	}
	if f.text != nil {
		f.text.WriteString(ch.Content)
		f.text.WriteString(ch.Reasoning)
		for _, tc := range ch.ToolCalls {
			f.text.WriteString(tc.Name)
			f.text.WriteString(tc.Arguments)
		}
	}
	if f.sent && ch.Empty() {
		return nil // nothing for the client in this frame
	}
	f.sent = true
	return f.enc.Chunk(ch)
}

func (f *chatFrames) Close() []byte {
	b := f.buf[:0]
	if !f.sent { // the upstream ended without a single frame
		b = append(b, f.enc.Chunk(domain.Chunk{FinishReason: domain.FinishStop})...)
	}
	if f.usage == nil && f.est != nil {
		u := f.est.Estimate(f.req.Model, *f.req, f.text.String())
		f.usage, f.estimated = &u, true
	}
	if f.req.IncludeUsage && f.usage != nil {
		b = append(b, f.enc.Usage(*f.usage)...)
	}
	f.buf = append(b, openai.Done...)
	return f.buf
}

func (f *chatFrames) Fail(e apiError) []byte {
	b := f.buf[:0]
	if f.req.IncludeUsage && f.usage != nil {
		b = append(b, f.enc.Usage(*f.usage)...)
	}
	f.buf = append(b, openai.ErrorFrame(e.Body)...)
	return f.buf
}

func (f *chatFrames) Usage() (*domain.Usage, bool) { return f.usage, f.estimated }
