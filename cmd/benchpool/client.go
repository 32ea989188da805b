package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Result is one request as the client saw it.
type Result struct {
	Conv  int    `json:"conv"`
	Turn  int    `json:"turn"` // 1 for a conversation's first request
	Model string `json:"model"`
	// Start is when it was sent, since the run began; TTFT until the first
	// content delta; Latency until the stream ended.
	Start    time.Duration `json:"start_ns"`
	TTFT     time.Duration `json:"ttft_ns"`
	Latency  time.Duration `json:"latency_ns"`
	Backend  string        `json:"backend,omitempty"`  // X-Backend
	Host     string        `json:"host,omitempty"`     // X-Backend-Host
	Affinity string        `json:"affinity,omitempty"` // X-Affinity
	Err      string        `json:"error,omitempty"`
	Answer   string        `json:"-"`
}

// Client sends streaming chat completions to the service.
type Client struct {
	Base string // http://host:port
	HTTP *http.Client
}

// NewClient keeps enough idle connections for conns requests at a time.
func NewClient(base string, conns int) *Client {
	tr := &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: time.Minute,
		DisableCompression: true}
	return &Client{Base: base, HTTP: &http.Client{Transport: tr}}
}

// Close drops the idle connections.
func (c *Client) Close() { c.HTTP.CloseIdleConnections() }

type chatBody struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Stream   bool      `json:"stream"`
	User     string    `json:"user,omitempty"`
}

// Chat sends msgs to model as a streaming chat completion and reads the
// stream to its end. r's identity fields are the caller's to set.
func (c *Client) Chat(ctx context.Context, model string, msgs []Message, user string) Result {
	r := Result{Model: model}
	body, _ := json.Marshal(chatBody{Model: model, Messages: msgs, Stream: true, User: user})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	sent := time.Now()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer resp.Body.Close()
	r.Backend = resp.Header.Get("X-Backend")
	r.Host = resp.Header.Get("X-Backend-Host")
	r.Affinity = resp.Header.Get("X-Affinity")
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		r.Err = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		return r
	}
	var answer strings.Builder
	err = readSSE(resp.Body, func(content string) {
		if r.TTFT == 0 && content != "" {
			r.TTFT = time.Since(sent)
		}
		answer.WriteString(content)
	})
	r.Latency = time.Since(sent)
	r.Answer = answer.String()
	if err == nil && r.TTFT == 0 {
		err = errors.New("the stream carried no content")
	}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// chunk is the part of a chat.completion.chunk (or of an error event) the
// client reads.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// readSSE reads a chat completion's event stream until data: [DONE],
// passing each delta's content to onContent. A stream that ends without
// [DONE], or carries an error event, is an error.
func readSSE(body io.Reader, onContent func(string)) error {
	br := bufio.NewReaderSize(body, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			line = strings.TrimRight(line, "\r\n")
			data, ok := strings.CutPrefix(line, "data:")
			if ok {
				data = strings.TrimPrefix(data, " ")
				if data == "[DONE]" {
					return nil
				}
				var ch chunk
				if jerr := json.Unmarshal([]byte(data), &ch); jerr != nil {
					return fmt.Errorf("unreadable event %.120q: %v", data, jerr)
				}
				if ch.Error != nil {
					return fmt.Errorf("error event: %s", ch.Error.Message)
				}
				for _, c := range ch.Choices {
					onContent(c.Delta.Content)
				}
			}
		}
		if err == io.EOF {
			return errors.New("the stream ended without data: [DONE]")
		}
		if err != nil {
			return err
		}
	}
}
