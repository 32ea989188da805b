package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The streams scenario: every streamed endpoint of the service (chat,
// legacy completions, Responses), each at several concurrencies, closed
// loops of 100-chunk streams to direct, floor and service in interleaved
// rounds. Each stream is read to its end and checked (every content frame,
// the terminal event); TTFB is the time to the first frame that carries
// answer text. Numbers are kept per round: the report gives the medians
// over rounds and the spread of each service/floor ratio.

// streamEndpointNames are the service's streamed endpoints, in run order.
var streamEndpointNames = []string{"chat", "completions", "responses"}

// servicePath is the service's route of a streamed endpoint.
var servicePath = map[string]string{"chat": "/v1/chat/completions", "completions": "/v1/completions", "responses": "/v1/responses"}

func parseStreamEndpoints(list string) ([]string, error) {
	var out []string
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case e == "all":
			out = append(out[:0], streamEndpointNames...)
		case slices.Contains(streamEndpointNames, e):
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		default:
			return nil, fmt.Errorf("-stream-endpoints: unknown endpoint %q (want %s)", e, strings.Join(streamEndpointNames, ", "))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-stream-endpoints: none given")
	}
	// Run order is the list's own order of endpoints.
	sort.SliceStable(out, func(i, j int) bool {
		return slices.Index(streamEndpointNames, out[i]) < slices.Index(streamEndpointNames, out[j])
	})
	return out, nil
}

func parseLevels(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("-stream-concurrency: %q is not a concurrency between 1 and 4096", f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-stream-concurrency: none given")
	}
	return out, nil
}

// ---- bodies ----------------------------------------------------------------

// openAITextBody is a legacy completion request (POST /v1/completions) as
// an SDK sends it.
func openAITextBody(stream bool, chunks, intervalMs int) []byte {
	s := fmt.Sprintf(`{"model":%q,"prompt":"%s Once upon a time, by the sea,","max_tokens":256,"temperature":0.7`, benchModel, marker(chunks, intervalMs))
	if stream {
		s += `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return []byte(s + "}")
}

// ollamaGenerateBody is the /api/generate request the service sends for
// openAITextBody: the prompt raw (a legacy completion continues the text),
// always streamed.
func ollamaGenerateBody(_ bool, chunks, intervalMs int) []byte {
	return []byte(fmt.Sprintf(`{"model":%q,"prompt":"%s Once upon a time, by the sea,","raw":true,"stream":true,"options":{"num_predict":256,"temperature":0.7}}`,
		benchModel, marker(chunks, intervalMs)))
}

// responsesBody is a CreateResponse request as an SDK sends it; store
// false adds "store":false (else the API's default, true, holds: the
// service keeps the response).
func responsesBody(store bool) func(bool, int, int) []byte {
	return func(stream bool, chunks, intervalMs int) []byte {
		s := fmt.Sprintf(`{"model":%q,"instructions":%q,"input":"%s Write a haiku about the sea, please.","temperature":0.7,"max_output_tokens":256`,
			benchModel, systemPrompt, marker(chunks, intervalMs))
		if !store {
			s += `,"store":false`
		}
		if stream {
			s += `,"stream":true`
		}
		return []byte(s + "}")
	}
}

// gatewayResponsesChatBody is the chat completions request the service
// sends a gateway (responses_api: false) for responsesBody.
func gatewayResponsesChatBody(_ bool, chunks, intervalMs int) []byte {
	return []byte(fmt.Sprintf(`{"model":%q,"messages":[{"role":"system","content":%q},{"role":"user","content":"%s Write a haiku about the sea, please."}],"temperature":0.7,"max_completion_tokens":256,"stream":true,"stream_options":{"include_usage":true}}`,
		benchModel, systemPrompt, marker(chunks, intervalMs)))
}

// ---- reading and checking a stream ------------------------------------------

// wireKind is how a stream is framed.
type wireKind int

const (
	// wireSSE: OpenAI chat.completion.chunk or text_completion frames
	// ("data: {…}"), a finish_reason stop, and "data: [DONE]" last.
	wireSSE wireKind = iota
	// wireNDJSON: Ollama's lines, "done":true last.
	wireNDJSON
	// wireResponses: Responses events ("event: …" / "data: {…}"),
	// response.created first, response.completed last.
	wireResponses
)

var (
	// tokenText is the fakes' token, in every content frame of every
	// wire format (and in no other frame).
	tokenText       = []byte(`" token"`)
	dataPrefix      = []byte("data: ")
	eventPrefix     = []byte("event: ")
	errorPrefix     = []byte(`{"error"`)
	doneData        = []byte("[DONE]")
	stopReason      = []byte(`"finish_reason":"stop"`)
	doneTrue        = []byte(`"done":true`)
	evCreated       = []byte("response.created")
	evDelta         = []byte("response.output_text.delta")
	evCompleted     = []byte("response.completed")
	statusCompleted = []byte(`"status":"completed"`)
)

// streamCheck follows one stream, line by line.
type streamCheck struct {
	wire       wireKind
	want       int // content frames the fake sends
	content    int
	events     int
	stop       bool // SSE: a finish_reason stop came
	completing bool // Responses: the data of response.completed is next
	ended      bool // the terminal frame came
}

var errAfterEnd = errors.New("frames after the terminal one")

// line reads one line (its newline included); first is true for the
// stream's first content frame.
func (c *streamCheck) line(line []byte) (first bool, err error) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		return false, nil
	}
	switch c.wire {
	case wireSSE:
		payload, ok := bytes.CutPrefix(line, dataPrefix)
		if !ok {
			return false, nil // comments (": ping") and other fields
		}
		if c.ended {
			return false, errAfterEnd
		}
		if bytes.Equal(payload, doneData) {
			c.ended = true
			return false, nil
		}
		if bytes.HasPrefix(payload, errorPrefix) {
			return false, fmt.Errorf("error frame: %.200s", payload)
		}
		if bytes.Contains(payload, tokenText) {
			c.content++
			first = c.content == 1
		}
		if bytes.Contains(payload, stopReason) {
			c.stop = true
		}
	case wireNDJSON:
		if c.ended {
			return false, errAfterEnd
		}
		if bytes.HasPrefix(line, errorPrefix) {
			return false, fmt.Errorf("error line: %.200s", line)
		}
		if bytes.Contains(line, tokenText) {
			c.content++
			first = c.content == 1
		}
		if bytes.Contains(line, doneTrue) {
			c.ended = true
		}
	case wireResponses:
		if name, ok := bytes.CutPrefix(line, eventPrefix); ok {
			if c.ended {
				return false, errAfterEnd
			}
			c.events++
			switch {
			case c.events == 1 && !bytes.Equal(name, evCreated):
				return false, fmt.Errorf("first event %s, want response.created", name)
			case bytes.Equal(name, evDelta):
				c.content++
				first = c.content == 1
			case bytes.Equal(name, evCompleted):
				c.completing = true
			case bytes.Equal(name, []byte("response.failed")), bytes.Equal(name, []byte("response.incomplete")), bytes.Equal(name, []byte("error")):
				return false, fmt.Errorf("event %s", name)
			}
			return first, nil
		}
		if payload, ok := bytes.CutPrefix(line, dataPrefix); ok && c.completing {
			if !bytes.Contains(payload, statusCompleted) {
				return false, fmt.Errorf("response.completed without status completed: %.200s", payload)
			}
			c.completing, c.ended = false, true
		}
	}
	return first, nil
}

// end checks the stream once its body ended.
func (c *streamCheck) end() error {
	switch {
	case !c.ended:
		return errors.New(map[wireKind]string{wireSSE: "stream ended without data: [DONE]", wireNDJSON: `stream ended without "done":true`,
			wireResponses: "stream ended without response.completed"}[c.wire])
	case c.content != c.want:
		return fmt.Errorf("%d content frames, want %d", c.content, c.want)
	case c.wire == wireSSE && !c.stop:
		return errors.New("no finish_reason stop")
	}
	return nil
}

// readStream posts body (a stream of want content frames) and reads the
// answer to its end with br, checking every line. ttfb is the time to the
// first content frame (opened runs then), ttlb to the end of the body.
func readStream(ctx context.Context, t *target, body []byte, want int, br *bufio.Reader, opened func()) (ttfb, ttlb time.Duration, err error) {
	ttfb, ttlb, _, err = readStreamFrames(ctx, t, body, want, br, opened)
	return ttfb, ttlb, err
}

// readStreamFrames is readStream that also says how many content frames
// came, whether the stream ended well or not.
func readStreamFrames(ctx context.Context, t *target, body []byte, want int, br *bufio.Reader, opened func()) (ttfb, ttlb time.Duration, frames int, err error) {
	t0 := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.cl.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return 0, 0, 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	br.Reset(resp.Body)
	defer br.Reset(nil)
	c := streamCheck{wire: t.wire, want: want}
	var long []byte
	for {
		line, rerr := br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull { // a line longer than the buffer
			long = append(long[:0], line...)
			for rerr == bufio.ErrBufferFull {
				line, rerr = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			first, lerr := c.line(line)
			if first {
				ttfb = time.Since(t0)
				if opened != nil {
					opened()
				}
			}
			if lerr != nil {
				return ttfb, 0, c.content, lerr
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return ttfb, 0, c.content, rerr
		}
	}
	ttlb = time.Since(t0)
	return ttfb, ttlb, c.content, c.end()
}

// ---- targets ---------------------------------------------------------------

// streamTargets are direct, floor and service for one streamed endpoint.
// Direct and floor get the request the service itself sends upstream for
// the endpoint (checked at the start, see checkRequest) and answer in the
// upstream's wire format; the service gets the client's request. Chat
// targets also carry the buffered request of the buffered and throughput
// scenarios.
func (h *harness) streamTargets(p pathSpec, floor, svc *child, endpoint string) []*target {
	s := h.set
	type side struct {
		path string
		body func(bool, int, int) []byte
		wire wireKind
	}
	var native, client side
	switch endpoint {
	case "chat":
		client = side{"/v1/chat/completions", openAIBody, wireSSE}
		native = client
		if p.ollama {
			native = side{"/api/chat", ollamaBody, wireNDJSON}
		}
	case "completions":
		client = side{"/v1/completions", openAITextBody, wireSSE}
		native = client
		if p.ollama {
			native = side{"/api/generate", ollamaGenerateBody, wireNDJSON}
		}
	case "responses":
		client = side{"/v1/responses", responsesBody(s.ResponsesStore), wireResponses}
		native = side{"/v1/chat/completions", gatewayResponsesChatBody, wireSSE}
		if p.ollama {
			native = side{"/api/chat", ollamaBody, wireNDJSON}
		}
	}
	bufCheck := map[bool][]byte{false: []byte(`"finish_reason":"stop"`), true: []byte(`"done":true`)}
	mk := func(name, addr string, sd side, check []byte, pid int, metrics string) *target {
		t := &target{name: name, endpoint: endpoint, url: "http://" + addr + sd.path, native: sd.path, nativeOf: native.path, bodyFor: sd.body,
			stream: sd.body(true, s.StreamChunks, 0), idle: sd.body(true, s.IdleChunks, s.IdleIntervalMs),
			wire: sd.wire, pid: pid, metrics: metrics, cl: newClient(1024)}
		if endpoint == "chat" {
			t.buffered, t.bufCheck = sd.body(false, 1, 0), check
		}
		return t
	}
	floorMetrics := ""
	if len(floor.addrs) > 1 {
		floorMetrics = "http://" + floor.addrs[1] + "/metrics"
	}
	return []*target{
		mk("direct", p.upstream, native, bufCheck[p.ollama], h.up.pid, ""),
		mk("floor", floor.addrs[0], native, bufCheck[p.ollama], floor.pid, floorMetrics),
		mk("service", svc.addrs[0], client, bufCheck[false], svc.pid, "http://"+svc.addrs[0]+"/metrics"),
	}
}

// newLineReader is a reader of stream lines; longer lines are gathered.
func newLineReader(size int) *bufio.Reader { return bufio.NewReaderSize(nil, size) }

// streamSanity reads one stream from each target.
func streamSanity(ts []*target, chunks int) error {
	br := newLineReader(16 << 10)
	for _, t := range ts {
		err := retryCut(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _, err := readStream(ctx, t, t.stream, chunks, br, nil)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s %s stream: %v", t.name, t.endpoint, err)
		}
	}
	return nil
}

// RequestCheck is the request the service sent upstream for an endpoint,
// captured by the fake upstream; direct and floor then get it too.
type RequestCheck struct {
	Endpoint string `json:"endpoint"`
	Path     string `json:"upstream_path"`
	// Adopted: direct and floor get the captured body (its marker set to
	// each stream's length); else the harness's reference body.
	Adopted bool   `json:"adopted"`
	Service string `json:"service_sent,omitempty"`
	// Verdict compares the captured body with the harness's reference
	// (same bytes, same JSON, different), or says why there is none.
	Verdict   string `json:"vs_reference"`
	Reference string `json:"reference,omitempty"`
}

// captureRequest sends the service one stream while the fake upstream
// keeps what it receives, and returns that body.
func captureRequest(upstream string, svc *target, chunks int) ([]byte, error) {
	cl := &http.Client{Timeout: 5 * time.Second}
	defer cl.CloseIdleConnections()
	resp, err := cl.Post("http://"+upstream+"/bench/capture", "text/plain", nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := readStream(ctx, svc, svc.stream, chunks, newLineReader(16<<10), nil); err != nil {
		return nil, err
	}
	resp, err = cl.Get("http://" + upstream + "/bench/captured?path=" + svc.nativeOf)
	if err != nil {
		return nil, err
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the service sent nothing to %s", svc.nativeOf)
	}
	return got, nil
}

// adoptRequest captures what the service sends upstream for ts' endpoint
// and makes it direct's and floor's stream body, so that they get exactly
// the service's request (the harness's own reference body stays when it
// cannot be captured).
func (h *harness) adoptRequest(p pathSpec, ts []*target) RequestCheck {
	d, svc := ts[0], ts[2]
	rc := RequestCheck{Endpoint: svc.endpoint, Path: d.native}
	s := h.set
	key := p.name + " " + svc.endpoint
	got := h.captured[key]
	if got == nil {
		var err error
		if got, err = captureRequest(p.upstream, svc, s.StreamChunks); err != nil {
			rc.Verdict = "not captured: " + err.Error()
			return rc
		}
		h.captured[key] = got
	}
	rc.Service = string(got)
	var a, b any
	switch {
	case bytes.Equal(got, d.stream):
		rc.Verdict = "same bytes"
	case json.Unmarshal(got, &a) == nil && json.Unmarshal(d.stream, &b) == nil && reflect.DeepEqual(a, b):
		rc.Verdict = "same JSON (other member order or spacing)"
	default:
		rc.Verdict, rc.Reference = "different", string(d.stream)
	}
	m := []byte(marker(s.StreamChunks, 0))
	if bytes.Count(got, m) != 1 {
		rc.Verdict += "; not adopted: the marker is not in it once"
		return rc
	}
	i := bytes.Index(got, m)
	pre, post := bytes.Clone(got[:i]), bytes.Clone(got[i+len(m):])
	body := func(_ bool, chunks, intervalMs int) []byte {
		return append(append(append([]byte(nil), pre...), marker(chunks, intervalMs)...), post...)
	}
	for _, t := range ts[:2] {
		t.bodyFor, t.stream, t.idle = body, body(true, s.StreamChunks, 0), body(true, s.IdleChunks, s.IdleIntervalMs)
	}
	rc.Adopted = true
	return rc
}

// ---- runtime figures (the floor's and the service's /metrics) ---------------

// scrape reads the unlabelled samples of a Prometheus text page.
func scrape(cl *http.Client, url string) (map[string]float64, error) {
	if url == "" {
		return nil, errors.New("no metrics")
	}
	resp, err := cl.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' || !strings.HasPrefix(l, "go_") && !strings.HasPrefix(l, "process_") {
			continue
		}
		name, val, ok := strings.Cut(l, " ")
		if !ok || strings.ContainsRune(name, '{') {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

// mallocs is the process's count of heap allocations so far (-1: unknown).
func mallocs(t *target) float64 {
	m, err := scrape(metricsClient, t.metrics)
	if err != nil {
		return -1
	}
	if v, ok := m["go_memstats_mallocs_total"]; ok {
		return v
	}
	return -1
}

// ---- closed loops ------------------------------------------------------------

// StreamRound is one round of one target at one point.
type StreamRound struct {
	Done      int     `json:"done"`
	Failed    int     `json:"failed"`
	PerSec    float64 `json:"streams_per_s"`
	TTFBP50   float64 `json:"ttfb_p50_ms"`
	TTFBP99   float64 `json:"ttfb_p99_ms"`
	TTLBP50   float64 `json:"last_byte_p50_ms"`
	TTLBP99   float64 `json:"last_byte_p99_ms"`
	CPUSecs   float64 `json:"cpu_s"`
	CPUMs     float64 `json:"cpu_ms_per_stream"`
	AllocsPer float64 `json:"allocs_per_stream"` // -1: not known (direct)
}

// StreamResult is one target's closed loop at one point, all rounds.
type StreamResult struct {
	Seconds       float64       `json:"seconds"`
	Completed     int           `json:"completed"`
	Failed        int           `json:"failed"`
	StreamsPerSec float64       `json:"streams_per_s"`
	TTFB          Dist          `json:"ttfb"` // every stream of every round
	TTLB          Dist          `json:"ttlb"`
	CPUSeconds    float64       `json:"cpu_s"`
	CPUMsPerStrm  float64       `json:"cpu_ms_per_stream"`
	PeakRSSKiB    int64         `json:"peak_rss_kib"`
	Errors        errCount      `json:"errors,omitempty"`
	Rounds        []StreamRound `json:"rounds"`
	ttfb, ttlb    []time.Duration
	all           int
	cpuTicks      int64
}

// StreamPoint is one endpoint at one concurrency on a path.
type StreamPoint struct {
	Endpoint    string                   `json:"endpoint"`
	Concurrency int                      `json:"concurrent"`
	Chunks      int                      `json:"chunks"`
	Targets     map[string]*StreamResult `json:"targets"`
	Medians     []StreamMetric           `json:"medians"`
}

// StreamMetric is one metric of a point: each target's median over the
// rounds, and the median and extremes of the per-round service/floor
// ratio (rounds where the floor's value is ≤ 0 have none; when a round has
// none, Ratio is the ratio of the medians, OfMedians).
type StreamMetric struct {
	Name      string   `json:"metric"`
	Direct    *float64 `json:"direct,omitempty"`
	Floor     float64  `json:"floor"`
	Service   float64  `json:"service"`
	Ratio     *float64 `json:"ratio,omitempty"`
	RatioMin  *float64 `json:"ratio_min,omitempty"`
	RatioMax  *float64 `json:"ratio_max,omitempty"`
	Rounds    int      `json:"ratio_rounds"`
	OfMedians bool     `json:"ratio_of_medians,omitempty"`
}

func (sp *StreamPoint) metric(name string) *StreamMetric {
	for i := range sp.Medians {
		if sp.Medians[i].Name == name {
			return &sp.Medians[i]
		}
	}
	return nil
}

func (sp *StreamPoint) label() string {
	return fmt.Sprintf("%s ×%d", sp.Endpoint, sp.Concurrency)
}

func streamRound(t *target, workers, chunks int, dur time.Duration, r *StreamResult) {
	ctx, cancel := context.WithTimeout(context.Background(), dur+20*time.Second)
	defer cancel()
	deadline := time.Now().Add(dur)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := newLineReader(16 << 10)
			var fb, lb []time.Duration
			var done, failed, all int
			errs := errCount{}
			for time.Now().Before(deadline) && ctx.Err() == nil {
				ttfb, ttlb, err := readStream(ctx, t, t.stream, chunks, br, nil)
				if err != nil {
					failed++
					errs.add(errText(err))
					continue
				}
				all++
				if !time.Now().After(deadline) {
					done++
					fb = append(fb, ttfb)
					lb = append(lb, ttlb)
				}
			}
			mu.Lock()
			r.Completed += done
			r.Failed += failed
			r.all += all
			r.ttfb = append(r.ttfb, fb...)
			r.ttlb = append(r.ttlb, lb...)
			for k, v := range errs {
				r.Errors[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.Seconds += dur.Seconds()
}

// runStreamPoint drives every target with closed loops of workers
// streams in interleaved rounds (A,B,C,A,B,C,…).
func runStreamPoint(ts []*target, workers, chunks, rounds int, dur, warm time.Duration, smp *sampler) *StreamPoint {
	sp := &StreamPoint{Endpoint: ts[0].endpoint, Concurrency: workers, Chunks: chunks, Targets: map[string]*StreamResult{}}
	for _, t := range ts {
		sp.Targets[t.name] = &StreamResult{Errors: errCount{}}
		if warm > 0 {
			streamRound(t, workers, chunks, warm, &StreamResult{Errors: errCount{}})
		}
		smp.reset(t.pid)
	}
	for round := 0; round < rounds; round++ {
		for _, t := range ts {
			r := sp.Targets[t.name]
			runtime.GC() // the harness's own collection, not during the round
			n0, done0, failed0, all0 := len(r.ttfb), r.Completed, r.Failed, r.all
			m0 := mallocs(t)
			c0 := cpuTicks(t.pid)
			streamRound(t, workers, chunks, dur, r)
			dt := cpuTicks(t.pid) - c0
			m1 := mallocs(t)
			r.cpuTicks += dt
			fb, lb := dist(r.ttfb[n0:]), dist(r.ttlb[n0:])
			rs := StreamRound{Done: r.Completed - done0, Failed: r.Failed - failed0, PerSec: float64(r.Completed-done0) / dur.Seconds(),
				TTFBP50: fb.P50, TTFBP99: fb.P99, TTLBP50: lb.P50, TTLBP99: lb.P99, CPUSecs: ticksToSeconds(dt), AllocsPer: -1}
			// Every stream begun in the round ended in it (the workers
			// finish theirs), counted or not: CPU and allocations per
			// stream divide by all of them.
			if n := (r.all - all0) + rs.Failed; n > 0 {
				rs.CPUMs = rs.CPUSecs * 1000 / float64(n)
				if m0 >= 0 && m1 >= m0 {
					rs.AllocsPer = (m1 - m0) / float64(n)
				}
			}
			r.Rounds = append(r.Rounds, rs)
		}
	}
	for _, t := range ts {
		r := sp.Targets[t.name]
		r.PeakRSSKiB = smp.max(t.pid)
		r.TTFB, r.TTLB = dist(r.ttfb), dist(r.ttlb)
		r.CPUSeconds = ticksToSeconds(r.cpuTicks)
		if r.Seconds > 0 {
			r.StreamsPerSec = float64(r.Completed) / r.Seconds
		}
		if n := r.all + r.Failed; n > 0 {
			r.CPUMsPerStrm = r.CPUSeconds * 1000 / float64(n)
		}
		if len(r.Errors) == 0 {
			r.Errors = nil
		}
	}
	sp.Medians = streamMedians(sp)
	return sp
}

// streamMetricDefs are the metrics of a point, per round: a target's
// value given direct's round (for "added").
var streamMetricDefs = []struct {
	name      string
	hasDirect bool
	val       func(r, d StreamRound) float64
}{
	{"streams/s", true, func(r, _ StreamRound) float64 { return r.PerSec }},
	{"TTFB p50 (ms)", true, func(r, _ StreamRound) float64 { return r.TTFBP50 }},
	{"TTFB p99 (ms)", true, func(r, _ StreamRound) float64 { return r.TTFBP99 }},
	{"added TTFB p50 (ms)", false, func(r, d StreamRound) float64 { return r.TTFBP50 - d.TTFBP50 }},
	{"added TTFB p99 (ms)", false, func(r, d StreamRound) float64 { return r.TTFBP99 - d.TTFBP99 }},
	{"last byte p50 (ms)", true, func(r, _ StreamRound) float64 { return r.TTLBP50 }},
	{"last byte p99 (ms)", true, func(r, _ StreamRound) float64 { return r.TTLBP99 }},
	{"CPU ms / stream", true, func(r, _ StreamRound) float64 { return r.CPUMs }},
	{"allocs / stream", false, func(r, _ StreamRound) float64 { return r.AllocsPer }},
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ptr(v float64) *float64 { return &v }

func streamMedians(sp *StreamPoint) []StreamMetric {
	d, f, s := sp.Targets["direct"], sp.Targets["floor"], sp.Targets["service"]
	if d == nil || f == nil || s == nil { // profile mode: one target
		return nil
	}
	n := min(len(d.Rounds), len(f.Rounds), len(s.Rounds))
	var out []StreamMetric
	for _, def := range streamMetricDefs {
		var dv, fv, sv, ratios []float64
		for i := 0; i < n; i++ {
			a, b, c := def.val(d.Rounds[i], d.Rounds[i]), def.val(f.Rounds[i], d.Rounds[i]), def.val(s.Rounds[i], d.Rounds[i])
			dv, fv, sv = append(dv, a), append(fv, b), append(sv, c)
			if b > 0 {
				ratios = append(ratios, c/b)
			}
		}
		m := StreamMetric{Name: def.name, Floor: median(fv), Service: median(sv), Rounds: len(ratios)}
		if def.hasDirect {
			m.Direct = ptr(median(dv))
		}
		if len(ratios) > 0 {
			m.RatioMin, m.RatioMax = ptr(slices.Min(ratios)), ptr(slices.Max(ratios))
		}
		switch {
		case len(ratios) == n && n > 0:
			m.Ratio = ptr(median(ratios))
		case m.Floor > 0:
			// Some rounds have no ratio (their floor value ≤ 0, noise
			// in an "added" figure): the medians' ratio.
			m.Ratio, m.OfMedians = ptr(m.Service/m.Floor), true
		}
		out = append(out, m)
	}
	return out
}

// ---- allocations per relayed frame ------------------------------------------

// FrameAllocs is the heap allocations a process makes per relayed frame,
// at the margin: streams of Long chunks against streams of Short chunks,
// one at a time, so what a request costs whatever its length cancels out.
// The service's count (its Go collector's, from runtime/metrics) lags by
// what its Ps' caches have not flushed yet, a few thousand allocations at
// most: hence long streams.
type FrameAllocs struct {
	Short   int       `json:"short_chunks"`
	Long    int       `json:"long_chunks"`
	Streams int       `json:"streams_per_run"`
	Floor   float64   `json:"floor"` // median over the runs; -1: unknown
	Service float64   `json:"service"`
	Runs    []float64 `json:"service_runs"`
	// Per stream of Long chunks (median), for reference.
	FloorPerStream   float64 `json:"floor_allocs_per_long_stream"`
	ServicePerStream float64 `json:"service_allocs_per_long_stream"`
	// Errors: streams that failed (counted with the frames they relayed),
	// runs without figures.
	Errors errCount `json:"errors,omitempty"`
}

func frameAllocs(ts []*target, streams, runs int) *FrameAllocs {
	const short, long = 10, 1000
	fa := &FrameAllocs{Short: short, Long: long, Streams: streams, Floor: -1, Service: -1, Errors: errCount{}}
	br := newLineReader(16 << 10)
	for _, t := range ts[1:] {
		shortBody, longBody := t.bodyFor(true, short, 0), t.bodyFor(true, long, 0)
		var perFrame, perStream []float64
		for range runs {
			// A stream cut short (the floor's cut, golang/go#40747,
			// strikes now and then) counts as a request with the frames
			// it relayed: allocations = a per request + b per frame, b
			// from the two phases.
			var reqs, frames [2]float64
			var count [3]float64
			count[0] = mallocs(t)
			for phase, body := range [][]byte{shortBody, longBody} {
				want := []int{short, long}[phase]
				for i := 0; i < streams; i++ {
					_, _, n, err := readStreamFrames(context.Background(), t, body, want, br, nil)
					reqs[phase]++
					frames[phase] += float64(n)
					if err != nil {
						fa.Errors.add(t.name + ": " + errText(err))
					}
				}
				count[phase+1] = mallocs(t)
			}
			if min(count[0], count[1], count[2]) < 0 {
				fa.Errors.add(t.name + ": no allocation count from " + t.metrics)
				continue
			}
			as, al := count[1]-count[0], count[2]-count[1]
			k := reqs[1] / reqs[0]
			if d := frames[1] - frames[0]*k; d > 0 {
				perFrame = append(perFrame, (al-as*k)/d)
				perStream = append(perStream, al/reqs[1])
			}
		}
		if len(perFrame) == 0 {
			continue
		}
		if t.name == "floor" {
			fa.Floor, fa.FloorPerStream = median(perFrame), median(perStream)
		} else {
			fa.Service, fa.ServicePerStream, fa.Runs = median(perFrame), median(perStream), perFrame
		}
	}
	if len(fa.Errors) == 0 {
		fa.Errors = nil
	}
	return fa
}

// ---- the scenario on one path ------------------------------------------------

func (h *harness) logRequest(p pathSpec, rc RequestCheck) RequestCheck {
	how := "the harness's reference body"
	if rc.Adopted {
		how = "that body"
	}
	h.logf("%s %s: the service sends POST %s; direct and floor get %s (against the reference: %s)", p.name, rc.Endpoint, rc.Path, how, rc.Verdict)
	if rc.Service != "" {
		h.logf("  service sent: %s", rc.Service)
	}
	if rc.Reference != "" {
		h.logf("  reference:    %s", rc.Reference)
	}
	return rc
}

// runStreamsScenario measures every streamed endpoint at every concurrency
// on the path's floor and service.
func (h *harness) runStreamsScenario(p pathSpec, floor, svc *child, res *PathResult) error {
	s := h.set
	round, warm := secs(s.StreamRoundSeconds), secs(s.StreamWarmSeconds)
	for _, ep := range s.StreamEndpoints {
		ts := h.streamTargets(p, floor, svc, ep)
		err := streamSanity(ts, s.StreamChunks)
		if err == nil {
			res.Requests = append(res.Requests, h.logRequest(p, h.adoptRequest(p, ts)))
			err = streamSanity(ts[:2], s.StreamChunks)
		}
		if err == nil {
			fa := frameAllocs(ts, s.FrameAllocStreams, s.Rounds)
			res.FrameAllocs[ep] = fa
			h.logf("%s %s: allocations per relayed frame (%d-chunk vs %d-chunk streams): floor %.2f, service %.2f %v", p.name, ep, fa.Long, fa.Short, fa.Floor, fa.Service, map[string]int(fa.Errors))
			for _, c := range s.StreamLevels {
				h.logf("%s %s: streams of %d chunks, %d concurrent, %d×%.1fs per target", p.name, ep, s.StreamChunks, c, s.Rounds, s.StreamRoundSeconds)
				res.Streams = append(res.Streams, runStreamPoint(ts, c, s.StreamChunks, s.Rounds, round, warm, h.smp))
			}
		}
		for _, t := range ts {
			closeClient(t.cl)
		}
		if err != nil {
			return fmt.Errorf("%s: %s sanity check: %v", p.name, ep, err)
		}
	}
	return nil
}

// ---- idle streams --------------------------------------------------------------

// IdleRuntime is what the runtime of a process says about its idle
// streams: its figures before they opened and at the end of the hold, and
// the difference per open stream.
type IdleRuntime struct {
	Before    map[string]float64 `json:"before"`
	Open      map[string]float64 `json:"open"`
	RSSKiB    int64              `json:"rss_open_kib"` // when Open was read
	PerStream IdleBreakdown      `json:"per_stream"`
	// GCs is how many collections ran between the two readings.
	GCs float64 `json:"gc_cycles"`
}

// IdleBreakdown splits the memory an idle stream holds.
type IdleBreakdown struct {
	Goroutines float64 `json:"goroutines"`
	// StackKiB: goroutine stacks in use.
	StackKiB float64 `json:"stack_inuse_kib"`
	// HeapObjectsKiB: heap objects not yet freed (live, or garbage not
	// yet collected); HeapInuseKiB: the spans holding them, free slots
	// included; HeapGoalKiB: the heap size the next GC waits for.
	HeapObjectsKiB float64 `json:"heap_alloc_kib"`
	HeapInuseKiB   float64 `json:"heap_inuse_kib"`
	HeapGoalKiB    float64 `json:"heap_goal_kib"`
	// FreeResidentKiB: free heap pages not returned to the OS (heap idle
	// minus released): resident, holding nothing. Negative when the
	// streams' memory came from such pages.
	FreeResidentKiB float64 `json:"heap_free_resident_kib"`
	// OtherKiB: RSS not in heap spans, stacks or free heap pages (runtime
	// metadata, the binary's pages touched, …); negative when memory in
	// use was never touched, so never resident (the floor's 32 KiB copy
	// buffer, of which a stream writes the first page or two).
	OtherKiB float64 `json:"other_rss_kib"`
}

func idleRuntime(before, open map[string]float64, rssBefore, rssOpen int64, n int) *IdleRuntime {
	if before == nil || open == nil || n <= 0 {
		return nil
	}
	ir := &IdleRuntime{Before: before, Open: open, RSSKiB: rssOpen, GCs: open["go_gc_duration_seconds_count"] - before["go_gc_duration_seconds_count"]}
	d := func(k string) float64 { return (open[k] - before[k]) / float64(n) }
	kib := func(k string) float64 { return d(k) / 1024 }
	ir.PerStream = IdleBreakdown{Goroutines: d("go_goroutines"), StackKiB: kib("go_memstats_stack_inuse_bytes"),
		HeapObjectsKiB: kib("go_memstats_heap_alloc_bytes"), HeapInuseKiB: kib("go_memstats_heap_inuse_bytes"),
		HeapGoalKiB: kib("go_memstats_next_gc_bytes"), FreeResidentKiB: kib("go_memstats_heap_idle_bytes") - kib("go_memstats_heap_released_bytes")}
	b := &ir.PerStream
	b.OtherKiB = float64(rssOpen-rssBefore)/float64(n) - b.HeapInuseKiB - b.StackKiB - b.FreeResidentKiB
	return ir
}

// runIdleScenario opens many slow streams through floor and service, for
// each endpoint on processes started for it.
func (h *harness) runIdleScenario(p pathSpec, res *PathResult) error {
	s := h.set
	for _, ep := range s.StreamEndpoints {
		// Fresh processes, so earlier load (or the endpoint before) does
		// not lend them memory.
		floor, svc, err := h.startPair(p, "idle-"+ep)
		if err != nil {
			return err
		}
		ts := h.streamTargets(p, floor, svc, ep)
		if rc := h.adoptRequest(p, ts); !slices.ContainsFunc(res.Requests, func(r RequestCheck) bool { return r.Endpoint == ep }) {
			res.Requests = append(res.Requests, h.logRequest(p, rc))
		}
		its := ts[1:]
		res.Idle[ep] = map[string]*IdleResult{}
		for _, t := range its {
			h.logf("%s %s: %d idle streams (%d chunks, 1 per %d ms) through %s", p.name, ep, s.IdleStreams, s.IdleChunks, s.IdleIntervalMs, t.name)
			res.Idle[ep][t.name] = runIdle(t, s.IdleStreams, s.IdleChunks, secs(s.IdleHoldSeconds), nil)
			closeClient(t.cl)
		}
		floor.stop(3 * time.Second)
		svc.stop(5 * time.Second)
	}
	return nil
}
