package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// target is one of direct (A), floor (B), service (C) on one path, for
// one endpoint.
type target struct {
	name     string // direct, floor, service
	endpoint string // chat, completions, responses (streams); chat for buffered
	url      string // the endpoint
	native   string // the path this target is sent (direct's and floor's: the upstream's)
	nativeOf string // the upstream's path for the endpoint
	buffered []byte // body of a buffered request (chat only)
	stream   []byte // body of a 100-chunk stream
	idle     []byte // body of a slow (1 chunk/s) stream
	// bodyFor makes a body: streamed or not, chunks, ms between chunks.
	bodyFor  func(stream bool, chunks, intervalMs int) []byte
	bufCheck []byte   // a buffered answer contains this
	wire     wireKind // how a stream is framed
	pid      int      // the process measured: the proxy, or the upstream for direct
	metrics  string   // URL of the process's runtime figures ("": none, direct)
	cl       *http.Client
}

func newClient(idle int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        idle * 2,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func closeClient(c *http.Client) {
	if c != nil {
		c.CloseIdleConnections()
	}
}

// ---- bodies --------------------------------------------------------------

const systemPrompt = "You are a helpful assistant."

func marker(chunks, intervalMs int) string {
	return fmt.Sprintf("bench:chunks=%d:interval=%d", chunks, intervalMs)
}

// openAIBody is a Chat Completions request as an SDK sends it.
func openAIBody(stream bool, chunks, intervalMs int) []byte {
	s := fmt.Sprintf(`{"model":%q,"messages":[{"role":"system","content":%q},{"role":"user","content":"%s Write a haiku about the sea, please."}],"temperature":0.7,"max_tokens":256`,
		benchModel, systemPrompt, marker(chunks, intervalMs))
	if stream {
		s += `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return []byte(s + "}")
}

// ollamaBody is the /api/chat request equivalent to openAIBody, as the
// service itself sends it (checked against the service's translation).
func ollamaBody(stream bool, chunks, intervalMs int) []byte {
	return []byte(fmt.Sprintf(`{"model":%q,"messages":[{"role":"system","content":%q},{"role":"user","content":"%s Write a haiku about the sea, please."}],"stream":%t,"options":{"num_predict":256,"temperature":0.7}}`,
		benchModel, systemPrompt, marker(chunks, intervalMs), stream))
}

// ---- statistics ----------------------------------------------------------

// Dist summarises latencies in milliseconds.
type Dist struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// dist uses the nearest-rank percentile over every sample of every round.
func dist(xs []time.Duration) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(s) {
			i = len(s) - 1
		}
		return s[i]
	}
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	return Dist{N: len(s), P50: ms(rank(0.50)), P90: ms(rank(0.90)), P99: ms(rank(0.99)), Max: ms(s[len(s)-1]), Mean: ms(sum / time.Duration(len(s)))}
}

// RoundStat is one round of one target, to show the spread noise causes.
type RoundStat struct {
	Done    int     `json:"done"`
	Failed  int     `json:"failed"`
	PerSec  float64 `json:"per_s"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	CPUSecs float64 `json:"cpu_s"`
}

func roundStat(lat []time.Duration, done, failed int, secs float64, ticks int64) RoundStat {
	d := dist(lat)
	rs := RoundStat{Done: done, Failed: failed, P50: d.P50, P99: d.P99, CPUSecs: ticksToSeconds(ticks)}
	if secs > 0 {
		rs.PerSec = float64(done) / secs
	}
	return rs
}

type errCount map[string]int

func (e errCount) add(msg string) {
	if len(msg) > 120 {
		msg = msg[:120]
	}
	if len(e) < 20 || e[msg] > 0 {
		e[msg]++
	} else {
		e["other"]++
	}
}

func errText(err error) string {
	s := err.Error()
	// Strip the per-connection ports so errors group.
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "127.0.0.1:") {
		return "transport: " + s[i+2:]
	}
	return s
}

// ---- scenario 1: open model, constant arrival rate (vegeta) -------------

// RateResult is one target at one arrival rate, all rounds merged.
type RateResult struct {
	Rate       int         `json:"rate"`
	Seconds    float64     `json:"seconds"`
	Sent       int         `json:"sent"`
	OK         int         `json:"ok"`
	SuccessPct float64     `json:"success_pct"`
	SentRate   float64     `json:"sent_per_s"`
	OKRate     float64     `json:"ok_per_s"`
	Latency    Dist        `json:"latency"`
	CPUSeconds float64     `json:"cpu_s"`
	CPUPer1000 float64     `json:"cpu_s_per_1000"`
	PeakRSSKiB int64       `json:"peak_rss_kib"`
	Errors     errCount    `json:"errors,omitempty"`
	KeptUp     bool        `json:"kept_up"`
	Note       string      `json:"note,omitempty"`
	Rounds     []RoundStat `json:"rounds"`
	lat        []time.Duration
	cpuTicks   int64
	attackDur  time.Duration
}

func attackRound(t *target, rate int, dur time.Duration, r *RateResult) {
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: t.url, Body: t.buffered,
		Header: http.Header{"Content-Type": []string{"application/json"}}})
	atk := vegeta.NewAttacker(
		vegeta.Client(t.cl), // keep-alive pool shared across rounds
		vegeta.Workers(uint64(max(rate/20, 32))),
		vegeta.MaxWorkers(8192),
		vegeta.Timeout(10*time.Second),
	)
	for res := range atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, dur, t.name) {
		r.Sent++
		switch {
		case res.Error != "" && res.Code == 0:
			r.Errors.add(shortErr(res.Error))
		case res.Code != http.StatusOK:
			r.Errors.add(fmt.Sprintf("status %d", res.Code))
		case !bytes.Contains(res.Body, t.bufCheck):
			r.Errors.add("unexpected body")
		default:
			r.OK++
			r.lat = append(r.lat, res.Latency)
		}
	}
	r.attackDur += dur
}

func shortErr(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// runRate drives every target at rate in interleaved rounds.
func runRate(ts []*target, rate, rounds int, dur, warm time.Duration, smp *sampler) map[string]*RateResult {
	out := map[string]*RateResult{}
	for _, t := range ts {
		out[t.name] = &RateResult{Rate: rate, Errors: errCount{}}
		if warm > 0 {
			attackRound(t, rate, warm, &RateResult{Errors: errCount{}})
		}
		smp.reset(t.pid)
	}
	for round := 0; round < rounds; round++ {
		for _, t := range ts {
			r := out[t.name]
			runtime.GC() // the harness's own collection, not during the round
			n0, sent0, ok0 := len(r.lat), r.Sent, r.OK
			c0 := cpuTicks(t.pid)
			attackRound(t, rate, dur, r)
			dt := cpuTicks(t.pid) - c0
			r.cpuTicks += dt
			r.Rounds = append(r.Rounds, roundStat(r.lat[n0:], r.OK-ok0, (r.Sent-sent0)-(r.OK-ok0), dur.Seconds(), dt))
		}
	}
	for _, t := range ts {
		r := out[t.name]
		r.PeakRSSKiB = smp.max(t.pid)
		r.Seconds = r.attackDur.Seconds()
		r.Latency = dist(r.lat)
		r.CPUSeconds = ticksToSeconds(r.cpuTicks)
		if r.Sent > 0 {
			r.SuccessPct = 100 * float64(r.OK) / float64(r.Sent)
			r.CPUPer1000 = r.CPUSeconds / float64(r.Sent) * 1000
		}
		if r.Seconds > 0 {
			r.SentRate = float64(r.Sent) / r.Seconds
			r.OKRate = float64(r.OK) / r.Seconds
		}
		var why []string
		if r.OK < r.Sent {
			why = append(why, fmt.Sprintf("%d of %d failed", r.Sent-r.OK, r.Sent))
		}
		if r.SentRate < 0.97*float64(rate) || r.OKRate < 0.97*float64(rate) {
			why = append(why, fmt.Sprintf("can't keep up: %.0f req/s answered", r.OKRate))
		}
		if r.Latency.P99 > 1000 {
			why = append(why, "can't keep up: p99 over 1 s (queueing)")
		}
		r.KeptUp = len(why) == 0
		r.Note = strings.Join(why, "; ")
		if len(r.Errors) == 0 {
			r.Errors = nil
		}
	}
	return out
}

// ---- scenario 2: closed loop, maximum throughput -------------------------

// ThroughputResult is one target's closed-loop run.
type ThroughputResult struct {
	Conns      int         `json:"connections"`
	Seconds    float64     `json:"seconds"`
	Completed  int         `json:"completed"`
	Failed     int         `json:"failed"`
	ReqPerSec  float64     `json:"req_per_s"`
	Latency    Dist        `json:"latency"`
	CPUSeconds float64     `json:"cpu_s"`
	CPUPer1000 float64     `json:"cpu_s_per_1000"`
	PeakRSSKiB int64       `json:"peak_rss_kib"`
	Errors     errCount    `json:"errors,omitempty"`
	Rounds     []RoundStat `json:"rounds"`
	lat        []time.Duration
	all        int // every completion, including those after the deadline
	cpuTicks   int64
}

func closedRound(t *target, conns int, dur time.Duration, r *ThroughputResult) {
	ctx, cancel := context.WithTimeout(context.Background(), dur+15*time.Second)
	defer cancel()
	start := time.Now()
	deadline := start.Add(dur)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			var lat []time.Duration
			var done, failed, all int
			errs := errCount{}
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(t.buffered))
				req.Header.Set("Content-Type", "application/json")
				resp, err := t.cl.Do(req)
				if err != nil {
					failed++
					errs.add(errText(err))
					continue
				}
				buf.Reset()
				_, err = buf.ReadFrom(resp.Body)
				resp.Body.Close()
				end := time.Now()
				switch {
				case err != nil:
					failed++
					errs.add(errText(err))
				case resp.StatusCode != http.StatusOK:
					failed++
					errs.add(fmt.Sprintf("status %d", resp.StatusCode))
				case !bytes.Contains(buf.Bytes(), t.bufCheck):
					failed++
					errs.add("unexpected body")
				default:
					all++
					if !end.After(deadline) {
						done++
						lat = append(lat, end.Sub(t0))
					}
				}
			}
			mu.Lock()
			r.Completed += done
			r.Failed += failed
			r.all += all
			r.lat = append(r.lat, lat...)
			for k, v := range errs {
				r.Errors[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.Seconds += dur.Seconds()
}

func runThroughput(ts []*target, conns, rounds int, dur, warm time.Duration, smp *sampler) map[string]*ThroughputResult {
	out := map[string]*ThroughputResult{}
	for _, t := range ts {
		out[t.name] = &ThroughputResult{Conns: conns, Errors: errCount{}}
		if warm > 0 {
			closedRound(t, conns, warm, &ThroughputResult{Errors: errCount{}})
		}
		smp.reset(t.pid)
	}
	for round := 0; round < rounds; round++ {
		for _, t := range ts {
			r := out[t.name]
			runtime.GC() // the harness's own collection, not during the round
			n0, done0, failed0 := len(r.lat), r.Completed, r.Failed
			c0 := cpuTicks(t.pid)
			closedRound(t, conns, dur, r)
			dt := cpuTicks(t.pid) - c0
			r.cpuTicks += dt
			r.Rounds = append(r.Rounds, roundStat(r.lat[n0:], r.Completed-done0, r.Failed-failed0, dur.Seconds(), dt))
		}
	}
	for _, t := range ts {
		r := out[t.name]
		r.PeakRSSKiB = smp.max(t.pid)
		r.Latency = dist(r.lat)
		r.CPUSeconds = ticksToSeconds(r.cpuTicks)
		if r.Seconds > 0 {
			r.ReqPerSec = float64(r.Completed) / r.Seconds
		}
		if r.all > 0 {
			r.CPUPer1000 = r.CPUSeconds / float64(r.all+r.Failed) * 1000
		}
		if len(r.Errors) == 0 {
			r.Errors = nil
		}
	}
	return out
}

// ---- scenario 4: many idle open streams ---------------------------------

// IdleResult is the memory one process holds per open, slow stream.
type IdleResult struct {
	Requested    int      `json:"requested"`
	Opened       int      `json:"opened"`
	RSSBeforeKiB int64    `json:"rss_before_kib"`
	RSSOpenKiB   int64    `json:"rss_open_kib"`
	PerStreamKiB float64  `json:"rss_per_stream_kib"`
	RampSeconds  float64  `json:"ramp_s"`
	HoldSeconds  float64  `json:"hold_s"`
	Errors       errCount `json:"errors,omitempty"`
	// Runtime: the process's own figures (its /metrics), when it has them.
	Runtime *IdleRuntime `json:"runtime,omitempty"`
}

// runIdle opens n streams of chunks chunks through t, waits until each
// has its first content frame, and holds them open for hold. onOpen, when
// set, runs once every stream is open, before the hold.
func runIdle(t *target, n, chunks int, hold time.Duration, onOpen func()) *IdleResult {
	r := &IdleResult{Requested: n, Errors: errCount{}, HoldSeconds: hold.Seconds()}
	cl := newClient(16)
	cl.Timeout = 0 // the context bounds these
	tt := *t
	tt.cl = cl
	defer closeClient(cl)

	time.Sleep(300 * time.Millisecond)
	before, _ := scrape(metricsClient, t.metrics)
	r.RSSBeforeKiB = rssKiB(t.pid)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var opened atomic.Int64
	var failed atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		if i > 0 && i%100 == 0 {
			time.Sleep(10 * time.Millisecond) // spare the accept queue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := readStream(ctx, &tt, t.idle, chunks, newLineReader(4<<10), func() { opened.Add(1) })
			if err != nil && ctx.Err() == nil {
				failed.Add(1)
				mu.Lock()
				r.Errors.add(errText(err))
				mu.Unlock()
			}
		}()
	}
	// Wait until every stream has its first chunk (bounded).
	limit := time.Now().Add(20 * time.Second)
	for time.Now().Before(limit) && opened.Load()+failed.Load() < int64(n) {
		time.Sleep(20 * time.Millisecond)
	}
	r.RampSeconds = time.Since(start).Seconds()
	if onOpen != nil {
		onOpen()
	}
	var peak int64
	end := time.Now().Add(hold)
	for time.Now().Before(end) {
		if v := rssKiB(t.pid); v > peak {
			peak = v
		}
		time.Sleep(50 * time.Millisecond)
	}
	open, _ := scrape(metricsClient, t.metrics)
	rssOpen := rssKiB(t.pid)
	r.Opened = int(opened.Load())
	r.RSSOpenKiB = max(peak, rssOpen)
	if r.Opened > 0 {
		r.PerStreamKiB = float64(r.RSSOpenKiB-r.RSSBeforeKiB) / float64(r.Opened)
	}
	r.Runtime = idleRuntime(before, open, r.RSSBeforeKiB, rssOpen, r.Opened)
	cancel()
	waitBounded(&wg, 15*time.Second)
	if len(r.Errors) == 0 {
		r.Errors = nil
	}
	return r
}

func waitBounded(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}
