package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// virtualClock advances only when slept on: sequential steps take exactly
// the time the model says.
type virtualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newVirtualClock() *virtualClock { return &virtualClock{now: time.Unix(1_700_000_000, 0)} }

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(max(d, 0))
	c.mu.Unlock()
	return nil
}

func testHost(t *testing.T, fits, parallel int) *Host {
	t.Helper()
	h := NewHost(HostConfig{Name: "h", Models: []string{"a", "b", "c"}, Fits: fits, Parallel: parallel,
		LoadDelay: 2 * time.Second, PromptToken: 250 * time.Microsecond, GenTokens: 4, TokenDelay: time.Millisecond},
		newVirtualClock())
	t.Cleanup(h.Close)
	return h
}

func begin(t *testing.T, h *Host, model, prompt string) *Lease {
	t.Helper()
	l, err := h.Begin(context.Background(), model, prompt)
	if err != nil {
		t.Fatalf("Begin(%s): %v", model, err)
	}
	return l
}

// conversation is the rendered prompt of turn n (from 1) of a chat whose
// answers are answer(i).
func conversation(system string, users []string, answer func(int) string, n int) string {
	msgs := []Message{{Role: "system", Content: system}}
	for i := range n {
		if i > 0 {
			msgs = append(msgs, Message{Role: "assistant", Content: answer(i - 1)})
		}
		msgs = append(msgs, Message{Role: "user", Content: users[i]})
	}
	return renderPrompt(msgs)
}

func TestColdLoadThenCachedFollowUp(t *testing.T) {
	h := testHost(t, 2, 4)
	system := strings.Repeat("policy ", 1000) // 7000 bytes
	users := []string{"first question about the invoice", "and the refund?"}
	answer := func(int) string { return "the answer is yes" }

	p1 := conversation(system, users, answer, 1)
	l := begin(t, h, "a", p1)
	if !l.Loaded || l.Waited != 2*time.Second {
		t.Fatalf("first request: Loaded %v, Waited %v; want a load of 2s", l.Loaded, l.Waited)
	}
	if l.Cached != 0 || l.PromptTokens != tokens(p1) || l.Prefill != time.Duration(tokens(p1))*250*time.Microsecond {
		t.Fatalf("first request: cached %d of %d, prefill %v", l.Cached, l.PromptTokens, l.Prefill)
	}
	l.End(answer(0), true)

	p2 := conversation(system, users, answer, 2)
	if !strings.HasPrefix(p2, afterAnswer(p1, answer(0))) {
		t.Fatal("the next turn does not start with what the cache holds")
	}
	l = begin(t, h, "a", p2)
	wantCached := len(afterAnswer(p1, answer(0))) / bytesPerToken
	if l.Loaded || l.Waited != 0 || l.Cached != wantCached {
		t.Fatalf("follow-up: Loaded %v, Waited %v, cached %d; want warm with %d cached", l.Loaded, l.Waited, l.Cached, wantCached)
	}
	if l.Evaluated() != tokens(p2)-wantCached || l.Evaluated() > 20 {
		t.Fatalf("follow-up evaluates %d tokens of %d", l.Evaluated(), l.PromptTokens)
	}
	l.End(answer(1), true)

	st := h.Stats()
	want := HostStats{Requests: 2, Loads: 1, LoadWaits: 1, CacheHits: 1,
		PromptTokens: int64(tokens(p1) + tokens(p2)), CachedTokens: int64(wantCached)}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

func TestEvictsLeastRecentlyUsedAndDropsItsCache(t *testing.T) {
	h := testHost(t, 2, 4)
	run := func(model, prompt string) *Lease {
		l := begin(t, h, model, prompt)
		l.End("ok", true)
		return l
	}
	run("a", "prompt of a")
	run("b", "prompt of b")
	run("a", "prompt of a again") // a is now the most recent
	if l := run("c", "prompt of c"); !l.Loaded {
		t.Fatal("c was not loaded")
	}
	if got := names(h.Running()); got != "c,a" {
		t.Fatalf("in memory: %s, want c,a (b evicted)", got)
	}
	run("b", "prompt of b") // evicts a, now the least recently used
	if got := names(h.Running()); got != "b,c" {
		t.Fatalf("in memory: %s, want b,c", got)
	}
	l := run("a", "prompt of a")
	if !l.Loaded || l.Cached != 0 {
		t.Fatalf("a again: Loaded %v, cached %d; want a fresh load with an empty cache", l.Loaded, l.Cached)
	}
	if st := h.Stats(); st.Loads != 5 || st.Evictions != 3 {
		t.Fatalf("loads %d, evictions %d; want 5 and 3", st.Loads, st.Evictions)
	}
}

func names(rs []Running) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Model)
	}
	return strings.Join(out, ",")
}

// done runs Begin in a goroutine and reports its lease.
func beginAsync(h *Host, model, prompt string) chan *Lease {
	ch := make(chan *Lease, 1)
	go func() {
		l, err := h.Begin(context.Background(), model, prompt)
		if err != nil {
			panic(err)
		}
		ch <- l
	}()
	return ch
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func blocked(ch chan *Lease) bool {
	select {
	case l := <-ch:
		ch <- l
		return false
	case <-time.After(30 * time.Millisecond):
		return true
	}
}

func TestFullHostWaitsForIdleModelAndHoldsUpTheQueue(t *testing.T) {
	h := testHost(t, 1, 4)
	la := begin(t, h, "a", "a1")
	chB := beginAsync(h, "b", "b1")
	// b holds the admission queue while it waits for a to go idle.
	waitFor(t, "b to wait for room", func() bool { return len(h.sched) == 1 })
	chA := beginAsync(h, "a", "a2") // a is in memory, but queued behind b
	if !blocked(chB) || !blocked(chA) {
		t.Fatal("a request went ahead while the host was full and busy")
	}
	la.End("x", true)
	lb := <-chB
	if !lb.Loaded || lb.Waited < 2*time.Second {
		t.Fatalf("b: Loaded %v, Waited %v", lb.Loaded, lb.Waited)
	}
	if !blocked(chA) {
		t.Fatal("a2 went ahead while b, in memory alone, was busy")
	}
	lb.End("y", true)
	la2 := <-chA
	if !la2.Loaded || la2.Cached != 0 {
		t.Fatalf("a2: Loaded %v, cached %d; want a reload with an empty cache", la2.Loaded, la2.Cached)
	}
	la2.End("z", true)
	if st := h.Stats(); st.Loads != 3 || st.Evictions != 2 || st.Requests != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestParallelSlotsQueueAndReuseTheirCache(t *testing.T) {
	h := testHost(t, 1, 2)
	convX := strings.Repeat("x", 400)
	convY := strings.Repeat("y", 400)
	l1 := begin(t, h, "a", convX)
	l2 := begin(t, h, "a", convY)
	ch := beginAsync(h, "a", convX+" more")
	if !blocked(ch) {
		t.Fatal("a third generation ran on a model with 2 slots")
	}
	l2.End("", true)
	l3 := <-ch
	if l3.Cached != 0 {
		t.Fatalf("took the only free slot (y's), yet found %d tokens cached", l3.Cached)
	}
	l1.End("ans", true)
	l3.End("", true)
	// Both slots are free: x's continuation goes to the slot holding x.
	l4 := begin(t, h, "a", afterAnswer(convX, "ans")+"next")
	if want := len(afterAnswer(convX, "ans")) / bytesPerToken; l4.Cached != want {
		t.Fatalf("cached %d, want %d", l4.Cached, want)
	}
	l4.End("", true)
}

func TestCancelledWaitReleasesTheModel(t *testing.T) {
	h := testHost(t, 1, 1)
	l := begin(t, h, "a", "p")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Begin(ctx, "a", "q") // waits for the only slot
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled request got a slot")
	}
	l.End("", true)
	// a is idle again: b may evict it at once.
	lb := begin(t, h, "b", "p")
	lb.End("", true)
	if st := h.Stats(); st.Evictions != 1 {
		t.Fatalf("evictions %d, want 1", st.Evictions)
	}
}

func TestPickSlot(t *testing.T) {
	slots := []slot{
		{cache: "abcdefgh-1", used: 3},
		{cache: "abcdefgh-2-long", used: 1, busy: true},
		{cache: "zzzz", used: 2},
		{cache: "", used: 0},
	}
	if got := pickSlot(slots, "abcdefgh-2-long and more"); got != 0 {
		t.Fatalf("picked %d, want 0: the longest prefix among free slots", got)
	}
	if got := pickSlot(slots, "qqqq"); got != 3 {
		t.Fatalf("picked %d, want 3: no prefix anywhere, least recently used", got)
	}
	for i := range slots {
		slots[i].busy = true
	}
	if got := pickSlot(slots, "x"); got != -1 {
		t.Fatalf("picked %d with every slot busy", got)
	}
}

func TestPromptArithmetic(t *testing.T) {
	cases := []struct {
		cached, prompt string
		want           int
	}{
		{"", "abcdefgh", 0},
		{"abcdefgh", "abcdefgh", 1},   // all cached: the last token is evaluated again
		{"abcdefgXYZ", "abcdefgh", 1}, // 7 bytes in common: one whole token
		{"abcd", "abcdefghijkl", 1},
		{strings.Repeat("a", 1000), strings.Repeat("a", 1000) + "bbbb", 250},
	}
	for _, c := range cases {
		if got := cachedTokens(c.cached, c.prompt); got != c.want {
			t.Errorf("cachedTokens(%q, %q) = %d, want %d", c.cached, c.prompt, got, c.want)
		}
	}
	if tokens("") != 0 || tokens("a") != 1 || tokens("abcd") != 1 || tokens("abcde") != 2 {
		t.Error("tokens does not round up to 4-byte tokens")
	}
	long := strings.Repeat("0123456789", 50)
	if n := commonPrefix(long+"a", long+"b"); n != 500 {
		t.Errorf("commonPrefix = %d, want 500", n)
	}
}

func TestSharedPrefillTakesTurnsByBatch(t *testing.T) {
	h := NewHost(HostConfig{Name: "h", Models: []string{"a", "b"}, Fits: 2, Parallel: 4, PromptToken: 100 * time.Microsecond,
		SharedPrefill: true, PrefillBatch: 100}, realClock{})
	defer h.Close()
	for _, m := range []string{"a", "b"} { // load both first (no load delay)
		begin(t, h, m, "warm").End("", true)
	}
	long := make(chan *Lease, 1)
	go func() { long <- begin(t, h, "a", strings.Repeat("L", 4000)) }() // 1000 tokens: 10 batches of 10 ms
	time.Sleep(15 * time.Millisecond)
	short := begin(t, h, "b", strings.Repeat("S", 200)) // 50 tokens: one batch, after the long one's current batch
	if short.Prefill > 60*time.Millisecond {
		t.Errorf("a 50-token prompt waited %v behind a long one", short.Prefill)
	}
	l := <-long
	if l.Prefill < 100*time.Millisecond {
		t.Errorf("1000 tokens evaluated in %v, want at least 100ms", l.Prefill)
	}
	l.End("", true)
	short.End("", true)
}
