package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Report is everything a run measured, as -out writes it.
type Report struct {
	Revision   string            `json:"revision,omitempty"`
	Settings   Settings          `json:"settings"`
	Workload   WorkloadSummary   `json:"workload"`
	Strategies []*StrategyResult `json:"strategies"`
	Targets    []Target          `json:"targets,omitempty"`
	Wall       time.Duration     `json:"wall_ns"`
}

// WorkloadSummary describes the conversations drawn.
type WorkloadSummary struct {
	Conversations int                `json:"conversations"`
	Requests      int                `json:"requests"`
	ModelShare    map[string]float64 `json:"model_share"`
}

// Target is one of the goals for model_aware against round_robin.
type Target struct {
	Name       string   `json:"name"`
	ModelAware float64  `json:"model_aware"`
	RoundRobin float64  `json:"round_robin"`
	Ratio      *float64 `json:"ratio"` // model_aware / round_robin; null when round_robin's is 0
	Goal       string   `json:"goal"`
	Met        bool     `json:"met"`
	unit       func(float64) string
}

// targets compares model_aware with round_robin: loads per 1000 requests
// ≤ 0.2×, TTFT p50 of follow-up turns ≤ 0.5×, TTFT p99 ≤ 1×, throughput
// ≥ 1×.
func targets(ma, rr *StrategyResult) []Target {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	mk := func(name string, a, b float64, atMost bool, bound float64, unit func(float64) string) Target {
		t := Target{Name: name, ModelAware: a, RoundRobin: b, unit: unit}
		if atMost {
			t.Goal = fmt.Sprintf("≤ %g×", bound)
		} else {
			t.Goal = fmt.Sprintf("≥ %g×", bound)
		}
		if b == 0 {
			t.Met = (atMost && a == 0) || !atMost
			return t
		}
		r := a / b
		t.Ratio = &r
		if atMost {
			t.Met = r <= bound
		} else {
			t.Met = r >= bound
		}
		return t
	}
	perK := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	rps := func(v float64) string { return fmt.Sprintf("%.2f req/s", v) }
	return []Target{
		mk("model loads per 1000 requests", ma.LoadsPer1000, rr.LoadsPer1000, true, 0.2, perK),
		mk("TTFT p50, follow-up turns", ms(ma.TTFTFollowP50), ms(rr.TTFTFollowP50), true, 0.5, fmtMs),
		mk("TTFT p99, all requests", ms(ma.TTFTP99), ms(rr.TTFTP99), true, 1, fmtMs),
		mk("throughput", ma.Throughput, rr.Throughput, false, 1, rps),
	}
}

// fmtMs writes milliseconds to a sensible precision.
func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func fmtDur(d time.Duration) string { return fmtMs(float64(d) / float64(time.Millisecond)) }

func pct(v float64) string { return fmt.Sprintf("%.0f%%", v*100) }

// Markdown is the report as Markdown: the settings, one row per strategy,
// the targets, the hosts.
func (rep *Report) Markdown() string {
	var b strings.Builder
	s := rep.Settings
	fmt.Fprintf(&b, "## make bench-pool%s: routing over a pool of %d fake Ollama hosts\n\n", map[bool]string{true: " (quick)"}[s.Quick], len(s.hostFits()))
	fmt.Fprintf(&b, "Workload (seed %d): %d conversations, %d requests, %d at a time; %d models, Zipf %.2g popularity; "+
		"system prompts %d–%d tokens (%.0f%% shared by %d apps per model); 1–%d turns; think %s mean.  \n",
		s.Seed, rep.Workload.Conversations, rep.Workload.Requests, s.Concurrency, s.Models, s.Zipf,
		s.System.Lo, s.System.Hi, s.SharedSystem*100, s.AppsPerModel, s.MaxTurns, s.Think)
	fmt.Fprintf(&b, "Hosts: %s models fit per host, %d parallel per model; load %s; prompt eval %s per uncached token%s; "+
		"%d tokens × %s per answer. Service: residency every %s, health every %s.\n\n",
		s.Hosts, s.Parallel, s.LoadDelay, s.PromptToken, map[bool]string{true: fmt.Sprintf(" (a host's prompts take turns, %d tokens at a time)", s.PrefillBatch)}[s.SharedPrefill],
		s.GenTokens, s.TokenDelay, s.ResidencyInterval, s.HealthInterval)

	b.WriteString("| strategy | requests | errors | not sent | model loads | loads / 1000 req | evictions | prompt cache reuse | TTFT p50 follow-up | TTFT p50 first turn | TTFT p50 | TTFT p99 | throughput | affinity hit share | run |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.Strategies {
		aff := "–"
		if r.AffinityHitShare >= 0 {
			aff = pct(r.AffinityHitShare)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %.1f | %d | %s | %s | %s | %s | %s | %.2f req/s | %s | %.1f s |\n",
			r.Strategy, r.Requests, r.Errors, r.NotSent, r.Loads, r.LoadsPer1000, r.Evictions, pct(r.CacheReuse),
			fmtDur(r.TTFTFollowP50), fmtDur(r.TTFTFirstP50), fmtDur(r.TTFTP50), fmtDur(r.TTFTP99), r.Throughput, aff, r.Elapsed.Seconds())
	}
	if len(rep.Targets) > 0 {
		b.WriteString("\n### model_aware against round_robin\n\n")
		b.WriteString("| target | model_aware | round_robin | ratio | goal | |\n|---|--:|--:|--:|--:|---|\n")
		met := 0
		for _, t := range rep.Targets {
			ratio := "n/a"
			if t.Ratio != nil {
				ratio = fmt.Sprintf("%.2f×", *t.Ratio)
			}
			verdict := "**not met**"
			if t.Met {
				verdict = "met"
				met++
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", t.Name, t.unit(t.ModelAware), t.unit(t.RoundRobin), ratio, t.Goal, verdict)
		}
		fmt.Fprintf(&b, "\nTargets met: %d of %d.\n", met, len(rep.Targets))
		if s.Quick {
			b.WriteString("\n(-quick: about a hundred requests, where the first loads of every model weigh; the targets are indicative only.)\n")
		}
	}
	b.WriteString("\n### Hosts\n\n| strategy | host | requests (fake) | served (X-Backend-Host) | loads | evictions | waited for a load | cache hits (≥ half the prompt) | prompt tokens reused |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.Strategies {
		for _, h := range r.Hosts {
			reuse := 0.0
			if h.PromptTokens > 0 {
				reuse = float64(h.CachedTokens) / float64(h.PromptTokens)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d | %d | %s |\n", r.Strategy, h.Name, h.Requests, h.Served,
				h.Loads, h.Evictions, h.LoadWaits, h.CacheHits, pct(reuse))
		}
	}
	for _, r := range rep.Strategies {
		if len(r.ErrorSamples) > 0 {
			fmt.Fprintf(&b, "\n%s errors (first %d): %s\n", r.Strategy, len(r.ErrorSamples), strings.Join(r.ErrorSamples, "; "))
		}
	}
	fmt.Fprintf(&b, "\nWall time: %.0f s.\n", rep.Wall.Seconds())
	return b.String()
}

// write saves the JSON and Markdown where asked.
func (rep *Report) write(jsonPath, mdPath string) error {
	if jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if mdPath != "" {
		if err := os.WriteFile(mdPath, []byte(rep.Markdown()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
