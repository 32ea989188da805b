// Package pool decides which host of a backend serves a request. A backend
// is a pool of hosts speaking one protocol (several Ollama boxes, several
// gateway replicas). On local hardware what costs is not the network but
// loading a model (seconds to minutes) and re-reading a conversation's
// prompt on a host whose cache does not hold it, so the default rule,
// ModelAware, orders the hosts for each request by:
//
//  1. health: hosts whose last check failed or whose breaker is open go
//     last (they are still tried when nothing else is left);
//  2. affinity: the host that served the conversation's previous turn,
//     while it is healthy, under its concurrency cap and has not dropped
//     the model since (its prompt cache went with it);
//  3. capacity: hosts under their concurrency cap before saturated ones;
//  4. residency: hosts that have the model loaded now (Ollama's /api/ps),
//     then hosts whose residency is unknown, then hosts that would load it;
//  5. load: the fewest requests in flight per unit of weight; ties rotate.
//
// Only hosts that list the model (Ollama's /api/tags, or whose list is not
// known yet) are candidates. LeastBusy and RoundRobin are the naive rules,
// kept for comparison (make bench-pool) and for pools of identical
// stateless replicas.
package pool

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/breaker"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/limiter"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Strategy is a routing rule.
type Strategy string

// The routing rules.
const (
	ModelAware Strategy = "model_aware"
	LeastBusy  Strategy = "least_busy"
	RoundRobin Strategy = "round_robin"
)

// Strategies lists the valid rules.
var Strategies = []Strategy{ModelAware, LeastBusy, RoundRobin}

// Affinity outcomes, as the X-Affinity response header reports them.
const (
	AffinityHit   = "hit"   // the host of the conversation's previous turn served it
	AffinityMoved = "moved" // that host was down, saturated or had dropped the model
	AffinityNew   = "new"   // no previous turn was seen (or it expired)
)

// Host is one member of a pool: its client (offering the backend's ports)
// and its own guards.
type Host struct {
	Name    string // shown in /health, metrics, logs and X-Backend-Host
	URL     string // without credentials
	Weight  int    // relative capacity (>= 1): load is counted per unit of weight
	Labels  map[string]string
	Client  any
	Breaker *breaker.Breaker // may be nil
	Limiter *limiter.Limiter // may be nil; its concurrency is the host's cap
}

// Settings tune a pool.
type Settings struct {
	Strategy Strategy
	// AffinityTTL is how long a conversation stays with its host after its
	// last turn; AffinityEntries bounds the conversations remembered (the
	// least recently used are forgotten first).
	AffinityTTL     time.Duration
	AffinityEntries int
	Now             func() time.Time
}

// Defaults for Settings' zero values.
const (
	DefaultAffinityTTL     = 30 * time.Minute
	DefaultAffinityEntries = 100_000
)

// Key identifies a conversation for affinity; the zero Key is none.
type Key struct {
	Hash uint64
	Set  bool
}

// Pool is the hosts of one backend and what is known of each.
type Pool struct {
	name     string
	hosts    []*member
	strategy Strategy
	aff      *affinity
	turn     atomic.Uint32
	stale    chan int // hosts whose loaded models should be read again
}

// single is the plan of every one-host pool: no allocation per request.
var single = []int{0}

// New builds the pool of backend name; hosts must not be empty.
func New(name string, hosts []Host, s Settings) *Pool {
	if s.Strategy == "" {
		s.Strategy = ModelAware
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.AffinityTTL <= 0 {
		s.AffinityTTL = DefaultAffinityTTL
	}
	if s.AffinityEntries <= 0 {
		s.AffinityEntries = DefaultAffinityEntries
	}
	p := &Pool{name: name, strategy: s.Strategy, stale: make(chan int, len(hosts))}
	for i, h := range hosts {
		if h.Weight < 1 {
			h.Weight = 1
		}
		m := &member{Host: h, index: i}
		m.state.Store(&hostState{})
		p.hosts = append(p.hosts, m)
	}
	if s.Strategy == ModelAware && len(hosts) > 1 {
		p.aff = newAffinity(s.AffinityEntries, s.AffinityTTL, s.Now)
	}
	return p
}

// Name is the backend's name.
func (p *Pool) Name() string { return p.name }

// Len is the number of hosts.
func (p *Pool) Len() int { return len(p.hosts) }

// Host returns host i.
func (p *Pool) Host(i int) *Host { return &p.hosts[i].Host }

// Strategy is the pool's routing rule.
func (p *Pool) Strategy() Strategy { return p.strategy }

// member is a host and its state.
type member struct {
	Host
	index    int
	inFlight atomic.Int64
	state    atomic.Pointer[hostState] // replaced whole, never changed

	loadsCaused  atomic.Uint64
	loadsAvoided atomic.Uint64
	affinity     [3]atomic.Uint64 // hit, moved, new: outcomes of the requests it served
}

// Health of a host as its last check saw it.
const (
	unknown = iota
	up
	down
)

// hostState is what the checks last saw of a host.
type hostState struct {
	health      int
	models      map[string]bool // listed by the host (its /api/tags); nil: not known yet
	loaded      map[string]bool // in memory now (/api/ps); nil: not known
	loadedKnown bool
}

func (s *hostState) serves(model string) bool {
	return s.models == nil || has(s.models, model)
}

// warmth: 0 the model is loaded, 1 not known, 2 it would be loaded.
func (s *hostState) warmth(model string) int {
	switch {
	case !s.loadedKnown:
		return 1
	case has(s.loaded, model):
		return 0
	}
	return 2
}

// has looks model up as Ollama matches names: an untagged name is its
// ":latest" tag.
func has(set map[string]bool, model string) bool {
	if set[model] {
		return true
	}
	if !strings.Contains(model, ":") {
		return set[model+":latest"]
	}
	if base, ok := strings.CutSuffix(model, ":latest"); ok {
		return set[base]
	}
	return false
}

func (m *member) usable() bool {
	s := m.state.Load()
	if s.health == down {
		return false
	}
	return m.Breaker == nil || m.Breaker.State() != breaker.Open
}

// capacity is the host's concurrency cap; 0: none.
func (m *member) capacity() int64 {
	if m.Limiter == nil {
		return 0
	}
	return int64(m.Limiter.Capacity())
}

func (m *member) saturated() bool {
	c := m.capacity()
	return c > 0 && m.inFlight.Load() >= c
}

// rank orders the hosts of model_aware by what a request would cost
// there, from the model's warmth (see hostState.warmth), the requests in
// flight and the cap: a free slot where the model is loaded; a slot where
// it is loaded after at most one round of waiting (on local hardware,
// cheaper than loading the model elsewhere); a free slot where residency
// is not known; a free slot that would load the model; then the hosts with
// longer waits.
func rank(warmth int, inFlight, capacity int64) int {
	free := capacity == 0 || inFlight < capacity
	switch {
	case warmth == 0 && free:
		return 0
	case warmth == 0 && inFlight < 2*capacity:
		return 1
	case warmth == 1 && free:
		return 2
	case warmth == 2 && free:
		return 3
	case warmth == 0:
		return 4
	}
	return 5
}

// Plan is the order in which a request tries a pool's hosts.
type Plan struct {
	Order    []int  // host indexes, best first
	Affinity string // AffinityHit, AffinityMoved, AffinityNew; "" without a key or affinity
	key      Key
	model    string
	warm     uint64 // bit i: host i had the model loaded when planned (first 64 hosts)
	cold     bool   // some candidate would have had to load the model
}

// Plan orders the hosts for a request for model (the backend's name for
// it) in the conversation key.
func (p *Pool) Plan(model string, key Key) Plan {
	if len(p.hosts) == 1 {
		return Plan{Order: single, model: model}
	}
	pl := Plan{model: model, key: key}
	type cand struct {
		i               int
		sick, rank, rot int
		load            int64
	}
	n := len(p.hosts)
	start := int(p.turn.Add(1) % uint32(n))
	cands := make([]cand, 0, n)
	for pass := 0; pass < 2 && len(cands) == 0; pass++ {
		for _, m := range p.hosts {
			st := m.state.Load()
			if pass == 0 && !st.serves(model) {
				continue // the second pass takes every host: none lists the model
			}
			c := cand{i: m.index, rot: (m.index - start + n) % n}
			if !m.usable() {
				c.sick = 1
			}
			w := st.warmth(model)
			if w == 0 && m.index < 64 {
				pl.warm |= 1 << m.index
			}
			if w == 2 {
				pl.cold = true
			}
			switch p.strategy {
			case ModelAware:
				c.rank = rank(w, m.inFlight.Load(), m.capacity())
				c.load = m.inFlight.Load() * 1000 / int64(m.Weight)
			case LeastBusy:
				if m.saturated() {
					c.rank = 1
				}
				c.load = m.inFlight.Load() * 1000 / int64(m.Weight)
			}
			cands = append(cands, c)
		}
	}
	less := func(a, b cand) bool {
		switch {
		case a.sick != b.sick:
			return a.sick < b.sick
		case a.rank != b.rank:
			return a.rank < b.rank
		case a.load != b.load:
			return a.load < b.load
		}
		return a.rot < b.rot
	}
	// Insertion sort: pools are small.
	for i := 1; i < len(cands); i++ {
		for j := i; j > 0 && less(cands[j], cands[j-1]); j-- {
			cands[j], cands[j-1] = cands[j-1], cands[j]
		}
	}
	pl.Order = make([]int, len(cands))
	for i, c := range cands {
		pl.Order[i] = c.i
	}
	if p.aff != nil && key.Set {
		pl.Affinity = AffinityNew
		if h, ok := p.aff.get(key.Hash); ok {
			// The previous turn's host goes first while it can take the
			// request now and still holds the model (its prompt cache went
			// with it otherwise); else the ranking decides, which may still
			// put it first (a warm host worth waiting for).
			for i, c := range cands {
				m := p.hosts[c.i]
				if c.i == h && c.sick == 0 && !m.saturated() && m.state.Load().warmth(model) < 2 {
					copy(pl.Order[1:i+1], pl.Order[:i])
					pl.Order[0] = h
					break
				}
			}
			pl.Affinity = AffinityMoved
			if pl.Order[0] == h {
				pl.Affinity = AffinityHit
			}
		}
	}
	return pl
}

// Begin counts a request in flight on host i until End(i).
func (p *Pool) Begin(i int) { p.hosts[i].inFlight.Add(1) }

// End is the counterpart of Begin.
func (p *Pool) End(i int) { p.hosts[i].inFlight.Add(-1) }

// Outcome is the affinity outcome of serving pl's request on host i: a
// planned hit served elsewhere (its host failed) moved.
func (pl Plan) Outcome(i int) string {
	if pl.Affinity == AffinityHit && len(pl.Order) > 0 && pl.Order[0] != i {
		return AffinityMoved
	}
	return pl.Affinity
}

// Served records that host i served pl's request: the conversation now
// lives there, and the model is loaded there (which, when it was not,
// makes its loaded models worth reading again: loading may have evicted
// another).
func (p *Pool) Served(pl Plan, i int) {
	if len(p.hosts) == 1 {
		return
	}
	m := p.hosts[i]
	if p.aff != nil && pl.key.Set {
		p.aff.put(pl.key.Hash, i)
		switch pl.Outcome(i) {
		case AffinityHit:
			m.affinity[0].Add(1)
		case AffinityMoved:
			m.affinity[1].Add(1)
		default:
			m.affinity[2].Add(1)
		}
	}
	st := m.state.Load()
	switch st.warmth(pl.model) {
	case 0:
		if pl.cold {
			m.loadsAvoided.Add(1)
		}
	case 2:
		m.loadsCaused.Add(1)
		m.markLoaded(pl.model)
		select {
		case p.stale <- i:
		default:
		}
	}
}

// Lacks records that host i answered it does not have model: it is no
// candidate for it until its list is read again.
func (p *Pool) Lacks(i int, model string) {
	m := p.hosts[i]
	for {
		old := m.state.Load()
		if old.models == nil || !has(old.models, model) {
			return // not known yet, or already out
		}
		next := *old
		next.models = make(map[string]bool, len(old.models))
		for k := range old.models {
			next.models[k] = true
		}
		delete(next.models, model)
		if base, ok := strings.CutSuffix(model, ":latest"); ok {
			delete(next.models, base)
		} else if !strings.Contains(model, ":") {
			delete(next.models, model+":latest")
		}
		if m.state.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (m *member) markLoaded(model string) {
	for {
		old := m.state.Load()
		if !old.loadedKnown || has(old.loaded, model) {
			return
		}
		next := *old
		next.loaded = make(map[string]bool, len(old.loaded)+1)
		for k := range old.loaded {
			next.loaded[k] = true
		}
		next.loaded[model] = true
		if m.state.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Checked records a health check of host i: the models it lists, or the
// error that marks it down. It implements health.HostObserver.
func (p *Pool) Checked(i int, models []domain.Model, err error) {
	m := p.hosts[i]
	for {
		old := m.state.Load()
		next := *old
		if err != nil {
			next.health = down
		} else {
			next.health = up
			next.models = make(map[string]bool, len(models))
			for _, md := range models {
				next.models[md.ID] = true
			}
		}
		if m.state.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Down marks host i down until its next successful check (a request found
// it refusing the service's credentials or its URL).
func (p *Pool) Down(i int) {
	m := p.hosts[i]
	for {
		old := m.state.Load()
		next := *old
		next.health = down
		if m.state.CompareAndSwap(old, &next) {
			return
		}
	}
}

// loaded records the models host i holds in memory now.
func (p *Pool) loaded(i int, names []string) {
	m := p.hosts[i]
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	for {
		old := m.state.Load()
		next := *old
		next.loaded, next.loadedKnown = set, true
		if m.state.CompareAndSwap(old, &next) {
			return
		}
	}
}

// RunResidency reads the loaded models of every host that reports them
// (ports.ResidencyLister) every interval, and at once for a host that just
// loaded a model, until ctx ends. Each read is bounded by timeout; a
// failed read leaves residency unknown (the host is ranked as if it might
// have to load).
func (p *Pool) RunResidency(ctx context.Context, interval, timeout time.Duration) {
	var listers []int
	for i, m := range p.hosts {
		if _, ok := m.Client.(ports.ResidencyLister); ok {
			listers = append(listers, i)
		}
	}
	if len(listers) == 0 || len(p.hosts) == 1 {
		return
	}
	read := func(i int) {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		names, err := p.hosts[i].Client.(ports.ResidencyLister).LoadedModels(rctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.forgetLoaded(i)
			return
		}
		p.loaded(i, names)
	}
	readAll := func() {
		for _, i := range listers {
			read(i)
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	readAll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			readAll()
		case i := <-p.stale:
			if _, ok := p.hosts[i].Client.(ports.ResidencyLister); ok {
				read(i)
			}
		}
	}
}

// RefreshResidency reads every host's loaded models now, once (tests, and
// start-up before the loop runs).
func (p *Pool) RefreshResidency(ctx context.Context) {
	for i, m := range p.hosts {
		if r, ok := m.Client.(ports.ResidencyLister); ok {
			if names, err := r.LoadedModels(ctx); err == nil {
				p.loaded(i, names)
			} else {
				p.forgetLoaded(i)
			}
		}
	}
}

func (p *Pool) forgetLoaded(i int) {
	m := p.hosts[i]
	for {
		old := m.state.Load()
		next := *old
		next.loaded, next.loadedKnown = nil, false
		if m.state.CompareAndSwap(old, &next) {
			return
		}
	}
}

// HostStats is one host's routing state and counters, for /health and the
// metrics.
type HostStats struct {
	Name         string
	URL          string
	Weight       int
	Labels       map[string]string
	InFlight     int
	Queued       int
	Capacity     int
	Breaker      string
	Loaded       []string // nil when not known
	LoadsCaused  uint64   // requests it served that had to load their model
	LoadsAvoided uint64   // requests it served warm while another candidate was cold
	AffinityHit  uint64
	AffinityMove uint64
	AffinityNew  uint64
}

// Stats reports every host.
func (p *Pool) Stats() []HostStats {
	out := make([]HostStats, len(p.hosts))
	for i, m := range p.hosts {
		s := HostStats{Name: m.Name, URL: m.URL, Weight: m.Weight, Labels: m.Labels,
			InFlight: int(m.inFlight.Load()), Breaker: breaker.Closed.String(),
			LoadsCaused: m.loadsCaused.Load(), LoadsAvoided: m.loadsAvoided.Load(),
			AffinityHit: m.affinity[0].Load(), AffinityMove: m.affinity[1].Load(), AffinityNew: m.affinity[2].Load()}
		if m.Breaker != nil {
			s.Breaker = m.Breaker.State().String()
		}
		if m.Limiter != nil {
			s.Queued, s.Capacity = m.Limiter.Waiting(), m.Limiter.Capacity()
		}
		if st := m.state.Load(); st.loadedKnown {
			s.Loaded = make([]string, 0, len(st.loaded))
			for name := range st.loaded {
				s.Loaded = append(s.Loaded, name)
			}
			sortStrings(s.Loaded)
		}
		out[i] = s
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
