package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestReadSSE(t *testing.T) {
	stream := ": ping\n\n" +
		`data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}` + "\n\n" +
		`data: {"id":"x","choices":[{"index":0,"delta":{"content":"Hel"}}]}` + "\r\n\r\n" +
		`data:{"id":"x","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}` + "\n\n" +
		"data: [DONE]\n\n"
	var got []string
	if err := readSSE(strings.NewReader(stream), func(s string) { got = append(got, s) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "|Hel|lo" {
		t.Fatalf("contents %q", got)
	}
	if err := readSSE(strings.NewReader(`data: {"choices":[]}`+"\n\n"), func(string) {}); err == nil {
		t.Fatal("a stream without [DONE] read as complete")
	}
	if err := readSSE(strings.NewReader(`data: {"error":{"message":"upstream failed"}}`+"\n\n"), func(string) {}); err == nil ||
		!strings.Contains(err.Error(), "upstream failed") {
		t.Fatalf("error event: %v", err)
	}
}

func TestClientMeasuresFirstToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(b), `"stream":true`) || strings.Contains(string(b), `"user":`) {
			http.Error(w, "bad body "+string(b), 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Backend", "ollama")
		w.Header().Set("X-Backend-Host", "127.0.0.1:1234")
		w.Header().Set("X-Affinity", "hit")
		io.WriteString(w, `data: {"choices":[{"delta":{"role":"assistant","content":""}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(30 * time.Millisecond)
		io.WriteString(w, `data: {"choices":[{"delta":{"content":"ok"}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(30 * time.Millisecond)
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	cl := NewClient(srv.URL, 1)
	defer cl.Close()
	r := cl.Chat(context.Background(), "m", []Message{{Role: "user", Content: "hi"}}, "")
	if r.Err != "" || r.Answer != "ok" || r.Host != "127.0.0.1:1234" || r.Affinity != "hit" || r.Backend != "ollama" {
		t.Fatalf("%+v", r)
	}
	if r.TTFT < 30*time.Millisecond || r.Latency <= r.TTFT {
		t.Fatalf("TTFT %v, latency %v", r.TTFT, r.Latency)
	}
	r = cl.Chat(context.Background(), "m", []Message{{Role: "user", Content: "hi"}}, "someone")
	if !strings.HasPrefix(r.Err, "HTTP 400") {
		t.Fatalf("error %q", r.Err)
	}
}
