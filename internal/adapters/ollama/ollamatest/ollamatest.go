// Package ollamatest is a fake Ollama server for tests. It speaks Ollama's
// native wire format byte for byte: /api/tags, and /api/chat as one JSON
// object or an application/x-ndjson stream, with Ollama's error bodies.
package ollamatest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Server is a fake Ollama host. Set its fields before requests arrive.
type Server struct {
	*httptest.Server

	// Models are the names /api/tags lists (and /api/chat accepts).
	Models []string
	// Reply is streamed in Pieces (or split into words when Pieces is nil).
	Reply  string
	Pieces []string
	// DoneReason is the final line's done_reason (default "stop").
	DoneReason string
	// PromptEvalCount and EvalCount are reported on the final line.
	PromptEvalCount, EvalCount int
	// Status, when set, answers /api/chat with this status and ErrorText as
	// Ollama's {"error":"…"} body.
	Status    int
	ErrorText string
	// Hang makes /api/chat wait until the client gives up.
	Hang bool
	// PieceDelay pauses between streamed lines.
	PieceDelay time.Duration
	// FirstDelay pauses before the answer (before the headers).
	FirstDelay time.Duration
	// Garbage answers 200 with a body that is not NDJSON.
	Garbage bool
	// BreakAfter, when > 0, drops the connection after that many lines.
	BreakAfter int

	mu       sync.Mutex
	requests [][]byte
}

// New starts a fake serving models.
func New(models ...string) *Server {
	s := &Server{Models: models, Reply: "Hello from Ollama!", PromptEvalCount: 26, EvalCount: 4}
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
		Hang: s.Hang, PieceDelay: s.PieceDelay, BreakAfter: s.BreakAfter, FirstDelay: s.FirstDelay, Garbage: s.Garbage,
		DoneReason: s.DoneReason, PromptEvalCount: s.PromptEvalCount, EvalCount: s.EvalCount, ErrorText: s.ErrorText,
	}
}

// Requests returns the /api/chat bodies received, in order.
func (s *Server) Requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.requests...)
}

// LastRequest decodes the last /api/chat body into a generic map.
func (s *Server) LastRequest() map[string]any {
	reqs := s.Requests()
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
	case r.URL.Path == "/api/chat" && r.Method == http.MethodPost:
		s.chat(w, r)
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

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, body)
	s.mu.Unlock()
	cfg := s.snapshot()
	var req struct {
		Model  string `json:"model"`
		Stream *bool  `json:"stream"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if cfg.Hang {
		<-r.Context().Done()
		return
	}
	if cfg.FirstDelay > 0 {
		select {
		case <-time.After(cfg.FirstDelay):
		case <-r.Context().Done():
			return
		}
	}
	if cfg.Status != 0 {
		writeError(w, cfg.Status, cfg.ErrorText)
		return
	}
	if cfg.Garbage {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, "<html>not a line of JSON</html>\n")
		return
	}
	if !cfg.has(req.Model) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", req.Model))
		return
	}
	pieces := cfg.Pieces
	if pieces == nil {
		pieces = splitWords(cfg.Reply)
	}
	reason := cfg.DoneReason
	if reason == "" {
		reason = "stop"
	}
	final := fmt.Sprintf(`"done_reason":%q,"done":true,"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":%d,"prompt_eval_duration":342546000,"eval_count":%d,"eval_duration":4535599000}`,
		reason, cfg.PromptEvalCount, cfg.EvalCount)
	if req.Stream != nil && !*req.Stream {
		// A buffered answer comes when it is all generated.
		if cfg.PieceDelay > 0 {
			select {
			case <-time.After(time.Duration(len(pieces)) * cfg.PieceDelay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		content, _ := json.Marshal(strings.Join(pieces, ""))
		fmt.Fprintf(w, `{"model":%q,"created_at":%q,"message":{"role":"assistant","content":%s},%s`, req.Model, Stamp, content, final)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher := w.(http.Flusher)
	for i, p := range pieces {
		if cfg.BreakAfter > 0 && i == cfg.BreakAfter {
			panic(http.ErrAbortHandler)
		}
		content, _ := json.Marshal(p)
		fmt.Fprintf(w, `{"model":%q,"created_at":%q,"message":{"role":"assistant","content":%s},"done":false}`+"\n", req.Model, Stamp, content)
		flusher.Flush()
		if cfg.PieceDelay > 0 {
			select {
			case <-time.After(cfg.PieceDelay):
			case <-r.Context().Done():
				return
			}
		}
	}
	fmt.Fprintf(w, `{"model":%q,"created_at":%q,"message":{"role":"assistant","content":""},%s`+"\n", req.Model, Stamp, final)
	flusher.Flush()
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
