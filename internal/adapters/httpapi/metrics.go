package httpapi

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Recorder receives what the HTTP layer measures.
type Recorder interface {
	Request(route, method string, code int, elapsed time.Duration)
	FirstToken(route domain.Route, model string, elapsed time.Duration)
	Tokens(route domain.Route, model string, u domain.Usage)
	StreamOpened()
	StreamClosed()
}

// nopRecorder measures nothing.
type nopRecorder struct{}

func (nopRecorder) Request(string, string, int, time.Duration)     {}
func (nopRecorder) FirstToken(domain.Route, string, time.Duration) {}
func (nopRecorder) Tokens(domain.Route, string, domain.Usage)      {}
func (nopRecorder) StreamOpened()                                  {}
func (nopRecorder) StreamClosed()                                  {}

// measure counts every request by its route template (never the raw path,
// which would make the label unbounded).
func measure(rec Recorder) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		rec.Request(c.FullPath(), c.Request.Method, c.Writer.Status(), time.Since(start))
	}
}
