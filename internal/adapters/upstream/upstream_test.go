package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// scripted answers the n-th request with the n-th handler (the last one
// repeats) and counts requests.
type scripted struct {
	steps []http.HandlerFunc
	n     atomic.Int32
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(s.n.Add(1)) - 1
	if i >= len(s.steps) {
		i = len(s.steps) - 1
	}
	s.steps[i](w, r)
}

func status(code int, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		http.Error(w, `{"error":{"message":"busy","type":"server_error"}}`, code)
	}
}

func ok(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) }

func caller(t *testing.T, base string, opts upstream.Options) *upstream.Caller {
	t.Helper()
	u, _ := url.Parse(base)
	opts.Name, opts.BaseURL = "b", u
	tr := upstream.NewTransport(opts.Connect)
	t.Cleanup(tr.CloseIdleConnections)
	opts.Transport = tr
	return upstream.New(opts)
}

func do(c *upstream.Caller) error {
	call, err := c.Do(context.Background(), http.MethodPost, "x", []byte(`{}`))
	if err == nil {
		call.Close()
	}
	return err
}

func TestRetries(t *testing.T) {
	retry := upstream.Retry{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxRetryAfter: time.Second}
	for _, tc := range []struct {
		name     string
		steps    []http.HandlerFunc
		retry    upstream.Retry
		wantErr  int // expected final status, 0 for success
		requests int32
	}{
		{"503 then ok", []http.HandlerFunc{status(503, ""), ok}, retry, 0, 2},
		{"429 with Retry-After 0 then ok", []http.HandlerFunc{status(429, "0"), ok}, retry, 0, 2},
		{"503 three times: gives up", []http.HandlerFunc{status(503, "")}, retry, 503, 3},
		{"500 is not retried", []http.HandlerFunc{status(500, ""), ok}, retry, 500, 1},
		{"400 is not retried", []http.HandlerFunc{status(400, ""), ok}, retry, 400, 1},
		{"Retry-After beyond the cap: fall back instead", []http.HandlerFunc{status(503, "30"), ok}, retry, 503, 1},
		{"no retries configured", []http.HandlerFunc{status(503, ""), ok}, upstream.Retry{}, 503, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scripted{steps: tc.steps}
			srv := httptest.NewServer(s)
			defer srv.Close()
			err := do(caller(t, srv.URL, upstream.Options{Retry: tc.retry}))
			var ue *domain.UpstreamError
			switch {
			case tc.wantErr == 0 && err != nil:
				t.Fatalf("got %v", err)
			case tc.wantErr != 0 && (!errors.As(err, &ue) || !strings.Contains(ue.Detail, fmt.Sprintf("HTTP %d from POST http://", tc.wantErr))):
				t.Fatalf("got %v, want status %d", err, tc.wantErr)
			}
			if got := s.n.Load(); got != tc.requests {
				t.Errorf("%d requests, want %d", got, tc.requests)
			}
		})
	}
}

func TestRetryAfterIsParsed(t *testing.T) {
	srv := httptest.NewServer(status(429, "7"))
	defer srv.Close()
	err := do(caller(t, srv.URL, upstream.Options{}))
	var ue *domain.UpstreamError
	if !errors.As(err, &ue) || ue.RetryAfter != 7*time.Second {
		t.Fatalf("got %#v", err)
	}
}

func TestDialErrorsAreRetriedThenUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	err = do(caller(t, "http://"+addr, upstream.Options{Retry: upstream.Retry{Attempts: 2, BaseDelay: time.Millisecond}}))
	var ue *domain.UpstreamError
	if !errors.As(err, &ue) || ue.Kind != domain.FailureUnreachable || !ue.Dial {
		t.Fatalf("got %#v", err)
	}
}

// hold answers headers, then one frame, then waits for the client to leave.
func hold(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/x-ndjson")
	io.WriteString(w, "{}\n")
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

func TestTimeouts(t *testing.T) {
	// A handler must read the body before net/http notices the client
	// leaving and ends its context.
	hang := func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body); <-r.Context().Done() }
	for _, tc := range []struct {
		name     string
		handler  http.HandlerFunc
		timeouts upstream.Timeouts
		frames   bool // read a first frame, then wait
	}{
		{"first byte", hang, upstream.Timeouts{FirstByte: 50 * time.Millisecond}, false},
		{"idle gap between frames", hold, upstream.Timeouts{FirstByte: time.Minute, Idle: 50 * time.Millisecond}, true},
		{"total", hold, upstream.Timeouts{FirstByte: time.Minute, Idle: time.Minute, Total: 80 * time.Millisecond}, true},
		{"idle gap without a first-byte limit", hold, upstream.Timeouts{Idle: 50 * time.Millisecond}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			c := caller(t, srv.URL, upstream.Options{Timeouts: tc.timeouts})
			call, err := c.Do(context.Background(), http.MethodPost, "x", []byte(`{}`))
			if err == nil {
				defer call.Close()
				buf := make([]byte, 3)
				if _, err = io.ReadFull(call.Resp.Body, buf); err != nil {
					t.Fatal(err)
				}
				call.Started()
				_, err = io.ReadAll(call.Resp.Body)
				err = call.Fail(err)
			}
			var ue *domain.UpstreamError
			if !errors.As(err, &ue) || ue.Kind != domain.FailureTimeout {
				t.Fatalf("got %#v, want a timeout", err)
			}
			// Only the total limit says nothing about the backend's health.
			if ue.Unhealthy() == (tc.name == "total") {
				t.Errorf("%v: unhealthy %v", err, ue.Unhealthy())
			}
		})
	}
}

// TestFramesKeepAStreamAlive: a stream whose frames come more often than
// the idle limit runs as long as it lasts, past the first-byte and idle
// limits many times over (frames only note their time; the one timer
// looks again when it fires).
func TestFramesKeepAStreamAlive(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for i := range 30 {
			fmt.Fprintf(w, "{\"n\":%d}\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(25 * time.Millisecond)
		}
	}))
	defer srv.Close()
	// The stream lasts 3 times each limit; a gap would have to pass 300 ms.
	c := caller(t, srv.URL, upstream.Options{Timeouts: upstream.Timeouts{FirstByte: 250 * time.Millisecond, Idle: 300 * time.Millisecond}})
	call, err := c.Do(context.Background(), http.MethodPost, "x", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	buf := make([]byte, 1)
	lines := 0
	for {
		_, err := call.Resp.Body.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d lines: %v (%v)", lines, call.Fail(err), err)
		}
		if buf[0] == '\n' {
			lines++
			call.Started()
		}
	}
	if lines != 30 {
		t.Fatalf("%d lines, want 30", lines)
	}
}

// TestARedirectIsAMisconfiguredURL: a POST is not re-sent to wherever a
// 3xx points (it would arrive as a GET); the backend's URL is wrong.
func TestARedirectIsAMisconfiguredURL(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			posts.Add(1)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	err := do(caller(t, srv.URL, upstream.Options{}))
	var ue *domain.UpstreamError
	if !errors.As(err, &ue) || ue.Kind != domain.FailureMisrouted || !ue.Unhealthy() {
		t.Fatalf("got %#v, want a misrouted backend", err)
	}
	if posts.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

func TestCallerCancellationIsNotAFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(hold))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	call, err := caller(t, srv.URL, upstream.Options{}).Do(ctx, http.MethodPost, "x", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	cancel()
	_, err = io.ReadAll(call.Resp.Body)
	if err = call.Fail(err); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %#v, want context.Canceled", err)
	}
}
