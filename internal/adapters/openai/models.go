package openai

import "github.com/llm-gateway/chatgpt-api-adapter/internal/domain"

// Model is OpenAI's model object.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// NewModel converts a domain model.
func NewModel(m domain.Model) Model {
	return Model{ID: m.ID, Object: "model", Created: m.Created, OwnedBy: m.OwnedBy}
}

// NewModelList converts a list of domain models.
func NewModelList(ms []domain.Model) ModelList {
	l := ModelList{Object: "list", Data: make([]Model, len(ms))}
	for i, m := range ms {
		l.Data[i] = NewModel(m)
	}
	return l
}
