package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"
)

// FakeOllama serves a Host over HTTP in Ollama's wire format, byte for
// byte: GET /api/tags, /api/ps, /api/version and POST /api/chat (an NDJSON
// stream, or one object when stream is false).
type FakeOllama struct {
	*Host
	srv *httptest.Server
}

// ollamaVersion is what /api/version reports.
const ollamaVersion = "0.12.6"

// keepAlive is Ollama's default: a model is unloaded this long after its
// last use (the fakes only report it, in expires_at).
const keepAlive = 5 * time.Minute

// StartFake starts a fake Ollama host on 127.0.0.1.
func StartFake(cfg HostConfig, clock Clock) *FakeOllama {
	f := &FakeOllama{Host: NewHost(cfg, clock)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// URL is the host's base URL.
func (f *FakeOllama) URL() string { return f.srv.URL }

// Close stops the host: loads under way end, requests still open fail.
func (f *FakeOllama) Close() {
	f.Host.end()
	f.srv.CloseClientConnections()
	f.srv.Close()
	f.Host.Close()
}

func (f *FakeOllama) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/api/chat" && r.Method == http.MethodPost:
		f.chat(w, r)
	case r.URL.Path == "/api/tags" && r.Method == http.MethodGet:
		f.tags(w)
	case r.URL.Path == "/api/ps" && r.Method == http.MethodGet:
		f.ps(w)
	case r.URL.Path == "/api/version" && r.Method == http.MethodGet:
		writeJSON(w, `{"version":"`+ollamaVersion+`"}`)
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Ollama is running")
	default:
		http.NotFound(w, r) // Ollama answers unknown paths with a plain 404
	}
}

// ModelSpec is what /api/tags and /api/ps say of a model.
type ModelSpec struct {
	Name, Family, ParameterSize string
	Size                        int64
}

// specs are the models the benchmark may use, in order.
var specs = []ModelSpec{
	{"qwen2.5:7b", "qwen2", "7.6B", 4683087332},
	{"llama3.1:8b", "llama", "8.0B", 4920753328},
	{"mistral:7b", "llama", "7.2B", 4113301824},
	{"gemma2:9b", "gemma2", "9.2B", 5443152417},
	{"phi3:14b", "phi3", "14.0B", 7897126241},
	{"granite3.3:8b", "granite", "8.2B", 4942877287},
	{"deepseek-r1:8b", "qwen3", "8.2B", 5225376047},
	{"qwen2.5-coder:7b", "qwen2", "7.6B", 4683087519},
}

// specOf is the spec of a model name (a made-up 7B one for names beyond
// the list).
func specOf(name string) ModelSpec {
	for _, s := range specs {
		if s.Name == name {
			return s
		}
	}
	return ModelSpec{Name: name, Family: "llama", ParameterSize: "7.0B", Size: 4400000000}
}

// modelNames are the first n model names.
func modelNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		if i < len(specs) {
			out[i] = specs[i].Name
		} else {
			out[i] = fmt.Sprintf("model%d:7b", i+1)
		}
	}
	return out
}

func digest(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// details is api.ModelDetails.
func (s ModelSpec) details() string {
	return fmt.Sprintf(`{"parent_model":"","format":"gguf","family":%s,"families":[%s],"parameter_size":%s,"quantization_level":"Q4_K_M"}`,
		str(s.Family), str(s.Family), str(s.ParameterSize))
}

// modifiedAt is when every model was pulled, as Ollama writes local times.
const modifiedAt = "2026-05-10T08:06:48.639712648-07:00"

// tags answers /api/tags: api.ListModelResponse's fields in order.
func (f *FakeOllama) tags(w http.ResponseWriter) {
	var b strings.Builder
	b.WriteString(`{"models":[`)
	for i, name := range f.cfg.Models {
		if i > 0 {
			b.WriteByte(',')
		}
		s := specOf(name)
		fmt.Fprintf(&b, `{"name":%s,"model":%s,"modified_at":%q,"size":%d,"digest":%q,"details":%s}`,
			str(s.Name), str(s.Name), modifiedAt, s.Size, digest(s.Name), s.details())
	}
	b.WriteString(`]}`)
	writeJSON(w, b.String())
}

// ps answers /api/ps: api.ProcessModelResponse's fields in order, the
// models loaded or loading, each expiring keepAlive after its last use.
func (f *FakeOllama) ps(w http.ResponseWriter) {
	var b strings.Builder
	b.WriteString(`{"models":[`)
	for i, m := range f.Running() {
		if i > 0 {
			b.WriteByte(',')
		}
		s := specOf(m.Model)
		fmt.Fprintf(&b, `{"name":%s,"model":%s,"size":%d,"digest":%q,"details":%s,"expires_at":%q,"size_vram":%d,"context_length":4096}`,
			str(s.Name), str(s.Name), s.Size, digest(s.Name), s.details(),
			m.UsedAt.Add(keepAlive).Format(time.RFC3339Nano), s.Size)
	}
	b.WriteString(`]}`)
	writeJSON(w, b.String())
}

// chatRequest is the part of api.ChatRequest the fake reads.
type chatRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Stream   *bool     `json:"stream"`
}

// chat answers /api/chat: the model loaded (or joined), the prompt
// evaluated, then GenTokens tokens, one line each, flushed as they come.
func (f *FakeOllama) chat(w http.ResponseWriter, r *http.Request) {
	begun := time.Now()
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	if !f.Lists(req.Model) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", req.Model))
		return
	}
	lease, err := f.Begin(r.Context(), req.Model, renderPrompt(req.Messages))
	if err != nil {
		return // the client left
	}
	pieces := answerFor(req.Model, req.Messages, f.cfg.GenTokens)
	sent, complete := 0, false
	defer func() { lease.End(strings.Join(pieces[:sent], ""), complete) }()

	head := `{"model":` + str(req.Model) + `,"created_at":`
	metrics := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, `"total_duration":%d`, time.Since(begun).Nanoseconds())
		if lease.Waited > 0 {
			fmt.Fprintf(&b, `,"load_duration":%d`, lease.Waited.Nanoseconds())
		}
		fmt.Fprintf(&b, `,"prompt_eval_count":%d,"prompt_eval_duration":%d`, lease.Evaluated(), lease.Prefill.Nanoseconds())
		fmt.Fprintf(&b, `,"eval_count":%d,"eval_duration":%d`, len(pieces), (time.Duration(len(pieces)) * f.cfg.TokenDelay).Nanoseconds())
		return b.String()
	}
	if req.Stream != nil && !*req.Stream {
		if f.clock.Sleep(r.Context(), time.Duration(len(pieces))*f.cfg.TokenDelay) != nil {
			return
		}
		sent = len(pieces)
		writeJSON(w, head+stamp()+`,"message":{"role":"assistant","content":`+str(strings.Join(pieces, ""))+
			`},"done":true,"done_reason":"stop",`+metrics()+`}`)
		complete = true
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	flusher, _ := w.(http.Flusher)
	for _, p := range pieces {
		if f.clock.Sleep(r.Context(), f.cfg.TokenDelay) != nil {
			return
		}
		if _, err := io.WriteString(w, head+stamp()+`,"message":{"role":"assistant","content":`+str(p)+`},"done":false}`+"\n"); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		sent++
	}
	io.WriteString(w, head+stamp()+`,"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop",`+metrics()+"}\n")
	if flusher != nil {
		flusher.Flush()
	}
	complete = true
}

// stamp is created_at: now, in UTC, as Ollama writes it.
func stamp() string { return `"` + time.Now().UTC().Format(time.RFC3339Nano) + `"` }

// answerFor is the answer a model gives to msgs: n tokens (words), the
// same for the same conversation whichever host answers.
func answerFor(model string, msgs []Message, n int) []string {
	h := fnv.New64a()
	io.WriteString(h, model)
	for _, m := range msgs {
		io.WriteString(h, m.Role)
		io.WriteString(h, m.Content)
	}
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x0a11ce))
	out := make([]string, n)
	for i := range out {
		w := vocabulary[rng.IntN(len(vocabulary))]
		if i > 0 {
			w = " " + w
		}
		out[i] = w
	}
	return out
}

func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	io.WriteString(w, body)
}

// writeError is Ollama's error answer: {"error":"…"}.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(b)
}

// str is s as Go's encoding/json (Ollama's encoder) writes it.
func str(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
