package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A client that goes away must not leave its upstream request running: the
// service cancels it, and the upstream sees its connection close, within
// 100 ms of the abort.

// abortBound is the requirement: the upstream learns of a client's
// abort within this long.
const abortBound = 100 * time.Millisecond

// slowOllama is a test-local upstream speaking Ollama's protocol. /api/chat
// holds the answer back for firstDelay, then streams a line every
// pieceDelay for as long as the client stays; it reports when a chat
// request arrived and when that request's context ended.
type slowOllama struct {
	*httptest.Server
	firstDelay time.Duration // before the first line; long means "never"
	pieceDelay time.Duration
	arrived    chan struct{}  // one value per chat request, once its body was read
	ended      chan time.Time // when the chat request's context was done
}

func newSlowOllama(t *testing.T, firstDelay, pieceDelay time.Duration) *slowOllama {
	t.Helper()
	s := &slowOllama{firstDelay: firstDelay, pieceDelay: pieceDelay, arrived: make(chan struct{}, 1), ended: make(chan time.Time, 1)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *slowOllama) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/tags":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprintf(w, `{"models":[{"name":%q,"model":%q,"modified_at":"2025-05-10T08:06:48.639712648-07:00","size":1,"digest":"0a8c","details":{}}]}`, upstreamModel, upstreamModel)
		return
	case "/api/chat":
	default:
		http.NotFound(w, r)
		return
	}
	// Reading the body to its end lets the server watch the connection:
	// from then on a closed connection cancels r.Context at once.
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	ctx := r.Context()
	s.arrived <- struct{}{}
	defer func() {
		<-ctx.Done()
		s.ended <- time.Now()
	}()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !wait(s.firstDelay) {
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	for i := 0; ; i++ {
		fmt.Fprintf(w, `{"model":%q,"created_at":"2026-11-26T08:52:19.385406455Z","message":{"role":"assistant","content":"tok%d "},"done":false}`+"\n", upstreamModel, i)
		w.(http.Flusher).Flush()
		if !wait(s.pieceDelay) {
			return
		}
	}
}

// upstreamEnded waits for the upstream to see its request end and returns
// how long after the abort at aborted that was.
func (s *slowOllama) upstreamEnded(t *testing.T, aborted time.Time) time.Duration {
	t.Helper()
	select {
	case ended := <-s.ended:
		if ended.Before(aborted) {
			t.Fatalf("the upstream request ended %v before the client aborted", aborted.Sub(ended))
		}
		t.Logf("the upstream saw its request end %v after the client aborted", ended.Sub(aborted))
		return ended.Sub(aborted)
	case <-time.After(15 * time.Second):
		t.Fatal("the upstream request was still running 15s after the client aborted")
		return 0
	}
}

// waitArrived waits until the upstream holds the chat request.
func (s *slowOllama) waitArrived(t *testing.T) {
	t.Helper()
	select {
	case <-s.arrived:
	case <-time.After(15 * time.Second):
		t.Fatal("the chat request did not reach the upstream")
	}
}

func TestClientAbortCancelsUpstream(t *testing.T) {
	noLeaks(t)

	// The client reads the first chunk of a stream, then closes the stream.
	t.Run("mid-stream", func(t *testing.T) {
		up := newSlowOllama(t, 0, 200*time.Millisecond)
		r := startApp(t, faultConfig("", up.URL))

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.BaseURL()+"/v1/chat/completions", strings.NewReader(faultStreamed))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := faultClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend") != "ollama" {
			t.Fatalf("status %d X-Backend %q, want 200 ollama", resp.StatusCode, resp.Header.Get("X-Backend"))
		}
		up.waitArrived(t)
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("before the first chunk: %v", err)
			}
			if strings.HasPrefix(line, "data: {") {
				if !strings.Contains(line, `"content":"tok0 "`) {
					t.Fatalf("first chunk %q, want the first token", line)
				}
				break
			}
		}
		aborted := time.Now()
		cancel()
		resp.Body.Close()

		if d := up.upstreamEnded(t, aborted); d >= abortBound {
			t.Errorf("the upstream saw the abort %v after it, want under %v", d, abortBound)
		}
	})

	// The client gives up while the upstream is still silent, before any
	// chunk and before the response headers; streamed or buffered.
	for _, tc := range []struct{ name, body string }{
		{"before the first token, streamed", faultStreamed},
		{"before the answer, buffered", faultBuffered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newSlowOllama(t, time.Hour, time.Hour)
			r := startApp(t, faultConfig("", up.URL))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.BaseURL()+"/v1/chat/completions", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			hc := faultClient(t)
			go func() {
				resp, err := hc.Do(req)
				if err == nil {
					resp.Body.Close()
					err = fmt.Errorf("got an answer, status %d", resp.StatusCode)
				}
				done <- err
			}()
			up.waitArrived(t)
			aborted := time.Now()
			cancel()

			if d := up.upstreamEnded(t, aborted); d >= abortBound {
				t.Errorf("the upstream saw the abort %v after it, want under %v", d, abortBound)
			}
			select {
			case err := <-done:
				if ctx.Err() == nil || err == nil || !strings.Contains(err.Error(), "context canceled") {
					t.Errorf("client: %v, want its own cancellation", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the client's request did not return after it was cancelled")
			}
		})
	}
}
