package breaker_test

import (
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/breaker"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBreakerCycle(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	b := breaker.New(breaker.Settings{Failures: 3, Cooldown: 10 * time.Second}, clk.now)

	for i := 0; i < 2; i++ {
		if !b.Allow() {
			t.Fatal("closed breaker refused")
		}
		b.Failure()
	}
	if b.State() != breaker.Closed {
		t.Fatalf("two failures of three: %v", b.State())
	}
	if !b.Allow() {
		t.Fatal("closed breaker refused")
	}
	b.Failure()
	if b.State() != breaker.Open || b.Allow() {
		t.Fatalf("third failure must open it: %v", b.State())
	}

	clk.t = clk.t.Add(9 * time.Second)
	if b.Allow() {
		t.Fatal("open before the cooldown ended")
	}
	clk.t = clk.t.Add(time.Second)
	if b.State() != breaker.HalfOpen {
		t.Fatalf("after the cooldown: %v", b.State())
	}
	if !b.Allow() {
		t.Fatal("the probe was refused")
	}
	if b.Allow() {
		t.Fatal("a second request went through while the probe is out")
	}
	b.Failure()
	if b.State() != breaker.Open {
		t.Fatalf("a failed probe must reopen it: %v", b.State())
	}

	clk.t = clk.t.Add(10 * time.Second)
	if !b.Allow() {
		t.Fatal("the second probe was refused")
	}
	b.Success()
	if b.State() != breaker.Closed || !b.Allow() || !b.Allow() {
		t.Fatalf("a good probe must close it: %v", b.State())
	}
}

func TestSuccessResetsTheCount(t *testing.T) {
	b := breaker.New(breaker.Settings{Failures: 2, Cooldown: time.Second}, nil)
	b.Failure()
	b.Success()
	b.Failure()
	if b.State() != breaker.Closed {
		t.Fatal("failures must be consecutive to open it")
	}
}

func TestReleaseFreesTheProbe(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	b := breaker.New(breaker.Settings{Failures: 1, Cooldown: time.Second}, clk.now)
	b.Allow()
	b.Failure()
	clk.t = clk.t.Add(time.Second)
	if !b.Allow() {
		t.Fatal("probe refused")
	}
	b.Release() // the client went away: says nothing about the backend
	if !b.Allow() {
		t.Fatal("after a released probe another may go")
	}
}

func TestDisabled(t *testing.T) {
	b := breaker.New(breaker.Settings{}, nil)
	for i := 0; i < 100; i++ {
		b.Failure()
	}
	if !b.Allow() || b.State() != breaker.Closed {
		t.Fatal("a breaker with Failures 0 never opens")
	}
}
