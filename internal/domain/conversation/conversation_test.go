package conversation_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/conversation"
)

// memory is a ResponseStore in a map; it never expires anything itself,
// so the tests see what the service does.
type memory map[string]domain.StoredResponse

func (m memory) Put(_ context.Context, r domain.StoredResponse) error { m[r.ID] = r; return nil }
func (m memory) Get(_ context.Context, id string) (domain.StoredResponse, error) {
	r, ok := m[id]
	if !ok {
		return r, domain.ErrResponseNotFound
	}
	return r, nil
}
func (m memory) Delete(_ context.Context, id string) error {
	if _, ok := m[id]; !ok {
		return domain.ErrResponseNotFound
	}
	delete(m, id)
	return nil
}

func TestSaveLoadExpiry(t *testing.T) {
	store := memory{}
	s := conversation.New(store, time.Hour, 100)
	created := time.Now()
	ok, err := s.Save(context.Background(), "resp_1", created, []byte(`{"id":"resp_1"}`), []byte(`[]`))
	if !ok || err != nil {
		t.Fatalf("save: %v %v", ok, err)
	}
	if got := store["resp_1"].ExpiresAt; !got.Equal(created.Add(time.Hour)) {
		t.Errorf("expires at %v, want created + ttl", got)
	}
	if r, err := s.Load(context.Background(), "resp_1"); err != nil || string(r.Response) != `{"id":"resp_1"}` {
		t.Errorf("load: %v %v", r, err)
	}
	// Past its retention a response is gone, even before the store drops it.
	r := store["resp_1"]
	r.ExpiresAt = time.Now().Add(-time.Second)
	store["resp_1"] = r
	if _, err := s.Load(context.Background(), "resp_1"); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Errorf("load of an expired response: %v", err)
	}
	// Too large to keep: not stored, and the caller is told.
	ok, err = s.Save(context.Background(), "resp_2", created, make([]byte, 200), nil)
	if ok || err != nil || store["resp_2"].ID != "" {
		t.Errorf("a response over the limit: stored %v, %v", ok, err)
	}
	if err := s.Delete(context.Background(), "resp_x"); !errors.Is(err, domain.ErrResponseNotFound) {
		t.Errorf("delete of an unknown id: %v", err)
	}
}
