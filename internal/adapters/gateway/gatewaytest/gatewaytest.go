// Package gatewaytest is a fake OpenAI-compatible LLM gateway for tests. It
// speaks OpenAI's wire format byte for byte: GET /v1/models; POST
// /v1/chat/completions as a chat.completion or a text/event-stream of
// chat.completion.chunk frames ending in [DONE]; POST /v1/completions (the
// legacy text completions) as a text_completion or a stream of them; POST
// /v1/embeddings with deterministic vectors; POST /v1/responses (the
// Responses API) as a Response or a stream of its events; and OpenAI error
// bodies.
package gatewaytest

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

// Server is a fake gateway. Set its fields before requests arrive.
type Server struct {
	*httptest.Server

	Models           []string
	Reply            string
	Pieces           []string
	FinishReason     string
	PromptTokens     int
	CompletionTokens int
	// Status answers requests (chat, completions, embeddings, responses)
	// with this status and an OpenAI error body carrying ErrorMessage.
	Status       int
	ErrorMessage string
	// Hang waits until the client gives up.
	Hang bool
	// PieceDelay pauses between frames.
	PieceDelay time.Duration
	// EndDelay pauses after the last frame of a stream ([DONE]), flushed,
	// before the body ends: the end of the chunked encoding then comes in
	// a packet of its own, as from a server that ends its stream a moment
	// after its last event.
	EndDelay time.Duration
	// FirstDelay pauses before the answer (before the headers).
	FirstDelay time.Duration
	// Garbage answers 200 with an event stream whose data is not JSON.
	Garbage bool
	// BreakAfter, when > 0, drops the connection after that many frames
	// (an embeddings answer: halfway through its body).
	BreakAfter int
	// Dimensions is the size of the embedding vectors when a request sets
	// no dimensions, and the most it may ask for (16 unless set).
	Dimensions int

	// The Responses API's answers (responses.go) also have the following;
	// FinishReason does not apply to them: an answer completes unless
	// Incomplete or Failure ends it otherwise.

	// Reasoning is the answer's reasoning text, one reasoning_text delta
	// each, in a reasoning item before the message.
	Reasoning []string
	// ToolCall makes the answer a call of this function. Its message, with
	// the text of Pieces, comes first only when Pieces is set: the default
	// Reply is not used then.
	ToolCall *ToolCall
	// Incomplete ends the answer with status incomplete, for this reason
	// (max_output_tokens, content_filter).
	Incomplete string
	// Failure ends the answer, after its text, with status failed and this
	// error (response.failed when streamed).
	Failure *ResponseError

	mu       sync.Mutex
	requests []Request
}

// Request is one request as received.
type Request struct {
	Path   string // the URL path, such as /v1/chat/completions
	Header http.Header
	Body   []byte
}

// The paths the fake serves requests on.
const (
	PathChat        = "/v1/chat/completions"
	PathCompletions = "/v1/completions"
	PathEmbeddings  = "/v1/embeddings"
	PathResponses   = "/v1/responses"
)

// New starts a fake gateway serving models.
func New(models ...string) *Server {
	s := &Server{Models: models, Reply: "Hello from the gateway!", FinishReason: "stop", PromptTokens: 12, CompletionTokens: 5, Dimensions: 16}
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
		FinishReason: s.FinishReason, PromptTokens: s.PromptTokens, CompletionTokens: s.CompletionTokens, ErrorMessage: s.ErrorMessage,
		Dimensions: s.Dimensions, Reasoning: s.Reasoning, ToolCall: s.ToolCall, Incomplete: s.Incomplete, Failure: s.Failure,
	}
}

// Requests returns the chat requests received, in order.
func (s *Server) Requests() []Request { return s.RequestsTo(PathChat) }

// RequestsTo returns the requests received on a path (PathChat,
// PathCompletions, PathEmbeddings, PathResponses), in order.
func (s *Server) RequestsTo(path string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// record keeps a request and returns its body.
func (s *Server) record(r *http.Request) []byte {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	s.mu.Unlock()
	return body
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v1/models" && r.Method == http.MethodGet:
		s.models(w)
	case r.URL.Path == PathChat && r.Method == http.MethodPost:
		s.chat(w, r)
	case r.URL.Path == PathCompletions && r.Method == http.MethodPost:
		s.completions(w, r)
	case r.URL.Path == PathEmbeddings && r.Method == http.MethodPost:
		s.embeddings(w, r)
	case r.URL.Path == PathResponses && r.Method == http.MethodPost:
		s.responses(w, r)
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "invalid_request_error", "")
	}
}

func (s *Server) models(w http.ResponseWriter) {
	cfg := s.snapshot()
	var b strings.Builder
	b.WriteString(`{"object":"list","data":[`)
	for i, m := range cfg.Models {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%q,"object":"model","created":1715367049,"owned_by":"gateway"}`, m)
	}
	b.WriteString(`]}`)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, b.String())
}

func writeError(w http.ResponseWriter, status int, msg, typ, code string) {
	writeParamError(w, status, msg, typ, "", code)
}

// writeParamError writes OpenAI's error body; param and code are null
// when "".
func writeParamError(w http.ResponseWriter, status int, msg, typ, param, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	orNull := func(s string) string {
		if s == "" {
			return "null"
		}
		return jsonString(s)
	}
	fmt.Fprintf(w, "{\n  \"error\": {\n    \"message\": %s,\n    \"type\": %s,\n    \"param\": %s,\n    \"code\": %s\n  }\n}\n",
		jsonString(msg), jsonString(typ), orNull(param), orNull(code))
}

// jsonString writes s as a JSON string as OpenAI does: non-ASCII text and
// HTML characters as they are.
func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// modelNotFound answers OpenAI's 404 for a model it does not serve.
func modelNotFound(w http.ResponseWriter, model string) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model), "invalid_request_error", "model_not_found")
}

// prelude acts out the behaviours every endpoint shares before it
// answers: hang, wait, fail with Status, or answer garbage. It reports
// whether the endpoint should go on to answer.
func prelude(w http.ResponseWriter, r *http.Request, cfg *Server, garbage func()) bool {
	if cfg.Hang {
		<-r.Context().Done()
		return false
	}
	if cfg.FirstDelay > 0 {
		select {
		case <-time.After(cfg.FirstDelay):
		case <-r.Context().Done():
			return false
		}
	}
	if cfg.Status != 0 {
		writeError(w, cfg.Status, cfg.ErrorMessage, "server_error", "")
		return false
	}
	if cfg.Garbage {
		garbage()
		return false
	}
	return true
}

// garbageStream answers 200 with an event stream whose data is not JSON.
func garbageStream(w http.ResponseWriter) func() {
	return func() {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: <html>not an event</html>\n\n")
	}
}

func (s *Server) has(model string) bool {
	for _, m := range s.Models {
		if m == model {
			return true
		}
	}
	return false
}

const (
	id      = "chatcmpl-gw0123456789abcdefghijklmn"
	created = 1764146000
)

// pieces is the answer's text, one frame each.
func (s *Server) pieces() []string {
	if s.Pieces != nil {
		return s.Pieces
	}
	return strings.SplitAfter(s.Reply, " ")
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	body := s.record(r)
	cfg := s.snapshot()
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		N             *int   `json:"n"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", "")
		return
	}
	if !prelude(w, r, &cfg, garbageStream(w)) {
		return
	}
	n := 1
	if req.N != nil && *req.N > 1 {
		n = *req.N
	}
	if !cfg.has(req.Model) {
		modelNotFound(w, req.Model)
		return
	}
	pieces := cfg.pieces()
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, cfg.PromptTokens, cfg.CompletionTokens, cfg.PromptTokens+cfg.CompletionTokens)
	if !req.Stream {
		// A buffered answer comes when it is all generated.
		if cfg.PieceDelay > 0 {
			select {
			case <-time.After(time.Duration(len(pieces)) * cfg.PieceDelay):
			case <-r.Context().Done():
				return
			}
		}
		content, _ := json.Marshal(strings.Join(pieces, ""))
		w.Header().Set("Content-Type", "application/json")
		var choices []string
		for i := range n {
			choices = append(choices, fmt.Sprintf(`{"index":%d,"message":{"role":"assistant","content":%s,"refusal":null},"logprobs":null,"finish_reason":%q}`, i, content, cfg.FinishReason))
		}
		fmt.Fprintf(w, `{"id":%q,"object":"chat.completion","created":%d,"model":%q,"choices":[%s],"usage":%s,"system_fingerprint":"fp_gateway"}`,
			id, created, req.Model, strings.Join(choices, ","), usage)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	flusher := w.(http.Flusher)
	frame := func(choices, extra string) {
		fmt.Fprintf(w, "data: {\"id\":%q,\"object\":\"chat.completion.chunk\",\"created\":%d,\"model\":%q,\"system_fingerprint\":\"fp_gateway\",\"choices\":%s%s}\n\n", id, created, req.Model, choices, extra)
		flusher.Flush()
	}
	// Choices are interleaved, as OpenAI interleaves them.
	for c := range n {
		frame(fmt.Sprintf(`[{"index":%d,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]`, c), "")
	}
	for i, p := range pieces {
		if cfg.BreakAfter > 0 && i == cfg.BreakAfter {
			panic(http.ErrAbortHandler)
		}
		content, _ := json.Marshal(p)
		for c := range n {
			frame(fmt.Sprintf(`[{"index":%d,"delta":{"content":%s},"logprobs":null,"finish_reason":null}]`, c, content), "")
		}
		if cfg.PieceDelay > 0 {
			select {
			case <-time.After(cfg.PieceDelay):
			case <-r.Context().Done():
				return
			}
		}
	}
	for c := range n {
		frame(fmt.Sprintf(`[{"index":%d,"delta":{},"logprobs":null,"finish_reason":%q}]`, c, cfg.FinishReason), "")
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		frame("[]", `,"usage":`+usage)
	}
	io.WriteString(w, "data: [DONE]\n\n")
	flusher.Flush()
	cfg.end(r)
}

// end waits out EndDelay (or the client) after a stream's last frame.
func (s *Server) end(r *http.Request) {
	if s.EndDelay > 0 {
		select {
		case <-time.After(s.EndDelay):
		case <-r.Context().Done():
		}
	}
}
