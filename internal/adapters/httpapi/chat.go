package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
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
	log := logger(c)
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, h.maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			log.Info("reading the request body failed", zap.Error(err))
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
	if ce := log.Check(zap.DebugLevel, "chat request"); ce != nil {
		ce.Write(zap.String("model", req.Model), zap.Bool("stream", req.Stream), zap.ByteString("body", body))
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
	if ce := log.Check(zap.DebugLevel, "chat answer"); ce != nil {
		ce.Write(zap.Any("choices", out.Choices))
	}
	c.JSON(http.StatusOK, openai.NewCompletion(id, created, req.Model, out, req.LegacyFunctions))
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

// stream relays chunks as server-sent events. Headers go out with the
// first chunk, so a backend that fails before it can still be replaced.
func (h *chatHandler) stream(c *gin.Context, req domain.ChatRequest, id string, created int64, start time.Time) {
	enc := openai.NewChunkEncoder(id, created, req.Model, req.LegacyFunctions)
	w := c.Writer
	started := false
	var usage *domain.Usage
	// The answer's text is kept only when an estimate may be needed: the
	// client asked for usage and the upstream may not report it.
	var text *strings.Builder
	if req.IncludeUsage && h.usage != nil {
		text = new(strings.Builder)
	}
	emit := func(route domain.Route, ch domain.Chunk) error {
		if ch.Usage != nil {
			usage = ch.Usage
		}
		if text != nil {
			text.WriteString(ch.Content)
			text.WriteString(ch.Reasoning)
			for _, tc := range ch.ToolCalls {
				text.WriteString(tc.Name)
				text.WriteString(tc.Arguments)
			}
		}
		if started && ch.Empty() {
			return nil // nothing for the client in this frame
		}
		if !started {
			started = true
			h.metrics.StreamOpened()
			h.metrics.FirstToken(route, req.Model, time.Since(start))
			setRoute(c, route)
			hdr := w.Header()
			hdr.Set("Content-Type", "text/event-stream")
			hdr.Set("Cache-Control", "no-cache")
			hdr.Set("Connection", "keep-alive")
			hdr.Set("X-Accel-Buffering", "no")
			if text != nil {
				hdr.Set("Trailer", HeaderUsageEstimated)
			}
			w.WriteHeader(http.StatusOK)
		}
		if _, err := w.Write(enc.Chunk(ch)); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	defer func() {
		if started {
			h.metrics.StreamClosed()
		}
	}()
	route, err := h.completer.Stream(c.Request.Context(), req, emit)
	estimated := false
	if usage == nil && text != nil && started {
		u := h.usage.Estimate(req.Model, req, text.String())
		usage, estimated = &u, true
	}
	if text != nil && started {
		w.Header().Set(HeaderUsageEstimated, strconv.FormatBool(estimated))
	}
	if usage != nil {
		h.metrics.Tokens(route, req.Model, *usage)
	}
	log := logger(c)
	switch {
	case err == nil:
		if !started { // the upstream ended without a single frame
			_ = emit(route, domain.Chunk{FinishReason: domain.FinishStop})
		}
		if req.IncludeUsage && usage != nil {
			_, _ = w.Write(enc.Usage(*usage))
		}
		_, _ = w.Write(openai.Done)
		w.Flush()
	case c.Request.Context().Err() != nil:
		log.Info("client closed the stream", zap.Bool("started", started))
		if !started {
			c.Status(499)
		}
	case !started:
		h.fail(c, err)
	default:
		log.Warn("stream broke after it started", zap.Error(err))
		if req.IncludeUsage && usage != nil {
			_, _ = w.Write(enc.Usage(*usage))
		}
		_, _ = w.Write(openai.ErrorFrame(toAPIError(err).Body))
		w.Flush()
	}
}
