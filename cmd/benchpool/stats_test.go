package main

import (
	"slices"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var xs []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		xs = append(xs, time.Duration(i)*time.Millisecond)
	}
	orig := slices.Clone(xs)
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {90, 90}, {99, 99}, {99.5, 100}, {100, 100}, {1, 1}, {0.1, 1}} {
		if got := percentile(xs, c.p); got != c.want*time.Millisecond {
			t.Errorf("p%g = %v, want %v", c.p, got, c.want*time.Millisecond)
		}
	}
	if !slices.Equal(xs, orig) {
		t.Error("percentile reordered its input")
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one value = %v", got)
	}
	// Four values: p50 is the 2nd, p99 the 4th (nearest rank, no interpolation).
	four := []time.Duration{40, 10, 30, 20}
	if percentile(four, 50) != 20 || percentile(four, 99) != 40 || percentile(four, 75) != 30 {
		t.Error("nearest rank over four values")
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	results := []Result{
		{Conv: 1, Turn: 1, Start: 0, TTFT: 900 * ms, Latency: time.Second, Affinity: "new"},
		{Conv: 1, Turn: 2, Start: 2 * time.Second, TTFT: 20 * ms, Latency: 100 * ms, Affinity: "hit"},
		{Conv: 1, Turn: 3, Start: 3 * time.Second, TTFT: 40 * ms, Latency: 100 * ms, Affinity: "moved"},
		{Conv: 2, Turn: 2, Start: 3 * time.Second, TTFT: 30 * ms, Latency: 900 * ms, Affinity: "hit"},
		{Conv: 3, Turn: 1, Start: 1 * time.Second, Err: "HTTP 502: bad", Latency: 10 * ms},
	}
	hosts := []HostReport{
		{Name: "host1", HostStats: HostStats{Requests: 3, Loads: 1, PromptTokens: 1000, CachedTokens: 600}},
		{Name: "host2", HostStats: HostStats{Requests: 2, Loads: 1, Evictions: 1, PromptTokens: 1000, CachedTokens: 200}},
	}
	s := summarize("model_aware", results, 4, hosts)
	if s.Requests != 5 || s.Completed != 4 || s.Errors != 1 || s.NotSent != 4 {
		t.Fatalf("counts %+v", s)
	}
	if s.Elapsed != 3900*ms || s.Throughput != 4/(3900*ms).Seconds() {
		t.Fatalf("elapsed %v, throughput %v", s.Elapsed, s.Throughput)
	}
	if s.TTFTFollowP50 != 30*ms || s.TTFTFirstP50 != 900*ms || s.TTFTP50 != 30*ms || s.TTFTP99 != 900*ms {
		t.Fatalf("TTFT follow-up p50 %v, first %v, p50 %v, p99 %v", s.TTFTFollowP50, s.TTFTFirstP50, s.TTFTP50, s.TTFTP99)
	}
	if s.Loads != 2 || s.Evictions != 1 || s.LoadsPer1000 != 400 || s.CacheReuse != 0.4 {
		t.Fatalf("loads %d, evictions %d, per 1000 %v, reuse %v", s.Loads, s.Evictions, s.LoadsPer1000, s.CacheReuse)
	}
	if s.AffinityHitShare != 2.0/3 || len(s.ErrorSamples) != 1 {
		t.Fatalf("affinity share %v, errors %v", s.AffinityHitShare, s.ErrorSamples)
	}
	if s := summarize("round_robin", results[1:2:2], 0, nil); s.AffinityHitShare != 1 {
		t.Fatalf("share %v", s.AffinityHitShare)
	}
	none := []Result{{Turn: 2, TTFT: ms, Latency: ms}}
	if s := summarize("round_robin", none, 0, nil); s.AffinityHitShare != -1 {
		t.Fatalf("share %v without any X-Affinity, want -1", s.AffinityHitShare)
	}
}

func TestTargets(t *testing.T) {
	ms := time.Millisecond
	ma := &StrategyResult{LoadsPer1000: 10, TTFTFollowP50: 40 * ms, TTFTP99: 3000 * ms, Throughput: 9}
	rr := &StrategyResult{LoadsPer1000: 100, TTFTFollowP50: 100 * ms, TTFTP99: 2500 * ms, Throughput: 9}
	ts := targets(ma, rr)
	want := []bool{true, true, false, true}
	for i, tg := range ts {
		if tg.Met != want[i] {
			t.Errorf("%s: met %v, want %v (ratio %v)", tg.Name, tg.Met, want[i], *tg.Ratio)
		}
	}
	if *ts[0].Ratio != 0.1 || *ts[1].Ratio != 0.4 || *ts[2].Ratio != 1.2 || *ts[3].Ratio != 1 {
		t.Errorf("ratios %v %v %v %v", *ts[0].Ratio, *ts[1].Ratio, *ts[2].Ratio, *ts[3].Ratio)
	}
	rr.LoadsPer1000 = 0
	if ts := targets(ma, rr); ts[0].Ratio != nil || ts[0].Met {
		t.Error("10 loads against none met ≤ 0.2×")
	}
	ma.LoadsPer1000 = 0
	if ts := targets(ma, rr); !ts[0].Met {
		t.Error("no loads against none did not meet ≤ 0.2×")
	}
}
