package main

import (
	"fmt"
	"strconv"
	"strings"
)

// The streams and idle-streams parts of the report.

// Targets of the streams scenario, for both paths alike: at every
// concurrency, stream rate and CPU per stream against the floor's, and the
// added TTFB p99 (the one at a concurrency that leaves a core idle is the
// one where first bytes do not wait for CPU).
const (
	streamRateLimit  = 0.9
	streamCPULimit   = 1.25
	streamTTFBLimit  = 1.5
	frameAllocsLimit = 2
)

// idleEndpoints are the endpoints of p's idle scenario, in run order.
func idleEndpoints(p *PathResult) []string {
	var out []string
	for _, ep := range streamEndpointNames {
		if p.Idle[ep] != nil {
			out = append(out, ep)
		}
	}
	return out
}

func idleRows(ep string, f, s *IdleResult) []row {
	if f == nil || s == nil {
		return nil
	}
	pre := fmt.Sprintf("idle %s streams (%d): ", ep, f.Requested)
	rows := []row{
		{metric: pre + "open", vals: [3]float64{nan, float64(f.Opened), float64(s.Opened)}, format: f0, ratio: "-"},
		{metric: pre + "RSS before (MiB)", vals: [3]float64{nan, mib(f.RSSBeforeKiB), mib(s.RSSBeforeKiB)}, format: fmib},
		{metric: pre + "RSS with streams open (MiB)", vals: [3]float64{nan, mib(f.RSSOpenKiB), mib(s.RSSOpenKiB)}, format: fmib},
		{metric: pre + "RSS per open stream (KiB)", vals: [3]float64{nan, f.PerStreamKiB, s.PerStreamKiB}, format: f1},
	}
	fr, sr := f.Runtime, s.Runtime
	if fr == nil || sr == nil {
		return rows
	}
	per := func(name string, v func(IdleBreakdown) float64, format func(float64) string) row {
		return row{metric: pre + name, vals: [3]float64{nan, v(fr.PerStream), v(sr.PerStream)}, format: format}
	}
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	return append(rows,
		per("goroutines per stream", func(b IdleBreakdown) float64 { return b.Goroutines }, f2),
		per("stack in use per stream (KiB)", func(b IdleBreakdown) float64 { return b.StackKiB }, f1),
		per("stack per goroutine (KiB)", func(b IdleBreakdown) float64 {
			if b.Goroutines <= 0 {
				return nan
			}
			return b.StackKiB / b.Goroutines
		}, f1),
		per("heap objects per stream (KiB)", func(b IdleBreakdown) float64 { return b.HeapObjectsKiB }, f1),
		per("heap spans in use per stream (KiB)", func(b IdleBreakdown) float64 { return b.HeapInuseKiB }, f1),
		per("GC heap goal per stream (KiB)", func(b IdleBreakdown) float64 { return b.HeapGoalKiB }, f1),
		per("free heap kept resident per stream (KiB)", func(b IdleBreakdown) float64 { return b.FreeResidentKiB }, f1),
		per("RSS beyond heap spans, stacks, free heap, per stream (KiB)", func(b IdleBreakdown) float64 { return b.OtherKiB }, f1),
		row{metric: pre + "GCs between the two readings", vals: [3]float64{nan, fr.GCs, sr.GCs}, format: f0, ratio: "-"},
	)
}

func spread(lo, hi *float64) string {
	if lo == nil || hi == nil {
		return "—"
	}
	return strconv.FormatFloat(*lo, 'f', 2, 64) + "–" + strconv.FormatFloat(*hi, 'f', 2, 64) + "×"
}

// streamTable is one row per metric of each point: medians over the
// rounds, the median of the per-round service/floor ratios, their spread.
func streamTable(p *PathResult) [][]string {
	out := [][]string{{"point", "metric", "direct", "floor", "service", "service/floor", "spread over rounds"}}
	for _, sp := range p.Streams {
		d, f, s := sp.Targets["direct"], sp.Targets["floor"], sp.Targets["service"]
		pt := sp.label()
		for _, m := range sp.Medians {
			prec := 3
			if m.Name == "streams/s" || m.Name == "allocs / stream" {
				prec = 1
			}
			fm := func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) }
			dc := "—"
			if m.Direct != nil {
				dc = fm(*m.Direct)
				if m.Name == "CPU ms / stream" {
					dc += " (upstream)"
				}
			}
			rt := "—"
			if m.Ratio != nil {
				rt = strconv.FormatFloat(*m.Ratio, 'f', 2, 64) + "×"
				if m.OfMedians {
					rt += " (of medians)"
				}
			}
			if m.Name == "allocs / stream" && m.Floor < 0 {
				continue
			}
			out = append(out, []string{pt, m.Name, dc, fm(m.Floor), fm(m.Service), rt, spread(m.RatioMin, m.RatioMax)})
		}
		out = append(out, []string{pt, "failed (all rounds)", strconv.Itoa(d.Failed), strconv.Itoa(f.Failed), strconv.Itoa(s.Failed), "", ""})
		out = append(out, []string{pt, "peak RSS (MiB)", fmib(mib(d.PeakRSSKiB)) + " (upstream)", fmib(mib(f.PeakRSSKiB)), fmib(mib(s.PeakRSSKiB)),
			ratio(mib(s.PeakRSSKiB), mib(f.PeakRSSKiB)), ""})
	}
	return out
}

// medianCheck is a target on a point's metric: the ratio is the median of
// the per-round ratios, with their extremes.
func medianCheck(p *PathResult, sp *StreamPoint, what, unit string, m *StreamMetric, limit float64, atMost bool) TargetCheck {
	c := check(p.Name, fmt.Sprintf("%s streams ×%d: %s", sp.Endpoint, sp.Concurrency, what), unit, m.Service, m.Floor, limit, atMost)
	c.Endpoint, c.Concurrency = sp.Endpoint, sp.Concurrency
	if m.Ratio == nil || m.Floor <= 0 {
		return c
	}
	c.Ratio, c.RatioMin, c.RatioMax = *m.Ratio, m.RatioMin, m.RatioMax
	if atMost {
		c.Met = c.Ratio <= limit
	} else {
		c.Met = c.Ratio >= limit
	}
	if n := len(sp.Targets["floor"].Rounds); m.OfMedians {
		c.Note = fmt.Sprintf("ratio of the medians: the floor's value was ≤ 0 in %d of %d rounds", n-m.Rounds, n)
	}
	return c
}

func streamChecks(p *PathResult) []TargetCheck {
	var out []TargetCheck
	for _, sp := range p.Streams {
		if m := sp.metric("streams/s"); m != nil {
			out = append(out, medianCheck(p, sp, "stream rate", "streams/s", m, streamRateLimit, false))
		}
		if m := sp.metric("CPU ms / stream"); m != nil {
			out = append(out, medianCheck(p, sp, "CPU per stream", "ms", m, streamCPULimit, true))
		}
		if m := sp.metric("added TTFB p99 (ms)"); m != nil {
			c := medianCheck(p, sp, "added TTFB p99", "ms", m, streamTTFBLimit, true)
			// In a closed loop a slower target has fewer streams at their
			// start at any moment: its first bytes met a lighter load.
			if r := sp.metric("streams/s"); r != nil && r.Ratio != nil && (*r.Ratio < 0.9 || *r.Ratio > 1.1) {
				n := fmt.Sprintf("the service ran at %.2f× the floor's stream rate, so its first bytes met another load", *r.Ratio)
				if c.Note != "" {
					n = c.Note + "; " + n
				}
				c.Note = n
			}
			out = append(out, c)
		}
	}
	return out
}

// allocChecks hold the service to ≤ 2 heap allocations per relayed frame,
// counted on the whole process at the margin (the floor's figure is shown
// for reference, not compared).
func allocChecks(p *PathResult) []TargetCheck {
	var out []TargetCheck
	for _, ep := range streamEndpointNames {
		fa := p.FrameAllocs[ep]
		if fa == nil {
			continue
		}
		c := TargetCheck{Path: p.Name, Name: ep + ": allocations per relayed frame", Rule: "service ≤ 2 (allocs/frame)", Endpoint: ep,
			Service: fa.Service, Floor: fa.Floor, Limit: frameAllocsLimit, Met: fa.Service >= 0 && fa.Service <= frameAllocsLimit,
			Note: fmt.Sprintf("absolute: whole process, (%d-chunk − %d-chunk streams) / %d frames", fa.Long, fa.Short, fa.Long-fa.Short)}
		if fa.Service < 0 {
			c.Note = "not measured"
		}
		out = append(out, c)
	}
	return out
}

// streamsMarkdown is the streams part of a path's section.
func streamsMarkdown(b *strings.Builder, p *PathResult, rounds int) {
	if len(p.Requests) > 0 {
		b.WriteString("\nUpstream requests: what the service sent the fake upstream for each streamed endpoint (captured there), which direct and floor then get, with the marker set to each stream's length; compared with the harness's own reference body:\n\n")
		for _, rc := range p.Requests {
			how := "direct and floor get it"
			if !rc.Adopted {
				how = "direct and floor get the reference body"
			}
			fmt.Fprintf(b, "- %s → POST %s (%s; against the reference: %s)", rc.Endpoint, rc.Path, how, rc.Verdict)
			if rc.Service != "" {
				fmt.Fprintf(b, ": `%s`", strings.TrimSpace(rc.Service))
			}
			b.WriteString("\n")
			if rc.Reference != "" {
				fmt.Fprintf(b, "  - reference: `%s`\n", strings.TrimSpace(rc.Reference))
			}
		}
	}
	if len(p.Streams) > 0 {
		fmt.Fprintf(b, "\nStreams (%d chunks each): every value is the median over the %d round(s) of that round's figure (TTFB and last-byte percentiles are per round); "+
			"service/floor is the median of the per-round ratios (each round's service against the floor's of the same round; the ratio of the medians, marked, when the floor's value was ≤ 0 in some round), the spread their minimum–maximum over the rounds that have one. "+
			"CPU and allocations per stream divide by every stream the round began; allocations come from the process's go_memstats_mallocs_total.\n\n",
			p.Streams[0].Chunks, rounds)
		b.WriteString(mdTable(streamTable(p)))
	}
	var fas []string
	allocs := func(v float64) string {
		if v < 0 {
			return "—"
		}
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	for _, ep := range streamEndpointNames {
		if fa := p.FrameAllocs[ep]; fa != nil {
			t := fmt.Sprintf("%s: floor %s, service %s (service per %d-chunk stream: %.0f)", ep, allocs(fa.Floor), allocs(fa.Service), fa.Long, fa.ServicePerStream)
			if len(fa.Errors) > 0 {
				t += fmt.Sprintf(" (streams cut, counted with the frames they relayed: %v)", map[string]int(fa.Errors))
			}
			fas = append(fas, t)
		}
	}
	if len(fas) > 0 {
		fa := p.FrameAllocs[firstKey(p.FrameAllocs)]
		fmt.Fprintf(b, "\nHeap allocations per relayed frame, whole process, at the margin (streams of %d chunks against streams of %d, one at a time, %d of each per run, median of %d run(s); the service's count comes from its Go collector, which lags by what its Ps' caches hold, a few thousand allocations): %s.\n",
			fa.Long, fa.Short, fa.Streams, rounds, strings.Join(fas, "; "))
	}
}

func firstKey(m map[string]*FrameAllocs) string {
	for _, ep := range streamEndpointNames {
		if m[ep] != nil {
			return ep
		}
	}
	return ""
}
