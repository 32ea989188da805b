// Command bench measures, on loopback, what the chatgpt-api service adds
// over the floor — a bare net/http/httputil.ReverseProxy — and over talking
// to the upstream directly, for both of its protocols.
//
// The harness re-executes itself in roles: -role upstream (fake OpenAI and
// Ollama servers on two ports) and -role floor (the bare proxy, with its
// runtime's figures on a second port, off the proxy's path). The service
// is the real binary, built from ./cmd/chatgpt-api. Every process is
// separate so its CPU time and RSS can be read from /proc. Load is driven
// to direct (A), floor (B) and service (C) in interleaved rounds
// (A,B,C,A,B,C,…) so machine noise hits all three alike.
//
// Scenarios, per path, in this order: buffered (open model at fixed
// rates), throughput (closed loop), streams, embeddings (a batch of 16
// inputs to /v1/embeddings, float and base64, open model and closed loop,
// on processes of its own), idle (many slow open streams, fresh processes).
//
// Streams and idle cover every streamed endpoint (-stream-endpoints): chat
// (POST /v1/chat/completions), completions (POST /v1/completions) and
// responses (POST /v1/responses), each with stream:true. Direct and floor
// get the request the service itself sends upstream for the endpoint: the
// fake upstream captures it from the service at the start and the harness
// adopts it (gateway: the same chat or completions request, members
// reordered; Responses → the gateway's chat completions, as with the
// default responses_api: false. Ollama: /api/chat, /api/generate,
// /api/chat), so they answer in the upstream's format while the service
// translates. Every stream is read to its end and checked (every content
// frame, then [DONE], "done":true or response.completed); failures are
// counted. TTFB is the time to the first frame carrying answer text (for
// Responses, the first response.output_text.delta).
//
// Streams run each endpoint at each concurrency of -stream-concurrency (1,
// 8 and 50: one at a time, one that leaves a core idle so first bytes do
// not wait for CPU, and many): stream rate, CPU per stream (utime+stime of
// the process from /proc over the streams the round began), TTFB p50/p99
// and added TTFB over direct, heap allocations per stream (from the
// process's go_memstats_mallocs_total), per round; the report gives the
// medians over the rounds and, for each service/floor ratio, the median
// of the per-round ratios and their spread (min–max). A separate, one at
// a time measurement gives the heap allocations per relayed frame at the
// margin (1000-chunk against 10-chunk streams). Idle opens -idle-streams
// slow streams per endpoint and gives RSS per open stream, with its
// breakdown from the runtime's figures (goroutines, stacks, heap objects,
// heap spans, GC goal, free heap kept resident, the rest).
//
//	go run ./cmd/bench            # full: about 14 minutes (an estimate is printed first)
//	go run ./cmd/bench -quick     # every scenario and endpoint, streams at 50 only: about 80 s
//	go run ./cmd/bench -scenarios streams,idle   # the streamed endpoints only: about 8 minutes
//	go run ./cmd/bench -scenarios streams -paths gateway -stream-endpoints responses -stream-concurrency 8
//	go run ./cmd/bench -scenarios streams -responses-store=false   # Responses without the store write
//	go run ./cmd/bench -scenarios streams -floor-read-body=false   # the stock proxy as is (golang/go#40747 cuts some of its streams)
//	go run ./cmd/bench -scenarios embeddings   # only some scenarios: about 3 minutes
//	go run ./cmd/bench -scenarios embeddings -embed-rate 100 -embed-formats base64
//	go run ./cmd/bench -profile prof/   # CPU profiles of service and floor, gateway @1000 req/s
//	go run ./cmd/bench -profile prof/ -profile-scenario streams|idle|embeddings -profile-path gateway|ollama
//	go run ./cmd/bench -keep            # the kept upstream.log shows each shape of request the service sent
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	role, target, cpuprofile string
	heapprofile              string
	dump                     bool

	quick         bool
	out, md       string
	serviceBin    string
	logLevel      string
	keep          bool
	paths         string
	rounds        int
	roundSeconds  float64
	idleStreams   int
	profileDir    string
	profileSecs   float64
	profileRate   int
	profileScen   string
	profilePath   string
	scenarios     string
	embedRate     int
	embedFormats  string
	embedInputs   int
	streamEPs     string
	streamLevels  string
	respStore     bool
	floorReadBody bool
	set           map[string]bool // flags given on the command line
}

func main() { os.Exit(run()) }

func run() int {
	var o options
	flag.StringVar(&o.role, "role", "", "internal: run as upstream or floor")
	flag.StringVar(&o.target, "target", "", "internal (floor): the upstream base URL")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "internal (floor): write a CPU profile here until stopped")
	flag.StringVar(&o.heapprofile, "heapprofile", "", "internal (floor): on SIGUSR1 write a heap profile here")
	flag.BoolVar(&o.dump, "dump", false, "upstream: log the first request of each shape the service sends (with -keep: upstream.log)")
	flag.BoolVar(&o.quick, "quick", false, "a few seconds per point (CI); every scenario still runs")
	flag.StringVar(&o.out, "out", "bench-results.json", "write every number here as JSON (empty: none)")
	flag.StringVar(&o.md, "md", "", "also write the markdown report here")
	flag.StringVar(&o.serviceBin, "service-bin", "", "use this chatgpt-api binary instead of building ./cmd/chatgpt-api")
	flag.StringVar(&o.logLevel, "log-level", "info", "LOG_LEVEL of the service (its logs go to a file)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binaries, configs, logs)")
	flag.StringVar(&o.paths, "paths", "gateway,ollama", "paths to measure: gateway, ollama")
	flag.StringVar(&o.scenarios, "scenarios", strings.Join(scenarioNames, ","), "scenarios to run, in this order whatever the list's: "+strings.Join(scenarioNames, ", "))
	flag.IntVar(&o.embedRate, "embed-rate", 50, "embeddings: arrival rate of the open-model point (req/s); also the rate of -profile-scenario embeddings")
	flag.StringVar(&o.embedFormats, "embed-formats", "float,base64", "embeddings: encoding_format values to measure (float, base64)")
	flag.IntVar(&o.embedInputs, "embed-inputs", 16, "embeddings: inputs per request (about 300 characters each)")
	flag.IntVar(&o.rounds, "rounds", 0, "rounds per point (default 3, quick 1)")
	flag.Float64Var(&o.roundSeconds, "round-seconds", 0, "seconds per target per round (default 3, quick 1.5)")
	flag.IntVar(&o.idleStreams, "idle-streams", 2000, "concurrent idle streams in the memory scenario, per endpoint (quick: 300 unless given)")
	flag.StringVar(&o.streamEPs, "stream-endpoints", strings.Join(streamEndpointNames, ","), "streams and idle: streamed endpoints to measure (chat, completions, responses)")
	flag.StringVar(&o.streamLevels, "stream-concurrency", "1,8,50", "streams: concurrent streams of each point (quick: 50 unless given)")
	flag.BoolVar(&o.floorReadBody, "floor-read-body", true, "the floor reads each request's body before proxying it, as the service does (works around golang/go#40747, which cuts some of the stock proxy's streams and so lowers its rate); false: the stock proxy as is")
	flag.BoolVar(&o.respStore, "responses-store", true, "streams and idle: Responses requests leave store out (the API's default, true: the service keeps each response); false sends \"store\":false")
	flag.StringVar(&o.profileDir, "profile", "", "profile mode: write CPU profiles of the service and the floor under the gateway @rate scenario into this directory")
	flag.Float64Var(&o.profileSecs, "profile-seconds", 20, "profile mode: seconds of load per process")
	flag.IntVar(&o.profileRate, "profile-rate", 1000, "profile mode: arrival rate (req/s)")
	flag.StringVar(&o.profileScen, "profile-scenario", "buffered", "profile mode: buffered (@rate, CPU), streams (100-chunk streams, CPU), idle (idle streams, live heap) or embeddings (@-embed-rate, first of -embed-formats, CPU)")
	flag.StringVar(&o.profilePath, "profile-path", "gateway", "profile mode: gateway or ollama")
	flag.Parse()
	o.set = map[string]bool{}
	flag.Visit(func(f *flag.Flag) { o.set[f.Name] = true })

	raiseNoFile()
	switch o.role {
	case "upstream":
		return runUpstream(o.dump)
	case "floor":
		return runFloor(o.target, o.cpuprofile, o.heapprofile, o.floorReadBody)
	case "":
	default:
		fmt.Fprintf(os.Stderr, "bench: unknown -role %q\n", o.role)
		return 2
	}

	h := &harness{opts: o, began: time.Now(), captured: map[string][]byte{}}
	var err error
	h.tmp, err = os.MkdirTemp("", "chatgpt-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	cleanup := func() {
		killAll(3 * time.Second)
		if o.keep {
			fmt.Fprintf(os.Stderr, "bench: kept %s\n", h.tmp)
		} else {
			os.RemoveAll(h.tmp)
		}
	}
	// ^C or SIGTERM: stop every child, remove the temporary directory, exit.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "\nbench: %v: stopping every process\n", s)
		cleanup()
		os.Exit(130)
	}()
	var code int
	if o.profileDir != "" {
		code = h.profile()
	} else {
		code = h.bench()
	}
	cleanup()
	return code
}

type harness struct {
	opts  options
	tmp   string
	began time.Time
	root  string // module root
	bin   string // service binary
	set   Settings
	smp   *sampler
	up    *child
	// captured: what the service sent upstream, per "path endpoint".
	captured map[string][]byte
	// revision and changes describe the service source that was built.
	revision string
	changes  []string
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(h.began).Seconds(), fmt.Sprintf(format, args...))
}

// Settings are the knobs of one run, recorded in the JSON.
type Settings struct {
	Mode            string  `json:"mode"`
	Rounds          int     `json:"rounds"`
	RoundSeconds    float64 `json:"round_seconds"`
	WarmSeconds     float64 `json:"warmup_seconds"`
	Rates           []int   `json:"rates"`
	Conns           int     `json:"throughput_connections"`
	StreamChunks    int     `json:"stream_chunks"`
	IdleStreams     int     `json:"idle_streams"`
	IdleChunks      int     `json:"idle_chunks"`
	IdleIntervalMs  int     `json:"idle_interval_ms"`
	IdleHoldSeconds float64 `json:"idle_hold_seconds"`
	LogLevel        string  `json:"service_log_level"`
	RlimitNoFile    uint64  `json:"rlimit_nofile"`
	// Scenarios run: buffered, throughput, streams, embeddings, idle.
	Scenarios []string `json:"scenarios"`
	// Embeddings: EmbedInputs inputs of about EmbedChars characters each
	// per request, EmbedRoundSeconds per target per round, at EmbedRate
	// (open model) for each of EmbedFormats and on Conns connections
	// (closed loop) for each of EmbedTputFormats (quick: none).
	EmbedRate         int      `json:"embeddings_rate"`
	EmbedInputs       int      `json:"embeddings_inputs"`
	EmbedChars        int      `json:"embeddings_input_chars"`
	EmbedDims         int      `json:"embeddings_dimensions"`
	EmbedFormats      []string `json:"embeddings_formats"`
	EmbedTputFormats  []string `json:"embeddings_max_throughput_formats"`
	EmbedRoundSeconds float64  `json:"embeddings_round_seconds"`
	EmbedWarmSeconds  float64  `json:"embeddings_warmup_seconds"`
	// Streams: each of StreamEndpoints at each of StreamLevels (concurrent
	// streams), Rounds rounds of StreamRoundSeconds per target after
	// StreamWarmSeconds of warm-up; FrameAllocStreams streams per run of
	// the allocations-per-frame measurement. Idle streams: IdleStreams per
	// endpoint of StreamEndpoints. ResponsesStore: Responses requests leave
	// store at its default (true) rather than send false.
	StreamEndpoints    []string `json:"stream_endpoints"`
	StreamLevels       []int    `json:"stream_concurrency"`
	StreamRoundSeconds float64  `json:"stream_round_seconds"`
	StreamWarmSeconds  float64  `json:"stream_warmup_seconds"`
	FrameAllocStreams  int      `json:"frame_alloc_streams"`
	ResponsesStore     bool     `json:"responses_store"`
	// FloorReadBody: the floor reads each request's body before proxying.
	FloorReadBody bool `json:"floor_read_body"`
}

// scenarioNames are the scenarios of a path, in the order they run.
var scenarioNames = []string{"buffered", "throughput", "streams", "embeddings", "idle"}

// parseScenarios checks -scenarios ("all" is every one).
func parseScenarios(list string) ([]string, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
		case n == "all":
			for _, s := range scenarioNames {
				want[s] = true
			}
		case slices.Contains(scenarioNames, n):
			want[n] = true
		default:
			return nil, fmt.Errorf("-scenarios: unknown scenario %q (want %s or all)", n, strings.Join(scenarioNames, ", "))
		}
	}
	var out []string
	for _, s := range scenarioNames {
		if want[s] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-scenarios: none given")
	}
	return out, nil
}

func parseFormats(list string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(list, ",") {
		switch f = strings.TrimSpace(f); f {
		case "":
		case "float", "base64":
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		default:
			return nil, fmt.Errorf("-embed-formats: unknown encoding_format %q (want float, base64)", f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-embed-formats: none given")
	}
	return out, nil
}

// wants reports whether scenario runs.
func (s Settings) wants(scenario string) bool { return slices.Contains(s.Scenarios, scenario) }

func (h *harness) settings() (Settings, error) {
	s := Settings{Mode: "full", Rounds: 3, RoundSeconds: 3, WarmSeconds: 1, Rates: []int{1000, 3000}, Conns: 64,
		StreamChunks: 100, IdleStreams: h.opts.idleStreams, IdleChunks: 10, IdleIntervalMs: 1000,
		IdleHoldSeconds: 3, LogLevel: h.opts.logLevel, RlimitNoFile: noFileLimit(),
		EmbedRate: h.opts.embedRate, EmbedInputs: h.opts.embedInputs, EmbedChars: 300, EmbedDims: embedDims,
		EmbedRoundSeconds: 2, EmbedWarmSeconds: 1,
		StreamRoundSeconds: 2, StreamWarmSeconds: 0.3, FrameAllocStreams: 20, ResponsesStore: h.opts.respStore,
		FloorReadBody: h.opts.floorReadBody}
	levels := h.opts.streamLevels
	if h.opts.quick {
		s.Mode, s.Rounds, s.RoundSeconds, s.WarmSeconds, s.IdleHoldSeconds = "quick", 1, 1, 0.2, 0.5
		s.EmbedRoundSeconds, s.EmbedWarmSeconds = 0.4, 0.15
		s.StreamRoundSeconds, s.StreamWarmSeconds, s.FrameAllocStreams = 0.5, 0.1, 5
		if !h.opts.set["stream-concurrency"] {
			levels = "50"
		}
		if !h.opts.set["idle-streams"] {
			s.IdleStreams = 300
		}
	}
	if h.opts.rounds > 0 {
		s.Rounds = h.opts.rounds
	}
	if h.opts.roundSeconds > 0 {
		s.RoundSeconds, s.EmbedRoundSeconds, s.StreamRoundSeconds = h.opts.roundSeconds, h.opts.roundSeconds, h.opts.roundSeconds
	}
	var err error
	if s.StreamEndpoints, err = parseStreamEndpoints(h.opts.streamEPs); err == nil {
		s.StreamLevels, err = parseLevels(levels)
	}
	return s, err
}

// estimate is about how long a run of these settings takes, in seconds:
// the load itself, plus a little per point and per process started.
func (s Settings) estimate(paths int) float64 {
	per := 0.0
	targets := func(rounds int, round, warm float64) float64 { return 3 * (float64(rounds)*round + warm + 0.2) }
	if s.wants("buffered") {
		per += float64(len(s.Rates)) * targets(s.Rounds, s.RoundSeconds, s.WarmSeconds)
	}
	if s.wants("throughput") {
		per += targets(s.Rounds, s.RoundSeconds, s.WarmSeconds)
	}
	if s.wants("buffered") || s.wants("throughput") || s.wants("streams") {
		per += 1
	}
	if s.wants("streams") {
		eps := float64(len(s.StreamEndpoints))
		per += eps * float64(len(s.StreamLevels)) * targets(s.Rounds, s.StreamRoundSeconds, s.StreamWarmSeconds)
		// Sanity, the request check and the allocations per frame.
		per += eps * (0.5 + float64(s.Rounds*s.FrameAllocStreams)*2*0.045)
	}
	if s.wants("embeddings") {
		per += 1 + float64(len(s.EmbedFormats)+len(s.EmbedTputFormats))*targets(s.Rounds, s.EmbedRoundSeconds, s.EmbedWarmSeconds)
	}
	if s.wants("idle") {
		// Per endpoint: two processes started, then per process the
		// settling and the streams' end, the ramp, the hold.
		per += float64(len(s.StreamEndpoints)) * (0.5 + 2*(0.7+float64(s.IdleStreams)/1000+s.IdleHoldSeconds))
	}
	return float64(paths)*per + 5
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// prepare finds the module, builds the service and starts the upstreams.
func (h *harness) prepare(dump bool) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return fmt.Errorf("cannot find the module (go env GOMOD): %v", err)
	}
	h.root = filepath.Dir(strings.TrimSpace(string(out)))
	h.revision = "unknown"
	if out, err := exec.Command("git", "-C", h.root, "describe", "--always", "--dirty").Output(); err == nil {
		h.revision = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "-C", h.root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				h.changes = append(h.changes, l)
			}
		}
	}
	h.bin = h.opts.serviceBin
	if h.bin != "" {
		h.revision = "prebuilt " + h.bin
	} else {
		h.bin = filepath.Join(h.tmp, "chatgpt-api")
		t0 := time.Now()
		cmd := exec.Command("go", "build", "-o", h.bin, "./cmd/chatgpt-api")
		cmd.Dir, cmd.Stdout, cmd.Stderr = h.root, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/chatgpt-api: %v", err)
		}
		h.logf("built the service in %.1fs", time.Since(t0).Seconds())
	}
	args := []string{"-role", "upstream"}
	if dump {
		args = append(args, "-dump")
	}
	h.up, err = startRole("upstream", filepath.Join(h.tmp, "upstream.log"), args...)
	if err != nil {
		return err
	}
	h.logf("upstreams: openai %s, ollama %s (pid %d)", h.up.addrs[0], h.up.addrs[1], h.up.pid)
	return nil
}

func goVersion() string {
	if out, err := exec.Command("go", "version").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return runtime.Version()
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown"
}
