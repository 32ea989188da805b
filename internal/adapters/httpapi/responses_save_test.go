package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/httpapi"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
)

// piecesChatter answers with a few pieces of text, streamed or not.
type piecesChatter struct{}

var savePieces = []string{"The ", "sea ", "is ", "wide."}

func (piecesChatter) Chat(context.Context, domain.ChatRequest) (domain.Completion, domain.Route, error) {
	text := strings.Join(savePieces, "")
	return domain.Completion{Choices: []domain.Choice{{Content: &text, FinishReason: "stop"}},
			Usage: &domain.Usage{PromptTokens: 5, CompletionTokens: 4}},
		domain.Route{Backend: "double", Model: "m"}, nil
}

func (piecesChatter) StreamChat(_ context.Context, _ *domain.ChatRequest, out dispatch.Out[domain.Chunk]) (domain.Route, error) {
	route := domain.Route{Backend: "double", Model: "m"}
	out.Begin(route)
	for _, p := range savePieces {
		if err := out.Send(domain.Chunk{Content: p}); err != nil {
			return route, err
		}
	}
	if err := out.Send(domain.Chunk{FinishReason: "stop", Usage: &domain.Usage{PromptTokens: 5, CompletionTokens: 4}}); err != nil {
		return route, err
	}
	return route, out.Flush()
}

// savingConvs keeps responses in a map, and notes what the client had
// received when each was saved.
type savingConvs struct {
	sent   *httptest.ResponseRecorder // what the handler has written so far
	saved  map[string]domain.StoredResponse
	sentAt map[string]string // id -> the body written when it was saved
}

func (s *savingConvs) Fits(int) bool { return true }

func (s *savingConvs) Save(_ context.Context, id string, created time.Time, response, input []byte) (bool, error) {
	s.saved[id] = domain.StoredResponse{ID: id, CreatedAt: created, Response: bytes.Clone(response), Input: bytes.Clone(input)}
	s.sentAt[id] = s.sent.Body.String()
	return true, nil
}

func (s *savingConvs) Load(_ context.Context, id string) (domain.StoredResponse, error) {
	r, ok := s.saved[id]
	if !ok {
		return r, domain.ErrResponseNotFound
	}
	return r, nil
}

func (s *savingConvs) Delete(context.Context, string) error { return nil }

// A stored response is saved before the client sees its end: before
// response.completed is written (a client continuing it as soon as it
// reads that event finds it), or before the buffered answer. What is
// stored is the response the client got, byte for byte.
func TestResponseSavedBeforeTheClientSeesItEnd(t *testing.T) {
	for _, stream := range []bool{true, false} {
		rec := httptest.NewRecorder()
		convs := &savingConvs{sent: rec, saved: map[string]domain.StoredResponse{}, sentAt: map[string]string{}}
		router := httpapi.NewRouter(httpapi.Options{CORSOrigins: []string{"*"}, MaxBodyBytes: 1 << 20}, httpapi.Deps{Chat: piecesChatter{}, Conversations: convs, Log: zap.NewNop()})
		body := `{"model":"m","input":"Tell me about the sea.","stream":` + map[bool]string{true: "true", false: "false"}[stream] + `}`
		req := httptest.NewRequest(http.MethodPost, "/v1/responses", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		router.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || len(convs.saved) != 1 {
			t.Fatalf("stream %v: status %d, %d saved: %s", stream, rec.Code, len(convs.saved), rec.Body)
		}
		var final []byte
		if stream {
			out := rec.Body.String()
			i := strings.Index(out, "event: response.completed\ndata: ")
			if i < 0 {
				t.Fatalf("no response.completed: %s", out)
			}
			var ev struct{ Response json.RawMessage }
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.SplitN(out[i:], "data: ", 2)[1])), &ev); err != nil {
				t.Fatal(err)
			}
			final = ev.Response
		} else {
			final = rec.Body.Bytes()
		}
		var got struct{ ID, Status string }
		if err := json.Unmarshal(final, &got); err != nil || got.Status != "completed" {
			t.Fatalf("stream %v: final response %s (%v)", stream, final, err)
		}
		saved, ok := convs.saved[got.ID]
		if !ok {
			t.Fatalf("stream %v: %s not saved (saved: %v)", stream, got.ID, convs.saved)
		}
		if !bytes.Equal(saved.Response, final) {
			t.Errorf("stream %v: saved\n%s\nthe client got\n%s", stream, saved.Response, final)
		}
		if !strings.Contains(string(saved.Input), "Tell me about the sea.") {
			t.Errorf("stream %v: saved input %s", stream, saved.Input)
		}
		sent := convs.sentAt[got.ID]
		if stream && (!strings.Contains(sent, "response.output_text.delta") || strings.Contains(sent, "response.completed")) {
			t.Errorf("stream: when the response was saved the client had\n%s\nwant its deltas, and no response.completed yet", sent)
		}
		if !stream && sent != "" {
			t.Errorf("buffered: the answer was written before the response was saved: %s", sent)
		}
	}
}
