package pool_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/breaker"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/limiter"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/pool"
)

// resident is a host client reporting its loaded models, like Ollama's
// /api/ps.
type resident struct {
	mu     sync.Mutex
	loaded []string
	err    error
	reads  int
}

func (r *resident) LoadedModels(context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	return slices.Clone(r.loaded), r.err
}

func (r *resident) set(loaded ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loaded = loaded
}

func (r *resident) readCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads
}

func models(names ...string) []domain.Model {
	out := make([]domain.Model, len(names))
	for i, n := range names {
		out[i] = domain.Model{ID: n}
	}
	return out
}

type fixture struct {
	p       *pool.Pool
	clients []*resident
	now     time.Time
}

// newPool builds n hosts, each with a concurrency cap of capacity (0: none)
// and a breaker opening after one failure.
func newPool(t *testing.T, n, capacity int, s pool.Settings) *fixture {
	t.Helper()
	f := &fixture{now: time.Unix(1_000_000, 0)}
	if s.Now == nil {
		s.Now = func() time.Time { return f.now }
	}
	hosts := make([]pool.Host, n)
	for i := range hosts {
		r := &resident{}
		f.clients = append(f.clients, r)
		hosts[i] = pool.Host{Name: string(rune('a' + i)), Client: r,
			Breaker: breaker.New(breaker.Settings{Failures: 1, Cooldown: time.Hour}, nil),
			Limiter: limiter.New(limiter.Settings{Concurrency: capacity})}
	}
	f.p = pool.New("ollama", hosts, s)
	return f
}

// list makes every host list names.
func (f *fixture) list(names ...string) {
	for i := range f.clients {
		f.p.Checked(i, models(names...), nil)
	}
}

func key(h uint64) pool.Key { return pool.Key{Hash: h, Set: true} }

func TestOneHostNeedsNoPlanning(t *testing.T) {
	f := newPool(t, 1, 4, pool.Settings{})
	pl := f.p.Plan("m", key(1))
	if !slices.Equal(pl.Order, []int{0}) || pl.Affinity != "" {
		t.Fatalf("plan %+v, want host 0 and no affinity", pl)
	}
	if a := testing.AllocsPerRun(100, func() { f.p.Served(f.p.Plan("m", key(1)), 0) }); a != 0 {
		t.Errorf("a one-host pool allocates %v times per request", a)
	}
}

func TestOnlyHostsListingTheModelAreCandidates(t *testing.T) {
	f := newPool(t, 3, 0, pool.Settings{})
	f.p.Checked(0, models("llama3:8b"), nil)
	f.p.Checked(1, models("qwen2.5:32b", "llama3:latest"), nil)
	// Host 2's list is not known yet: it stays a candidate.
	for range 10 {
		pl := f.p.Plan("qwen2.5:32b", pool.Key{})
		if slices.Contains(pl.Order, 0) || len(pl.Order) != 2 {
			t.Fatalf("plan %v for qwen2.5:32b includes host 0, which does not list it", pl.Order)
		}
	}
	// An untagged name is its :latest tag, as in Ollama.
	if pl := f.p.Plan("llama3", pool.Key{}); slices.Contains(pl.Order, 0) || !slices.Contains(pl.Order, 1) {
		t.Fatalf("plan %v for llama3: want host 1 (llama3:latest), not host 0 (llama3:8b)", pl.Order)
	}
	// Nobody lists it: every host is tried (each answers for itself).
	f.p.Checked(2, models("x"), nil)
	if pl := f.p.Plan("phi4", pool.Key{}); len(pl.Order) != 3 {
		t.Fatalf("plan %v for a model nobody lists: want every host", pl.Order)
	}
}

func TestWarmHostsFirstThenTheLeastBusy(t *testing.T) {
	f := newPool(t, 3, 4, pool.Settings{})
	f.list("m", "n")
	f.clients[2].set("m")
	f.p.RefreshResidency(context.Background())
	for range 6 {
		if pl := f.p.Plan("m", pool.Key{}); pl.Order[0] != 2 {
			t.Fatalf("plan %v: want host 2, which has m loaded", pl.Order)
		}
	}
	// Busy but under its cap, the warm host still wins: a load costs more
	// than waiting for a slot's share.
	f.p.Begin(2)
	f.p.Begin(2)
	if pl := f.p.Plan("m", pool.Key{}); pl.Order[0] != 2 {
		t.Fatalf("plan %v: the warm host under its cap should still come first", pl.Order)
	}
	// n is loaded nowhere: the least busy host of those that would load it.
	f.p.Begin(0)
	if pl := f.p.Plan("n", pool.Key{}); pl.Order[0] != 1 {
		t.Fatalf("plan %v for n: want host 1, the idle one", pl.Order)
	}
	// At its cap, the warm host is still worth a round of waiting rather
	// than a load elsewhere.
	f.p.Begin(2)
	f.p.Begin(2)
	if pl := f.p.Plan("m", pool.Key{}); pl.Order[0] != 2 {
		t.Fatalf("plan %v: host 2 is at its cap, with one round to wait; want it first", pl.Order)
	}
	// A round of waiting already queued there: the model is loaded
	// elsewhere (the least busy of the cold hosts).
	for range 4 {
		f.p.Begin(2)
	}
	if pl := f.p.Plan("m", pool.Key{}); pl.Order[0] != 1 || pl.Order[2] != 2 {
		t.Fatalf("plan %v: host 2 has twice its cap in flight; want host 1, then 0, then 2", pl.Order)
	}
	// A host whose residency is not known, free, comes before cold ones.
	f.p.Checked(0, models("m", "n"), nil)
	f.clients[0].err = errors.New("no /api/ps")
	f.p.RefreshResidency(context.Background())
	f.clients[2].set("m")
	f.p.End(0)
	if pl := f.p.Plan("n", pool.Key{}); pl.Order[0] != 0 {
		t.Fatalf("plan %v for n: want host 0, whose residency is unknown, before cold host 1", pl.Order)
	}
}

func TestWeightsScaleTheLoad(t *testing.T) {
	f := newPool(t, 2, 0, pool.Settings{Strategy: pool.LeastBusy})
	// Rebuild with weights: host 0 has 3 times host 1's capacity.
	f.p = pool.New("ollama", []pool.Host{{Name: "big", Weight: 3}, {Name: "small", Weight: 1}}, pool.Settings{Strategy: pool.LeastBusy})
	f.p.Begin(0)
	f.p.Begin(0)
	f.p.Begin(1)
	// 2/3 < 1/1: the big host is less busy for its size.
	if pl := f.p.Plan("m", pool.Key{}); pl.Order[0] != 0 {
		t.Fatalf("plan %v: want the big host", pl.Order)
	}
}

func TestTiesRotate(t *testing.T) {
	f := newPool(t, 3, 0, pool.Settings{})
	f.list("m")
	firsts := map[int]int{}
	for range 30 {
		firsts[f.p.Plan("m", pool.Key{}).Order[0]]++
	}
	for i := range 3 {
		if firsts[i] != 10 {
			t.Fatalf("first choices %v: equal idle hosts should share the requests", firsts)
		}
	}
}

func TestSickHostsGoLast(t *testing.T) {
	f := newPool(t, 3, 0, pool.Settings{})
	f.list("m")
	f.p.Checked(0, nil, errors.New("connection refused"))
	f.p.Host(1).Breaker.Allow()
	f.p.Host(1).Breaker.Failure() // opens: one failure is the threshold here
	for range 6 {
		pl := f.p.Plan("m", pool.Key{})
		if pl.Order[0] != 2 || len(pl.Order) != 3 {
			t.Fatalf("plan %v: want the healthy host 2 first, the others still listed after it", pl.Order)
		}
	}
	f.p.Checked(0, models("m"), nil)
	if pl := f.p.Plan("m", pool.Key{}); pl.Order[2] != 1 {
		t.Fatalf("plan %v: host 0 is back after a good check; host 1's breaker is still open", pl.Order)
	}
}

func TestAffinityKeepsAConversationOnItsHost(t *testing.T) {
	f := newPool(t, 3, 2, pool.Settings{})
	f.list("m")
	first := f.p.Plan("m", key(7))
	if first.Affinity != pool.AffinityNew {
		t.Fatalf("first turn: affinity %q, want new", first.Affinity)
	}
	home := first.Order[0]
	f.p.Served(first, home)
	for range 10 {
		pl := f.p.Plan("m", key(7))
		if pl.Order[0] != home || pl.Affinity != pool.AffinityHit {
			t.Fatalf("next turn: plan %v affinity %q, want host %d, hit", pl.Order, pl.Affinity, home)
		}
		f.p.Served(pl, home)
	}
	// Another conversation is not pulled there.
	other := map[int]bool{}
	for range 9 {
		other[f.p.Plan("m", key(8)).Order[0]] = true
	}
	if len(other) < 2 {
		t.Fatalf("a new conversation always went to %v: affinity must not concentrate new ones", other)
	}

	// Saturated: the conversation moves, and stays where it moved.
	f.p.Begin(home)
	f.p.Begin(home)
	pl := f.p.Plan("m", key(7))
	if pl.Order[0] == home || pl.Affinity != pool.AffinityMoved {
		t.Fatalf("home saturated: plan %v affinity %q, want another host, moved", pl.Order, pl.Affinity)
	}
	moved := pl.Order[0]
	f.p.Served(pl, moved)
	f.p.End(home)
	f.p.End(home)
	if pl := f.p.Plan("m", key(7)); pl.Order[0] != moved || pl.Affinity != pool.AffinityHit {
		t.Fatalf("after moving: plan %v affinity %q, want host %d, hit", pl.Order, pl.Affinity, moved)
	}

	// Ejected by its breaker: it moves again.
	br := f.p.Host(moved).Breaker
	br.Allow()
	br.Failure()
	if pl := f.p.Plan("m", key(7)); pl.Order[0] == moved || pl.Affinity != pool.AffinityMoved {
		t.Fatalf("host's breaker open: plan %v affinity %q, want another host, moved", pl.Order, pl.Affinity)
	}
}

func TestAffinityLeavesAHostThatDroppedTheModel(t *testing.T) {
	f := newPool(t, 2, 0, pool.Settings{})
	f.list("m", "n")
	f.clients[0].set("m")
	f.clients[1].set("m")
	f.p.RefreshResidency(context.Background())
	pl := f.p.Plan("m", key(1))
	home := pl.Order[0]
	f.p.Served(pl, home)
	// The model was evicted there (its prompt cache with it), and is
	// still loaded on the other host.
	f.clients[home].set("n")
	f.p.RefreshResidency(context.Background())
	if pl := f.p.Plan("m", key(1)); pl.Order[0] == home || pl.Affinity != pool.AffinityMoved {
		t.Fatalf("plan %v affinity %q: the home host dropped m; want the warm host, moved", pl.Order, pl.Affinity)
	}
}

func TestAPlannedHitServedElsewhereMoved(t *testing.T) {
	f := newPool(t, 2, 0, pool.Settings{})
	f.list("m")
	pl := f.p.Plan("m", key(3))
	f.p.Served(pl, pl.Order[0])
	pl = f.p.Plan("m", key(3))
	if pl.Affinity != pool.AffinityHit {
		t.Fatalf("affinity %q, want hit", pl.Affinity)
	}
	// The home host failed before the first byte; the next one served.
	if got := pl.Outcome(pl.Order[1]); got != pool.AffinityMoved {
		t.Fatalf("outcome %q, want moved", got)
	}
	f.p.Served(pl, pl.Order[1])
	if next := f.p.Plan("m", key(3)); next.Order[0] != pl.Order[1] {
		t.Fatalf("plan %v: the conversation should now live on host %d", next.Order, pl.Order[1])
	}
	st := f.p.Stats()
	if st[pl.Order[1]].AffinityMove != 1 || st[pl.Order[0]].AffinityNew != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAffinityIsBoundedAndExpires(t *testing.T) {
	f := newPool(t, 2, 0, pool.Settings{AffinityEntries: 2, AffinityTTL: time.Minute})
	f.list("m")
	for k := uint64(1); k <= 3; k++ {
		pl := f.p.Plan("m", key(k))
		f.p.Served(pl, pl.Order[0])
	}
	if pl := f.p.Plan("m", key(1)); pl.Affinity != pool.AffinityNew {
		t.Fatalf("the oldest of 3 conversations in a table of 2: affinity %q, want new (forgotten)", pl.Affinity)
	}
	if pl := f.p.Plan("m", key(3)); pl.Affinity != pool.AffinityHit {
		t.Fatalf("the newest: affinity %q, want hit", pl.Affinity)
	}
	f.now = f.now.Add(time.Minute)
	if pl := f.p.Plan("m", key(3)); pl.Affinity != pool.AffinityNew {
		t.Fatalf("after the TTL: affinity %q, want new", pl.Affinity)
	}
}

func TestNaiveStrategies(t *testing.T) {
	f := newPool(t, 3, 0, pool.Settings{Strategy: pool.RoundRobin})
	f.list("m")
	f.clients[1].set("m")
	f.p.RefreshResidency(context.Background())
	f.p.Begin(0)
	var firsts []int
	for range 6 {
		pl := f.p.Plan("m", key(1))
		if pl.Affinity != "" {
			t.Fatalf("round robin reports affinity %q", pl.Affinity)
		}
		firsts = append(firsts, pl.Order[0])
		f.p.Served(pl, pl.Order[0])
	}
	if c := map[int]int{}; true {
		for _, h := range firsts {
			c[h]++
		}
		if c[0] != 2 || c[1] != 2 || c[2] != 2 {
			t.Fatalf("round robin firsts %v: want each host in turn, whatever their load or residency", firsts)
		}
	}

	f = newPool(t, 3, 0, pool.Settings{Strategy: pool.LeastBusy})
	f.list("m")
	f.clients[1].set("m")
	f.p.RefreshResidency(context.Background())
	f.p.Begin(1)
	for range 6 {
		if pl := f.p.Plan("m", key(1)); pl.Order[0] == 1 || pl.Affinity != "" {
			t.Fatalf("least busy: plan %v affinity %q; want an idle host, residency and affinity ignored", pl.Order, pl.Affinity)
		}
	}
}

func TestLoadsCausedAndAvoided(t *testing.T) {
	f := newPool(t, 2, 0, pool.Settings{})
	f.list("m")
	f.clients[0].set("m")
	f.p.RefreshResidency(context.Background())
	pl := f.p.Plan("m", pool.Key{})
	if pl.Order[0] != 0 {
		t.Fatalf("plan %v: want the warm host", pl.Order)
	}
	f.p.Served(pl, 0)
	// Served cold: host 1 loads m, and is known to have it from then on.
	pl = f.p.Plan("m", pool.Key{})
	f.p.Served(pl, 1)
	st := f.p.Stats()
	if st[0].LoadsAvoided != 1 || st[1].LoadsCaused != 1 || !slices.Equal(st[1].Loaded, []string{"m"}) {
		t.Fatalf("stats %+v: want one load avoided on host 0, one caused on host 1, m loaded there", st)
	}
}

func TestLacksTakesAHostOutUntilItsNextList(t *testing.T) {
	f := newPool(t, 2, 0, pool.Settings{})
	f.list("m:latest", "n")
	f.p.Lacks(0, "m") // answered "model not found" after listing it
	for range 4 {
		if pl := f.p.Plan("m", pool.Key{}); !slices.Equal(pl.Order, []int{1}) {
			t.Fatalf("plan %v: host 0 said it lacks m", pl.Order)
		}
	}
	if pl := f.p.Plan("n", pool.Key{}); len(pl.Order) != 2 {
		t.Fatalf("plan %v for n: host 0 still serves n", pl.Order)
	}
	f.p.Checked(0, models("m:latest", "n"), nil)
	if pl := f.p.Plan("m", pool.Key{}); len(pl.Order) != 2 {
		t.Fatalf("plan %v: host 0 listed m again", pl.Order)
	}
}

func TestRunResidencyReadsAgainAfterALoad(t *testing.T) {
	f := newPool(t, 2, 0, pool.Settings{})
	f.list("m", "n")
	f.clients[0].set("n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.p.RunResidency(ctx, time.Hour, time.Second); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return f.clients[0].readCount() == 1 && f.clients[1].readCount() == 1 })
	if st := f.p.Stats(); !slices.Equal(st[0].Loaded, []string{"n"}) {
		t.Fatalf("loaded %v, want [n]", st[0].Loaded)
	}
	// Host 0 loads m (evicting n); the loop reads it again without
	// waiting for the interval.
	f.clients[0].set("m")
	pl := f.p.Plan("m", pool.Key{})
	f.p.Served(pl, 0)
	waitFor(t, func() bool { return f.clients[0].readCount() == 2 })
	waitFor(t, func() bool { return slices.Equal(f.p.Stats()[0].Loaded, []string{"m"}) })
	if f.clients[1].readCount() != 1 {
		t.Fatalf("host 1 was read again: only the host that loaded a model is")
	}
}

func TestAFailedResidencyReadIsUnknown(t *testing.T) {
	f := newPool(t, 2, 0, pool.Settings{})
	f.list("m")
	f.clients[0].set("m")
	f.p.RefreshResidency(context.Background())
	f.clients[0].err = errors.New("timeout")
	f.p.RefreshResidency(context.Background())
	if st := f.p.Stats(); st[0].Loaded != nil {
		t.Fatalf("loaded %v after a failed read, want unknown (nil)", st[0].Loaded)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
