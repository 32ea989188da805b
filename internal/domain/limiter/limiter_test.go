package limiter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/limiter"
)

func TestLimiterQueueAndWait(t *testing.T) {
	l := limiter.New(limiter.Settings{Concurrency: 1, Queue: 1, MaxWait: time.Hour})
	ctx := context.Background()
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	// One may wait…
	waited := make(chan error, 1)
	go func() { waited <- l.Acquire(ctx) }()
	for l.Waiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	// …a second may not: the queue is full.
	if err := l.Acquire(ctx); !errors.Is(err, limiter.ErrFull) {
		t.Fatalf("queue full: got %v", err)
	}
	l.Release()
	if err := <-waited; err != nil {
		t.Fatalf("the waiting request must get the freed slot: %v", err)
	}
	if l.InFlight() != 1 || l.Waiting() != 0 {
		t.Fatalf("in flight %d, waiting %d", l.InFlight(), l.Waiting())
	}
	l.Release()
}

func TestLimiterMaxWaitAndCancel(t *testing.T) {
	l := limiter.New(limiter.Settings{Concurrency: 1, Queue: 5, MaxWait: 10 * time.Millisecond})
	ctx := context.Background()
	_ = l.Acquire(ctx)
	if err := l.Acquire(ctx); !errors.Is(err, limiter.ErrFull) {
		t.Fatalf("wait ran out: got %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	l2 := limiter.New(limiter.Settings{Concurrency: 1, Queue: 5, MaxWait: time.Hour})
	_ = l2.Acquire(ctx)
	if err := l2.Acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("caller gave up: got %v", err)
	}
	if l2.Waiting() != 0 {
		t.Fatal("a cancelled waiter must leave the queue")
	}
}

func TestUnlimited(t *testing.T) {
	l := limiter.New(limiter.Settings{})
	for i := 0; i < 1000; i++ {
		if err := l.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	l.Release()
}
