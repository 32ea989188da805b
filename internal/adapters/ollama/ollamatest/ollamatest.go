// Package ollamatest is a fake Ollama server for tests. It speaks Ollama's
// native wire format byte for byte: /api/tags; /api/chat and /api/generate
// as one JSON object or an application/x-ndjson stream, with log
// probabilities when asked; /api/embed; and Ollama's error bodies.
package ollamatest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Server is a fake Ollama host. Set its fields before requests arrive.
type Server struct {
	*httptest.Server

	// Models are the names /api/tags lists (and the other endpoints accept).
	Models []string
	// Reply is streamed in Pieces (or split into words when Pieces is nil),
	// by /api/chat and /api/generate alike. Each piece is one token.
	Reply  string
	Pieces []string
	// DoneReason is the final line's done_reason (default "stop").
	DoneReason string
	// PromptEvalCount and EvalCount are reported on the final line.
	PromptEvalCount, EvalCount int
	// Status, when set, answers every model endpoint with this status and
	// ErrorText as Ollama's {"error":"…"} body.
	Status    int
	ErrorText string
	// Hang makes the model endpoints wait until the client gives up.
	Hang bool
	// PieceDelay pauses between streamed lines.
	PieceDelay time.Duration
	// EndDelay pauses after a stream's last line (done), flushed, before
	// the body ends: the end of the chunked encoding then comes in a
	// packet of its own.
	EndDelay time.Duration
	// FirstDelay pauses before the answer (before the headers).
	FirstDelay time.Duration
	// Garbage answers 200 with a body that is not Ollama's.
	Garbage bool
	// BreakAfter, when > 0, drops the connection after that many lines.
	BreakAfter int
	// Thinking are /api/chat lines of thinking sent before the answer.
	Thinking []string
	// CallTools makes /api/chat answer with these calls (in one line, as
	// Ollama sends them) instead of text, unless the conversation's last
	// message is a tool result: then the answer is Reply, as a model
	// answers once it has what it asked for.
	CallTools []ToolCall
	// EmbeddingLength is the size of the vectors /api/embed makes (the
	// model's embedding_length; default 8).
	EmbeddingLength int
	// MaxInputChars, when > 0, is the longest /api/embed input (in
	// characters) that fits the model's context: a longer one is cut, or
	// refused as Ollama does when the request says truncate false.
	MaxInputChars int

	// Loaded lists the models in memory, as GET /api/ps reports them; a
	// chat, generate or embed request for a model adds it, as Ollama loads
	// a model to serve it.
	Loaded []string

	mu       sync.Mutex
	requests []request
}

type request struct {
	path string
	body []byte
}

// New starts a fake serving models.
func New(models ...string) *Server {
	s := &Server{Models: models, Reply: "Hello from Ollama!", PromptEvalCount: 26, EvalCount: 4, EmbeddingLength: 8}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Set changes the fake's behaviour while requests may be in flight (a
// plain field write then would race with the handler reading it).
func (s *Server) Set(change func(*Server)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(s)
}

// snapshot copies the behaviour fields for one request.
func (s *Server) snapshot() Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Server{
		Models: s.Models, Reply: s.Reply, Pieces: s.Pieces, Status: s.Status,
		Hang: s.Hang, PieceDelay: s.PieceDelay, EndDelay: s.EndDelay, BreakAfter: s.BreakAfter, FirstDelay: s.FirstDelay, Garbage: s.Garbage,
		Thinking: s.Thinking, CallTools: s.CallTools,
		DoneReason: s.DoneReason, PromptEvalCount: s.PromptEvalCount, EvalCount: s.EvalCount, ErrorText: s.ErrorText,
		EmbeddingLength: s.EmbeddingLength, MaxInputChars: s.MaxInputChars,
	}
}

// Requests returns the /api/chat bodies received, in order.
func (s *Server) Requests() [][]byte { return s.RequestsTo("/api/chat") }

// RequestsTo returns the bodies received on path ("/api/generate",
// "/api/embed", …), in order.
func (s *Server) RequestsTo(path string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, r := range s.requests {
		if r.path == path {
			out = append(out, r.body)
		}
	}
	return out
}

// LastRequest decodes the last /api/chat body into a generic map.
func (s *Server) LastRequest() map[string]any { return s.LastRequestTo("/api/chat") }

// LastRequestTo decodes the last body received on path into a generic map.
func (s *Server) LastRequestTo(path string) map[string]any {
	reqs := s.RequestsTo(path)
	if len(reqs) == 0 {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(reqs[len(reqs)-1], &m)
	return m
}

// Stamp is the created_at every line carries.
const Stamp = "2026-11-26T08:52:19.385406455Z"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/api/tags" && r.Method == http.MethodGet:
		s.tags(w)
	case r.URL.Path == "/api/ps" && r.Method == http.MethodGet:
		s.ps(w)
	case r.URL.Path == "/api/chat" && r.Method == http.MethodPost:
		s.chat(w, r)
	case r.URL.Path == "/api/generate" && r.Method == http.MethodPost:
		s.generate(w, r)
	case r.URL.Path == "/api/embed" && r.Method == http.MethodPost:
		s.embed(w, r)
	case r.URL.Path == "/":
		io.WriteString(w, "Ollama is running")
	default:
		http.NotFound(w, r) // Ollama answers unknown paths with a plain 404
	}
}

func (s *Server) tags(w http.ResponseWriter) {
	cfg := s.snapshot()
	var b strings.Builder
	b.WriteString(`{"models":[`)
	for i, m := range cfg.Models {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":%q,"model":%q,"modified_at":"2025-05-10T08:06:48.639712648-07:00","size":4683075271,"digest":"0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163","details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"7.6B","quantization_level":"Q4_K_M"}}`, m, m)
	}
	b.WriteString(`]}`)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	io.WriteString(w, b.String())
}

func (s *Server) ps(w http.ResponseWriter) {
	s.mu.Lock()
	loaded := append([]string(nil), s.Loaded...)
	s.mu.Unlock()
	var b strings.Builder
	b.WriteString(`{"models":[`)
	for i, m := range loaded {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":%q,"model":%q,"size":5137025024,"digest":"2ae6f6dd7a3dd734790bbbf58b8909a606e0e7e97e94b7604e0aa7ae4490e6d8","details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"7.6B","quantization_level":"Q4_K_M"},"expires_at":"2026-11-26T09:05:19.385406455Z","size_vram":5137025024,"context_length":4096}`, m, m)
	}
	b.WriteString(`]}`)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	io.WriteString(w, b.String())
}

// load records model as loaded (a request for it arrived).
func (s *Server) load(model string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.Loaded {
		if m == model {
			return
		}
	}
	s.Loaded = append(s.Loaded, model)
}

func (s *Server) has(model string) bool {
	for _, m := range s.Models {
		if m == model {
			return true
		}
	}
	return false
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(b)
}

// str is s as Ollama's encoding/json writes it (HTML characters escaped).
func str(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// begin records the request and acts out the behaviours every model
// endpoint shares, in the order Ollama meets them: an unreadable body, a
// hang, a slow start, a forced status, garbage. It decodes the body into
// req and reports whether the handler goes on.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, req any) (*Server, bool) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, request{path: r.URL.Path, body: body})
	s.mu.Unlock()
	snap := s.snapshot()
	cfg := &snap
	if err := json.Unmarshal(body, req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return cfg, false
	}
	if cfg.Hang {
		<-r.Context().Done()
		return cfg, false
	}
	if cfg.FirstDelay > 0 {
		select {
		case <-time.After(cfg.FirstDelay):
		case <-r.Context().Done():
			return cfg, false
		}
	}
	if cfg.Status != 0 {
		writeError(w, cfg.Status, cfg.ErrorText)
		return cfg, false
	}
	if cfg.Garbage {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, "<html>not a line of JSON</html>\n")
		return cfg, false
	}
	return cfg, true
}

// generation is what /api/chat and /api/generate share of a request.
type generation struct {
	Messages []struct {
		Role string `json:"role"`
	} `json:"messages"`
	Model       string `json:"model"`
	Stream      *bool  `json:"stream"`
	Logprobs    bool   `json:"logprobs"`
	TopLogprobs int    `json:"top_logprobs"`
}

func (g *generation) streamed() bool { return g.Stream == nil || *g.Stream }

// checkTop refuses top_logprobs out of Ollama's range, as Ollama does.
func (g *generation) checkTop(w http.ResponseWriter) bool {
	if g.TopLogprobs < 0 || g.TopLogprobs > 20 {
		writeError(w, http.StatusBadRequest, "top_logprobs must be between 0 and 20")
		return false
	}
	return true
}

func (s *Server) pieces() []string {
	if s.Pieces != nil {
		return s.Pieces
	}
	return splitWords(s.Reply)
}

// metrics are the final line's counts and durations, in Ollama's order;
// a zero count is left out, as Ollama's omitempty does.
func (s *Server) metrics() string {
	var b strings.Builder
	b.WriteString(`"total_duration":4883583458,"load_duration":1334875`)
	if s.PromptEvalCount != 0 {
		fmt.Fprintf(&b, `,"prompt_eval_count":%d`, s.PromptEvalCount)
	}
	b.WriteString(`,"prompt_eval_duration":342546000`)
	if s.EvalCount != 0 {
		fmt.Fprintf(&b, `,"eval_count":%d`, s.EvalCount)
	}
	b.WriteString(`,"eval_duration":4535599000`)
	return b.String()
}

func (s *Server) doneReason() string {
	if s.DoneReason == "" {
		return "stop"
	}
	return s.DoneReason
}

// TokenLogprob and Logprob are Ollama's api.TokenLogprob and api.Logprob.
type TokenLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes,omitempty"`
}

// Logprob is one generated token's log probability and alternatives.
type Logprob struct {
	TokenLogprob
	TopLogprobs []TokenLogprob `json:"top_logprobs,omitempty"`
}

// LogprobOf is the log probability the fake gives piece i of an answer.
func LogprobOf(i int) float64 { return -float64(i+1) / 8 }

// Logprobs is what the fake reports for piece i (one token) with top
// alternatives: the piece itself first, then "alt1", "alt2"… each a nat
// less likely than the one before.
func Logprobs(i int, piece string, top int) Logprob {
	lp := Logprob{TokenLogprob: TokenLogprob{Token: piece, Logprob: LogprobOf(i), Bytes: byteInts(piece)}}
	for j := range top {
		alt := TokenLogprob{Token: piece, Logprob: LogprobOf(i), Bytes: byteInts(piece)}
		if j > 0 {
			alt.Token = fmt.Sprintf("alt%d", j)
			alt.Logprob, alt.Bytes = LogprobOf(i)-float64(j), byteInts(alt.Token)
		}
		lp.TopLogprobs = append(lp.TopLogprobs, alt)
	}
	return lp
}

// byteInts is Ollama's stringToByteInts: no bytes for the empty token.
func byteInts(s string) []int {
	if s == "" {
		return nil
	}
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = int(s[i])
	}
	return out
}

// logprobsField is `,"logprobs":[…]` for pieces from index first on, or
// "" when they were not asked for.
func logprobsField(g *generation, first int, pieces ...string) string {
	if !g.Logprobs || len(pieces) == 0 {
		return ""
	}
	lps := make([]Logprob, len(pieces))
	for i, p := range pieces {
		lps[i] = Logprobs(first+i, p, g.TopLogprobs)
	}
	b, _ := json.Marshal(lps)
	return `,"logprobs":` + string(b)
}

// stream writes one NDJSON line per piece, then the final one, as the
// line function builds them, with the fake's pauses and breaks.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, pieces []string, line func(i int) string, final string) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher := w.(http.Flusher)
	for i := range pieces {
		if s.BreakAfter > 0 && i == s.BreakAfter {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, line(i)+"\n")
		flusher.Flush()
		if s.PieceDelay > 0 {
			select {
			case <-time.After(s.PieceDelay):
			case <-r.Context().Done():
				return
			}
		}
	}
	io.WriteString(w, final+"\n")
	flusher.Flush()
	if s.EndDelay > 0 {
		select {
		case <-time.After(s.EndDelay):
		case <-r.Context().Done():
		}
	}
}

// whole waits as long as streaming the pieces would take: a buffered
// answer comes when it is all generated.
func (s *Server) whole(r *http.Request, pieces []string) bool {
	if s.PieceDelay > 0 {
		select {
		case <-time.After(time.Duration(len(pieces)) * s.PieceDelay):
		case <-r.Context().Done():
			return false
		}
	}
	return true
}

// chat answers /api/chat in api.ChatResponse's field order: model,
// created_at, message, done, done_reason, logprobs, then the metrics.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req generation
	cfg, ok := s.begin(w, r, &req)
	if !ok || !req.checkTop(w) {
		return
	}
	if !cfg.has(req.Model) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", req.Model))
		return
	}
	s.load(req.Model)
	pieces := cfg.pieces()
	head := fmt.Sprintf(`{"model":%s,"created_at":%q,"message":{"role":"assistant","content":`, str(req.Model), Stamp)
	final := fmt.Sprintf(`"done":true,"done_reason":%s`, str(cfg.doneReason()))
	if n := len(req.Messages); len(cfg.CallTools) > 0 && (n == 0 || req.Messages[n-1].Role != "tool") {
		calls, _ := json.Marshal(cfg.CallTools)
		line := head + `"","tool_calls":` + string(calls) + `},`
		if !req.streamed() {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			io.WriteString(w, line+final+","+cfg.metrics()+"}")
			return
		}
		cfg.stream(w, r, []string{""}, func(int) string { return line + `"done":false}` }, head+`""},`+final+","+cfg.metrics()+"}")
		return
	}
	if len(cfg.Thinking) > 0 && req.streamed() {
		thinking := cfg.Thinking
		all := append(append([]string(nil), thinking...), pieces...)
		cfg.stream(w, r, all, func(i int) string {
			if i < len(thinking) {
				return head + `"","thinking":` + str(thinking[i]) + `},"done":false}`
			}
			return head + str(all[i]) + `},"done":false}`
		}, head+`""},`+final+","+cfg.metrics()+"}")
		return
	}
	if !req.streamed() {
		if !cfg.whole(r, pieces) {
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, head+str(strings.Join(pieces, ""))+"},"+final+logprobsField(&req, 0, pieces...)+","+cfg.metrics()+"}")
		return
	}
	cfg.stream(w, r, pieces, func(i int) string {
		return head + str(pieces[i]) + `},"done":false` + logprobsField(&req, i, pieces[i]) + "}"
	}, head+`""},`+final+","+cfg.metrics()+"}")
}

// generate answers /api/generate in api.GenerateResponse's field order:
// model, created_at, response, done, done_reason, context (not for raw
// prompts), the metrics, then logprobs.
func (s *Server) generate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		generation
		Prompt string `json:"prompt"`
		Raw    bool   `json:"raw"`
	}
	cfg, ok := s.begin(w, r, &req)
	if !ok || !req.checkTop(w) {
		return
	}
	if !cfg.has(req.Model) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	s.load(req.Model)
	pieces := cfg.pieces()
	head := fmt.Sprintf(`{"model":%s,"created_at":%q,"response":`, str(req.Model), Stamp)
	final := fmt.Sprintf(`"done":true,"done_reason":%s`, str(cfg.doneReason()))
	if !req.Raw {
		// The prompt and answer's tokens, to carry a conversation on.
		ctx := make([]int, len(splitWords(req.Prompt))+len(pieces))
		for i := range ctx {
			ctx[i] = 100 + i
		}
		b, _ := json.Marshal(ctx)
		final += `,"context":` + string(b)
	}
	final += "," + cfg.metrics()
	if !req.streamed() {
		if !cfg.whole(r, pieces) {
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, head+str(strings.Join(pieces, ""))+","+final+logprobsField(&req.generation, 0, pieces...)+"}")
		return
	}
	cfg.stream(w, r, pieces, func(i int) string {
		return head + str(pieces[i]) + `,"done":false` + logprobsField(&req.generation, i, pieces[i]) + "}"
	}, head+`"",`+final+"}")
}

// embedResponse is api.EmbedResponse.
type embedResponse struct {
	Model           string      `json:"model"`
	Embeddings      [][]float32 `json:"embeddings"`
	TotalDuration   int64       `json:"total_duration,omitempty"`
	LoadDuration    int64       `json:"load_duration,omitempty"`
	PromptEvalCount int         `json:"prompt_eval_count,omitempty"`
}

// embed answers /api/embed as Ollama's EmbedHandler does: input as one
// string or a list of strings, each input refused when too long and
// truncate is false (else cut), vectors normalized and cut to dimensions
// when that is smaller than the model's (the whole vector otherwise).
func (s *Server) embed(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model      string `json:"model"`
		Input      any    `json:"input"`
		Truncate   *bool  `json:"truncate"`
		Dimensions int    `json:"dimensions"`
	}
	cfg, ok := s.begin(w, r, &req)
	if !ok {
		return
	}
	var input []string
	switch in := req.Input.(type) {
	case string:
		if in != "" {
			input = append(input, in)
		}
	case []any:
		for _, v := range in {
			text, ok := v.(string)
			if !ok {
				writeError(w, http.StatusBadRequest, "invalid input type")
				return
			}
			input = append(input, text)
		}
	default:
		if req.Input != nil {
			writeError(w, http.StatusBadRequest, "invalid input type")
			return
		}
	}
	if !cfg.has(req.Model) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	s.load(req.Model)
	resp := embedResponse{Model: req.Model, Embeddings: [][]float32{}}
	if len(input) > 0 {
		resp.TotalDuration, resp.LoadDuration = 14143917, 1019500
	}
	for _, text := range input {
		if cfg.MaxInputChars > 0 && utf8.RuneCountInString(text) > cfg.MaxInputChars {
			if req.Truncate != nil && !*req.Truncate {
				writeError(w, http.StatusBadRequest, "the input length exceeds the context length")
				return
			}
			text = string([]rune(text)[:cfg.MaxInputChars])
		}
		resp.Embeddings = append(resp.Embeddings, Embedding(text, cfg.EmbeddingLength, req.Dimensions))
		resp.PromptEvalCount += len(splitWords(text))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	b, _ := json.Marshal(resp)
	w.Write(b)
}

// Embedding is the vector the fake makes for text: size numbers drawn from
// the text's hash, normalized, then cut to dimensions and normalized again
// when dimensions is smaller than size, as Ollama does.
func Embedding(text string, size, dimensions int) []float32 {
	v := make([]float32, size)
	for j := range v {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d:%s", j, text)
		v[j] = float32(int64(h.Sum64()%2001)-1000) / 1000
	}
	v = normalize(v)
	if dimensions > 0 && dimensions < len(v) {
		v = normalize(v[:dimensions])
	}
	return v
}

// normalize is Ollama's: float32 arithmetic, scaled to unit length.
func normalize(vec []float32) []float32 {
	var sum float32
	for _, v := range vec {
		sum += v * v
	}
	norm := float32(1.0 / max(math.Sqrt(float64(sum)), 1e-12))
	for i := range vec {
		vec[i] *= norm
	}
	return vec
}

// splitWords cuts text after each space, as a model's tokens often fall.
func splitWords(text string) []string {
	var out []string
	for len(text) > 0 {
		i := strings.IndexByte(text, ' ')
		if i < 0 {
			out = append(out, text)
			break
		}
		out = append(out, text[:i+1])
		text = text[i+1:]
	}
	return out
}

// ToolCall is a call in Ollama's form: arguments are a JSON object.
type ToolCall struct {
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

// Call is a ToolCall of name with arguments (a JSON object).
func Call(name, arguments string) ToolCall {
	var c ToolCall
	c.Function.Name, c.Function.Arguments = name, json.RawMessage(arguments)
	return c
}
