package dispatch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/mock/gomock"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/catalog"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/pool"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// refresher counts the model-list refreshes dispatch asks for, and may
// change what the lists say when asked (a model pulled since).
type refresher struct {
	mu    sync.Mutex
	calls int
	then  func()
}

func (r *refresher) Refresh(context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.then != nil {
		r.then()
	}
}

func (r *refresher) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

type poolFixture struct {
	hosts []*MockChatBackend
	gw    *MockChatBackend
	pool  *pool.Pool
	rec   *recorder
	ref   *refresher
	known lists
	svc   *dispatch.Service
}

// newPoolFixture: an Ollama pool of n hosts (a, b, …) listing qwen2.5:32b,
// then a gateway.
func newPoolFixture(t *testing.T, n int) *poolFixture {
	ctrl := gomock.NewController(t)
	f := &poolFixture{gw: NewMockChatBackend(ctrl), rec: &recorder{}, ref: &refresher{}, known: lists{}}
	hosts := make([]pool.Host, n)
	for i := range hosts {
		m := NewMockChatBackend(ctrl)
		f.hosts = append(f.hosts, m)
		hosts[i] = pool.Host{Name: string(rune('a' + i)), Client: m}
	}
	f.pool = pool.New("ollama", hosts, pool.Settings{})
	for i := range hosts {
		f.pool.Checked(i, []domain.Model{{ID: "qwen2.5:32b"}}, nil)
	}
	cat := catalog.New(map[string]string{"gpt-4": "qwen2.5:32b"},
		[]catalog.Backend{{Name: "ollama"}, {Name: "gateway"}}, f.known, time.Unix(1, 0))
	f.svc = dispatch.New(cat, []dispatch.Backend{{Name: "ollama", Pool: f.pool}, {Name: "gateway", Client: f.gw}}, f.rec,
		dispatch.Refresh(f.ref))
	return f
}

// TestTheNextHostBeforeTheNextBackend: a host that fails before the first
// byte hands the request to the next host of its pool; only when every
// host failed does the next backend get it.
func TestTheNextHostBeforeTheNextBackend(t *testing.T) {
	f := newPoolFixture(t, 2)
	down := &domain.UpstreamError{Backend: "ollama", Kind: domain.FailureUnreachable}
	// Ties rotate: this plan starts at one host, the request's plan at the
	// other, `second`. It fails; the other host serves.
	second := 1 - f.pool.Plan("qwen2.5:32b", pool.Key{}).Order[0]
	f.hosts[second].EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(down)
	f.hosts[1-second].EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(nil, text("ok")...))
	_, route, err := f.svc.Chat(context.Background(), req("gpt-4"))
	if err != nil {
		t.Fatal(err)
	}
	name := func(i int) string { return string(rune('a' + i)) }
	if route.Host != name(1-second) {
		t.Fatalf("served by %+v, want host %s", route, name(1-second))
	}
	want := []attempt{
		{Route: domain.Route{Backend: "ollama", Host: name(second), Model: "qwen2.5:32b", Affinity: pool.AffinityNew}, Failed: true, Fallback: true},
		{Route: domain.Route{Backend: "ollama", Host: name(1 - second), Model: "qwen2.5:32b", Affinity: pool.AffinityNew}},
	}
	if diff := cmp.Diff(want, f.rec.attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}

	// Every host down: then the gateway.
	f.rec.attempts = nil
	for _, h := range f.hosts {
		h.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(down)
	}
	f.gw.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(nil, text("gw")...))
	if _, route, err = f.svc.Chat(context.Background(), req("gpt-4")); err != nil || route.Backend != "gateway" {
		t.Fatalf("%+v %v: want the gateway after both hosts failed", route, err)
	}
	if len(f.rec.attempts) != 3 {
		t.Fatalf("%d attempts, want 2 hosts then the gateway", len(f.rec.attempts))
	}
}

// TestAStreamThatStartedDoesNotMoveToAnotherHost: the before-the-first-
// byte rule holds within a pool.
func TestAStreamThatStartedDoesNotMoveToAnotherHost(t *testing.T) {
	f := newPoolFixture(t, 2)
	broken := &domain.UpstreamError{Backend: "ollama", Kind: domain.FailureProtocol}
	calls := 0
	half := answers(broken, domain.Chunk{Content: "hal"})
	for _, h := range f.hosts {
		h.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(
			func(ctx context.Context, r domain.ChatRequest, o ports.Sink[domain.Chunk]) error {
				calls++
				return half(ctx, r, o)
			}).MaxTimes(1)
	}
	_, err := f.svc.StreamChat(context.Background(), new(req("gpt-4")), &out{})
	if err == nil || calls != 1 {
		t.Fatalf("err %v after %d host calls: a started stream must end with its host's failure", err, calls)
	}
}

// TestConversationsStayWithTheirHost: the second turn of a conversation
// goes where the first went, and the route says so.
func TestConversationsStayWithTheirHost(t *testing.T) {
	f := newPoolFixture(t, 3)
	for _, h := range f.hosts {
		h.EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(nil, text("ok")...)).AnyTimes()
	}
	turn := func(msgs ...domain.Message) domain.Route {
		t.Helper()
		r := domain.ChatRequest{Model: "gpt-4", Messages: msgs}
		_, route, err := f.svc.Chat(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		return route
	}
	sys := domain.Message{Role: "system", Content: "You are terse."}
	u1 := domain.Message{Role: "user", Content: "Name a prime."}
	r1 := turn(sys, u1)
	if r1.Affinity != pool.AffinityNew {
		t.Fatalf("first turn: %+v", r1)
	}
	r2 := turn(sys, u1, domain.Message{Role: "assistant", Content: "7"}, domain.Message{Role: "user", Content: "Another."})
	if r2.Host != r1.Host || r2.Affinity != pool.AffinityHit {
		t.Fatalf("second turn %+v, first %+v: want the same host, hit", r2, r1)
	}
	// A conversation named by the client (session header, prompt_cache_key)
	// is known by that name whatever its messages.
	if _, _, err := f.svc.Chat(context.Background(), domain.ChatRequest{Model: "gpt-4", Session: "conv-9", Messages: []domain.Message{{Role: "user", Content: "a"}}}); err != nil {
		t.Fatal(err)
	}
	_, rs, err := f.svc.Chat(context.Background(), domain.ChatRequest{Model: "gpt-4", Session: "conv-9", Messages: []domain.Message{{Role: "user", Content: "something else"}}})
	if err != nil || rs.Affinity != pool.AffinityHit {
		t.Fatalf("session turn %+v %v: want hit", rs, err)
	}
}

// TestAHostThatLacksTheModelIsSkippedAndTheListsRead: a host that listed
// the model and answers "not found" (removed since) is passed over, and
// the lists are read again for the next request.
func TestAHostThatLacksTheModelIsSkippedAndTheListsRead(t *testing.T) {
	f := newPoolFixture(t, 2)
	missing := &domain.UpstreamError{Backend: "ollama", Kind: domain.FailureModelMissing}
	next := f.pool.Plan("qwen2.5:32b", pool.Key{}).Order[1] // the next plan starts here
	f.hosts[next].EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).Return(missing).Times(1)
	f.hosts[1-next].EXPECT().Chat(gomock.Any(), gomock.Any(), gomock.Any()).DoAndReturn(answers(nil, text("ok")...)).Times(3)
	for range 3 {
		if _, _, err := f.svc.Chat(context.Background(), req("gpt-4")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.ref.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no refresh of the model lists was asked for")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAModelNobodyListsIsLookedForOnce: a request for a model no backend
// lists reads the lists again before answering 404 (it may have been
// pulled a moment ago).
func TestAModelNobodyListsIsLookedForOnce(t *testing.T) {
	f := newPoolFixture(t, 2)
	f.known["ollama"] = []string{"qwen2.5:32b"}
	f.known["gateway"] = []string{"qwen2.5:32b"}
	f.ref.then = func() { f.known["ollama"] = []string{"qwen2.5:32b", "phi4:14b"} }
	for _, h := range f.hosts {
		h.EXPECT().Chat(gomock.Any(), modelIs("phi4:14b"), gomock.Any()).DoAndReturn(answers(nil, text("ok")...)).MaxTimes(1)
	}
	if _, route, err := f.svc.Chat(context.Background(), req("phi4:14b")); err != nil || route.Backend != "ollama" {
		t.Fatalf("%+v %v: want phi4 served after the refresh found it", route, err)
	}
	if f.ref.count() != 1 {
		t.Fatalf("%d refreshes, want 1", f.ref.count())
	}
}
