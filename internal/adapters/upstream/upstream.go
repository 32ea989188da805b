// Package upstream is the HTTP plumbing both backend clients share: one
// pooled transport per backend, the headers every upstream call carries,
// the time limit to the first frame, and turning HTTP failures into
// *domain.UpstreamError values the fallback logic can judge.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Options configure a Caller.
type Options struct {
	Name    string   // backend name, used in errors
	BaseURL *url.URL // scheme, host and base path
	AgentID string   // sent as X-Agent-ID
	APIKey  string   // sent as a bearer token when set
	// Timeout limits the wait for the first frame of a stream, or for a
	// whole buffered answer.
	Timeout time.Duration
	// Transport overrides the default pooled transport (tests, proxies).
	Transport http.RoundTripper
}

// Caller sends requests to one backend.
type Caller struct {
	opts   Options
	client *http.Client
}

// NewTransport returns the transport used for backends: pooled keep-alive
// connections, no transparent compression (it would buffer event streams).
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
	}
}

// New builds a Caller.
func New(opts Options) *Caller {
	rt := opts.Transport
	if rt == nil {
		rt = NewTransport()
	}
	return &Caller{opts: opts, client: &http.Client{Transport: rt}}
}

// Name is the backend's name.
func (c *Caller) Name() string { return c.opts.Name }

// errFirstByteTimeout is the cancel cause when the first frame is late.
var errFirstByteTimeout = errors.New("no answer within the upstream timeout")

// Call is one request in flight. Close must be called.
type Call struct {
	Resp   *http.Response
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	name   string
}

// Do sends a request and returns the response when its status is 2xx; any
// other status is read and returned as *domain.UpstreamError. The timeout
// runs until Started is called.
func (c *Caller) Do(ctx context.Context, method, path string, body []byte) (*Call, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	call := &Call{ctx: ctx, cancel: cancel, name: c.opts.Name}
	if c.opts.Timeout > 0 {
		call.timer = time.AfterFunc(c.opts.Timeout, func() { cancel(errFirstByteTimeout) })
	}
	u := c.opts.BaseURL.JoinPath(path)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		call.Close()
		return nil, &domain.UpstreamError{Backend: c.opts.Name, Kind: domain.FailureProtocol, Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream, application/x-ndjson")
	req.Header.Set("User-Agent", "chatgpt-api-adapter")
	if c.opts.AgentID != "" {
		req.Header.Set("X-Agent-ID", c.opts.AgentID)
	}
	if id := domain.RequestID(ctx); id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	if c.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.APIKey)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		e := call.Fail(err)
		call.Close()
		return nil, e
	}
	call.Resp = resp
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := statusError(c.opts.Name, resp)
		call.Close()
		return nil, e
	}
	return call, nil
}

// Started stops the first-frame timer: the answer has begun.
func (c *Call) Started() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// Close releases the response and the request's context.
func (c *Call) Close() {
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.Resp != nil {
		c.Resp.Body.Close()
	}
	c.cancel(context.Canceled)
}

// Fail classifies an error met while sending or reading: the caller's own
// cancellation is returned as is; everything else is an UpstreamError.
func (c *Call) Fail(err error) error {
	if context.Cause(c.ctx) == errFirstByteTimeout {
		return &domain.UpstreamError{Backend: c.name, Kind: domain.FailureTimeout, Err: errFirstByteTimeout}
	}
	if c.ctx.Err() != nil {
		// The client went away (or the server is stopping): not a backend failure.
		return context.Cause(c.ctx)
	}
	var ue *domain.UpstreamError
	if errors.As(err, &ue) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &domain.UpstreamError{Backend: c.name, Kind: domain.FailureTimeout, Err: err}
	}
	return &domain.UpstreamError{Backend: c.name, Kind: domain.FailureUnreachable, Message: unwrapURLError(err), Err: err}
}

// Protocol reports an answer this service cannot read.
func (c *Call) Protocol(format string, args ...any) error {
	return &domain.UpstreamError{Backend: c.name, Kind: domain.FailureProtocol, Message: fmt.Sprintf(format, args...)}
}

func unwrapURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// maxErrorBody caps how much of an upstream error body is read.
const maxErrorBody = 64 << 10

// statusError reads a non-2xx answer. It understands OpenAI's error shape,
// Ollama's {"error":"text"} and plain text.
func statusError(name string, resp *http.Response) *domain.UpstreamError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &domain.UpstreamError{Backend: name, Kind: domain.FailureStatus, Status: resp.StatusCode}
	ParseErrorBody(body, e)
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// ParseErrorBody fills e's message, type, code and param from an upstream
// error body in OpenAI's or Ollama's shape, or as plain text.
func ParseErrorBody(body []byte, e *domain.UpstreamError) {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		var text string
		if json.Unmarshal(env.Error, &text) == nil {
			e.Message = text
			return
		}
		var d struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Param   any    `json:"param"`
			Code    any    `json:"code"`
		}
		if json.Unmarshal(env.Error, &d) == nil {
			e.Message, e.Type = d.Message, d.Type
			e.Code, e.Param = scalar(d.Code), scalar(d.Param)
			return
		}
	}
	e.Message = strings.TrimSpace(string(body))
	if len(e.Message) > 512 {
		e.Message = e.Message[:512] + "…"
	}
}

func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}
