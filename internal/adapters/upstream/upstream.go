// Package upstream is the HTTP plumbing both backend clients share: one
// pooled transport per backend, the headers every upstream call carries,
// time limits (connect, first byte, idle gap, total), retries on the same
// backend, and turning HTTP failures into *domain.UpstreamError values the
// fallback logic can judge.
package upstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Options configure a Caller.
type Options struct {
	Name    string   // backend name, used in errors
	BaseURL *url.URL // scheme, host and base path
	AgentID string   // sent as X-Agent-ID
	APIKey  string   // sent as a bearer token when set
	Timeouts
	Retry Retry
	// Transport overrides the default pooled transport (tests, proxies).
	Transport http.RoundTripper
}

// Timeouts bound one upstream request. Zero disables a limit.
type Timeouts struct {
	Connect time.Duration // TCP (and TLS) connection set-up
	// FirstByte limits the wait for the answer's first frame (its first
	// token): chat answers are always streamed from the upstream, so it
	// never bounds the length of an answer. For calls answered in one
	// piece (embeddings, model lists) it bounds the wait for the answer.
	FirstByte time.Duration
	Idle      time.Duration // the longest gap between two frames
	// Total bounds the whole request, answer included: a generous cap on
	// runaway answers, not a health signal.
	Total time.Duration
}

// Retry says how a failure is retried on the same backend before the
// caller falls back: connection failures, 429 and 503 only, before any
// answer was returned.
type Retry struct {
	Attempts      int           // tries in all, the first included; <= 1 means no retry
	BaseDelay     time.Duration // first backoff; doubles each retry, with full jitter
	MaxDelay      time.Duration // cap of one backoff
	MaxRetryAfter time.Duration // a longer Retry-After is not waited for: fall back instead
}

// Caller sends requests to one backend.
type Caller struct {
	opts      Options
	transport http.RoundTripper
	sleep     func(context.Context, time.Duration) error
	endpoints sync.Map // path -> *endpoint
}

// endpoint is one path of the backend, resolved once: requests share its
// URL (the transport only reads it).
type endpoint struct {
	url   *url.URL
	where map[string]string // method -> "METHOD url" for errors and logs (credentials removed)
}

// NewTransport returns the transport used for backends: pooled keep-alive
// connections, no transparent compression (it would buffer event streams).
func NewTransport(connect time.Duration) *http.Transport {
	if connect <= 0 {
		connect = 10 * time.Second
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   connect,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
	}
}

// New builds a Caller.
func New(opts Options) *Caller {
	rt := opts.Transport
	if rt == nil {
		rt = NewTransport(opts.Connect)
	}
	return &Caller{opts: opts, transport: rt, sleep: sleepCtx}
}

// endpointOf resolves path against the base URL, once per path.
func (c *Caller) endpointOf(path string) *endpoint {
	if e, ok := c.endpoints.Load(path); ok {
		return e.(*endpoint)
	}
	u := c.opts.BaseURL.JoinPath(path)
	if !strings.HasPrefix(u.Path, "/") { // a base URL without a path
		u.Path = "/" + u.Path
		if u.RawPath != "" {
			u.RawPath = "/" + u.RawPath
		}
	}
	e := &endpoint{url: u, where: map[string]string{}}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		e.where[m] = m + " " + u.Redacted()
	}
	actual, _ := c.endpoints.LoadOrStore(path, e)
	return actual.(*endpoint)
}

// Name is the backend's name.
func (c *Caller) Name() string { return c.opts.Name }

// Cancel causes of a request that ran out of time.
var (
	errFirstByteTimeout = errors.New("no answer within the first-byte timeout")
	errIdleTimeout      = errors.New("the answer stalled longer than the idle timeout")
)

func isTimeoutCause(err error) bool {
	return err == errFirstByteTimeout || err == errIdleTimeout || err == domain.ErrTotalTimeout
}

// Call is one request in flight. Close must be called.
//
// One timer enforces its three limits: the first byte (until Started is
// first called), the gap between frames (after), and the total. Frames
// only note their time; the timer, when it fires, checks what passed and
// sets itself for the next deadline, so a frame costs no timer change.
type Call struct {
	Resp      *http.Response
	ctx       context.Context
	cancel    context.CancelCauseFunc
	timer     *time.Timer
	begun     time.Time
	firstByte time.Duration
	idleAfter time.Duration
	total     time.Duration
	lastFrame atomic.Int64 // the latest frame, in ns after begun
	answered  atomic.Bool  // a frame arrived: a break now is a cut answer, not an unreachable backend
	finished  bool         // the reader saw the answer's end (End with nil)
	name      string
	where     string // method and URL, for the logs
}

// expire runs on the timer: it ends the call whose limit passed, or sets
// the timer for the next deadline.
func (c *Call) expire() {
	if c.ctx.Err() != nil {
		return
	}
	el := time.Since(c.begun)
	if c.total > 0 && el >= c.total {
		c.cancel(domain.ErrTotalTimeout)
		return
	}
	next := time.Duration(-1)
	switch {
	case !c.answered.Load() && c.firstByte > 0:
		if el >= c.firstByte {
			c.cancel(errFirstByteTimeout)
			return
		}
		next = c.firstByte - el
	case !c.answered.Load():
		next = c.idleAfter // no first-byte limit: look again later
	case c.idleAfter > 0:
		gap := el - time.Duration(c.lastFrame.Load())
		if gap >= c.idleAfter {
			c.cancel(errIdleTimeout)
			return
		}
		next = c.idleAfter - gap
	}
	if r := c.total - el; c.total > 0 && (next <= 0 || r < next) {
		next = r
	}
	if next > 0 {
		c.timer.Reset(next)
	}
}

// Do sends a request and returns the response when its status is 2xx; any
// other status is read and returned as *domain.UpstreamError. Connection
// failures, 429 and 503 are retried per Options.Retry first. The
// first-byte timer runs until Started is called.
func (c *Caller) Do(ctx context.Context, method, path string, body []byte) (*Call, error) {
	attempts := max(c.opts.Retry.Attempts, 1)
	for try := 1; ; try++ {
		call, err, again := c.do(ctx, method, path, body)
		if err == nil || !again || try >= attempts || ctx.Err() != nil {
			return call, err
		}
		wait, ok := c.retryAfter(err, try)
		if !ok {
			return nil, err
		}
		if c.sleep(ctx, wait) != nil {
			return nil, err
		}
	}
}

// retryAfter says after how long a failure worth retrying (see do) is
// retried: the upstream's Retry-After, or full jitter over an exponential
// backoff.
func (c *Caller) retryAfter(err error, try int) (time.Duration, bool) {
	var ue *domain.UpstreamError
	if !errors.As(err, &ue) {
		return 0, false
	}
	if ue.RetryAfter > 0 {
		r := c.opts.Retry
		if r.MaxRetryAfter > 0 && ue.RetryAfter > r.MaxRetryAfter {
			return 0, false
		}
		return ue.RetryAfter, true
	}
	r := c.opts.Retry
	ceiling := r.BaseDelay << (try - 1)
	if r.MaxDelay > 0 && (ceiling > r.MaxDelay || ceiling <= 0) {
		ceiling = r.MaxDelay
	}
	if ceiling <= 0 {
		return 0, true
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1)), true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// do sends one request. again says whether its failure may be retried on
// the same backend: no connection could be made (the request was not
// sent), or the backend answered 429 or 503.
func (c *Caller) do(ctx context.Context, method, path string, body []byte) (call *Call, err error, again bool) {
	ctx, cancel := context.WithCancelCause(ctx)
	ep := c.endpointOf(path)
	where, ok := ep.where[method]
	if !ok {
		where = method + " " + ep.url.Redacted()
	}
	call = &Call{ctx: ctx, cancel: cancel, name: c.opts.Name, where: where, begun: time.Now(),
		firstByte: c.opts.FirstByte, idleAfter: c.opts.Idle, total: c.opts.Total}
	if first := firstPositive(c.opts.FirstByte, c.opts.Total, c.opts.Idle); first > 0 {
		call.timer = time.AfterFunc(first, call.expire)
	}
	req := &http.Request{Method: method, URL: ep.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, 8), Host: ep.url.Host}
	if body != nil {
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	req = req.WithContext(ctx)
	h := req.Header
	if body != nil {
		h["Content-Type"] = jsonType
	}
	h["Accept"] = acceptAll
	h["User-Agent"] = userAgent
	if c.opts.AgentID != "" {
		h["X-Agent-Id"] = []string{c.opts.AgentID}
	}
	if id := domain.RequestID(ctx); id != "" {
		h["X-Request-Id"] = []string{id}
	}
	if c.opts.APIKey != "" {
		h["Authorization"] = []string{"Bearer " + c.opts.APIKey}
	}
	// The transport itself, not an http.Client: nothing to follow (a
	// redirect is a misconfigured URL, see Classify) and no per-request
	// copy of the headers.
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		e := call.Fail(err)
		call.Close()
		var ue *domain.UpstreamError
		return nil, e, errors.As(e, &ue) && ue.Dial
	}
	call.Resp = resp
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := statusError(c.opts.Name, call.where, resp)
		call.Close()
		return nil, e, resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
	}
	return call, nil, false
}

// firstPositive is the smallest positive duration of ds, or 0.
func firstPositive(ds ...time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		if d > 0 && (m == 0 || d < m) {
			m = d
		}
	}
	return m
}

var (
	jsonType  = []string{"application/json"}
	acceptAll = []string{"application/json, text/event-stream, application/x-ndjson"}
	userAgent = []string{"chatgpt-api-adapter"}
)

// Body is the response body for stream readers: before every read, which
// may wait for the network, it calls flush, so the frames read so far go
// out to the client as one batch and none waits while held back. A flush
// error (the client went away) ends the read with that error.
func (c *Call) Body(flush func() error) io.Reader {
	return &flushingReader{r: c.Resp.Body, flush: flush}
}

type flushingReader struct {
	r     io.Reader
	flush func() error
}

func (f *flushingReader) Read(p []byte) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.r.Read(p)
}

// Started notes a frame of the answer: the first ends the wait for the
// first byte; each restarts the gap the idle limit bounds.
func (c *Call) Started() {
	c.lastFrame.Store(int64(time.Since(c.begun)))
	if !c.answered.Load() {
		c.answered.Store(true)
	}
}

// End notes how reading the answer ended and returns err: nil means the
// reader saw the answer's last frame ([DONE], Ollama's done line), so Close
// reads the little that follows it (the end of the chunked body) and the
// connection goes back to the pool for the next call. Closed before its
// end, a body takes its connection with it: every stream would then dial
// a new one (and, to an https gateway, shake hands again).
func (c *Call) End(err error) error {
	if err == nil {
		c.finished = true
	}
	return err
}

// Close releases the response and the request's context.
func (c *Call) Close() {
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.Resp != nil {
		if c.finished {
			c.drain()
		}
		c.Resp.Body.Close()
	}
	c.cancel(context.Canceled)
}

// A finished answer's body is read to its end for at most drainBytes or
// drainWait; a backend that sends more, or holds the body open after its
// last frame, loses the connection instead.
const (
	drainBytes = 4 << 10
	drainWait  = 50 * time.Millisecond
)

// drain reads the rest of a finished answer's body to its end. The end of
// the chunked encoding is normally already received with the last frame,
// so this returns at once.
func (c *Call) drain() {
	stop := time.AfterFunc(drainWait, func() { c.cancel(errDrainTimeout) })
	defer stop.Stop()
	var buf [512]byte
	for n := 0; n <= drainBytes; {
		k, err := c.Resp.Body.Read(buf[:])
		n += k
		if err != nil {
			return
		}
	}
}

var errDrainTimeout = errors.New("the answer's body stayed open after its last frame")

// Fail classifies an error met while sending or reading: the caller's own
// cancellation is returned as is; everything else is an UpstreamError whose
// Detail (never shown to a client) keeps the network error.
func (c *Call) Fail(err error) error {
	if cause := context.Cause(c.ctx); isTimeoutCause(cause) {
		return &domain.UpstreamError{Backend: c.name, Kind: domain.FailureTimeout, Detail: c.where + ": " + cause.Error(), Err: cause}
	}
	if c.ctx.Err() != nil {
		// The client went away (or the server is stopping): not a backend failure.
		return context.Cause(c.ctx)
	}
	var ue *domain.UpstreamError
	if errors.As(err, &ue) {
		return err
	}
	detail := c.where + ": " + unwrapURLError(err)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &domain.UpstreamError{Backend: c.name, Kind: domain.FailureTimeout, Detail: detail, Err: err}
	}
	if c.answered.Load() {
		return &domain.UpstreamError{Backend: c.name, Kind: domain.FailureProtocol, Message: "the answer broke off", Detail: detail, Err: err}
	}
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	return &domain.UpstreamError{Backend: c.name, Kind: domain.FailureUnreachable, Dial: dial, Detail: detail, Err: err}
}

// Protocol reports an answer this service cannot read.
func (c *Call) Protocol(format string, args ...any) error {
	return &domain.UpstreamError{Backend: c.name, Kind: domain.FailureProtocol, Message: fmt.Sprintf(format, args...), Detail: c.where}
}

// Where is the request's method and URL (credentials removed), for errors.
func (c *Call) Where() string { return c.where }

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
// Ollama's {"error":"text"} and plain text, and says what the status means
// for this service: see Classify.
func statusError(name, where string, resp *http.Response) *domain.UpstreamError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &domain.UpstreamError{Backend: name, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Detail: fmt.Sprintf("HTTP %d from %s", resp.StatusCode, where)}
	ParseErrorBody(body, e)
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	e.Kind = Classify(resp.StatusCode, e)
	return e
}

// Classify maps an upstream's error status onto a failure kind: 401 and
// 403 refuse this service's credentials; 404 is a missing model only when
// the backend says so (OpenAI's model_not_found, "model … not found" or
// "… does not exist"), else a wrong base URL, as is a redirect (3xx: a
// POST is not re-sent elsewhere); 429 is a rate limit; 408 and 504 a
// timeout; other 5xx a server error; other 4xx a rejected request.
func Classify(status int, e *domain.UpstreamError) domain.FailureKind {
	switch {
	case status >= 300 && status < 400:
		return domain.FailureMisrouted
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return domain.FailureUnauthorized
	case status == http.StatusNotFound && saysModelMissing(e):
		return domain.FailureModelMissing
	case status == http.StatusNotFound:
		return domain.FailureMisrouted
	case status == http.StatusTooManyRequests:
		return domain.FailureRateLimited
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		return domain.FailureTimeout
	case status >= 500:
		return domain.FailureServer
	}
	return domain.FailureRejected
}

// saysModelMissing reads an upstream's 404 for "no such model": OpenAI,
// vLLM, LiteLLM and Ollama's OpenAI layer say model_not_found or "The model
// `x` does not exist"; Ollama's native API says `model "x" not found`.
func saysModelMissing(e *domain.UpstreamError) bool {
	if e.Code == "model_not_found" {
		return true
	}
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "model") && (strings.Contains(m, "not found") || strings.Contains(m, "does not exist"))
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

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 when
// absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// ErrLineTooLong is returned by Lines for a line longer than its limit.
var ErrLineTooLong = errors.New("stream line too long")

// Lines reads a stream line by line (SSE, NDJSON) with a small buffer,
// refusing lines longer than max so an upstream cannot make it buffer
// without bound.
type Lines struct {
	r      *bufio.Reader
	max    int
	long   []byte
	pooled bool
}

// lineReaders keeps the 4 KiB readers of finished streams for the next:
// a stream's largest allocation otherwise, and so most of what makes the
// collector run on streams.
var lineReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, LineBuffer) }}

// LineBuffer is the read buffer of Lines.
const LineBuffer = 4 << 10

// NewLines reads r with a buffer of size bytes (LineBuffer: one from a
// pool, which Release gives back), refusing lines longer than max.
func NewLines(r io.Reader, size, max int) *Lines {
	if size != LineBuffer {
		return &Lines{r: bufio.NewReaderSize(r, size), max: max}
	}
	br := lineReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return &Lines{r: br, max: max, pooled: true}
}

// Release gives a pooled buffer back; the lines returned are invalid after
// it, and l must not be used again.
func (l *Lines) Release() {
	if l.pooled && l.r != nil {
		l.r.Reset(nil)
		lineReaders.Put(l.r)
	}
	l.r = nil
}

// Next returns the next line without its end of line; it is valid until
// the next call. The last line may lack its newline; io.EOF follows it.
func (l *Lines) Next() ([]byte, error) {
	line, err := l.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		l.long = append(l.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = l.r.ReadSlice('\n')
			l.long = append(l.long, line...)
			if len(l.long) > l.max {
				return nil, ErrLineTooLong
			}
		}
		line = l.long
	}
	if err != nil && (err != io.EOF || len(line) == 0) {
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}
