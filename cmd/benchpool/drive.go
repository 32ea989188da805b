package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DriveConfig is the closed loop: Concurrency conversations at a time,
// the first ones starting over Ramp; no turn starts after MaxDuration.
type DriveConfig struct {
	Concurrency int
	Ramp        time.Duration
	MaxDuration time.Duration
	// RequestTimeout bounds one request, stream included.
	RequestTimeout time.Duration
	// User sends each conversation's id as OpenAI's user field.
	User bool
	// Progress, when set, is called every ProgressEvery with the counts so far.
	Progress      func(sent, failed int, elapsed time.Duration)
	ProgressEvery time.Duration
}

// Drive plays the workload through the client: each of Concurrency
// workers takes the next conversation not yet started and plays its turns
// in order, pausing each turn's think time first and sending the whole
// conversation so far (system prompt, every user message and answer). A
// failed request ends its conversation. It returns every request's result
// and how many turns were not sent.
func Drive(ctx context.Context, cl *Client, wl *Workload, dc DriveConfig) (results []Result, notSent int) {
	start := time.Now()
	deadline := start.Add(dc.MaxDuration)
	var (
		mu      sync.Mutex
		next    atomic.Int64
		skipped atomic.Int64
		sent    atomic.Int64
		failed  atomic.Int64
		wg      sync.WaitGroup
	)
	stopProgress := make(chan struct{})
	if dc.Progress != nil && dc.ProgressEvery > 0 {
		go func() {
			t := time.NewTicker(dc.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					dc.Progress(int(sent.Load()), int(failed.Load()), time.Since(start))
				case <-stopProgress:
					return
				}
			}
		}()
	}
	conc := max(dc.Concurrency, 1)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if pause := dc.Ramp * time.Duration(w) / time.Duration(conc); sleepCtx(ctx, pause) != nil {
				return
			}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(wl.Conversations) {
					return
				}
				c := &wl.Conversations[i]
				msgs := []Message{{Role: "system", Content: c.System}}
				user := ""
				if dc.User {
					user = fmt.Sprintf("conversation-%d", c.ID)
				}
				for t, u := range c.Users {
					if t > 0 && sleepCtx(ctx, c.Think[t]) != nil {
						skipped.Add(int64(len(c.Users) - t))
						break
					}
					if ctx.Err() != nil || time.Now().After(deadline) {
						skipped.Add(int64(len(c.Users) - t))
						break
					}
					msgs = append(msgs, Message{Role: "user", Content: u})
					rctx, cancel := context.WithTimeout(ctx, dc.RequestTimeout)
					began := time.Since(start)
					sent.Add(1)
					r := cl.Chat(rctx, c.Model, msgs, user)
					cancel()
					r.Conv, r.Turn, r.Start = c.ID, t+1, began
					mu.Lock()
					results = append(results, r)
					mu.Unlock()
					if r.Err != "" {
						failed.Add(1)
						skipped.Add(int64(len(c.Users) - t - 1))
						break
					}
					msgs = append(msgs, Message{Role: "assistant", Content: r.Answer})
				}
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	return results, int(skipped.Load())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	return realClock{}.Sleep(ctx, d)
}
