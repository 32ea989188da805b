package pool

import (
	"container/list"
	"sync"
	"time"
)

// affinity remembers which host served each conversation's last turn: at
// most max conversations (the least recently used are forgotten first),
// each for ttl after its last turn. Memory is bounded: about 100 bytes a
// conversation.
type affinity struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order list.List // front: most recently used; values are *affEntry
	byKey map[uint64]*list.Element
}

type affEntry struct {
	key     uint64
	host    int
	expires time.Time
}

func newAffinity(max int, ttl time.Duration, now func() time.Time) *affinity {
	return &affinity{max: max, ttl: ttl, now: now, byKey: make(map[uint64]*list.Element)}
}

// get returns the host of key's conversation, if one is remembered.
func (a *affinity) get(key uint64) (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	el, ok := a.byKey[key]
	if !ok {
		return 0, false
	}
	e := el.Value.(*affEntry)
	if !a.now().Before(e.expires) {
		a.order.Remove(el)
		delete(a.byKey, key)
		return 0, false
	}
	return e.host, true
}

// put records that host served key's conversation now.
func (a *affinity) put(key uint64, host int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	expires := a.now().Add(a.ttl)
	if el, ok := a.byKey[key]; ok {
		e := el.Value.(*affEntry)
		e.host, e.expires = host, expires
		a.order.MoveToFront(el)
		return
	}
	a.byKey[key] = a.order.PushFront(&affEntry{key: key, host: host, expires: expires})
	for a.order.Len() > a.max {
		last := a.order.Back()
		a.order.Remove(last)
		delete(a.byKey, last.Value.(*affEntry).key)
	}
}

// len is the number of conversations remembered (expired ones included
// until they are met or pushed out).
func (a *affinity) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.order.Len()
}
