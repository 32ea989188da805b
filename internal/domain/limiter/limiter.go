// Package limiter bounds the concurrent requests sent to one backend (an
// Ollama host serves few at a time), with a bounded queue and a bounded
// wait in it.
package limiter

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// ErrFull means the queue is full or the wait ran out.
var ErrFull = errors.New("backend at capacity")

// Settings configure a limiter. A zero Concurrency means no limit.
type Settings struct {
	Concurrency int           // requests in flight at once
	Queue       int           // requests that may wait for a slot
	MaxWait     time.Duration // how long one may wait
}

// Limiter is a semaphore with a bounded waiting room.
type Limiter struct {
	set     Settings
	slots   chan struct{}
	waiting atomic.Int64
}

// New builds a limiter.
func New(s Settings) *Limiter {
	l := &Limiter{set: s}
	if s.Concurrency > 0 {
		l.slots = make(chan struct{}, s.Concurrency)
	}
	return l
}

// Acquire takes a slot, waiting at most MaxWait in a queue of at most
// Queue requests. It returns ErrFull when there is no room, or ctx's error
// when the caller gave up. Every successful Acquire needs one Release.
func (l *Limiter) Acquire(ctx context.Context) error {
	if l.slots == nil {
		return nil
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if l.waiting.Add(1) > int64(l.set.Queue) {
		l.waiting.Add(-1)
		return ErrFull
	}
	defer l.waiting.Add(-1)
	t := time.NewTimer(l.set.MaxWait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrFull
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release frees a slot taken by Acquire.
func (l *Limiter) Release() {
	if l.slots != nil {
		<-l.slots
	}
}

// Waiting is the number of requests queued now.
func (l *Limiter) Waiting() int { return int(l.waiting.Load()) }

// Capacity is the concurrency limit; 0 means none.
func (l *Limiter) Capacity() int { return l.set.Concurrency }

// InFlight is the number of slots taken now.
func (l *Limiter) InFlight() int {
	if l.slots == nil {
		return 0
	}
	return len(l.slots)
}
