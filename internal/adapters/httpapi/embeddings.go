package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Embedder is the embeddings use case the handler drives.
type Embedder interface {
	Embed(ctx context.Context, req domain.EmbedRequest) (domain.Embeddings, domain.Route, error)
}

// embeddingsHandler serves POST /v1/embeddings.
type embeddingsHandler struct {
	embed        Embedder
	maxBodyBytes int64
	metrics      Recorder
	tokens       TokenCounter
	// truncate lets backends cut inputs longer than the model's context
	// instead of refusing them (OpenAI refuses them).
	truncate bool
}

func (h *embeddingsHandler) serve(c *gin.Context) {
	body, err := readBody(c, h.maxBodyBytes)
	if err != nil {
		writeError(c, toAPIError(err))
		return
	}
	req, err := openai.DecodeEmbeddingsRequest(body)
	if err != nil {
		writeError(c, toAPIError(err))
		return
	}
	req.Truncate = h.truncate
	if ce := baseLogger(c).Check(zap.DebugLevel, "embeddings request"); ce != nil {
		ce.Write(zap.String("request_id", c.GetString(requestIDKey)), zap.String("model", req.Model),
			zap.Int("inputs", len(req.Inputs)), zap.ByteString("body", body))
	}
	out, route, err := h.embed.Embed(c.Request.Context(), req.EmbedRequest)
	if err != nil {
		fail(c, err)
		return
	}
	setRoute(c, route)
	if out.Usage == nil && h.tokens != nil {
		u := domain.Usage{}
		for _, in := range req.Inputs {
			if in.Tokens != nil {
				u.PromptTokens += len(in.Tokens)
			} else {
				u.PromptTokens += h.tokens.Text(req.Model, in.Text)
			}
		}
		out.Usage = &u
		c.Header(HeaderUsageEstimated, "true")
	}
	if out.Usage != nil {
		h.metrics.Tokens(route, req.Model, *out.Usage)
	}
	buf := embedAnswers.Get(openai.EmbeddingListSize(req.Model, out, req.Encoding))
	answer := openai.AppendEmbeddingList(buf, req.Model, out, req.Encoding)
	c.Header("Content-Length", strconv.Itoa(len(answer)))
	c.Data(http.StatusOK, "application/json; charset=utf-8", answer)
	embedAnswers.Put(answer) // written: free again
}

// embedAnswers holds the buffers embeddings answers are written in: an
// answer is hundreds of KiB (16 vectors of 768 floats are about 200),
// which would otherwise be allocated and cleared for every request.
var embedAnswers = wire.Buffers{Max: 8 << 20}
