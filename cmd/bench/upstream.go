package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The fake upstreams answer every request with precomputed bytes. What a
// request wants (streamed or not, how many chunks, how far apart) comes from
// X-Bench-Chunks / X-Bench-Interval-Ms when present, else from a marker in
// the message text, "bench:chunks=N:interval=MS" — the service forwards
// message text but not client headers, so the harness always uses the marker.

const benchModel = "bench-model"

const (
	hdrChunks   = "X-Bench-Chunks"
	hdrInterval = "X-Bench-Interval-Ms"
)

// answerText is the buffered reply: about 60 words.
var answerText = strings.TrimSpace(strings.Repeat("The quick brown fox jumps over the lazy dog while the sea hums along. ", 5))

type wantParams struct {
	stream   bool
	usage    bool
	chunks   int
	interval time.Duration
}

var (
	markerChunks   = []byte("bench:chunks=")
	markerInterval = []byte(":interval=")
)

func leadingInt(b []byte) (int, bool) {
	n, i := 0, 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 9 {
		n = n*10 + int(b[i]-'0')
		i++
	}
	return n, i > 0
}

// jsonBool finds "key": and reports the literal after it (true/false) and
// whether the key was there.
func jsonBool(body []byte, key string) (val, found bool) {
	k := []byte(`"` + key + `"`)
	for off := 0; ; {
		i := bytes.Index(body[off:], k)
		if i < 0 {
			return false, false
		}
		j := off + i + len(k)
		for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r') {
			j++
		}
		if j < len(body) && body[j] == ':' {
			j++
			for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r') {
				j++
			}
			return bytes.HasPrefix(body[j:], []byte("true")), true
		}
		off = j
	}
}

func parseWant(r *http.Request, body []byte, ollama bool) wantParams {
	var p wantParams
	if ollama {
		v, ok := jsonBool(body, "stream")
		p.stream = !ok || v // Ollama streams unless told not to
	} else {
		p.stream, _ = jsonBool(body, "stream")
		p.usage, _ = jsonBool(body, "include_usage")
	}
	p.chunks = 20
	if i := bytes.Index(body, markerChunks); i >= 0 {
		rest := body[i+len(markerChunks):]
		if n, ok := leadingInt(rest); ok {
			p.chunks = n
		}
		if j := bytes.Index(rest, markerInterval); j >= 0 && j < 12 {
			if n, ok := leadingInt(rest[j+len(markerInterval):]); ok {
				p.interval = time.Duration(n) * time.Millisecond
			}
		}
	}
	if v := r.Header.Get(hdrChunks); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			p.chunks = n
		}
	}
	if v := r.Header.Get(hdrInterval); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			p.interval = time.Duration(n) * time.Millisecond
		}
	}
	if p.chunks > 100000 {
		p.chunks = 100000
	}
	return p
}

// Precomputed wire bytes.
var (
	oaiBuffered = []byte(fmt.Sprintf(`{"id":"chatcmpl-bench0123456789abcdefghij","object":"chat.completion","created":1764146000,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q,"refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":60,"total_tokens":84},"system_fingerprint":"fp_bench"}`, benchModel, answerText))
	oaiPrefix   = fmt.Sprintf(`data: {"id":"chatcmpl-bench0123456789abcdefghij","object":"chat.completion.chunk","created":1764146000,"model":%q,"system_fingerprint":"fp_bench","choices":`, benchModel)
	oaiRole     = []byte(oaiPrefix + `[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	oaiChunk    = []byte(oaiPrefix + `[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	oaiFinish   = []byte(oaiPrefix + `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}` + "\n\n")
	oaiUsage    = []byte(oaiPrefix + `[],"usage":{"prompt_tokens":24,"completion_tokens":100,"total_tokens":124}}` + "\n\n")
	oaiDone     = []byte("data: [DONE]\n\n")
	oaiModels   = []byte(fmt.Sprintf(`{"object":"list","data":[{"id":%q,"object":"model","created":1715367049,"owned_by":"bench"}]}`, benchModel))

	olStamp    = "2026-11-26T08:52:19.385406455Z"
	olFinal    = `"done_reason":"stop","done":true,"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":24,"prompt_eval_duration":342546000,"eval_count":60,"eval_duration":4535599000}`
	olBuffered = []byte(fmt.Sprintf(`{"model":%q,"created_at":%q,"message":{"role":"assistant","content":%q},%s`, benchModel, olStamp, answerText, olFinal))
	olChunk    = []byte(fmt.Sprintf(`{"model":%q,"created_at":%q,"message":{"role":"assistant","content":" token"},"done":false}`+"\n", benchModel, olStamp))
	olLast     = []byte(fmt.Sprintf(`{"model":%q,"created_at":%q,"message":{"role":"assistant","content":""},%s`+"\n", benchModel, olStamp, olFinal))
	olTags     = []byte(fmt.Sprintf(`{"models":[{"name":%q,"model":%q,"modified_at":"2025-05-10T08:06:48.639712648-07:00","size":4683075271,"digest":"0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163","details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"7.6B","quantization_level":"Q4_K_M"}}]}`, benchModel, benchModel))
)

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type fakeUpstream struct {
	ollama bool
	dump   bool
	dumped sync.Once
}

func (u *fakeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case !u.ollama && r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		w.Header().Set("Content-Type", "application/json")
		w.Write(oaiModels)
	case u.ollama && r.Method == http.MethodGet && r.URL.Path == "/api/tags":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(olTags)
	case u.ollama && r.URL.Path == "/":
		io.WriteString(w, "Ollama is running")
	case !u.ollama && r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions",
		u.ollama && r.Method == http.MethodPost && r.URL.Path == "/api/chat":
		u.chat(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (u *fakeUpstream) chat(w http.ResponseWriter, r *http.Request) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyPool.Put(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return
	}
	body := buf.Bytes()
	if u.dump && r.Header.Get("X-Agent-ID") != "" { // the first request the service sent
		u.dumped.Do(func() {
			fmt.Fprintf(os.Stderr, "first chat request (%s): %s %s\nheaders: %v\nbody: %s\n", map[bool]string{true: "ollama", false: "openai"}[u.ollama], r.Method, r.URL.Path, r.Header, body)
		})
	}
	p := parseWant(r, body, u.ollama)
	h := w.Header()
	if !p.stream {
		if u.ollama {
			h["Content-Type"] = ctOllamaJSON
			h["Content-Length"] = []string{strconv.Itoa(len(olBuffered))}
			w.Write(olBuffered)
		} else {
			h["Content-Type"] = ctJSON
			h["Content-Length"] = []string{strconv.Itoa(len(oaiBuffered))}
			w.Write(oaiBuffered)
		}
		return
	}
	fl := w.(http.Flusher)
	ctx := r.Context()
	var timer *time.Timer
	wait := func() bool {
		if p.interval <= 0 {
			return true
		}
		if timer == nil {
			timer = time.NewTimer(p.interval)
		} else {
			timer.Reset(p.interval)
		}
		select {
		case <-timer.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if u.ollama {
		h["Content-Type"] = ctNDJSON
		for i := 0; i < p.chunks; i++ {
			if i > 0 && !wait() {
				return
			}
			if _, err := w.Write(olChunk); err != nil {
				return
			}
			fl.Flush()
		}
		w.Write(olLast)
		fl.Flush()
		return
	}
	h["Content-Type"] = ctSSE
	h["Cache-Control"] = noCache
	w.Write(oaiRole)
	fl.Flush()
	for i := 0; i < p.chunks; i++ {
		if i > 0 && !wait() {
			return
		}
		if _, err := w.Write(oaiChunk); err != nil {
			return
		}
		fl.Flush()
	}
	w.Write(oaiFinish)
	if p.usage {
		w.Write(oaiUsage)
	}
	w.Write(oaiDone)
	fl.Flush()
}

var (
	ctJSON       = []string{"application/json"}
	ctOllamaJSON = []string{"application/json; charset=utf-8"}
	ctNDJSON     = []string{"application/x-ndjson"}
	ctSSE        = []string{"text/event-stream; charset=utf-8"}
	noCache      = []string{"no-cache"}
)

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// runUpstream serves the OpenAI-protocol fake and the Ollama fake on two
// loopback ports and prints "READY openaiAddr ollamaAddr".
func runUpstream(dump bool) int {
	lo, err := listenLoopback()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ll, err := listenLoopback()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, s := range []struct {
		ln net.Listener
		h  http.Handler
	}{{lo, &fakeUpstream{dump: dump}}, {ll, &fakeUpstream{ollama: true, dump: dump}}} {
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go srv.Serve(s.ln)
	}
	fmt.Printf("READY %s %s\n", lo.Addr(), ll.Addr())
	waitSignal(context.Background())
	return 0
}

func waitSignal(ctx context.Context) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-ctx.Done():
	}
}
