package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/completion"
)

// Response headers naming who served a request, and saying whether the
// usage was counted here (true) because the upstream reported none. On
// streams the latter is a trailer: it is known only at the end.
const (
	HeaderBackend        = "X-Backend"
	HeaderUpstreamModel  = "X-Upstream-Model"
	HeaderUsageEstimated = "X-Usage-Estimated"
)

// UsageEstimator counts tokens when an upstream reports no usage.
type UsageEstimator interface {
	Estimate(model string, req domain.ChatRequest, answer string) domain.Usage
}

// Completer is the completion use case the chat handler drives.
type Completer interface {
	Complete(ctx context.Context, req domain.ChatRequest) (domain.Completion, domain.Route, error)
	Stream(ctx context.Context, req domain.ChatRequest, emit completion.EmitFunc) (domain.Route, error)
}

type chatHandler struct {
	completer    Completer
	maxBodyBytes int64
	now          func() time.Time
	metrics      Recorder
	usage        UsageEstimator
	pingInterval time.Duration
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

func (h *chatHandler) serve(c *gin.Context) {
	start := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			logger(c).Info("reading the request body failed", zap.Error(err))
			err = domain.Invalid("", "The request body could not be read.")
		}
		writeError(c, toAPIError(err))
		return
	}
	req, err := openai.DecodeChatRequest(body)
	if err != nil {
		writeError(c, toAPIError(err))
		return
	}
	if ce := baseLogger(c).Check(zap.DebugLevel, "chat request"); ce != nil {
		ce.Write(zap.String("request_id", c.GetString(requestIDKey)), zap.String("model", req.Model),
			zap.Bool("stream", req.Stream), zap.ByteString("body", body))
	}
	id, created := openai.NewCompletionID(), h.now().Unix()
	if req.Stream {
		h.stream(c, req, id, created, start)
		return
	}
	out, route, err := h.completer.Complete(c.Request.Context(), req)
	if err != nil {
		h.fail(c, err)
		return
	}
	setRoute(c, route)
	if out.Usage == nil && h.usage != nil {
		u := h.usage.Estimate(req.Model, req, answerText(out))
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
	c.Header(HeaderBackend, r.Backend)
	c.Header(HeaderUpstreamModel, r.Model)
}

// fail answers a request that produced nothing yet.
func (h *chatHandler) fail(c *gin.Context, err error) {
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

// sseStream is one streamed answer on its way to the client. Headers go out
// with the first chunk, so a backend that fails before it can still be
// replaced, or answered with a real status; only a keep-alive ping sent
// while waiting commits the 200 earlier.
type sseStream struct {
	h       *chatHandler
	c       *gin.Context
	req     domain.ChatRequest
	enc     *openai.ChunkEncoder
	start   time.Time
	mu      sync.Mutex // the pinger writes from its timer goroutine
	headers bool       // the 200 and SSE headers went out
	started bool       // the first chunk went out (no fallback after it)
	usage   *domain.Usage
	text    *strings.Builder // the answer, kept when usage may need an estimate
	ping    *time.Timer
	route   *domain.Route // who served a stream whose headers a ping sent
	pending bool          // chunks written but not flushed yet
}

var pingFrame = []byte(": ping\n\n")

func (s *sseStream) writeHeaders(route *domain.Route) {
	if s.headers {
		return
	}
	s.headers = true
	if route != nil {
		setRoute(s.c, *route)
	}
	hdr := s.c.Writer.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Connection", "keep-alive")
	hdr.Set("X-Accel-Buffering", "no")
	var trailers []string
	if route == nil {
		// A keep-alive ping went out before any backend answered: who
		// serves the stream is told at its end.
		trailers = append(trailers, HeaderBackend, HeaderUpstreamModel)
	}
	if s.text != nil {
		trailers = append(trailers, HeaderUsageEstimated)
	}
	if len(trailers) > 0 {
		hdr.Set("Trailer", strings.Join(trailers, ", "))
	}
	s.c.Writer.WriteHeader(http.StatusOK)
}

// keepAlive sends an SSE comment while no chunk has arrived yet, so proxies
// and load balancers do not cut a stream waiting for a slow first token.
func (s *sseStream) keepAlive(every time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.c.Request.Context().Err() != nil {
		return
	}
	s.writeHeaders(nil)
	if _, err := s.c.Writer.Write(pingFrame); err == nil {
		s.c.Writer.Flush()
	}
	s.ping.Reset(every)
}

func (s *sseStream) emit(route domain.Route, ch domain.Chunk) error {
	if ch.Usage != nil {
		s.usage = ch.Usage
	}
	if s.text != nil {
		s.text.WriteString(ch.Content)
		s.text.WriteString(ch.Reasoning)
		for _, tc := range ch.ToolCalls {
			s.text.WriteString(tc.Name)
			s.text.WriteString(tc.Arguments)
		}
	}
	if s.started && ch.Empty() {
		return nil // nothing for the client in this frame
	}
	// Until the first chunk the pinger may write too; once started is set
	// (under the lock) it never writes again, so later chunks skip the lock.
	// Only this goroutine writes started, so reading it here is safe.
	if !s.started {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.started = true
		if s.ping != nil {
			s.ping.Stop()
		}
		s.h.metrics.StreamOpened()
		s.h.metrics.FirstToken(route, s.req.Model, time.Since(s.start))
		if s.headers {
			s.route = &route // sent as trailers
		}
		s.writeHeaders(&route)
	}
	w := s.c.Writer
	if _, err := w.Write(s.enc.Chunk(ch)); err != nil {
		return err
	}
	s.pending = true // flushed before the backend next waits for input
	return nil
}

// flush sends the chunks written since the last flush. The backend calls it
// (through the request context) before each wait for upstream input, so a
// chunk never waits for the network while held here, and chunks that
// arrived together share one write to the client.
func (s *sseStream) flush() {
	if !s.started {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	if s.pending {
		s.pending = false
		s.c.Writer.Flush()
	}
}

// stream relays chunks as server-sent events.
func (h *chatHandler) stream(c *gin.Context, req domain.ChatRequest, id string, created int64, start time.Time) {
	s := &sseStream{h: h, c: c, req: req, enc: openai.NewChunkEncoder(id, created, req.Model, req.LegacyFunctions), start: start}
	if req.IncludeUsage && h.usage != nil {
		s.text = new(strings.Builder)
	}
	if every := h.pingInterval; every > 0 {
		s.mu.Lock()
		s.ping = time.AfterFunc(every, func() { s.keepAlive(every) })
		s.mu.Unlock()
	}
	ctx := c.Request.Context()
	route, err := h.completer.Stream(domain.WithFlush(ctx, s.flush), req, s.emit)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ping != nil {
		s.ping.Stop()
	}
	if s.started {
		defer h.metrics.StreamClosed()
	}
	w := c.Writer
	estimated := false
	if s.usage == nil && s.text != nil && s.started {
		u := h.usage.Estimate(req.Model, req, s.text.String())
		s.usage, estimated = &u, true
	}
	if s.text != nil && s.headers {
		w.Header().Set(HeaderUsageEstimated, strconv.FormatBool(estimated))
	}
	if s.route != nil {
		w.Header().Set(HeaderBackend, s.route.Backend)
		w.Header().Set(HeaderUpstreamModel, s.route.Model)
	}
	if s.usage != nil {
		h.metrics.Tokens(route, req.Model, *s.usage)
	}
	switch {
	case err == nil:
		if !s.started { // the upstream ended without a single frame
			s.started = true
			h.metrics.StreamOpened()
			s.writeHeaders(&route)
			_, _ = w.Write(s.enc.Chunk(domain.Chunk{FinishReason: domain.FinishStop}))
		}
		if req.IncludeUsage && s.usage != nil {
			_, _ = w.Write(s.enc.Usage(*s.usage))
		}
		_, _ = w.Write(openai.Done)
		w.Flush()
	case errors.Is(context.Cause(ctx), ErrShuttingDown):
		logger(c).Warn("stream cut by shutdown", zap.Bool("started", s.started))
		s.writeHeaders(nil)
		_, _ = w.Write(openai.ErrorFrame(openai.NewError(openai.TypeServer,
			"The server is shutting down; retry the request.", "", "server_shutting_down")))
		w.Flush()
	case ctx.Err() != nil:
		logger(c).Info("client closed the stream", zap.Bool("started", s.started))
		if !s.headers {
			c.Status(499)
		}
	case !s.headers:
		h.fail(c, err)
	default:
		if s.started {
			logger(c).Warn("stream broke after it started", zap.Error(err))
		}
		if req.IncludeUsage && s.usage != nil {
			_, _ = w.Write(s.enc.Usage(*s.usage))
		}
		_, _ = w.Write(openai.ErrorFrame(toAPIError(err).Body))
		w.Flush()
	}
}
