// Package conversation keeps the Responses API's stored responses: what a
// later request continues with previous_response_id, and what a client
// reads back or deletes. It sets the retention and the size limit; the
// store behind the port keeps the documents.
package conversation

import (
	"context"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Service keeps stored responses.
type Service struct {
	store    ports.ResponseStore
	ttl      time.Duration
	maxBytes int
	now      func() time.Time
}

// New builds the service: responses expire ttl after they were made (0:
// never), and one bigger than maxBytes (0: no limit) is not kept.
func New(store ports.ResponseStore, ttl time.Duration, maxBytes int) *Service {
	return &Service{store: store, ttl: ttl, maxBytes: maxBytes, now: time.Now}
}

// Fits reports whether a response of size bytes may be kept.
func (s *Service) Fits(size int) bool { return s.maxBytes <= 0 || size <= s.maxBytes }

// Save keeps a response made at created: its object as the client got it
// and every input item it answered. It reports false, storing nothing,
// when the response is larger than the limit.
func (s *Service) Save(ctx context.Context, id string, created time.Time, response, input []byte) (bool, error) {
	r := domain.StoredResponse{ID: id, CreatedAt: created, Response: response, Input: input}
	if !s.Fits(r.Size()) {
		return false, nil
	}
	if s.ttl > 0 {
		r.ExpiresAt = created.Add(s.ttl)
	}
	return true, s.store.Put(ctx, r)
}

// Load returns the stored response with id, or domain.ErrResponseNotFound.
func (s *Service) Load(ctx context.Context, id string) (domain.StoredResponse, error) {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return r, err
	}
	if !r.ExpiresAt.IsZero() && !s.now().Before(r.ExpiresAt) {
		return domain.StoredResponse{}, domain.ErrResponseNotFound
	}
	return r, nil
}

// Delete removes the stored response with id, or returns
// domain.ErrResponseNotFound.
func (s *Service) Delete(ctx context.Context, id string) error { return s.store.Delete(ctx, id) }
