// Package ollama is the client for Ollama's native API: /api/chat (NDJSON
// stream) and /api/tags. It translates OpenAI-style requests into Ollama's
// form and Ollama's answers back.
package ollama

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Client speaks Ollama's native protocol to one host.
type Client struct {
	call *upstream.Caller
}

var (
	_ ports.ChatBackend = (*Client)(nil)
	_ ports.ModelLister = (*Client)(nil)
)

// New builds a client; opts.BaseURL is the Ollama host (http://host:11434).
func New(opts upstream.Options) *Client {
	return &Client{call: upstream.New(opts)}
}

const (
	maxAnswer = 64 << 20
	maxFrame  = 16 << 20
)

// ChatRequest is the body of POST /api/chat.
type ChatRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Stream   bool      `json:"stream"`
	Options  *Options  `json:"options,omitempty"`
}

// Message is one message of an Ollama chat.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Options are the model parameters; only what the client sent is set.
type Options struct {
	Temperature      *float64 `json:"temperature,omitempty"`
	TopP             *float64 `json:"top_p,omitempty"`
	NumPredict       *int     `json:"num_predict,omitempty"`
	Stop             []string `json:"stop,omitempty"`
	Seed             *int64   `json:"seed,omitempty"`
	PresencePenalty  *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty"`
}

// NewChatRequest translates a domain request: developer becomes system,
// max_completion_tokens/max_tokens become num_predict, and no option the
// client did not send is set.
func NewChatRequest(req domain.ChatRequest, stream bool) ChatRequest {
	out := ChatRequest{Model: req.Model, Stream: stream, Messages: make([]Message, len(req.Messages))}
	for i, m := range req.Messages {
		role := m.Role
		if role == domain.RoleDeveloper {
			role = domain.RoleSystem
		}
		out.Messages[i] = Message{Role: role, Content: m.Content}
	}
	s := req.Sampling
	o := Options{
		Temperature:      s.Temperature,
		TopP:             s.TopP,
		NumPredict:       s.MaxTokens,
		Stop:             s.Stop,
		Seed:             s.Seed,
		PresencePenalty:  s.PresencePenalty,
		FrequencyPenalty: s.FrequencyPenalty,
	}
	if o.Temperature != nil || o.TopP != nil || o.NumPredict != nil || len(o.Stop) > 0 ||
		o.Seed != nil || o.PresencePenalty != nil || o.FrequencyPenalty != nil {
		out.Options = &o
	}
	return out
}

// chatResponse is one /api/chat answer or stream line.
type chatResponse struct {
	Message struct {
		Content string `json:"content"`
	} `json:"message"`
	Done            bool            `json:"done"`
	DoneReason      string          `json:"done_reason"`
	PromptEvalCount int             `json:"prompt_eval_count"`
	EvalCount       int             `json:"eval_count"`
	Error           json.RawMessage `json:"error"`
}

func (r *chatResponse) usage() *domain.Usage {
	return &domain.Usage{PromptTokens: r.PromptEvalCount, CompletionTokens: r.EvalCount}
}

// finishReason maps Ollama's done_reason onto OpenAI's finish_reason.
func finishReason(doneReason string) string {
	if doneReason == "length" {
		return domain.FinishLength
	}
	return domain.FinishStop
}

func (c *Client) post(ctx context.Context, req domain.ChatRequest, stream bool) (*upstream.Call, error) {
	body, err := json.Marshal(NewChatRequest(req, stream))
	if err != nil {
		return nil, err
	}
	return c.call.Do(ctx, http.MethodPost, "api/chat", body)
}

// Complete sends a buffered chat.
func (c *Client) Complete(ctx context.Context, req domain.ChatRequest) (domain.Completion, error) {
	var out domain.Completion
	call, err := c.post(ctx, req, false)
	if err != nil {
		return out, err
	}
	defer call.Close()
	data, err := io.ReadAll(io.LimitReader(call.Resp.Body, maxAnswer))
	if err != nil {
		return out, call.Fail(err)
	}
	call.Started()
	var r chatResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return out, call.Protocol("unreadable /api/chat answer: %v", err)
	}
	if len(r.Error) > 0 {
		return out, c.inBandError(data)
	}
	out.Content = r.Message.Content
	out.FinishReason = finishReason(r.DoneReason)
	out.Usage = r.usage()
	return out, nil
}

// Stream sends a streamed chat and relays each NDJSON line as a chunk.
func (c *Client) Stream(ctx context.Context, req domain.ChatRequest, fn ports.ChunkFunc) error {
	call, err := c.post(ctx, req, true)
	if err != nil {
		return err
	}
	defer call.Close()
	sc := bufio.NewScanner(call.Resp.Body)
	sc.Buffer(make([]byte, 0, 16<<10), maxFrame)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var r chatResponse
		if err := json.Unmarshal(line, &r); err != nil {
			return call.Protocol("unreadable /api/chat stream line: %v", err)
		}
		if len(r.Error) > 0 {
			return c.inBandError(line)
		}
		call.Started()
		chunk := domain.Chunk{Content: r.Message.Content}
		if r.Done {
			chunk.FinishReason = finishReason(r.DoneReason)
			chunk.Usage = r.usage()
		}
		if err := fn(chunk); err != nil {
			return err
		}
		if r.Done {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return call.Fail(err)
	}
	return call.Fail(io.ErrUnexpectedEOF)
}

// inBandError wraps an {"error":"…"} Ollama sent with a 200 status.
func (c *Client) inBandError(body []byte) error {
	e := &domain.UpstreamError{Backend: c.call.Name(), Kind: domain.FailureStatus, Status: http.StatusInternalServerError}
	upstream.ParseErrorBody(body, e)
	return e
}

type tagsWire struct {
	Models []struct {
		Name       string    `json:"name"`
		Model      string    `json:"model"`
		ModifiedAt time.Time `json:"modified_at"`
	} `json:"models"`
}

// Owner is the owned_by reported for models listed by Ollama.
const Owner = "ollama"

// ListModels reads GET /api/tags.
func (c *Client) ListModels(ctx context.Context) ([]domain.Model, error) {
	call, err := c.call.Do(ctx, http.MethodGet, "api/tags", nil)
	if err != nil {
		return nil, err
	}
	defer call.Close()
	var w tagsWire
	if err := json.NewDecoder(io.LimitReader(call.Resp.Body, maxAnswer)).Decode(&w); err != nil {
		return nil, call.Protocol("unreadable /api/tags answer: %v", err)
	}
	out := make([]domain.Model, 0, len(w.Models))
	for _, m := range w.Models {
		id := m.Name
		if id == "" {
			id = m.Model
		}
		var created int64
		if !m.ModifiedAt.IsZero() {
			created = m.ModifiedAt.Unix()
		}
		out = append(out, domain.Model{ID: id, Created: created, OwnedBy: Owner})
	}
	return out, nil
}
