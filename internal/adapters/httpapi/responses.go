package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
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
	frames := &responseFrames{h: h, req: req, b: b, c: c, created: created}
	if req.Store {
		frames.input = req.Conversation()
		b.StoreIf(frames.fits)
	}
	if req.Stream {
		// The response is saved as it closes, before response.completed
		// goes out (see responseFrames.Close).
		w := newSSEWriter[domain.Chunk](c, frames, h.streams, req.Chat.Model, start, false)
		route, err := h.chat.StreamChat(ctx, &req.Chat, w)
		w.finish(route, err, func(err error) { fail(c, err) })
		return
	}
	out, route, err := h.chat.Chat(ctx, req.Chat)
	if err != nil {
		fail(c, err)
		return
	}
	setRoute(c, route)
	b.Completion(out)
	frames.estimate()
	b.Close()
	if u := b.Usage(); u != nil {
		h.metrics.Tokens(route, req.Chat.Model, *u)
	}
	frames.save()
	c.Data(http.StatusOK, "application/json; charset=utf-8", b.Object())
}

// save keeps the response when the request asked for it (store: true) and
// it fits (responses.max_bytes): the final object, once the builder
// closed, and the conversation it answered. It runs before the client
// sees the response end (response.completed, or the buffered answer), so
// that a request continuing it at once (previous_response_id, which Codex
// and the Agents SDK send right after response.completed) finds it. The
// embedded store takes it in memory and commits it in the background
// (boltstore); Redis takes one round trip.
func (f *responseFrames) save() {
	if !f.req.Store {
		return
	}
	// A context of its own: a client that leaves now still gets its
	// response kept (it has had the id since response.created).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(f.c.Request.Context()), 5*time.Second)
	defer cancel()
	id := f.b.ID()
	if _, err := f.h.convs.Save(ctx, id, f.created, f.b.Object(), f.input); err != nil {
		logger(f.c).Error("storing the response failed; previous_response_id will not find it", zap.String("response_id", id), zap.Error(err))
	}
}

// fits tells the builder whether a final response object of size bytes
// will be stored, with the conversation it answered; when not, the
// response says "store": false.
func (f *responseFrames) fits(size int) bool {
	if f.h.convs.Fits(len(f.b.ID()) + size + len(f.input)) { // as domain.StoredResponse.Size counts
		return true
	}
	logger(f.c).Warn("the response is larger than responses.max_bytes: it is not stored", zap.String("response_id", f.b.ID()))
	return false
}

// responseFrames is the encoder of Responses streams: response.created
// and response.in_progress with the headers, an item's events as its
// pieces arrive, and response.completed (or incomplete, or failed) last.
type responseFrames struct {
	h         *responsesHandler
	req       *openai.ResponsesRequest
	b         *openai.ResponseBuilder
	c         *gin.Context
	created   time.Time
	input     []byte // the conversation the response answers, to store (store: true)
	estimated bool
}

func (f *responseFrames) Open() []byte { return f.b.Open() }

func (f *responseFrames) Frame(ch domain.Chunk) []byte { return f.b.Chunk(ch) }

// estimate counts the usage when the backend reported none.
func (f *responseFrames) estimate() {
	if f.b.Usage() == nil && f.h.tokens != nil {
		f.b.SetUsage(f.h.tokens.Estimate(f.req.Chat.Model, f.req.Chat, f.b.Text()))
		f.estimated = true
	}
}

// Close ends a stream that succeeded: the response is saved, then its
// final events go out.
func (f *responseFrames) Close() []byte {
	f.estimate()
	out := f.b.Close()
	f.save()
	return out
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
