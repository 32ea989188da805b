// Package gateway is the client for OpenAI-compatible backends: the LLM
// gateway, vLLM, LiteLLM, llama.cpp's server, Ollama's /v1. The client's
// request body is forwarded with only the model rewritten.
package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Client speaks OpenAI's Chat Completions protocol to one backend.
type Client struct {
	call *upstream.Caller
}

var (
	_ ports.ChatBackend = (*Client)(nil)
	_ ports.ModelLister = (*Client)(nil)
)

// New builds a client; opts.BaseURL is the OpenAI base (…/v1).
func New(opts upstream.Options) *Client {
	return &Client{call: upstream.New(opts)}
}

// maxAnswer caps a buffered answer read from the upstream.
const maxAnswer = 64 << 20

// maxFrame caps one SSE line.
const maxFrame = 16 << 20

type completionWire struct {
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageWire `json:"usage"`
}

type usageWire struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

func (u *usageWire) domain() *domain.Usage {
	if u == nil {
		return nil
	}
	return &domain.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
}

// Complete forwards a buffered request.
func (c *Client) Complete(ctx context.Context, req domain.ChatRequest) (domain.Completion, error) {
	var out domain.Completion
	body, err := RewriteBody(req.Raw, req.Model, false)
	if err != nil {
		return out, err
	}
	call, err := c.call.Do(ctx, http.MethodPost, "chat/completions", body)
	if err != nil {
		return out, err
	}
	defer call.Close()
	data, err := io.ReadAll(io.LimitReader(call.Resp.Body, maxAnswer))
	if err != nil {
		return out, call.Fail(err)
	}
	call.Started()
	var w completionWire
	if err := json.Unmarshal(data, &w); err != nil {
		return out, call.Protocol("unreadable chat.completion: %v", err)
	}
	if len(w.Choices) == 0 {
		return out, call.Protocol("chat.completion without choices")
	}
	ch := w.Choices[0]
	if ch.Message.Content != nil {
		out.Content = *ch.Message.Content
	}
	if ch.FinishReason != nil {
		out.FinishReason = *ch.FinishReason
	}
	out.Usage = w.Usage.domain()
	return out, nil
}

type chunkWire struct {
	Choices []struct {
		Delta struct {
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageWire      `json:"usage"`
	Error json.RawMessage `json:"error"`
}

var (
	dataPrefix = []byte("data:")
	doneMarker = []byte("[DONE]")
)

// Stream forwards a streamed request and relays each SSE frame as a chunk.
func (c *Client) Stream(ctx context.Context, req domain.ChatRequest, fn ports.ChunkFunc) error {
	body, err := RewriteBody(req.Raw, req.Model, true)
	if err != nil {
		return err
	}
	call, err := c.call.Do(ctx, http.MethodPost, "chat/completions", body)
	if err != nil {
		return err
	}
	defer call.Close()
	sc := bufio.NewScanner(call.Resp.Body)
	sc.Buffer(make([]byte, 0, 16<<10), maxFrame)
	var usage *domain.Usage
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, dataPrefix) {
			continue // blank separators, comments, event:/id: lines
		}
		data := bytes.TrimSpace(line[len(dataPrefix):])
		if bytes.Equal(data, doneMarker) {
			return flushUsage(fn, usage)
		}
		var w chunkWire
		if err := json.Unmarshal(data, &w); err != nil {
			return call.Protocol("unreadable stream frame: %v", err)
		}
		if len(w.Error) > 0 {
			e := &domain.UpstreamError{Backend: c.call.Name(), Kind: domain.FailureStatus, Status: http.StatusBadGateway}
			upstream.ParseErrorBody(data, e)
			return e
		}
		call.Started()
		if w.Usage != nil {
			usage = w.Usage.domain()
		}
		if len(w.Choices) == 0 {
			continue // the usage-only chunk; usage goes out with the last chunk
		}
		ch := w.Choices[0]
		chunk := domain.Chunk{}
		if ch.Delta.Content != nil {
			chunk.Content = *ch.Delta.Content
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			chunk.FinishReason = *ch.FinishReason
			chunk.Usage = usage
		}
		if err := fn(chunk); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return call.Fail(err)
	}
	return call.Fail(io.ErrUnexpectedEOF)
}

// flushUsage hands over a usage that arrived after the finishing chunk (the
// include_usage form) on a chunk of its own.
func flushUsage(fn ports.ChunkFunc, usage *domain.Usage) error {
	if usage == nil {
		return nil
	}
	return fn(domain.Chunk{Usage: usage})
}

type modelsWire struct {
	Data []struct {
		ID      string `json:"id"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	} `json:"data"`
}

// ListModels reads GET /models.
func (c *Client) ListModels(ctx context.Context) ([]domain.Model, error) {
	call, err := c.call.Do(ctx, http.MethodGet, "models", nil)
	if err != nil {
		return nil, err
	}
	defer call.Close()
	var w modelsWire
	if err := json.NewDecoder(io.LimitReader(call.Resp.Body, maxAnswer)).Decode(&w); err != nil {
		return nil, call.Protocol("unreadable model list: %v", err)
	}
	out := make([]domain.Model, 0, len(w.Data))
	for _, m := range w.Data {
		out = append(out, domain.Model{ID: m.ID, Created: m.Created, OwnedBy: m.OwnedBy})
	}
	return out, nil
}

// RewriteBody returns the client's body with "model" set to the upstream's
// name; stream_options is dropped from a buffered request. Every other field
// passes untouched.
func RewriteBody(raw []byte, model string, stream bool) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, domain.Invalid("", "We could not parse the JSON body of your request.")
	}
	m, _ := json.Marshal(model)
	fields["model"] = m
	if !stream {
		delete(fields, "stream_options")
	}
	return json.Marshal(fields)
}
