package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	v, ok := jsonValue(body, key)
	return ok && bytes.HasPrefix(v, []byte("true")), ok
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
	oaiModels   = []byte(fmt.Sprintf(`{"object":"list","data":[{"id":%q,"object":"model","created":1715367049,"owned_by":"bench"},{"id":%q,"object":"model","created":1715367049,"owned_by":"bench"}]}`, benchModel, embedModel))

	olStamp    = "2026-11-26T08:52:19.385406455Z"
	olFinal    = `"done_reason":"stop","done":true,"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":24,"prompt_eval_duration":342546000,"eval_count":60,"eval_duration":4535599000}`
	olBuffered = []byte(fmt.Sprintf(`{"model":%q,"created_at":%q,"message":{"role":"assistant","content":%q},%s`, benchModel, olStamp, answerText, olFinal))
	olChunk    = []byte(fmt.Sprintf(`{"model":%q,"created_at":%q,"message":{"role":"assistant","content":" token"},"done":false}`+"\n", benchModel, olStamp))
	olLast     = []byte(fmt.Sprintf(`{"model":%q,"created_at":%q,"message":{"role":"assistant","content":""},%s`+"\n", benchModel, olStamp, olFinal))
	// Legacy text completions (POST /v1/completions) as OpenAI streams
	// them: no role frame, the text in choices[].text.
	oaiTextBuffered = []byte(fmt.Sprintf(`{"id":"cmpl-bench0123456789abcdefghij","object":"text_completion","created":1764146000,"model":%q,"choices":[{"text":%q,"index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":60,"total_tokens":72},"system_fingerprint":"fp_bench"}`, benchModel, answerText))
	oaiTextPrefix   = `data: {"id":"cmpl-bench0123456789abcdefghij","object":"text_completion","created":1764146000,"choices":`
	oaiTextChunk    = []byte(oaiTextPrefix + `[{"text":" token","index":0,"logprobs":null,"finish_reason":null}],"model":"` + benchModel + `","system_fingerprint":"fp_bench"}` + "\n\n")
	oaiTextFinish   = []byte(oaiTextPrefix + `[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}],"model":"` + benchModel + `","system_fingerprint":"fp_bench"}` + "\n\n")
	oaiTextUsage    = []byte(oaiTextPrefix + `[],"model":"` + benchModel + `","system_fingerprint":"fp_bench","usage":{"prompt_tokens":12,"completion_tokens":100,"total_tokens":112}}` + "\n\n")

	// Ollama's /api/generate (what the service sends legacy completions to).
	olGenBuffered = []byte(fmt.Sprintf(`{"model":%q,"created_at":%q,"response":%q,%s`, benchModel, olStamp, answerText, olFinal))
	olGenChunk    = []byte(fmt.Sprintf(`{"model":%q,"created_at":%q,"response":" token","done":false}`+"\n", benchModel, olStamp))
	olGenLast     = []byte(fmt.Sprintf(`{"model":%q,"created_at":%q,"response":"",%s`+"\n", benchModel, olStamp, olFinal))

	olTags = []byte(fmt.Sprintf(`{"models":[{"name":%q,"model":%q,"modified_at":"2025-05-10T08:06:48.639712648-07:00","size":4683075271,"digest":"0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163","details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"7.6B","quantization_level":"Q4_K_M"}},`+
		`{"name":%q,"model":%q,"modified_at":"2025-05-10T08:04:12.112233445-07:00","size":274302450,"digest":"0a109f422b47e3a30ba2b10eca18548e944e8a23073ee3f3e947efcf3c45e59f","details":{"parent_model":"","format":"gguf","family":"nomic-bert","families":["nomic-bert"],"parameter_size":"137M","quantization_level":"F16"}}]}`,
		benchModel, benchModel, embedModelTag, embedModelTag))
)

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// The answers the fakes stream: chat (/v1/chat/completions, /api/chat)
// and legacy text completions (/v1/completions, /api/generate).
const (
	kindChat = iota
	kindText
)

type fakeUpstream struct {
	ollama bool
	dump   bool
	embeds *embedWire
	// dumped holds the shapes of the requests already dumped (-dump): a
	// request's path and its body with the marker's numbers left out.
	dumpMu sync.Mutex
	dumped map[string]bool
	// seen keeps the last POST body the service sent (X-Agent-ID) per
	// path, while capture is on (POST /bench/capture switches it on and
	// forgets what was kept; GET /bench/captured?path=… reads it): the
	// harness checks that direct and floor get what the service sends.
	capture atomic.Bool
	seenMu  sync.Mutex
	seen    map[string][]byte
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
		u.answer(w, r, kindChat)
	case !u.ollama && r.Method == http.MethodPost && r.URL.Path == "/v1/completions",
		u.ollama && r.Method == http.MethodPost && r.URL.Path == "/api/generate":
		u.answer(w, r, kindText)
	case !u.ollama && r.Method == http.MethodPost && r.URL.Path == "/v1/embeddings",
		u.ollama && r.Method == http.MethodPost && r.URL.Path == "/api/embed":
		u.embed(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/bench/capture":
		u.seenMu.Lock()
		u.seen = map[string][]byte{}
		u.seenMu.Unlock()
		u.capture.Store(true)
	case r.Method == http.MethodGet && r.URL.Path == "/bench/captured":
		u.seenMu.Lock()
		b, ok := u.seen[r.URL.Query().Get("path")]
		u.seenMu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// note records what the service sent: -dump logs each shape of request
// once; capture keeps the body.
func (u *fakeUpstream) note(r *http.Request, body []byte) {
	if r.Header.Get("X-Agent-ID") == "" { // not the service
		return
	}
	if u.capture.Load() {
		u.seenMu.Lock()
		u.seen[r.URL.Path] = bytes.Clone(body)
		u.seenMu.Unlock()
	}
	if u.dump {
		key := r.URL.Path + " " + string(stripMarker(body))
		u.dumpMu.Lock()
		first := !u.dumped[key]
		u.dumped[key] = true
		u.dumpMu.Unlock()
		if first {
			fmt.Fprintf(os.Stderr, "first request of its shape (%s): %s %s\nheaders: %v\nbody: %s\n", map[bool]string{true: "ollama", false: "openai"}[u.ollama], r.Method, r.URL.Path, r.Header, body)
		}
	}
}

// stripMarker is body without the numbers of its marker.
func stripMarker(body []byte) []byte {
	i := bytes.Index(body, markerChunks)
	if i < 0 {
		return body
	}
	j := i + len(markerChunks)
	skip := func() {
		for j < len(body) && body[j] >= '0' && body[j] <= '9' {
			j++
		}
	}
	skip()
	if bytes.HasPrefix(body[j:], markerInterval) {
		j += len(markerInterval)
		skip()
	}
	return append(append(bytes.Clone(body[:i]), "bench:…"...), body[j:]...)
}

func (u *fakeUpstream) answer(w http.ResponseWriter, r *http.Request, kind int) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyPool.Put(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return
	}
	body := buf.Bytes()
	if u.dump || u.capture.Load() {
		u.note(r, body)
	}
	p := parseWant(r, body, u.ollama)
	h := w.Header()
	if !p.stream {
		var out []byte
		switch {
		case u.ollama && kind == kindChat:
			h["Content-Type"], out = ctOllamaJSON, olBuffered
		case u.ollama:
			h["Content-Type"], out = ctOllamaJSON, olGenBuffered
		case kind == kindChat:
			h["Content-Type"], out = ctJSON, oaiBuffered
		default:
			h["Content-Type"], out = ctJSON, oaiTextBuffered
		}
		h["Content-Length"] = []string{strconv.Itoa(len(out))}
		w.Write(out)
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
	// chunk is each content frame; tail ends the stream.
	var chunk []byte
	var tail [][]byte
	switch {
	case u.ollama:
		h["Content-Type"] = ctNDJSON
		chunk, tail = olChunk, [][]byte{olLast}
		if kind == kindText {
			chunk, tail = olGenChunk, [][]byte{olGenLast}
		}
	default:
		h["Content-Type"] = ctSSE
		h["Cache-Control"] = noCache
		chunk, tail = oaiChunk, [][]byte{oaiFinish}
		if kind == kindChat {
			// A chat stream opens with the role.
			w.Write(oaiRole)
			fl.Flush()
		} else {
			chunk, tail = oaiTextChunk, [][]byte{oaiTextFinish}
		}
		if p.usage {
			tail = append(tail, oaiUsage)
			if kind == kindText {
				tail[len(tail)-1] = oaiTextUsage
			}
		}
		tail = append(tail, oaiDone)
	}
	for i := 0; i < p.chunks; i++ {
		if i > 0 && !wait() {
			return
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		fl.Flush()
	}
	for _, b := range tail {
		w.Write(b)
	}
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
	embeds := newEmbedWire()
	for _, s := range []struct {
		ln net.Listener
		h  http.Handler
	}{{lo, &fakeUpstream{dump: dump, embeds: embeds, dumped: map[string]bool{}, seen: map[string][]byte{}}},
		{ll, &fakeUpstream{ollama: true, dump: dump, embeds: embeds, dumped: map[string]bool{}, seen: map[string][]byte{}}}} {
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

// ---- embeddings ------------------------------------------------------------

const (
	// embedModel is the service's embeddings.model (its default), the
	// name the OpenAI-protocol fake lists; Ollama lists it with its tag.
	embedModel    = "nomic-embed-text"
	embedModelTag = "nomic-embed-text:latest"
	// embedDims is nomic-embed-text's vector size.
	embedDims = 768
	// embedDistinct vectors exist; input i gets vector i mod embedDistinct.
	embedDistinct = 16
	// embedTokensPerInput is the usage the fakes report per input (about
	// what 300 characters of English make).
	embedTokensPerInput = 75
	// embedMaxInputs bounds a fake's answer (OpenAI allows 2048 inputs).
	embedMaxInputs = 2048
)

// embedVectors are the fakes' vectors: deterministic, unit length, with
// values of the spread a 768-dimensional normalised embedding has (about
// ±0.036). The harness computes them too, to check answers.
var embedVectors = func() [][]float32 {
	rng := rand.New(rand.NewPCG(768, 16))
	out := make([][]float32, embedDistinct)
	for i := range out {
		v := make([]float64, embedDims)
		var norm float64
		for j := range v {
			v[j] = rng.NormFloat64()
			norm += v[j] * v[j]
		}
		norm = math.Sqrt(norm)
		out[i] = make([]float32, embedDims)
		for j := range v {
			out[i][j] = float32(v[j] / norm)
		}
	}
	return out
}()

// Kinds of embeddings answer.
const (
	embedOpenAIFloat  = iota // OpenAI list, float arrays
	embedOpenAIBase64        // OpenAI list, base64 strings
	embedOllama              // /api/embed
	embedKinds
)

// embedWire holds the fakes' embeddings answers: each vector's JSON value
// in every encoding, made once, and whole answers per batch size, made on
// first use and kept, so a request costs a scan of its body and a write.
type embedWire struct {
	vec   [embedKinds][][]byte
	mu    sync.RWMutex
	cache map[[2]int][]byte // {kind, inputs} -> answer
}

func newEmbedWire() *embedWire {
	e := &embedWire{cache: map[[2]int][]byte{}}
	for _, v := range embedVectors {
		// OpenAI (and the Python servers OpenAI-compatible gateways run)
		// print each float32 value as the shortest float64 that reads back
		// as it: "-0.006929283495992422". Ollama's Go server marshals the
		// float32 itself: "-0.0069292835".
		wide := make([]float64, len(v))
		for j, f := range v {
			wide[j] = float64(f)
		}
		fl, _ := json.Marshal(wide)
		raw := make([]byte, 0, 4*len(v))
		for _, f := range v {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
		}
		b64 := append(append([]byte{'"'}, base64.StdEncoding.EncodeToString(raw)...), '"')
		ol, _ := json.Marshal(v)
		e.vec[embedOpenAIFloat] = append(e.vec[embedOpenAIFloat], fl)
		e.vec[embedOpenAIBase64] = append(e.vec[embedOpenAIBase64], b64)
		e.vec[embedOllama] = append(e.vec[embedOllama], ol)
	}
	for kind := range embedKinds {
		e.answer(kind, 1)
		e.answer(kind, 16)
	}
	return e
}

// answer returns the answer of kind for n inputs (1 ≤ n ≤ embedMaxInputs).
func (e *embedWire) answer(kind, n int) []byte {
	key := [2]int{kind, n}
	e.mu.RLock()
	b, ok := e.cache[key]
	e.mu.RUnlock()
	if ok {
		return b
	}
	tokens := strconv.Itoa(n * embedTokensPerInput)
	if kind == embedOllama {
		b = append(b, `{"model":"`+embedModelTag+`","embeddings":[`...)
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, e.vec[kind][i%embedDistinct]...)
		}
		b = append(b, `],"total_duration":41822417,"load_duration":3276958,"prompt_eval_count":`+tokens+`}`...)
	} else {
		b = append(b, `{"object":"list","data":[`...)
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"object":"embedding","index":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `,"embedding":`...)
			b = append(b, e.vec[kind][i%embedDistinct]...)
			b = append(b, '}')
		}
		b = append(b, `],"model":"`+embedModel+`","usage":{"prompt_tokens":`+tokens+`,"total_tokens":`+tokens+`}}`...)
	}
	e.mu.Lock()
	e.cache[key] = b
	e.mu.Unlock()
	return b
}

// jsonValue finds "key": and returns what follows the colon (and any
// white space), and whether the key was there.
func jsonValue(body []byte, key string) ([]byte, bool) {
	k := []byte(`"` + key + `"`)
	for off := 0; ; {
		i := bytes.Index(body[off:], k)
		if i < 0 {
			return nil, false
		}
		j := skipSpace(body, off+i+len(k))
		if j < len(body) && body[j] == ':' {
			return body[skipSpace(body, j+1):], true
		}
		off = j
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// countInputs reports how many inputs an embeddings request's "input"
// holds: one for a string or an array of token ids, else the elements of
// the array. It scans the bytes; 0 means none or not understood.
func countInputs(body []byte) int {
	v, ok := jsonValue(body, "input")
	if !ok || len(v) == 0 {
		return 0
	}
	if v[0] == '"' {
		return 1
	}
	if v[0] != '[' {
		return 0
	}
	i := skipSpace(v, 1)
	if i >= len(v) || v[i] == ']' {
		return 0
	}
	if v[i] == '-' || (v[i] >= '0' && v[i] <= '9') {
		return 1
	}
	n, depth := 1, 1
	for ; i < len(v); i++ {
		switch v[i] {
		case '"':
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			depth++
		case ']', '}':
			if depth--; depth == 0 {
				return n
			}
		case ',':
			if depth == 1 {
				n++
			}
		}
	}
	return 0
}

func (u *fakeUpstream) embed(w http.ResponseWriter, r *http.Request) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodyPool.Put(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return
	}
	body := buf.Bytes()
	if u.dump || u.capture.Load() {
		u.note(r, body)
	}
	n := countInputs(body)
	if n < 1 || n > embedMaxInputs {
		w.Header()["Content-Type"] = ctJSON
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":"bench fake: want 1 to %d inputs","type":"invalid_request_error","param":"input","code":null}}`, embedMaxInputs)
		return
	}
	kind := embedOpenAIFloat
	switch {
	case u.ollama:
		kind = embedOllama
	default:
		if v, ok := jsonValue(body, "encoding_format"); ok && bytes.HasPrefix(v, []byte(`"base64"`)) {
			kind = embedOpenAIBase64
		}
	}
	out := u.embeds.answer(kind, n)
	h := w.Header()
	h["Content-Type"] = ctJSON
	if u.ollama {
		h["Content-Type"] = ctOllamaJSON
	}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.Write(out)
}
