package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Conversations keeps the stored responses of the Responses API.
type Conversations interface {
	Fits(size int) bool
	Save(ctx context.Context, id string, created time.Time, response, input []byte) (bool, error)
	Load(ctx context.Context, id string) (domain.StoredResponse, error)
	Delete(ctx context.Context, id string) error
}

// responsesHandler serves the Responses API: POST /v1/responses on the
// chat use case, and the stored responses.
type responsesHandler struct {
	session      string // the session header's name, if any
	chat         Chatter
	convs        Conversations
	maxBodyBytes int64
	now          func() time.Time
	metrics      Recorder
	tokens       TokenCounter
	streams      *streamDeps
}

func (h *responsesHandler) create(c *gin.Context) {
	start := time.Now()
	body, err := readBody(c, h.maxBodyBytes)
	if err != nil {
		writeError(c, toAPIError(err))
		return
	}
	req, err := openai.DecodeResponsesRequest(body)
	if err != nil {
		writeError(c, toAPIError(err))
		return
	}
	sessionOf(c, h.session, &req.Chat.Session)
	ctx := c.Request.Context()
	if req.PreviousID != "" {
		prev, err := h.convs.Load(ctx, req.PreviousID)
		if err != nil {
			h.storeFailed(c, err, "previous_response_id", fmt.Sprintf("Previous response with id '%s' not found.", req.PreviousID))
			return
		}
		if err := req.Continue(prev.Input, prev.Response); err != nil {
			var inv *domain.InvalidRequestError
			if !errors.As(err, &inv) {
				logger(c).Error("a stored response could not be read", zap.String("response_id", req.PreviousID), zap.Error(err))
			}
			writeError(c, toAPIError(err))
			return
		}
	}
	if ce := baseLogger(c).Check(zap.DebugLevel, "responses request"); ce != nil {
		ce.Write(zap.String("request_id", c.GetString(requestIDKey)), zap.String("model", req.Chat.Model),
			zap.Bool("stream", req.Stream), zap.String("previous_response_id", req.PreviousID), zap.ByteString("body", redactImages(body)))
	}
	created := h.now()
	b := openai.NewResponseBuilder(req, openai.NewResponseID(), req.Chat.Model, created.Unix(), func() int64 { return h.now().Unix() })
	frames := &responseFrames{h: h, req: req, b: b, c: c}
	if req.Stream {
		w := newSSEWriter[domain.Chunk](c, frames, h.streams, req.Chat.Model, start, false)
		route, err := h.chat.StreamChat(ctx, &req.Chat, w)
		w.finish(route, err, func(err error) { fail(c, err) })
		if err == nil && frames.closed {
			h.save(c, req, b, created)
		}
		return
	}
	out, route, err := h.chat.Chat(ctx, req.Chat)
	if err != nil {
		fail(c, err)
		return
	}
	setRoute(c, route)
	b.Completion(out)
	frames.settle()
	b.Close()
	if u := b.Usage(); u != nil {
		h.metrics.Tokens(route, req.Chat.Model, *u)
	}
	h.save(c, req, b, created)
	c.Data(http.StatusOK, "application/json; charset=utf-8", b.Object())
}

// save keeps the response when the request asked for it (store: true).
func (h *responsesHandler) save(c *gin.Context, req *openai.ResponsesRequest, b *openai.ResponseBuilder, created time.Time) {
	if !req.Store {
		return
	}
	// A context of its own: the answer is out, and the client may go.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 5*time.Second)
	defer cancel()
	if _, err := h.convs.Save(ctx, b.ID(), created, b.Object(), req.Conversation()); err != nil {
		logger(c).Error("storing the response failed; previous_response_id will not find it", zap.String("response_id", b.ID()), zap.Error(err))
	}
}

// responseFrames is the encoder of Responses streams: response.created
// and response.in_progress with the headers, an item's events as its
// pieces arrive, and response.completed (or incomplete, or failed) last.
type responseFrames struct {
	h         *responsesHandler
	req       *openai.ResponsesRequest
	b         *openai.ResponseBuilder
	c         *gin.Context
	text      strings.Builder // the answer, for a usage estimate
	estimated bool
	closed    bool // the response completed
}

func (f *responseFrames) Open() []byte { return f.b.Open() }

func (f *responseFrames) Frame(ch domain.Chunk) []byte {
	f.text.WriteString(ch.Content)
	f.text.WriteString(ch.Reasoning)
	for _, tc := range ch.ToolCalls {
		f.text.WriteString(tc.Name)
		f.text.WriteString(tc.Arguments)
	}
	return f.b.Chunk(ch)
}

// settle completes what the final response needs before it goes out: a
// usage estimate when the backend reported none, and store switched off
// when the response is too large to be kept.
func (f *responseFrames) settle() {
	if f.b.Usage() == nil && f.h.tokens != nil {
		f.b.SetUsage(f.h.tokens.Estimate(f.req.Chat.Model, f.req.Chat, f.text.String()))
		f.estimated = true
	}
	if f.req.Store && !f.h.convs.Fits(len(f.b.Object())+len(f.req.Conversation())) {
		logger(f.c).Warn("the response is larger than responses.max_bytes: it is not stored", zap.String("response_id", f.b.ID()))
		f.req.Store = false
	}
}

func (f *responseFrames) Close() []byte {
	f.settle()
	f.closed = true
	return f.b.Close()
}

// Fail is response.failed with an error code the clients act on:
// rate_limit_exceeded (retried later), invalid_prompt for a request the
// backend refused (not retried), a backend's own code such as
// context_length_exceeded, else server_error (retried).
func (f *responseFrames) Fail(e apiError) []byte {
	code := "server_error"
	switch {
	case e.Status == http.StatusTooManyRequests:
		code = "rate_limit_exceeded"
	case e.Body.Error.Code != nil && *e.Body.Error.Code == "context_length_exceeded":
		code = "context_length_exceeded"
	case e.Status >= 400 && e.Status < 500:
		code = "invalid_prompt"
	}
	return f.b.Fail(code, e.Body.Error.Message)
}

func (f *responseFrames) Usage() (*domain.Usage, bool) { return f.b.Usage(), f.estimated }

// storeFailed answers a request whose stored response could not be read:
// 404 in OpenAI's words when there is none, 500 when the store failed.
func (h *responsesHandler) storeFailed(c *gin.Context, err error, param, notFound string) {
	if errors.Is(err, domain.ErrResponseNotFound) {
		writeError(c, apiError{Status: http.StatusNotFound, Body: openai.NewError(openai.TypeInvalidRequest, notFound, param, "")})
		return
	}
	logger(c).Error("the response store failed", zap.Error(err))
	writeError(c, apiError{Status: http.StatusInternalServerError,
		Body: openai.NewError(openai.TypeServer, "The stored responses could not be read; retry the request.", "", "store_unavailable")})
}

func (h *responsesHandler) get(c *gin.Context) {
	id := c.Param("id")
	r, err := h.convs.Load(c.Request.Context(), id)
	if err != nil {
		h.storeFailed(c, err, "", fmt.Sprintf("Response with id '%s' not found.", id))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json; charset=utf-8", r.Response)
}

func (h *responsesHandler) delete(c *gin.Context) {
	id := c.Param("id")
	if err := h.convs.Delete(c.Request.Context(), id); err != nil {
		h.storeFailed(c, err, "", fmt.Sprintf("Response with id '%s' not found.", id))
		return
	}
	b := []byte(`{"id":`)
	b = wire.AppendString(b, id)
	b = append(b, `,"object":"response.deleted","deleted":true}`...)
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}

// inputItems lists the input items a stored response answered, in pages:
// order desc (the default) or asc, at most limit (1-100, 20 by default),
// after an item id.
func (h *responsesHandler) inputItems(c *gin.Context) {
	id := c.Param("id")
	order := c.DefaultQuery("order", "desc")
	if order != "asc" && order != "desc" {
		writeError(c, toAPIError(domain.Invalid("order", "Invalid value: '%s'. Supported values are: 'asc' and 'desc'.", order)))
		return
	}
	limit := 20
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			writeError(c, toAPIError(domain.Invalid("limit", "Invalid 'limit': expected an integer between 1 and 100, but got '%s'.", s)))
			return
		}
		limit = n
	}
	r, err := h.convs.Load(c.Request.Context(), id)
	if err != nil {
		h.storeFailed(c, err, "", fmt.Sprintf("Response with id '%s' not found.", id))
		return
	}
	var items []json.RawMessage
	if err := json.Unmarshal(r.Input, &items); err != nil {
		h.storeFailed(c, err, "", "")
		return
	}
	if order == "desc" {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	if after := c.Query("after"); after != "" {
		found := false
		for i, it := range items {
			if itemID(it) == after {
				items, found = items[i+1:], true
				break
			}
		}
		if !found {
			writeError(c, toAPIError(domain.Invalid("after", "Invalid 'after': no input item of response '%s' has the id '%s'.", id, after)))
			return
		}
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	out := []byte(`{"object":"list","data":[`)
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
	}
	first, last := "", ""
	if len(items) > 0 {
		first, last = itemID(items[0]), itemID(items[len(items)-1])
	}
	out = append(out, `],"first_id":`...)
	out = wire.AppendString(out, first)
	out = append(out, `,"last_id":`...)
	out = wire.AppendString(out, last)
	out = append(out, `,"has_more":`...)
	out = strconv.AppendBool(out, more)
	c.Data(http.StatusOK, "application/json; charset=utf-8", append(out, '}'))
}

func itemID(raw json.RawMessage) string {
	var w struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &w)
	return w.ID
}
