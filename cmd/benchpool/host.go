package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// HostConfig is one fake Ollama host: its memory, its settings and its
// speed.
type HostConfig struct {
	Name   string
	Models []string // what /api/tags lists
	// Fits is how many models fit in memory at once (all are the same
	// size): loading one more evicts one.
	Fits int
	// Parallel is OLLAMA_NUM_PARALLEL: generations at once per loaded
	// model, each in a slot with its own prompt (KV) cache.
	Parallel int
	// LoadDelay is how long loading a model takes.
	LoadDelay time.Duration
	// PromptToken is the prompt evaluation time per token not in cache.
	PromptToken time.Duration
	// SharedPrefill makes the host's prompt evaluations share its compute,
	// whatever the model: they take turns, PrefillBatch tokens at a time
	// (num_batch), in arrival order — a short prompt waits for at most one
	// batch of each longer one ahead of it, as with llama.cpp's batching.
	SharedPrefill bool
	PrefillBatch  int
	// GenTokens are generated per answer, one per TokenDelay.
	GenTokens  int
	TokenDelay time.Duration
}

// HostStats are one host's counters.
type HostStats struct {
	Requests  int64 `json:"requests"`
	Loads     int64 `json:"loads"`
	Evictions int64 `json:"evictions"`
	// LoadWaits counts requests that waited for a load (theirs or one
	// under way); CacheHits those that found at least half their prompt's
	// tokens in a slot's cache.
	LoadWaits int64 `json:"load_waits"`
	CacheHits int64 `json:"cache_hits"`
	// PromptTokens were asked for; CachedTokens of them came from a cache.
	PromptTokens int64 `json:"prompt_tokens"`
	CachedTokens int64 `json:"cached_tokens"`
}

func (s *HostStats) add(o HostStats) {
	s.Requests += o.Requests
	s.Loads += o.Loads
	s.Evictions += o.Evictions
	s.LoadWaits += o.LoadWaits
	s.CacheHits += o.CacheHits
	s.PromptTokens += o.PromptTokens
	s.CachedTokens += o.CachedTokens
}

// Clock is the time the hosts live in: real in the benchmark, virtual in
// tests.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or returns ctx's error when it ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Host is the model of one Ollama host: which models are in memory, their
// parallel slots and prompt caches, and the time each step takes. Its
// scheduler works as Ollama's does: requests are admitted one at a time,
// in order, and a request that needs room waits — holding up the requests
// behind it — until the least recently used model is idle, then evicts it.
type Host struct {
	cfg   HostConfig
	clock Clock
	life  context.Context
	end   context.CancelFunc
	loads sync.WaitGroup

	sched   chan struct{} // admission, one request at a time, in order
	loader  chan struct{} // one load at a time (disk and bus bandwidth)
	prefill chan struct{} // one prompt evaluation at a time; nil unless SharedPrefill

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change below
	models  map[string]*resident
	seq     uint64 // orders uses, for least-recently-used choices
	stats   HostStats
}

// resident is a model in a host's memory, loaded or loading.
type resident struct {
	model    string
	ready    chan struct{} // closed once loaded
	loaded   bool
	inflight int    // requests admitted and not ended
	used     uint64 // last use
	usedAt   time.Time
	slots    []slot
}

// slot is one parallel sequence of a loaded model and its KV cache: the
// rendered text it last evaluated.
type slot struct {
	busy  bool
	cache string
	used  uint64
}

// NewHost builds a host with nothing loaded.
func NewHost(cfg HostConfig, clock Clock) *Host {
	cfg.Fits = max(cfg.Fits, 1)
	cfg.Parallel = max(cfg.Parallel, 1)
	if cfg.PrefillBatch <= 0 {
		cfg.PrefillBatch = 512
	}
	h := &Host{cfg: cfg, clock: clock, sched: make(chan struct{}, 1), loader: make(chan struct{}, 1),
		changed: make(chan struct{}), models: map[string]*resident{}}
	if cfg.SharedPrefill {
		h.prefill = make(chan struct{}, 1)
	}
	h.life, h.end = context.WithCancel(context.Background())
	return h
}

// Close stops loads under way; requests still waiting fail.
func (h *Host) Close() {
	h.end()
	h.loads.Wait()
}

// Lists reports whether /api/tags lists model.
func (h *Host) Lists(model string) bool { return slices.Contains(h.cfg.Models, model) }

// Lease is a request's hold on a loaded model and one of its slots, from
// Begin (the prompt evaluated, the first token next) to End.
type Lease struct {
	h      *Host
	r      *resident
	slot   int
	prompt string

	Loaded       bool          // this request made the host load the model
	Waited       time.Duration // for admission, room and the load (load_duration)
	PromptTokens int
	Cached       int           // prompt tokens found in the slot's cache
	Prefill      time.Duration // evaluating the rest, waits for batches included
}

// Evaluated is the number of prompt tokens evaluated (prompt_eval_count).
func (l *Lease) Evaluated() int { return l.PromptTokens - l.Cached }

// Begin admits a request for model with the rendered prompt: it waits for
// the model to be in memory (loading it, evicting another first when the
// host is full), for a free slot, and for its prompt to be evaluated.
func (h *Host) Begin(ctx context.Context, model, prompt string) (*Lease, error) {
	start := h.clock.Now()
	h.mu.Lock()
	h.stats.Requests++
	h.mu.Unlock()
	r, loads, err := h.admit(ctx, model)
	if err != nil {
		return nil, err
	}
	l := &Lease{h: h, r: r, slot: -1, prompt: prompt, Loaded: loads}
	h.mu.Lock()
	if !r.loaded {
		h.mu.Unlock()
		select {
		case <-r.ready:
		case <-ctx.Done():
			l.End("", false)
			return nil, ctx.Err()
		}
		h.mu.Lock()
	}
	l.Waited = h.clock.Now().Sub(start)
	for l.slot = pickSlot(r.slots, prompt); l.slot < 0; l.slot = pickSlot(r.slots, prompt) {
		if err := h.waitLocked(ctx); err != nil {
			h.mu.Unlock()
			l.End("", false)
			return nil, err
		}
	}
	s := &r.slots[l.slot]
	s.busy = true
	l.PromptTokens = tokens(prompt)
	l.Cached = max(cachedTokens(s.cache, prompt), 0)
	h.stats.PromptTokens += int64(l.PromptTokens)
	h.stats.CachedTokens += int64(l.Cached)
	if 2*l.Cached >= l.PromptTokens {
		h.stats.CacheHits++
	}
	h.mu.Unlock()
	began := h.clock.Now()
	if err := h.evaluate(ctx, l.Evaluated()); err != nil {
		l.End("", false)
		return nil, err
	}
	l.Prefill = h.clock.Now().Sub(began)
	return l, nil
}

// End releases the lease. A complete answer stays in the slot's cache
// after the prompt, as the next turn of the conversation will render it.
func (l *Lease) End(answer string, complete bool) {
	h := l.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	if l.slot >= 0 {
		s := &l.r.slots[l.slot]
		s.busy, s.used = false, h.seq
		if complete {
			s.cache = afterAnswer(l.prompt, answer)
		} else {
			s.cache = l.prompt
		}
	}
	l.r.inflight--
	l.r.used, l.r.usedAt = h.seq, h.clock.Now()
	h.broadcastLocked()
}

// admit is Ollama's scheduler: one request at a time, in order. A model
// in memory (or loading) is joined; else it is loaded when there is room;
// else the least recently used loaded model is evicted once it is idle,
// every later request waiting meanwhile.
func (h *Host) admit(ctx context.Context, model string) (r *resident, loads bool, err error) {
	select {
	case h.sched <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	defer func() { <-h.sched }()
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		if r := h.models[model]; r != nil {
			r.inflight++
			if !r.loaded {
				h.stats.LoadWaits++
			}
			return r, false, nil
		}
		if len(h.models) < h.cfg.Fits {
			r := h.loadLocked(model)
			r.inflight++
			h.stats.LoadWaits++
			return r, true, nil
		}
		if v := h.victimLocked(); v != nil && v.inflight == 0 {
			delete(h.models, v.model) // its slots, and their caches, go with it
			h.stats.Evictions++
			continue
		}
		if err := h.waitLocked(ctx); err != nil {
			return nil, false, err
		}
	}
}

// victimLocked is the model to evict: the least recently used idle one,
// else the least recently used loaded one (to wait for); nil while every
// model in memory is still loading.
func (h *Host) victimLocked() *resident {
	var idle, oldest *resident
	for _, r := range h.models {
		if !r.loaded {
			continue
		}
		if r.inflight == 0 && (idle == nil || r.used < idle.used) {
			idle = r
		}
		if oldest == nil || r.used < oldest.used {
			oldest = r
		}
	}
	if idle != nil {
		return idle
	}
	return oldest
}

// loadLocked puts model in memory, loaded after LoadDelay once the loads
// before it on this host are done.
func (h *Host) loadLocked(model string) *resident {
	h.stats.Loads++
	h.seq++
	r := &resident{model: model, ready: make(chan struct{}), slots: make([]slot, h.cfg.Parallel),
		used: h.seq, usedAt: h.clock.Now()}
	h.models[model] = r
	h.loads.Add(1)
	go func() {
		defer h.loads.Done()
		select {
		case h.loader <- struct{}{}:
			_ = h.clock.Sleep(h.life, h.cfg.LoadDelay)
			<-h.loader
		case <-h.life.Done():
		}
		h.mu.Lock()
		r.loaded = true
		close(r.ready)
		h.broadcastLocked()
		h.mu.Unlock()
	}()
	return r
}

// evaluate spends the time n prompt tokens take; when prefill is shared,
// in batches that take turns with the host's other evaluations.
func (h *Host) evaluate(ctx context.Context, n int) error {
	if h.prefill == nil {
		return h.clock.Sleep(ctx, time.Duration(n)*h.cfg.PromptToken)
	}
	for n > 0 {
		batch := min(n, h.cfg.PrefillBatch)
		select {
		case h.prefill <- struct{}{}: // a channel hands over in arrival order
		case <-ctx.Done():
			return ctx.Err()
		}
		err := h.clock.Sleep(ctx, time.Duration(batch)*h.cfg.PromptToken)
		<-h.prefill
		if err != nil {
			return err
		}
		n -= batch
	}
	return nil
}

// pickSlot is the free slot whose cache shares the longest prefix with
// prompt (llama.cpp's choice), the least recently used among equals; -1
// when every slot is busy.
func pickSlot(slots []slot, prompt string) int {
	best, bestLen := -1, -1
	for i := range slots {
		s := &slots[i]
		if s.busy {
			continue
		}
		n := commonPrefix(s.cache, prompt) / bytesPerToken
		if n > bestLen || (n == bestLen && s.used < slots[best].used) {
			best, bestLen = i, n
		}
	}
	return best
}

// waitLocked waits, the lock released meanwhile, for the next change or
// for ctx to end. The lock is held again when it returns.
func (h *Host) waitLocked(ctx context.Context) error {
	ch := h.changed
	h.mu.Unlock()
	defer h.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Host) broadcastLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// Running is one model in memory, as /api/ps lists it.
type Running struct {
	Model  string
	UsedAt time.Time
}

// Running lists the models in memory (loading ones too, as Ollama does),
// the most recently used first.
func (h *Host) Running() []Running {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Running, 0, len(h.models))
	for _, r := range h.models {
		out = append(out, Running{Model: r.model, UsedAt: r.usedAt})
	}
	slices.SortFunc(out, func(a, b Running) int {
		if c := b.UsedAt.Compare(a.UsedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Model, b.Model)
	})
	return out
}

// Stats returns the host's counters.
func (h *Host) Stats() HostStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}
