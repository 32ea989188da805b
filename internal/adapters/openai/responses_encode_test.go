package openai_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/openai/openaispec"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// lastResponse is the response object the last event of stream carries,
// as written.
func lastResponse(t *testing.T, stream string) []byte {
	t.Helper()
	frames := strings.Split(strings.TrimSuffix(stream, "\n\n"), "\n\n")
	_, data, _ := strings.Cut(frames[len(frames)-1], "\ndata: ")
	var ev struct{ Response json.RawMessage }
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Response
}

// The object (what the store keeps) is the final event's response, byte
// for byte, completed_at included however the clock moves; the two
// opening events carry the same response.
func TestResponseObjectIsTheFinalEventsResponse(t *testing.T) {
	req, _ := openai.DecodeResponsesRequest([]byte(`{"model":"m","input":"Hi","stream":true,"instructions":"Be brief.","temperature":0.5}`))
	clock := int64(100)
	b := openai.NewResponseBuilder(req, "resp_1", "m", 100, func() int64 { clock++; return clock })
	var s strings.Builder
	s.Write(b.Open())
	for _, p := range []string{"Hello", ", ", "sea."} {
		s.Write(b.Chunk(domain.Chunk{Content: p}))
	}
	s.Write(b.Chunk(domain.Chunk{FinishReason: "stop", Usage: &domain.Usage{PromptTokens: 3, CompletionTokens: 3}}))
	s.Write(b.Close())
	evs := events(t, s.String())
	created, _ := json.Marshal(evs[0]["response"])
	inProgress, _ := json.Marshal(evs[1]["response"])
	if !bytes.Equal(created, inProgress) {
		t.Errorf("response.created carries\n%s\nresponse.in_progress\n%s", created, inProgress)
	}
	final := lastResponse(t, s.String())
	if !bytes.Equal(b.Object(), final) {
		t.Fatalf("Object()\n%s\nthe final event's response\n%s", b.Object(), final)
	}
	if !bytes.Equal(b.Object(), final) { // asked again: the same
		t.Fatal("Object() changed")
	}
	openaispec.Must(t, "Response", b.Object())
	var r struct {
		CompletedAt int64 `json:"completed_at"`
		Store       bool
	}
	if err := json.Unmarshal(b.Object(), &r); err != nil || r.CompletedAt != 101 || !r.Store {
		t.Errorf("completed_at %d store %v (%v), want 101 (stamped once) and true", r.CompletedAt, r.Store, err)
	}
	if got := b.Text(); got != "Hello, sea." {
		t.Errorf("Text() = %q", got)
	}
}

// A response StoreIf refuses says store: false, in the final event and
// the object, and the request no longer asks to store it; the events'
// sequence numbers run on without a gap.
func TestResponseStoreIf(t *testing.T) {
	for _, fits := range []bool{true, false} {
		for _, stream := range []bool{true, false} {
			req, _ := openai.DecodeResponsesRequest([]byte(`{"model":"m","input":"Hi"}`))
			b := openai.NewResponseBuilder(req, "resp_2", "m", 100, func() int64 { return 101 })
			var asked int
			b.StoreIf(func(size int) bool {
				asked = size
				return fits
			})
			var s strings.Builder
			if stream {
				s.Write(b.Open())
				s.Write(b.Chunk(domain.Chunk{Content: "Hi there."}))
				s.Write(b.Close())
				events(t, s.String()) // sequence numbers without gaps
				if !bytes.Equal(b.Object(), lastResponse(t, s.String())) {
					t.Errorf("fits %v: Object() is not the final event's response", fits)
				}
			} else {
				b.Completion(domain.Completion{Choices: []domain.Choice{{Content: ptr("Hi there."), FinishReason: "stop"}}})
				if out := b.Close(); out != nil {
					t.Errorf("buffered Close wrote %s", out)
				}
			}
			var r struct{ Store bool }
			if err := json.Unmarshal(b.Object(), &r); err != nil {
				t.Fatal(err)
			}
			if r.Store != fits || req.Store != fits {
				t.Errorf("fits %v stream %v: the response says store %v, the request %v", fits, stream, r.Store, req.Store)
			}
			if fits && asked != len(b.Object()) {
				t.Errorf("StoreIf was asked about %d bytes, the object has %d", asked, len(b.Object()))
			}
		}
	}
	// Not asked when the request does not store.
	req, _ := openai.DecodeResponsesRequest([]byte(`{"model":"m","input":"Hi","store":false}`))
	b := openai.NewResponseBuilder(req, "resp_3", "m", 100, func() int64 { return 101 })
	b.StoreIf(func(int) bool { t.Error("StoreIf asked for a response with store: false"); return true })
	b.Completion(domain.Completion{Choices: []domain.Choice{{Content: ptr("x"), FinishReason: "stop"}}})
	b.Close()
}

func TestNewResponseIDSortsByTime(t *testing.T) {
	shape := regexp.MustCompile(`^resp_[0-9a-f]{32}$`)
	a := openai.NewResponseID()
	time.Sleep(2 * time.Millisecond)
	b := openai.NewResponseID()
	for _, id := range []string{a, b} {
		if !shape.MatchString(id) {
			t.Errorf("id %q: want resp_ and 32 hex digits", id)
		}
	}
	if a >= b {
		t.Errorf("ids made 2ms apart do not sort by time: %s then %s", a, b)
	}
	seen := map[string]bool{}
	for range 10000 {
		id := openai.NewResponseID()
		if seen[id] {
			t.Fatalf("id %s made twice", id)
		}
		seen[id] = true
	}
}
