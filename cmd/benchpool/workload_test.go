package main

import (
	"reflect"
	"testing"
	"time"
)

func testWorkload(seed uint64, n int) WorkloadConfig {
	return WorkloadConfig{Seed: seed, Conversations: n, Models: modelNames(6), Zipf: 1, SystemMin: 1500, SystemMax: 3000,
		SharedSystem: 0.5, AppsPerModel: 2, MaxTurns: 8, FirstUserMin: 100, FirstUserMax: 400, NextUserMin: 20, NextUserMax: 120,
		Think: time.Second}
}

func TestWorkloadIsReproducible(t *testing.T) {
	a, b := NewWorkload(testWorkload(7, 50)), NewWorkload(testWorkload(7, 50))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed drew different workloads")
	}
	if c := NewWorkload(testWorkload(8, 50)); reflect.DeepEqual(a.Conversations, c.Conversations) {
		t.Fatal("another seed drew the same workload")
	}
}

func TestWorkloadShape(t *testing.T) {
	cfg := testWorkload(1, 2000)
	w := NewWorkload(cfg)
	turns, shared := 0, 0
	for _, c := range w.Conversations {
		n := len(c.Users)
		if n < 1 || n > 8 || len(c.Think) != n || c.Think[0] != 0 {
			t.Fatalf("conversation %d: %d turns, think %v", c.ID, n, c.Think)
		}
		for _, th := range c.Think {
			if th < 0 || th > 4*time.Second {
				t.Fatalf("think time %v", th)
			}
		}
		if l := len(c.System); l < 1500*bytesPerToken || l > 3000*bytesPerToken+100 {
			t.Fatalf("system prompt of %d bytes", l)
		}
		if c.App >= 0 {
			shared++
		}
		turns += n
	}
	if turns != w.Requests {
		t.Fatalf("Requests %d, turns %d", w.Requests, turns)
	}
	if mean := float64(turns) / 2000; mean < 2.7 || mean > 3.2 {
		t.Errorf("mean turns %.2f, want about 2.94 (P(t) ∝ 1/t over 1..8)", mean)
	}
	if s := float64(shared) / 2000; s < 0.45 || s > 0.55 {
		t.Errorf("shared system prompts: %.2f, want about 0.5", s)
	}
	share := w.ModelShare()
	// Zipf 1 over 6 models: 1/2.45 ≈ 0.41 for the first, 0.068 for the last.
	if s := share[cfg.Models[0]]; s < 0.36 || s > 0.46 {
		t.Errorf("share of the first model %.2f", s)
	}
	if s := share[cfg.Models[5]]; s < 0.04 || s > 0.10 {
		t.Errorf("share of the last model %.2f", s)
	}
}

func TestZipfCDF(t *testing.T) {
	cdf := zipfCDF(4, 1)
	// 1, 1/2, 1/3, 1/4 over 25/12.
	want := []float64{12.0 / 25, 18.0 / 25, 22.0 / 25, 1}
	for i := range want {
		if d := cdf[i] - want[i]; d > 1e-12 || d < -1e-12 {
			t.Fatalf("cdf %v, want %v", cdf, want)
		}
	}
}
