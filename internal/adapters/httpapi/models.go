package httpapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Catalog lists and finds models.
type Catalog interface {
	List() []domain.Model
	Get(id string) (domain.Model, error)
}

type modelsHandler struct{ catalog Catalog }

func (h *modelsHandler) list(c *gin.Context) {
	c.JSON(http.StatusOK, openai.NewModelList(h.catalog.List()))
}

// get serves /v1/models/*id: ids may contain slashes (hf.co/org/model).
func (h *modelsHandler) get(c *gin.Context) {
	id := strings.TrimPrefix(c.Param("id"), "/")
	if id == "" {
		h.list(c)
		return
	}
	m, err := h.catalog.Get(id)
	if err != nil {
		writeError(c, toAPIError(err))
		return
	}
	c.JSON(http.StatusOK, openai.NewModel(m))
}
