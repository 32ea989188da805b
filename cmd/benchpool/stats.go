package main

import (
	"math"
	"slices"
	"time"
)

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of xs: the
// smallest value at least p% of them do not exceed. 0 for no values.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// StrategyResult is what one strategy's run measured.
type StrategyResult struct {
	Strategy string `json:"strategy"`
	// Requests were sent; Completed streamed to their end; Errors failed;
	// NotSent are turns left out (the run reached -max-duration, or their
	// conversation failed before).
	Requests  int `json:"requests"`
	Completed int `json:"completed"`
	Errors    int `json:"errors"`
	NotSent   int `json:"not_sent"`
	// Elapsed is from the first request sent to the last one ended.
	Elapsed    time.Duration `json:"elapsed_ns"`
	Throughput float64       `json:"throughput_rps"`
	// Loads are the fakes' model loads (and evictions), in all.
	Loads        int64   `json:"loads"`
	Evictions    int64   `json:"evictions"`
	LoadsPer1000 float64 `json:"loads_per_1000_requests"`
	// CacheReuse is the share of prompt tokens the hosts found cached.
	CacheReuse float64 `json:"prompt_cache_reuse"`

	TTFTFollowP50 time.Duration `json:"ttft_p50_followup_ns"`
	TTFTFirstP50  time.Duration `json:"ttft_p50_first_turn_ns"`
	TTFTP50       time.Duration `json:"ttft_p50_ns"`
	TTFTP90       time.Duration `json:"ttft_p90_ns"`
	TTFTP99       time.Duration `json:"ttft_p99_ns"`
	TTFTMax       time.Duration `json:"ttft_max_ns"`

	// Affinity counts the X-Affinity values of completed follow-up turns
	// ("" when absent); AffinityHitShare is hits over those that carried
	// one, -1 when none did.
	Affinity         map[string]int `json:"affinity_followups"`
	AffinityHitShare float64        `json:"affinity_hit_share"`

	Hosts []HostReport `json:"hosts"`
	// HostHeader counts the X-Backend-Host values of completed requests
	// that named none of the fakes ("" when absent).
	HostHeader   map[string]int `json:"unmatched_host_header,omitempty"`
	ErrorSamples []string       `json:"error_samples,omitempty"`
	Wall         time.Duration  `json:"wall_ns"` // the whole run, service start and stop included
}

// HostReport is one fake host's counters, and how many answers the
// service said it served (X-Backend-Host).
type HostReport struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Served int    `json:"served_per_header"`
	HostStats
}

// summarize computes a strategy's figures from the requests and the
// hosts' counters.
func summarize(strategy string, results []Result, notSent int, hosts []HostReport) *StrategyResult {
	s := &StrategyResult{Strategy: strategy, Requests: len(results), NotSent: notSent, Hosts: hosts,
		Affinity: map[string]int{}, AffinityHitShare: -1}
	var all, follow, first []time.Duration
	var begin, end time.Duration = -1, 0
	for _, r := range results {
		if begin < 0 || r.Start < begin {
			begin = r.Start
		}
		end = max(end, r.Start+r.Latency)
		if r.Err != "" {
			s.Errors++
			if len(s.ErrorSamples) < 5 {
				s.ErrorSamples = append(s.ErrorSamples, r.Err)
			}
			continue
		}
		s.Completed++
		all = append(all, r.TTFT)
		if r.Turn >= 2 {
			follow = append(follow, r.TTFT)
			s.Affinity[r.Affinity]++
		} else {
			first = append(first, r.TTFT)
		}
	}
	if begin >= 0 {
		s.Elapsed = end - begin
	}
	if s.Elapsed > 0 {
		s.Throughput = float64(s.Completed) / s.Elapsed.Seconds()
	}
	s.TTFTFollowP50 = percentile(follow, 50)
	s.TTFTFirstP50 = percentile(first, 50)
	s.TTFTP50 = percentile(all, 50)
	s.TTFTP90 = percentile(all, 90)
	s.TTFTP99 = percentile(all, 99)
	s.TTFTMax = percentile(all, 100)
	if with := len(follow) - s.Affinity[""]; with > 0 {
		s.AffinityHitShare = float64(s.Affinity["hit"]) / float64(with)
	}
	var tot HostStats
	for _, h := range hosts {
		tot.add(h.HostStats)
	}
	s.Loads, s.Evictions = tot.Loads, tot.Evictions
	if s.Requests > 0 {
		s.LoadsPer1000 = float64(tot.Loads) * 1000 / float64(s.Requests)
	}
	if tot.PromptTokens > 0 {
		s.CacheReuse = float64(tot.CachedTokens) / float64(tot.PromptTokens)
	}
	return s
}
