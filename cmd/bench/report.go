package main

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
)

func nproc() int { return runtime.NumCPU() }

var order = []string{"direct", "floor", "service"}

// row is one metric: a value per target (NaN when it does not apply), and
// how to print it.
type row struct {
	metric   string
	vals     [3]float64
	format   func(float64) string
	upstream bool      // the direct value is the upstream process's own
	text     [3]string // overrides the formatted value when set
	ratio    string    // overrides the ratio cell
}

var nan = math.NaN()

func fms(v float64) string  { return strconv.FormatFloat(v, 'f', 3, 64) }
func f1(v float64) string   { return strconv.FormatFloat(v, 'f', 1, 64) }
func f0(v float64) string   { return strconv.FormatFloat(v, 'f', 0, 64) }
func f3(v float64) string   { return strconv.FormatFloat(v, 'f', 3, 64) }
func mib(k int64) float64   { return float64(k) / 1024 }
func fmib(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func ratio(svc, floor float64) string {
	if math.IsNaN(svc) || math.IsNaN(floor) {
		return ""
	}
	if floor <= 0 {
		return "n/a (floor ≤ 0)"
	}
	return strconv.FormatFloat(svc/floor, 'f', 2, 64) + "×"
}

// rateRows are the rows of one open-model point (rr: target -> result);
// pre starts each metric.
func rateRows(pre string, rr map[string]*RateResult) []row {
	d, f, s := rr["direct"], rr["floor"], rr["service"]
	keep := func(r *RateResult) string {
		t := fmt.Sprintf("%.0f/s sent, %.2f%% ok", r.SentRate, r.SuccessPct)
		if !r.KeptUp {
			t += " ⚠ " + r.Note
		}
		return t
	}
	return []row{
		{metric: pre + "achieved", text: [3]string{keep(d), keep(f), keep(s)}, ratio: ""},
		{metric: pre + "latency p50 (ms)", vals: [3]float64{d.Latency.P50, f.Latency.P50, s.Latency.P50}, format: fms},
		{metric: pre + "latency p99 (ms)", vals: [3]float64{d.Latency.P99, f.Latency.P99, s.Latency.P99}, format: fms},
		{metric: pre + "latency max (ms)", vals: [3]float64{d.Latency.Max, f.Latency.Max, s.Latency.Max}, format: fms},
		{metric: pre + "added p50 over direct (ms)", vals: [3]float64{nan, f.Latency.P50 - d.Latency.P50, s.Latency.P50 - d.Latency.P50}, format: fms},
		{metric: pre + "added p99 over direct (ms)", vals: [3]float64{nan, f.Latency.P99 - d.Latency.P99, s.Latency.P99 - d.Latency.P99}, format: fms},
		{metric: pre + "CPU s / 1000 req", vals: [3]float64{d.CPUPer1000, f.CPUPer1000, s.CPUPer1000}, format: f3, upstream: true},
		{metric: pre + "peak RSS (MiB)", vals: [3]float64{mib(d.PeakRSSKiB), mib(f.PeakRSSKiB), mib(s.PeakRSSKiB)}, format: fmib, upstream: true},
	}
}

// throughputRows are the rows of one closed-loop point; pre starts each
// metric.
func throughputRows(pre string, t map[string]*ThroughputResult) []row {
	d, f, s := t["direct"], t["floor"], t["service"]
	return []row{
		{metric: pre + "req/s", vals: [3]float64{d.ReqPerSec, f.ReqPerSec, s.ReqPerSec}, format: f0},
		{metric: pre + "failed", vals: [3]float64{float64(d.Failed), float64(f.Failed), float64(s.Failed)}, format: f0, ratio: "-"},
		{metric: pre + "latency p99 (ms)", vals: [3]float64{d.Latency.P99, f.Latency.P99, s.Latency.P99}, format: fms},
		{metric: pre + "CPU s / 1000 req", vals: [3]float64{d.CPUPer1000, f.CPUPer1000, s.CPUPer1000}, format: f3, upstream: true},
	}
}

// embedFormats are the formats of p's embeddings scenario, in the order
// they ran.
func embedFormats(p *PathResult) []string {
	var out []string
	for _, f := range []string{"float", "base64"} {
		if p.Embeddings[f] != nil {
			out = append(out, f)
		}
	}
	return out
}

// embedLabel names an embeddings format's rows: "embeddings 16×~300 chars, float".
func embedLabel(e *EmbedResult) string {
	return fmt.Sprintf("embeddings %d×~%d chars, %s", e.Inputs, (e.InputChars+e.Inputs/2)/max(e.Inputs, 1), e.Format)
}

func table(p *PathResult) [][]string {
	var rows []row
	add := func(r row) { rows = append(rows, r) }
	for _, rate := range sortedRates(p.Rate) {
		rows = append(rows, rateRows("@"+rate+" req/s: ", p.Rate[rate])...)
	}
	if t := p.Throughput; t != nil {
		rows = append(rows, throughputRows(fmt.Sprintf("max throughput, %d conns: ", t["direct"].Conns), t)...)
	}
	for _, format := range embedFormats(p) {
		e := p.Embeddings[format]
		label := embedLabel(e)
		add(row{metric: label + ": bytes of request / answer", text: [3]string{
			fmt.Sprintf("%d / %d", e.RequestBytes["direct"], e.ResponseBytes["direct"]),
			fmt.Sprintf("%d / %d", e.RequestBytes["floor"], e.ResponseBytes["floor"]),
			fmt.Sprintf("%d / %d", e.RequestBytes["service"], e.ResponseBytes["service"])}})
		for _, rate := range sortedRates(e.Rate) {
			rows = append(rows, rateRows(label+" @"+rate+" req/s: ", e.Rate[rate])...)
		}
		if t := e.Throughput; t != nil {
			rows = append(rows, throughputRows(fmt.Sprintf("%s, max throughput, %d conns: ", label, t["direct"].Conns), t)...)
		}
	}
	for _, ep := range idleEndpoints(p) {
		rows = append(rows, idleRows(ep, p.Idle[ep]["floor"], p.Idle[ep]["service"])...)
	}
	out := [][]string{{"metric", "direct", "floor", "service", "service/floor"}}
	for _, r := range rows {
		cells := []string{r.metric}
		for i := range 3 {
			switch {
			case r.text[i] != "":
				cells = append(cells, r.text[i])
			case math.IsNaN(r.vals[i]) || r.format == nil:
				cells = append(cells, "—")
			case i == 0 && r.upstream:
				cells = append(cells, r.format(r.vals[i])+" (upstream)")
			default:
				cells = append(cells, r.format(r.vals[i]))
			}
		}
		switch {
		case r.ratio == "-":
			cells = append(cells, "")
		case r.ratio != "" || r.format == nil:
			cells = append(cells, r.ratio)
		default:
			cells = append(cells, ratio(r.vals[2], r.vals[1]))
		}
		out = append(out, cells)
	}
	return out
}

func sortedRates[R any](m map[string]R) []string {
	var rs []int
	for k := range m {
		n, _ := strconv.Atoi(k)
		rs = append(rs, n)
	}
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			if rs[j] < rs[i] {
				rs[i], rs[j] = rs[j], rs[i]
			}
		}
	}
	out := make([]string, len(rs))
	for i, n := range rs {
		out[i] = strconv.Itoa(n)
	}
	return out
}

// TargetCheck is one goal: service against floor.
type TargetCheck struct {
	Path    string  `json:"path"`
	Name    string  `json:"name"`
	Rule    string  `json:"rule"`
	Service float64 `json:"service"`
	Floor   float64 `json:"floor"`
	Ratio   float64 `json:"ratio"`
	Limit   float64 `json:"limit"`
	Met     bool    `json:"met"`
	Note    string  `json:"note,omitempty"`
	// Streams: the point, and the extremes of the per-round ratio (the
	// ratio is then the median of the per-round ratios).
	Endpoint    string   `json:"endpoint,omitempty"`
	Concurrency int      `json:"concurrent,omitempty"`
	RatioMin    *float64 `json:"ratio_min,omitempty"`
	RatioMax    *float64 `json:"ratio_max,omitempty"`
}

// check compares service/floor against limit; atMost says which side is good.
func check(path, name, unit string, svc, floor, limit float64, atMost bool) TargetCheck {
	c := TargetCheck{Path: path, Name: name, Service: svc, Floor: floor, Limit: limit}
	lim := strconv.FormatFloat(limit, 'f', -1, 64)
	if atMost {
		c.Rule = "service ≤ " + lim + "× floor"
	} else {
		c.Rule = "service ≥ " + lim + "× floor"
	}
	if unit != "" {
		c.Rule += " (" + unit + ")"
	}
	switch {
	case math.IsNaN(svc) || math.IsNaN(floor):
		c.Note = "not measured"
	case floor <= 0 && atMost:
		// The floor adds nothing measurable over direct: the service meets
		// the target only if it adds nothing measurable either.
		c.Met = svc <= 0
		c.Note = "no ratio: the floor adds ≤ 0 over direct (noise)"
	case floor <= 0:
		c.Met = true
		c.Note = "no ratio: the floor's value is ≤ 0"
	default:
		c.Ratio = svc / floor
		if atMost {
			c.Met = c.Ratio <= limit
		} else {
			c.Met = c.Ratio >= limit
		}
	}
	return c
}

// rateChecks are the targets of an open-model point: added p99 and CPU
// per request.
func rateChecks(path, what string, rr map[string]*RateResult, addedLimit, cpuLimit float64) []TargetCheck {
	d, f, s := rr["direct"], rr["floor"], rr["service"]
	return []TargetCheck{
		check(path, "added p99 "+what, "ms", s.Latency.P99-d.Latency.P99, f.Latency.P99-d.Latency.P99, addedLimit, true),
		check(path, "CPU / 1000 req "+what, "s", s.CPUPer1000, f.CPUPer1000, cpuLimit, true),
	}
}

func throughputCheck(path, what string, t map[string]*ThroughputResult, limit float64) TargetCheck {
	return check(path, what, "req/s", t["service"].ReqPerSec, t["floor"].ReqPerSec, limit, false)
}

func checks(p *PathResult) []TargetCheck {
	// The Ollama path translates both ways where the floor copies bytes:
	// looser targets, for embeddings as for chat.
	addedLimit, cpuLimit, tputLimit := 1.3, 1.25, 0.85
	if p.Protocol == "ollama" {
		addedLimit, cpuLimit, tputLimit = 2, 2, 0.6
	}
	var out []TargetCheck
	if rr := p.Rate["1000"]; rr != nil {
		out = append(out, rateChecks(p.Name, "@1000 req/s", rr, addedLimit, cpuLimit)...)
	}
	if t := p.Throughput; t != nil {
		out = append(out, throughputCheck(p.Name, fmt.Sprintf("max throughput, %d conns", t["direct"].Conns), t, tputLimit))
	}
	out = append(out, streamChecks(p)...)
	for _, format := range embedFormats(p) {
		e := p.Embeddings[format]
		for _, rate := range sortedRates(e.Rate) {
			out = append(out, rateChecks(p.Name, "@"+rate+" req/s, embeddings "+format, e.Rate[rate], addedLimit, cpuLimit)...)
		}
		if t := e.Throughput; t != nil {
			out = append(out, throughputCheck(p.Name, fmt.Sprintf("max throughput, %d conns, embeddings %s", t["direct"].Conns, format), t, tputLimit))
		}
	}
	for _, ep := range idleEndpoints(p) {
		if f, s := p.Idle[ep]["floor"], p.Idle[ep]["service"]; f != nil && s != nil {
			c := check(p.Name, ep+": RSS per idle open stream", "KiB", s.PerStreamKiB, f.PerStreamKiB, 1, true)
			c.Endpoint = ep
			out = append(out, c)
		}
	}
	out = append(out, allocChecks(p)...)
	return out
}

func mdTable(rows [][]string) string {
	var b strings.Builder
	for i, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		if i == 0 {
			seps := make([]string, len(r))
			for j := range seps {
				seps[j] = "---"
				if j > 0 {
					seps[j] = "---:"
				}
			}
			b.WriteString("| " + strings.Join(seps, " | ") + " |\n")
		}
	}
	return b.String()
}

// nonNegative prints v, or — for the -1 of "not measured".
func nonNegative(v float64) string {
	if v < 0 {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func num(v float64, unit string) string {
	if math.IsNaN(v) {
		return "—"
	}
	switch unit {
	case "req/s", "streams/s":
		return strconv.FormatFloat(v, 'f', 1, 64)
	case "KiB":
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func markdown(rep *Report) string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "\n# chatgpt-api overhead benchmark (%s mode)\n\n", rep.Settings.Mode)
	fmt.Fprintf(&b, "%s · %d CPUs (%s) · %s · kernel %s · %d round(s) × %.1fs per target per point, interleaved A,B,C · run %.0fs · load average before %s, after %s\n\n",
		m.Date, m.NProc, m.CPUModel, m.GoVersion, m.Kernel, rep.Settings.Rounds, rep.Settings.RoundSeconds, rep.RunSeconds, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(&b, "Service built from %s", m.ServiceRevision)
	if len(m.ServiceChanges) > 0 {
		fmt.Fprintf(&b, " (worktree changes: %s)", strings.Join(m.ServiceChanges, ", "))
	}
	b.WriteString(".\n\n")
	b.WriteString("A = direct to the fake upstream, B = floor (httputil.ReverseProxy, FlushInterval -1), C = the service binary. ")
	b.WriteString("The floor's transport keeps as many idle upstream connections as the service's (256 per host). ")
	b.WriteString("Latencies are client-observed over loopback, percentiles over every request of every round; \"added\" = target minus direct at the same percentile, and the ratio column compares those added values. ")
	b.WriteString("Streams' TTFB = request sent → the first frame carrying answer text (Responses: the first response.output_text.delta); last byte = → end of the body. ")
	b.WriteString("CPU is utime+stime of the measured process from /proc/<pid>/stat (clock ticks); peak RSS is the highest VmRSS sampled every 100 ms during the scenario. ")
	b.WriteString("Buffered: open model (vegeta, constant arrival rate, keep-alive). Throughput and streams: closed loops, counted when finished within the round. ")
	if rep.Settings.wants("streams") {
		fmt.Fprintf(&b, "Streams: each of %s at %s concurrent streams, %d round(s) × %.1fs per target per point. ",
			strings.Join(rep.Settings.StreamEndpoints, ", "), strings.Trim(strings.Join(strings.Fields(fmt.Sprint(rep.Settings.StreamLevels)), ", "), "[]"),
			rep.Settings.Rounds, rep.Settings.StreamRoundSeconds)
	}
	if rep.Settings.wants("idle") {
		fmt.Fprintf(&b, "Idle: %d slow streams (%d chunks, 1 per %d ms) per endpoint, held open %.1fs. ", rep.Settings.IdleStreams, rep.Settings.IdleChunks, rep.Settings.IdleIntervalMs, rep.Settings.IdleHoldSeconds)
	}
	if rep.Settings.wants("embeddings") {
		st := rep.Settings
		fmt.Fprintf(&b, "Embeddings (a RAG ingest batch: %d inputs of ~%d characters, %d-dimensional vectors): measured like buffered chat, open model @%d req/s (encoding_format %s)",
			st.EmbedInputs, st.EmbedChars, st.EmbedDims, st.EmbedRate, strings.Join(st.EmbedFormats, " and "))
		if len(st.EmbedTputFormats) > 0 {
			fmt.Fprintf(&b, " and a closed loop on %d connections (%s)", st.Conns, strings.Join(st.EmbedTputFormats, " and "))
		} else {
			b.WriteString(" (no closed loop in quick mode)")
		}
		fmt.Fprintf(&b, ", %.1fs per target per round, on floor and service processes started for it. ", st.EmbedRoundSeconds)
	}
	fmt.Fprintf(&b, "Scenarios run: %s.\n", strings.Join(rep.Settings.Scenarios, ", "))
	for _, p := range rep.Paths {
		fmt.Fprintf(&b, "\n## Path: %s (upstream protocol %s)\n\n", p.Name, p.Protocol)
		for _, n := range p.Notes {
			b.WriteString("- " + n + "\n")
		}
		b.WriteString("\n" + mdTable(p.Table))
		streamsMarkdown(&b, p, rep.Settings.Rounds)
		if len(p.PeakRSSKiB) > 0 {
			fmt.Fprintf(&b, "\nProcess VmHWM after the chat load scenarios (buffered, throughput, streams): upstream %.1f MiB, floor %.1f MiB, service %.1f MiB.\n",
				mib(p.PeakRSSKiB["upstream"]), mib(p.PeakRSSKiB["floor"]), mib(p.PeakRSSKiB["service"]))
		}
		if rep.Settings.Rounds > 1 {
			rs := roundsTable(p)
			b.WriteString("\nSpread over the rounds (one value per round, in order):\n\n" + mdTable(rs))
		}
		var errs []string
		rateErrs := func(pre string, m map[string]map[string]*RateResult) {
			for _, rate := range sortedRates(m) {
				for _, t := range order {
					if r := m[rate][t]; r != nil && len(r.Errors) > 0 {
						errs = append(errs, fmt.Sprintf("%s@%s %s: %v", pre, rate, t, map[string]int(r.Errors)))
					}
				}
			}
		}
		tputErrs := func(pre string, m map[string]*ThroughputResult) {
			for _, t := range order {
				if r := m[t]; r != nil && len(r.Errors) > 0 {
					errs = append(errs, fmt.Sprintf("%sthroughput %s: %v", pre, t, map[string]int(r.Errors)))
				}
			}
		}
		rateErrs("", p.Rate)
		tputErrs("", p.Throughput)
		for _, sp := range p.Streams {
			for _, t := range order {
				if r := sp.Targets[t]; r != nil && len(r.Errors) > 0 {
					errs = append(errs, fmt.Sprintf("streams %s %s: %v", sp.label(), t, map[string]int(r.Errors)))
				}
			}
		}
		for _, f := range embedFormats(p) {
			rateErrs("embeddings "+f+" ", p.Embeddings[f].Rate)
			tputErrs("embeddings "+f+" ", p.Embeddings[f].Throughput)
		}
		for _, ep := range idleEndpoints(p) {
			for _, t := range order {
				if r := p.Idle[ep][t]; r != nil && len(r.Errors) > 0 {
					errs = append(errs, fmt.Sprintf("idle %s streams %s: %v", ep, t, map[string]int(r.Errors)))
				}
			}
		}
		if len(errs) > 0 {
			b.WriteString("\nErrors seen:\n")
			for _, e := range errs {
				b.WriteString("- " + e + "\n")
			}
		}
	}
	b.WriteString("\n## Targets\n\n")
	rows := [][]string{{"path", "target", "rule", "floor", "service", "service/floor", "spread over rounds", "result"}}
	met := 0
	for _, c := range rep.Targets {
		unit := ""
		if i := strings.LastIndex(c.Rule, "("); i >= 0 {
			unit = strings.TrimSuffix(c.Rule[i+1:], ")")
		}
		r := "not met"
		if c.Met {
			r = "met"
			met++
		}
		if c.Note != "" {
			r += " (" + c.Note + ")"
		}
		rt := "—"
		if c.Floor > 0 && c.Ratio != 0 {
			rt = strconv.FormatFloat(c.Ratio, 'f', 2, 64) + "×"
		}
		fc, sc := num(c.Floor, unit), num(c.Service, unit)
		if unit == "allocs/frame" {
			fc, sc = nonNegative(c.Floor), nonNegative(c.Service)
		}
		rows = append(rows, []string{c.Path, c.Name, c.Rule, fc, sc, rt, spread(c.RatioMin, c.RatioMax), r})
	}
	b.WriteString(mdTable(rows))
	fmt.Fprintf(&b, "\n%d of %d targets met.\n", met, len(rep.Targets))
	return b.String()
}

func roundsTable(p *PathResult) [][]string {
	rows := [][]string{{"point", "direct", "floor", "service"}}
	join := func(rs []RoundStat, f func(RoundStat) string) string {
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = f(r)
		}
		return strings.Join(parts, " / ")
	}
	p99 := func(r RoundStat) string { return strconv.FormatFloat(r.P99, 'f', 2, 64) }
	rate := func(r RoundStat) string { return strconv.FormatFloat(r.PerSec, 'f', 0, 64) }
	cpu := func(r RoundStat) string {
		if r.Done+r.Failed == 0 {
			return "—"
		}
		return strconv.FormatFloat(r.CPUSecs*1000/float64(r.Done+r.Failed), 'f', 3, 64)
	}
	ratePoints := func(pre string, m map[string]map[string]*RateResult) {
		for _, rt := range sortedRates(m) {
			rr := m[rt]
			rows = append(rows, []string{pre + "@" + rt + " req/s: p99 (ms)", join(rr["direct"].Rounds, p99), join(rr["floor"].Rounds, p99), join(rr["service"].Rounds, p99)})
			rows = append(rows, []string{pre + "@" + rt + " req/s: CPU s / 1000 req", join(rr["direct"].Rounds, cpu), join(rr["floor"].Rounds, cpu), join(rr["service"].Rounds, cpu)})
		}
	}
	tputPoint := func(pre string, t map[string]*ThroughputResult) {
		if t != nil {
			rows = append(rows, []string{pre + "max throughput (req/s)", join(t["direct"].Rounds, rate), join(t["floor"].Rounds, rate), join(t["service"].Rounds, rate)})
		}
	}
	ratePoints("", p.Rate)
	tputPoint("", p.Throughput)
	for _, sp := range p.Streams {
		d, f, sv := sp.Targets["direct"].Rounds, sp.Targets["floor"].Rounds, sp.Targets["service"].Rounds
		sj := func(rs []StreamRound, v func(StreamRound) float64, prec int) string {
			parts := make([]string, len(rs))
			for i, r := range rs {
				parts[i] = strconv.FormatFloat(v(r), 'f', prec, 64)
			}
			return strings.Join(parts, " / ")
		}
		perSec := func(r StreamRound) float64 { return r.PerSec }
		ttfb := func(r StreamRound) float64 { return r.TTFBP99 }
		cpu := func(r StreamRound) float64 { return r.CPUMs }
		pre := "streams " + sp.label() + ": "
		rows = append(rows, []string{pre + "streams/s", sj(d, perSec, 0), sj(f, perSec, 0), sj(sv, perSec, 0)})
		rows = append(rows, []string{pre + "TTFB p99 (ms)", sj(d, ttfb, 2), sj(f, ttfb, 2), sj(sv, ttfb, 2)})
		rows = append(rows, []string{pre + "CPU ms / stream", sj(d, cpu, 3), sj(f, cpu, 3), sj(sv, cpu, 3)})
	}
	for _, f := range embedFormats(p) {
		e := p.Embeddings[f]
		ratePoints(embedLabel(e)+" ", e.Rate)
		tputPoint(embedLabel(e)+", ", e.Throughput)
	}
	return rows
}
