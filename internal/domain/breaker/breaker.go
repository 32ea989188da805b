// Package breaker is a circuit breaker per backend: after repeated failures
// it opens for a cooldown, during which requests skip the backend at no
// cost; then it lets one probe through, and closes again when it succeeds.
package breaker

import (
	"sync"
	"time"
)

// State of a breaker.
type State int

const (
	Closed   State = iota // requests flow
	HalfOpen              // one probe is allowed
	Open                  // requests skip the backend
)

func (s State) String() string {
	switch s {
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return "closed"
}

// Settings configure a breaker. A zero Failures disables it.
type Settings struct {
	Failures int           // consecutive failures that open it
	Cooldown time.Duration // how long it stays open before a probe
}

// Breaker guards one backend. The zero value is not usable; use New.
type Breaker struct {
	set Settings
	now func() time.Time

	mu       sync.Mutex
	state    State
	failures int
	openedAt time.Time
	probing  bool
}

// New builds a closed breaker. now may be nil (time.Now).
func New(s Settings, now func() time.Time) *Breaker {
	if now == nil {
		now = time.Now
	}
	return &Breaker{set: s, now: now}
}

// Allow reports whether a request may go to the backend now. When it
// returns true the caller must report the outcome with Success or Failure
// (or Release, when the outcome says nothing about the backend's health).
func (b *Breaker) Allow() bool {
	if b.set.Failures <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Open:
		if b.now().Sub(b.openedAt) < b.set.Cooldown {
			return false
		}
		b.state = HalfOpen
		b.probing = true
		return true
	case HalfOpen:
		if b.probing {
			return false // one probe at a time
		}
		b.probing = true
		return true
	}
	return true
}

// Success records a healthy answer: the breaker closes.
func (b *Breaker) Success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.failures, b.probing = Closed, 0, false
}

// Failure records a backend failure; enough of them in a row, or a failed
// probe, open the breaker.
func (b *Breaker) Failure() {
	if b.set.Failures <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.state == HalfOpen || b.failures >= b.set.Failures {
		b.state, b.openedAt, b.probing = Open, b.now(), false
	}
}

// Release ends an allowed request whose outcome says nothing about the
// backend (the client went away, or sent a bad request).
func (b *Breaker) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

// State returns the current state; an open breaker past its cooldown
// reports half-open.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && b.now().Sub(b.openedAt) >= b.set.Cooldown {
		return HalfOpen
	}
	return b.state
}
