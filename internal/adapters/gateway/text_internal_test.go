package gateway

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// textSink is a ports.Sink of text chunks that keeps them.
type textSink struct{ chunks []domain.TextChunk }

func (s *textSink) Send(c domain.TextChunk) error { s.chunks = append(s.chunks, c); return nil }
func (s *textSink) Flush() error                  { return nil }

func readText(stream string, choices int) ([]domain.TextChunk, error) {
	r := sseReader{backend: "gw", where: "POST /v1/completions", frame: func() {}, fail: func(err error) error { return err }}
	var s textSink
	err := r.relayText(strings.NewReader(stream), &s, choices)
	return s.chunks, err
}

func events(frames ...string) string {
	var b strings.Builder
	for _, f := range frames {
		b.WriteString("data: " + f + "\n\n")
	}
	return b.String()
}

// TestTextFrames reads frames the fake does not write: alternatives out
// of order, a partial character's "bytes:" token, null log probabilities,
// lists shorter than the tokens, usage in the finishing frame (it also
// comes last on its own, as for chat), comments and other fields.
func TestTextFrames(t *testing.T) {
	stream := ": keep-alive\n\nevent: completion\n" + events(
		`{"id":"cmpl-1","object":"text_completion","created":1,"choices":[{"text":"a","index":1,"logprobs":null,"finish_reason":null,"stop_reason":null}],"model":"m"}`,
		`{"choices":[{"text":"😀","index":0,"logprobs":{"tokens":["bytes:\\xf0\\x9f","bytes:\\x98\\x80","x"],`+
			`"token_logprobs":[null,-0.5],"top_logprobs":[{"b":-3,"a":-1,"c":-1,"bytes:\\xf0\\x9f":-0.5},null],"text_offset":[0,1,2]},"finish_reason":null}]}`,
		`{"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"},{"text":"!","index":1,"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`,
	) + "data: [DONE]\n\n"
	got, err := readText(stream, 2)
	if err != nil {
		t.Fatal(err)
	}
	usage := &domain.Usage{PromptTokens: 3, CompletionTokens: 4}
	want := []domain.TextChunk{
		{Index: 1, Text: "a"},
		{Index: 0, Text: "😀", Logprobs: []domain.TokenLogprob{
			{Token: `bytes:\xf0\x9f`, Bytes: []byte{0xf0, 0x9f}, Top: []domain.TopLogprob{
				{Token: `bytes:\xf0\x9f`, Logprob: -0.5, Bytes: []byte{0xf0, 0x9f}},
				{Token: "a", Logprob: -1, Bytes: []byte("a")},
				{Token: "c", Logprob: -1, Bytes: []byte("c")},
				{Token: "b", Logprob: -3, Bytes: []byte("b")},
			}},
			{Token: `bytes:\x98\x80`, Logprob: -0.5, Bytes: []byte{0x98, 0x80}},
			{Token: "x", Bytes: []byte("x")},
		}},
		{Index: 0, FinishReason: "length", Usage: usage},
		{Index: 1, Text: "!", FinishReason: "stop", Usage: usage},
		{Usage: usage},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTokenBytes(t *testing.T) {
	for tok, want := range map[string]string{
		"plain":          "plain",
		`bytes:\xe2\x80`: "\xe2\x80",
		`bytes:\xE2`:     "\xe2",
		"bytes:":         "bytes:",
		`bytes:\xe`:      `bytes:\xe`,
		`bytes:\xzz`:     `bytes:\xzz`,
		`bytes: \xe2`:    `bytes: \xe2`,
		`bytes:\xe2abcd`: `bytes:\xe2abcd`,
	} {
		if got := string(tokenBytes(tok)); got != want {
			t.Errorf("tokenBytes(%q) = %q, want %q", tok, got, want)
		}
	}
}

// TestTextStreamFailures: a cut stream, an error frame, a choice the
// request did not ask for and an unreadable frame all fail the answer.
func TestTextStreamFailures(t *testing.T) {
	frame := `{"choices":[{"text":"a","index":0,"logprobs":null,"finish_reason":null}]}`
	for _, tc := range []struct {
		name   string
		stream string
		kind   domain.FailureKind // 0: the stream's own error
	}{
		{"no [DONE]", events(frame), 0},
		{"nothing at all", "", 0},
		{"error frame", events(frame, `{"error":{"message":"overloaded","type":"server_error"}}`), domain.FailureServer},
		{"rate limit frame", events(`{"error":{"message":"slow down","code":"rate_limit_exceeded"}}`), domain.FailureRateLimited},
		{"index beyond the choices asked for", events(`{"choices":[{"text":"a","index":2}]}`) + "data: [DONE]\n\n", domain.FailureProtocol},
		{"negative index", events(`{"choices":[{"text":"a","index":-1}]}`) + "data: [DONE]\n\n", domain.FailureProtocol},
		{"not JSON", events("<html>") + "data: [DONE]\n\n", domain.FailureProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readText(tc.stream, 2)
			if tc.kind == 0 {
				if err != io.ErrUnexpectedEOF {
					t.Errorf("error %v, want io.ErrUnexpectedEOF (classified by the call)", err)
				}
				return
			}
			var ue *domain.UpstreamError
			if !errors.As(err, &ue) || ue.Kind != tc.kind || ue.Backend != "gw" {
				t.Errorf("error %#v, want kind %v", err, tc.kind)
			}
		})
	}
}
