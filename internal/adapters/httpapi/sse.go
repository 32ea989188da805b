package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// encoder writes one streamed endpoint's wire format: chat chunks, text
// completion chunks, Responses events. Every method returns the bytes to
// write (nil: nothing); they are valid until the next call.
type encoder[T any] interface {
	// Open goes out with the headers, before any frame or ping
	// (Responses' response.created); nil when the format has no preamble.
	Open() []byte
	// Frame encodes one frame from the backend; nil when it carries
	// nothing for the client.
	Frame(T) []byte
	// Close ends a stream that succeeded (a usage chunk and [DONE], or
	// response.completed).
	Close() []byte
	// Fail ends a stream that failed after it began, in band.
	Fail(apiError) []byte
	// Usage is the answer's usage once the stream ended: as the backend
	// reported it, or estimated (true), or nil.
	Usage() (*domain.Usage, bool)
}

// sseWriter is one streamed answer on its way to the client, for every
// streamed endpoint. It is the dispatch.Out the backend's frames go to.
// Headers go out with the first frame, so a backend that fails before it
// can still be replaced, or answered with a real status; only a keep-alive
// ping sent while waiting commits the 200 earlier (then who serves the
// stream is told in trailers). Frames are written as they come and flushed
// when the backend says a batch is complete.
type sseWriter[T any] struct {
	c       *gin.Context
	enc     encoder[T]
	metrics Recorder
	model   string    // the client's model name, for metrics
	start   time.Time // the request's arrival
	every   time.Duration
	// estimates: the answer's usage may be counted here, which a trailer
	// says (it is known only at the end).
	estimates bool

	mu      sync.Mutex // the pinger writes from its timer goroutine
	headers bool       // the 200 and SSE headers went out
	started bool       // the first frame went out (no fallback after it)
	closed  bool       // the stream ended: nothing may be written any more
	ping    *time.Timer
	route   *domain.Route // who served a stream whose headers a ping sent
	pending bool          // frames written but not flushed yet
}

var pingFrame = []byte(": ping\n\n")

var (
	eventStream = []string{"text/event-stream"}
	noCache     = []string{"no-cache"}
	keepAlive   = []string{"keep-alive"}
	no          = []string{"no"}
)

func newSSEWriter[T any](c *gin.Context, enc encoder[T], h *streamDeps, model string, start time.Time, estimates bool) *sseWriter[T] {
	w := &sseWriter[T]{c: c, enc: enc, metrics: h.metrics, model: model, start: start, every: h.pingInterval, estimates: estimates}
	if w.every > 0 {
		w.mu.Lock()
		w.ping = time.AfterFunc(w.every, w.keepAlive)
		w.mu.Unlock()
	}
	return w
}

// streamDeps are what every streamed endpoint's writer uses.
type streamDeps struct {
	metrics      Recorder
	pingInterval time.Duration
}

func (w *sseWriter[T]) writeHeaders(route *domain.Route) {
	if w.headers {
		return
	}
	w.headers = true
	if route != nil {
		setRoute(w.c, *route)
	}
	hdr := w.c.Writer.Header()
	// Shared values, never changed: no allocation per stream.
	hdr["Content-Type"] = eventStream
	hdr["Cache-Control"] = noCache
	hdr["Connection"] = keepAlive
	hdr["X-Accel-Buffering"] = no
	var trailers []string
	if route == nil {
		// A keep-alive ping went out before any backend answered: who
		// serves the stream is told at its end.
		trailers = append(trailers, HeaderBackend, HeaderUpstreamModel, HeaderBackendHost, HeaderAffinity)
	}
	if w.estimates {
		trailers = append(trailers, HeaderUsageEstimated)
	}
	if len(trailers) > 0 {
		hdr.Set("Trailer", strings.Join(trailers, ", "))
	}
	w.c.Writer.WriteHeader(http.StatusOK)
	if open := w.enc.Open(); len(open) > 0 {
		_, _ = w.c.Writer.Write(open)
	}
}

// keepAlive sends an SSE comment while no frame has arrived yet, so proxies
// and load balancers do not cut a stream waiting for a slow first token. It
// runs on the timer's goroutine: once the stream started or ended it never
// writes again (both are set under the lock).
func (w *sseWriter[T]) keepAlive() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.closed || w.c.Request.Context().Err() != nil {
		return
	}
	w.writeHeaders(nil)
	if _, err := w.c.Writer.Write(pingFrame); err == nil {
		w.c.Writer.Flush()
	}
	w.ping.Reset(w.every)
}

// Begin is called once, before the first frame, with who serves the stream.
func (w *sseWriter[T]) Begin(route domain.Route) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.begin(route)
}

func (w *sseWriter[T]) begin(route domain.Route) {
	w.started = true
	if w.ping != nil {
		w.ping.Stop()
	}
	w.metrics.StreamOpened()
	w.metrics.FirstToken(route, w.model, time.Since(w.start))
	if w.headers {
		w.route = &route // sent as trailers
	}
	w.writeHeaders(&route)
}

// Send writes one frame. Once the stream started the pinger never writes,
// so frames skip the lock; only this goroutine writes started.
func (w *sseWriter[T]) Send(f T) error {
	b := w.enc.Frame(f)
	if len(b) == 0 {
		return nil
	}
	if _, err := w.c.Writer.Write(b); err != nil {
		return err
	}
	w.pending = true
	return nil
}

// Flush sends the frames written since the last flush: the backend calls it
// before each wait for upstream input, so frames that arrived together
// share one write to the client and none waits here for the network.
func (w *sseWriter[T]) Flush() error {
	if w.pending {
		w.pending = false
		w.c.Writer.Flush()
	}
	return nil
}

// finish ends the stream after the dispatch returned: the closing frames,
// an in-band error, or nothing when the client left. The writer is closed
// under the lock first, so no ping can follow (a pooled gin context may
// serve another request once the handler returned).
func (w *sseWriter[T]) finish(route domain.Route, err error, fail func(error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.ping != nil {
		w.ping.Stop()
	}
	if w.started {
		defer w.metrics.StreamClosed()
	}
	c := w.c
	ctx := c.Request.Context()
	out := c.Writer
	switch {
	case err == nil:
		if !w.started { // the upstream ended without a single frame
			w.begin(route)
		}
		_, _ = out.Write(w.enc.Close())
		out.Flush()
	case errors.Is(context.Cause(ctx), ErrShuttingDown):
		logger(c).Warn("stream cut by shutdown", zap.Bool("started", w.started))
		w.writeHeaders(nil)
		_, _ = out.Write(w.enc.Fail(apiError{Status: http.StatusServiceUnavailable, Body: openai.NewError(openai.TypeServer,
			"The server is shutting down; retry the request.", "", "server_shutting_down")}))
		out.Flush()
	case ctx.Err() != nil:
		logger(c).Info("client closed the stream", zap.Bool("started", w.started))
		if !w.headers {
			c.Status(499)
		}
	case !w.headers:
		fail(err)
	default:
		if w.started {
			logger(c).Warn("stream broke after it started", zap.Error(err))
		}
		_, _ = out.Write(w.enc.Fail(toAPIError(err)))
		out.Flush()
	}
	usage, estimated := w.enc.Usage()
	if w.estimates && w.headers {
		out.Header().Set(HeaderUsageEstimated, strconv.FormatBool(estimated))
	}
	if w.route != nil {
		routeHeaders(out.Header(), *w.route)
	}
	if usage != nil && route.Backend != "" {
		w.metrics.Tokens(route, w.model, *usage)
	}
}
