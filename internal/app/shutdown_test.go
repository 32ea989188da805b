package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// openStream starts a streamed chat completion on r and returns the open
// response; the test reads it with readEvent.
func openStream(t *testing.T, r *running) (*http.Response, *bufio.Reader) {
	t.Helper()
	body := `{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"Count."}]}`
	req, err := http.NewRequestWithContext(ctxFor(t), http.MethodPost, r.BaseURL()+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := newHTTPClient(t).Do(req)
	if err != nil {
		t.Fatalf("POST /v1/chat/completions: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return resp, bufio.NewReader(resp.Body)
}

// readEvent reads one server-sent event and returns its data.
func readEvent(br *bufio.Reader) (string, error) {
	var data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return data, nil
		}
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			return "", fmt.Errorf("not a data line: %q", line)
		}
		data = d
	}
}

// countPieces returns n pieces "p0 ", "p1 ", … and their concatenation.
func countPieces(n int) ([]string, string) {
	pieces := make([]string, n)
	for i := range pieces {
		pieces[i] = fmt.Sprintf("p%d ", i)
	}
	return pieces, strings.Join(pieces, "")
}

// contentOf is the delta content of a chunk, "" for other events.
func contentOf(t *testing.T, data string) string {
	t.Helper()
	var c wireChunk
	if data == "[DONE]" {
		return ""
	}
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		t.Fatalf("event %q: %v", data, err)
	}
	if len(c.Choices) == 0 || c.Choices[0].Delta.Content == nil {
		return ""
	}
	return *c.Choices[0].Delta.Content
}

// notReady polls /readyz on fresh connections until it answers 503 or the
// connection is refused, and reports which.
func notReady(t *testing.T, r *running) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(r.BaseURL() + "/readyz")
		if err != nil {
			// Refused, or accepted by the kernel and dropped with the
			// listener: either way no new request is served.
			return "refused (" + err.Error() + ")"
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			return "503"
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("/readyz kept answering 200 and accepting connections while stopping")
	return ""
}

func TestShutdownLetsOpenStreamFinish(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, upstreamModel)
	pieces, want := countPieces(10)
	ol.Pieces, ol.PieceDelay = pieces, 100*time.Millisecond
	cfg := testConfig("", ol.URL)
	cfg.Server.DrainTimeout = app.Duration(5 * time.Second)
	r := startApp(t, cfg)

	_, br := openStream(t, r)
	first, err := readEvent(br)
	if err != nil {
		t.Fatalf("first event: %v", err)
	}
	got := contentOf(t, first)

	stopErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopErr <- r.App.Stop(ctx)
	}()
	how := notReady(t, r)
	t.Logf("while draining, a new request was %s", how)

	for {
		data, err := readEvent(br)
		if err != nil {
			t.Fatalf("the open stream broke while draining after %q: %v", got, err)
		}
		if data == "[DONE]" {
			break
		}
		got += contentOf(t, data)
	}
	if got != want {
		t.Errorf("content %q, want every piece %q", got, want)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after [DONE]: %v, want EOF", err)
	}
	select {
	case err := <-stopErr:
		if err != nil {
			t.Errorf("Stop: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return after the stream finished")
	}
	if n := r.Logs.FilterMessageSnippet("drain timeout").Len(); n != 0 {
		t.Errorf("logged the drain timeout %d times, want 0", n)
	}
}

func TestShutdownDrainTimeoutCutsStream(t *testing.T) {
	t.Parallel()
	ol := newOllama(t, upstreamModel)
	pieces, want := countPieces(20)
	ol.Pieces, ol.PieceDelay = pieces, 100*time.Millisecond // 2s of stream
	cfg := testConfig("", ol.URL)
	cfg.Server.DrainTimeout = app.Duration(200 * time.Millisecond)
	r := startApp(t, cfg)

	_, br := openStream(t, r)
	first, err := readEvent(br)
	if err != nil {
		t.Fatalf("first event: %v", err)
	}
	got := contentOf(t, first)

	start := time.Now()
	stopErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopErr <- r.App.Stop(ctx)
	}()

	// The client sees its stream end early: not every piece, then an
	// in-band error frame saying the server is shutting down, no [DONE].
	var readErr error
	shutdownFrame := false
	for {
		data, err := readEvent(br)
		if err != nil {
			readErr = err
			break
		}
		if data == "[DONE]" {
			t.Fatal("the stream finished although the drain timeout is shorter than it")
		}
		if strings.HasPrefix(data, `{"error"`) {
			shutdownFrame = strings.Contains(data, `"code":"server_shutting_down"`)
			if !shutdownFrame {
				t.Errorf("error frame %s, want code server_shutting_down", data)
			}
			continue
		}
		got += contentOf(t, data)
	}
	if got == want || !strings.HasPrefix(want, got) {
		t.Errorf("content %q: want a strict prefix of %q", got, want)
	}
	if !shutdownFrame {
		t.Error("the cut stream got no server_shutting_down error frame")
	}
	t.Logf("the stream was cut after %q: %v", got, readErr)

	select {
	case err := <-stopErr:
		elapsed := time.Since(start)
		if err != nil {
			t.Errorf("Stop: %v, want nil", err)
		}
		if elapsed > 1500*time.Millisecond {
			t.Errorf("Stop took %v with a drain timeout of 200ms", elapsed)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop hangs after the drain timeout")
	}
	if n := r.Logs.FilterMessageSnippet("drain timeout reached").Len(); n != 1 {
		t.Errorf("logged the drain timeout %d times, want 1; logs: %v", n, r.Logs.All())
	}
}
