package httpapi

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// HeaderRequestID carries the request id in and out.
const HeaderRequestID = "X-Request-ID"

const (
	baseLoggerKey = "chatgpt-api.base-logger"
	loggerKey     = "chatgpt-api.logger"
	requestIDKey  = "chatgpt-api.request-id"
)

// requestID honours a well-formed X-Request-ID or makes one, echoes it, and
// stores it in the request context. The logger tagged with it is made only
// when a handler logs (see logger): most requests log one access line,
// which adds the id itself.
func requestID(base *zap.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(HeaderRequestID)
		if !validRequestID(id) {
			id = wire.RandomText("req_")
		}
		c.Header(HeaderRequestID, id)
		ctx := domain.WithRequestID(c.Request.Context(), id)
		c.Request = c.Request.WithContext(ctx)
		c.Set(baseLoggerKey, base)
		c.Set(requestIDKey, id)
		c.Next()
	}
}

func baseLogger(c *gin.Context) *zap.Logger {
	if l, ok := c.Get(baseLoggerKey); ok {
		return l.(*zap.Logger)
	}
	return zap.NewNop()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if ch <= ' ' || ch >= 0x7f {
			return false
		}
	}
	return true
}

// logger returns the request's logger, tagged with its request id.
func logger(c *gin.Context) *zap.Logger {
	if l, ok := c.Get(loggerKey); ok {
		return l.(*zap.Logger)
	}
	l := baseLogger(c).With(zap.String("request_id", c.GetString(requestIDKey)))
	c.Set(loggerKey, l)
	return l
}

// quietPaths are probed often; their access lines are logged at debug.
var quietPaths = map[string]bool{"/health": true, "/livez": true, "/readyz": true, "/metrics": true}

// accessLog writes one line per request once it is done.
func accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		// Deferred, so a request whose handler panicked is logged too.
		defer logAccess(c, start)
		c.Next()
	}
}

func logAccess(c *gin.Context, start time.Time) {
	{
		level := zapcore.InfoLevel
		if quietPaths[c.Request.URL.Path] {
			level = zapcore.DebugLevel
		}
		if c.Writer.Status() >= 500 {
			level = zapcore.WarnLevel
		}
		if ce := baseLogger(c).Check(level, "request"); ce != nil {
			ce.Write(
				zap.String("request_id", c.GetString(requestIDKey)),
				zap.String("method", c.Request.Method),
				zap.String("path", c.Request.URL.Path),
				zap.String("route", c.FullPath()),
				zap.Int("status", c.Writer.Status()),
				zap.Int("bytes", c.Writer.Size()),
				zap.Duration("duration", time.Since(start)),
				zap.String("backend", c.Writer.Header().Get(HeaderBackend)),
				zap.String("host", c.Writer.Header().Get(HeaderBackendHost)),
				// The peer as seen; X-Forwarded-For as sent (gin's ClientIP would
				// trust it from anyone, and costs a parse per request).
				zap.String("remote", c.Request.RemoteAddr),
				zap.String("forwarded_for", c.Request.Header.Get("X-Forwarded-For")),
				zap.String("user_agent", c.Request.UserAgent()),
			)
		}
	}
}

// recovery turns a panic into a logged 500 with OpenAI's error body. A
// panic after the answer started cannot change its status; the connection
// is then closed by net/http.
func recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r)
			}
			logger(c).Error("panic while handling request",
				zap.String("panic", fmt.Sprint(r)), zap.ByteString("stack", debug.Stack()))
			if c.Writer.Written() {
				// Deliver what was already written, then cut the
				// connection: the client sees the answer is incomplete.
				c.Writer.Flush()
				panic(http.ErrAbortHandler)
			}
			writeError(c, apiError{Status: http.StatusInternalServerError, Body: openai.NewError(openai.TypeServer, "The server had an error while processing your request.", "", "internal_error")})
			c.Abort()
		}()
		c.Next()
	}
}

// corsHeaders are the request headers browsers may send: those of OpenAI's
// SDKs (the x-stainless-* family and OpenAI-*), and "*" for any other.
var corsHeaders = []string{
	"Authorization", "Content-Type", "Accept", HeaderRequestID,
	"OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta",
	"X-Stainless-Arch", "X-Stainless-Lang", "X-Stainless-OS", "X-Stainless-Package-Version",
	"X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Retry-Count",
	"X-Stainless-Timeout", "X-Stainless-Read-Timeout", "X-Stainless-Async",
	"X-Stainless-Helper-Method", "X-Stainless-Poll-Helper", "X-Stainless-Custom-Poll-Interval",
	"X-Stainless-Raw-Response", "X-Stainless-Stream-Helper", "*",
}

func corsMiddleware(origins []string) gin.HandlerFunc {
	cfg := cors.Config{
		AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodHead, http.MethodOptions},
		AllowHeaders:  corsHeaders,
		ExposeHeaders: []string{HeaderRequestID, HeaderBackend, HeaderUpstreamModel, HeaderBackendHost, HeaderAffinity},
		MaxAge:        12 * time.Hour,
	}
	for _, o := range origins {
		if o == "*" {
			cfg.AllowAllOrigins = true
		}
	}
	if !cfg.AllowAllOrigins {
		cfg.AllowOrigins = origins
		cfg.AllowWildcard = true
	}
	return cors.New(cfg)
}

// writeError sends an OpenAI error body.
func writeError(c *gin.Context, e apiError) {
	c.Header("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if e.NoRetry {
		c.Header("X-Should-Retry", "false")
	}
	c.JSON(e.Status, e.Body)
}
