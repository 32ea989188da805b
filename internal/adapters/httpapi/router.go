// Package httpapi is the inbound adapter: gin routes, handlers and
// middleware that speak OpenAI's HTTP API.
package httpapi

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
)

// Options configure the router.
type Options struct {
	CORSOrigins  []string
	MaxBodyBytes int64
	// PingInterval: how often a stream waiting for its first chunk gets an
	// SSE comment (": ping"); 0 sends none.
	PingInterval time.Duration
	// APIKeys, when not empty, are required as "Authorization: Bearer".
	APIKeys []string
	// TruncateEmbeddings lets backends cut embedding inputs longer than
	// the model's context instead of refusing them with a 400.
	TruncateEmbeddings bool
	// SessionHeader names the request header a client names its
	// conversation with (pool affinity); empty: none.
	SessionHeader string
}

// Deps are what the handlers use.
type Deps struct {
	Chat  Chatter
	Text  Texter   // nil: /v1/completions is not served
	Embed Embedder // nil: /v1/embeddings is not served
	// Conversations keeps stored responses; nil: /v1/responses is not served.
	Conversations Conversations
	Catalog       Catalog
	Health        HealthReporter
	Guards        Guards // may be nil
	Ready         *atomic.Bool
	Log           *zap.Logger
	Now           func() time.Time
	// Metrics records measurements; nil records nothing.
	Metrics Recorder
	// Usage counts tokens when an upstream reports none; nil leaves usage out.
	Usage TokenCounter
	// MetricsHandler serves /metrics on this router; nil leaves it out
	// (for example when metrics have a port of their own).
	MetricsHandler http.Handler
}

func init() { gin.SetMode(gin.ReleaseMode) }

// NewRouter builds the HTTP handler of the service.
func NewRouter(opts Options, d Deps) *gin.Engine {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Ready == nil {
		d.Ready = new(atomic.Bool)
		d.Ready.Store(true)
	}
	if d.Metrics == nil {
		d.Metrics = nopRecorder{}
	}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(requestID(d.Log), accessLog(), measure(d.Metrics), recovery(), corsMiddleware(opts.CORSOrigins))

	streams := &streamDeps{metrics: d.Metrics, pingInterval: opts.PingInterval}
	chat := &chatHandler{chat: d.Chat, session: opts.SessionHeader, maxBodyBytes: opts.MaxBodyBytes, now: d.Now, metrics: d.Metrics, usage: d.Usage, streams: streams}
	models := &modelsHandler{catalog: d.Catalog}
	hh := &healthHandler{reporter: d.Health, guards: d.Guards, ready: d.Ready, now: d.Now}

	guarded := []gin.HandlerFunc{}
	if len(opts.APIKeys) > 0 {
		guarded = append(guarded, requireKey(opts.APIKeys))
	}
	v1 := r.Group("/v1", guarded...)
	v1.POST("/chat/completions", chat.serve)
	if d.Text != nil {
		text := &completionsHandler{text: d.Text, session: opts.SessionHeader, maxBodyBytes: opts.MaxBodyBytes, now: d.Now, metrics: d.Metrics, tokens: d.Usage, streams: streams}
		v1.POST("/completions", text.serve)
	}
	if d.Conversations != nil {
		rh := &responsesHandler{chat: d.Chat, convs: d.Conversations, session: opts.SessionHeader, maxBodyBytes: opts.MaxBodyBytes, now: d.Now,
			metrics: d.Metrics, tokens: d.Usage, streams: streams}
		v1.POST("/responses", rh.create)
		v1.GET("/responses/:id", rh.get)
		v1.DELETE("/responses/:id", rh.delete)
		v1.GET("/responses/:id/input_items", rh.inputItems)
	}
	if d.Embed != nil {
		embed := &embeddingsHandler{embed: d.Embed, maxBodyBytes: opts.MaxBodyBytes, metrics: d.Metrics, tokens: d.Usage, truncate: opts.TruncateEmbeddings}
		v1.POST("/embeddings", embed.serve)
	}
	v1.GET("/models", models.list)
	v1.GET("/models/*id", models.get)
	// Liveness and readiness stay open for probes; /health names backends
	// and their addresses, so it needs a key when keys are on.
	for _, p := range []struct {
		path string
		h    []gin.HandlerFunc
	}{{"/health", append(guarded, hh.health)}, {"/livez", []gin.HandlerFunc{hh.livez}}, {"/readyz", []gin.HandlerFunc{hh.readyz}}} {
		r.GET(p.path, p.h...)
		r.HEAD(p.path, p.h...)
	}
	if d.MetricsHandler != nil {
		r.GET("/metrics", gin.WrapH(d.MetricsHandler))
	}

	r.NoRoute(func(c *gin.Context) {
		msg := fmt.Sprintf("Invalid URL (%s %s)", c.Request.Method, c.Request.URL.Path)
		writeError(c, apiError{Status: http.StatusNotFound, Body: openai.NewError(openai.TypeInvalidRequest, msg, "", "unknown_url")})
	})
	r.NoMethod(func(c *gin.Context) {
		msg := fmt.Sprintf("Invalid method for URL (%s %s)", c.Request.Method, c.Request.URL.Path)
		writeError(c, apiError{Status: http.StatusMethodNotAllowed, Body: openai.NewError(openai.TypeInvalidRequest, msg, "", "method_not_allowed")})
	})
	return r
}
