// Package backendtest is the contract every chat backend owes the domain,
// as one test suite run against each implementation (the gateway client,
// the Ollama client, and each one added later): failures classified as
// *domain.UpstreamError kinds with the right Retryable, ModelMissing and
// Unhealthy; time limits that bound the wait for the first token and the
// gaps between tokens but never the answer's length; frames delivered as
// they arrive, each batch flushed before the backend waits for more;
// cancellation honoured at once; and n honoured. A new backend passes it
// or does not ship.
package backendtest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Model is the model every fake serves.
const Model = "contract-model:1b"

// Behaviour is what a fake upstream does, in words every protocol's fake
// can act out in its own wire format.
type Behaviour struct {
	Pieces     []string      // the answer's text, one frame each
	FirstDelay time.Duration // before the first frame
	PieceDelay time.Duration // between frames
	BreakAfter int           // > 0: drop the connection after that many frames
	Hang       bool          // never answer
	Status     int           // answer with this error status, in the protocol's error shape
	Missing    bool          // the model is not served: the protocol's own "no such model"
	Garbage    bool          // answer 200 with a body that is not the protocol
	WrongPath  bool          // the client is pointed at a base path the upstream does not serve
	Down       bool          // nothing listens where the client is pointed
}

// Harness starts one protocol's fake upstream acting out a behaviour and
// returns a backend client pointed at it, with the given time limits. The
// fake stops when the test ends.
type Harness struct {
	Name string
	New  func(t testing.TB, b Behaviour, limits upstream.Timeouts) ports.ChatBackend
	// Request builds the chat request this backend is given; n choices.
	Request func(n int) domain.ChatRequest
	// SingleChoice says the protocol has no n (the Responses API): the
	// case asking for several choices does not apply.
	SingleChoice bool
}

// Frames is a sink that keeps every frame and when it arrived, and notes
// each flush.
type Frames struct {
	mu      sync.Mutex
	Chunks  []domain.Chunk
	At      []time.Time
	Flushes []int // len(Chunks) at each flush
	OnSend  func(domain.Chunk) error
}

// Send implements ports.Sink.
func (f *Frames) Send(c domain.Chunk) error {
	f.mu.Lock()
	f.Chunks = append(f.Chunks, c)
	f.At = append(f.At, time.Now())
	f.mu.Unlock()
	if f.OnSend != nil {
		return f.OnSend(c)
	}
	return nil
}

// Flush implements ports.Sink.
func (f *Frames) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Flushes = append(f.Flushes, len(f.Chunks))
	return nil
}

// Text joins the content of choice i.
func (f *Frames) Text(i int) string {
	var b strings.Builder
	for _, c := range f.Chunks {
		if c.Index == i {
			b.WriteString(c.Content)
		}
	}
	return b.String()
}

// Finished reports whether choice i got its finish_reason.
func (f *Frames) Finished(i int) bool {
	for _, c := range f.Chunks {
		if c.Index == i && c.FinishReason != "" {
			return true
		}
	}
	return false
}

// Run runs the contract against h.
func Run(t *testing.T, h Harness) {
	words := []string{"one ", "two ", "three ", "four ", "five"}
	limits := upstream.Timeouts{FirstByte: 2 * time.Second, Idle: 2 * time.Second}
	chat := func(t *testing.T, b Behaviour, limits upstream.Timeouts, n int) (*Frames, error) {
		t.Helper()
		backend := h.New(t, b, limits)
		f := &Frames{}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return f, backend.Chat(ctx, h.Request(n), f)
	}

	t.Run("answers in frames", func(t *testing.T) {
		t.Parallel()
		f, err := chat(t, Behaviour{Pieces: words}, limits, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Text(0); got != strings.Join(words, "") {
			t.Errorf("text %q, want %q", got, strings.Join(words, ""))
		}
		if !f.Finished(0) {
			t.Error("no chunk carried a finish_reason")
		}
		var usage *domain.Usage
		for _, c := range f.Chunks {
			if c.Usage != nil {
				usage = c.Usage
			}
		}
		if usage == nil || usage.PromptTokens == 0 || usage.CompletionTokens == 0 {
			t.Errorf("usage %+v: want the upstream's counts", usage)
		}
	})

	t.Run("n choices", func(t *testing.T) {
		if h.SingleChoice {
			t.Skip("the protocol has no n: one choice per request")
		}
		t.Parallel()
		f, err := chat(t, Behaviour{Pieces: words}, limits, 3)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if f.Text(i) != strings.Join(words, "") || !f.Finished(i) {
				t.Errorf("choice %d: text %q, finished %v", i, f.Text(i), f.Finished(i))
			}
		}
		for _, c := range f.Chunks {
			if c.Index < 0 || c.Index > 2 {
				t.Errorf("chunk for choice %d of 3", c.Index)
			}
		}
	})

	t.Run("long answer outlasts the first-byte timeout", func(t *testing.T) {
		// The first token comes at once; the whole answer takes about 3x the
		// first-byte timeout, its gaps well inside the idle timeout.
		t.Parallel()
		short := upstream.Timeouts{FirstByte: 300 * time.Millisecond, Idle: time.Second}
		pieces := make([]string, 10)
		for i := range pieces {
			pieces[i] = "w "
		}
		begin := time.Now()
		f, err := chat(t, Behaviour{Pieces: pieces, PieceDelay: 100 * time.Millisecond}, short, 1)
		if err != nil {
			t.Fatalf("a healthy backend's long answer failed after %v: %v", time.Since(begin), err)
		}
		if f.Text(0) != strings.Repeat("w ", 10) {
			t.Errorf("text %q: want all 10 pieces", f.Text(0))
		}
		if took := time.Since(begin); took < 900*time.Millisecond {
			t.Errorf("took %v; the fake should have taken about 1s (3x the first-byte timeout)", took)
		}
	})

	t.Run("frames arrive as they come, flushed before each wait", func(t *testing.T) {
		t.Parallel()
		const gap = 150 * time.Millisecond
		f, err := chat(t, Behaviour{Pieces: words, PieceDelay: gap}, limits, 1)
		if err != nil {
			t.Fatal(err)
		}
		// Each text frame came on its own, gap apart; and before the backend
		// waited for the next, the frames it had were flushed.
		var text []int
		for i, c := range f.Chunks {
			if c.Content != "" {
				text = append(text, i)
			}
		}
		if len(text) != len(words) {
			t.Fatalf("%d text frames, want %d", len(text), len(words))
		}
		for k := 1; k < len(text); k++ {
			if d := f.At[text[k]].Sub(f.At[text[k-1]]); d < gap/2 {
				t.Errorf("text frames %d and %d arrived %v apart: frames were held back and delivered together", k-1, k, d)
			}
			flushed := false
			for _, n := range f.Flushes {
				if n > text[k-1] && n <= text[k] {
					flushed = true
				}
			}
			if !flushed {
				t.Errorf("no flush between text frames %d and %d: a frame waited for the network while held back", k-1, k)
			}
		}
	})

	t.Run("cancellation is honoured at once", func(t *testing.T) {
		t.Parallel()
		backend := h.New(t, Behaviour{Pieces: words, PieceDelay: time.Hour}, limits)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var cancelled time.Time
		f := &Frames{OnSend: func(domain.Chunk) error {
			if cancelled.IsZero() {
				cancelled = time.Now()
				cancel()
			}
			return nil
		}}
		done := make(chan error, 1)
		go func() { done <- backend.Chat(ctx, h.Request(1), f) }()
		select {
		case err := <-done:
			if took := time.Since(cancelled); took > 100*time.Millisecond {
				t.Errorf("returned %v after the cancellation, want within 100ms", took)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v (%T), want context.Canceled (a client that left is no backend failure)", err, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("still running 5s after the caller cancelled")
		}
	})

	t.Run("a sink error stops the backend", func(t *testing.T) {
		t.Parallel()
		stop := errors.New("client gone")
		backend := h.New(t, Behaviour{Pieces: words, PieceDelay: 50 * time.Millisecond}, limits)
		f := &Frames{OnSend: func(domain.Chunk) error { return stop }}
		if err := backend.Chat(context.Background(), h.Request(1), f); !errors.Is(err, stop) {
			t.Errorf("error %v, want the sink's", err)
		}
		if len(f.Chunks) != 1 {
			t.Errorf("%d frames sent after the sink failed, want none", len(f.Chunks)-1)
		}
	})

	failures := []struct {
		name      string
		b         Behaviour
		limits    upstream.Timeouts
		kind      domain.FailureKind
		retryable bool
		unhealthy bool
		frames    bool // frames arrived before the failure
	}{
		{name: "unreachable", b: Behaviour{Down: true}, kind: domain.FailureUnreachable, retryable: true, unhealthy: true},
		{name: "silent past the first-byte timeout", b: Behaviour{Hang: true},
			limits: upstream.Timeouts{FirstByte: 200 * time.Millisecond}, kind: domain.FailureTimeout, retryable: true, unhealthy: true},
		{name: "first token later than the first-byte timeout", b: Behaviour{Pieces: words, FirstDelay: time.Second},
			limits: upstream.Timeouts{FirstByte: 200 * time.Millisecond}, kind: domain.FailureTimeout, retryable: true, unhealthy: true},
		{name: "stalls past the idle timeout", b: Behaviour{Pieces: words, PieceDelay: time.Second},
			limits: upstream.Timeouts{FirstByte: time.Second, Idle: 200 * time.Millisecond}, kind: domain.FailureTimeout, retryable: true, unhealthy: true, frames: true},
		{name: "runs past the total limit", b: Behaviour{Pieces: words, PieceDelay: 200 * time.Millisecond},
			limits: upstream.Timeouts{FirstByte: time.Second, Total: 300 * time.Millisecond}, kind: domain.FailureTimeout, retryable: true, unhealthy: false, frames: true},
		{name: "500", b: Behaviour{Status: http.StatusInternalServerError}, kind: domain.FailureServer, retryable: true, unhealthy: true},
		{name: "503", b: Behaviour{Status: http.StatusServiceUnavailable}, kind: domain.FailureServer, retryable: true, unhealthy: true},
		{name: "429", b: Behaviour{Status: http.StatusTooManyRequests}, kind: domain.FailureRateLimited, retryable: true, unhealthy: false},
		{name: "401", b: Behaviour{Status: http.StatusUnauthorized}, kind: domain.FailureUnauthorized, retryable: true, unhealthy: true},
		{name: "403", b: Behaviour{Status: http.StatusForbidden}, kind: domain.FailureUnauthorized, retryable: true, unhealthy: true},
		{name: "400", b: Behaviour{Status: http.StatusBadRequest}, kind: domain.FailureRejected, retryable: false, unhealthy: false},
		{name: "model missing", b: Behaviour{Missing: true}, kind: domain.FailureModelMissing, retryable: true, unhealthy: false},
		{name: "wrong base path", b: Behaviour{WrongPath: true}, kind: domain.FailureMisrouted, retryable: true, unhealthy: true},
		{name: "unreadable answer", b: Behaviour{Garbage: true}, kind: domain.FailureProtocol, retryable: true, unhealthy: true},
		{name: "connection dropped mid-answer", b: Behaviour{Pieces: words, BreakAfter: 2}, kind: domain.FailureProtocol, retryable: true, unhealthy: true, frames: true},
	}
	for _, tc := range failures {
		t.Run("failure/"+tc.name, func(t *testing.T) {
			t.Parallel()
			l := tc.limits
			if l == (upstream.Timeouts{}) {
				l = limits
			}
			f, err := chat(t, tc.b, l, 1)
			var ue *domain.UpstreamError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T), want *domain.UpstreamError", err, err)
			}
			if ue.Kind != tc.kind || ue.Retryable() != tc.retryable || ue.Unhealthy() != tc.unhealthy ||
				ue.ModelMissing() != (tc.kind == domain.FailureModelMissing) {
				t.Errorf("%v: kind %v retryable %v unhealthy %v model missing %v; want kind %v retryable %v unhealthy %v",
					err, ue.Kind, ue.Retryable(), ue.Unhealthy(), ue.ModelMissing(), tc.kind, tc.retryable, tc.unhealthy)
			}
			if ue.Backend == "" {
				t.Error("the error does not name its backend")
			}
			if got := len(f.Chunks) > 0; got != tc.frames {
				t.Errorf("frames before the failure: %v, want %v", got, tc.frames)
			}
		})
	}
}

// TextAsChat holds a text completion backend to the same contract: the
// chat request's n becomes the completions asked for (one prompt, built by
// request), and each text chunk goes on as a chat chunk's content.
func TextAsChat(b ports.TextBackend, request func(n int) domain.TextRequest) ports.ChatBackend {
	return textAsChat{b: b, request: request}
}

type textAsChat struct {
	b       ports.TextBackend
	request func(n int) domain.TextRequest
}

func (t textAsChat) Chat(ctx context.Context, req domain.ChatRequest, out ports.Sink[domain.Chunk]) error {
	return t.b.Complete(ctx, t.request(max(req.N, 1)), textSink{out})
}

type textSink struct{ out ports.Sink[domain.Chunk] }

func (s textSink) Send(c domain.TextChunk) error {
	return s.out.Send(domain.Chunk{Index: c.Index, Content: c.Text, FinishReason: c.FinishReason, Usage: c.Usage})
}

func (s textSink) Flush() error { return s.out.Flush() }
