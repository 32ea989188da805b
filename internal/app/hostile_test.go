package app_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// TestSlowAndOversizedClients: a client that never finishes its headers is
// cut off, and oversized headers are refused, so neither can hold the
// server's resources.
func TestSlowAndOversizedClients(t *testing.T) {
	ol := newOllama(t, upstreamModel)
	cfg := testConfig("", ol.URL)
	cfg.Server.ReadHeaderTimeout = app.Duration(200 * time.Millisecond)
	cfg.Server.MaxHeaderBytes = 8 << 10
	r := startApp(t, cfg)

	t.Run("headers never finished", func(t *testing.T) {
		conn, err := net.Dial("tcp", r.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		// The server gives up on the headers: it answers 408 or just closes.
		got, err := io.ReadAll(conn)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the connection was still open after 10 s")
		}
		if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 408") {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("headers too large", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, r.BaseURL()+"/livez", nil)
		req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})

	t.Run("the server still serves", func(t *testing.T) {
		resp, err := http.Get(r.BaseURL() + "/livez")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		io.Copy(io.Discard, br)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}
