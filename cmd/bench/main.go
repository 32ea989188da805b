// Command bench measures, on loopback, what the chatgpt-api service adds
// over the floor — a bare net/http/httputil.ReverseProxy — and over talking
// to the upstream directly, for both of its protocols.
//
// The harness re-executes itself in roles: -role upstream (fake OpenAI and
// Ollama servers on two ports) and -role floor (the bare proxy). The
// service is the real binary, built from ./cmd/chatgpt-api. Every process is
// separate so its CPU time and RSS can be read from /proc. Load is driven
// to direct (A), floor (B) and service (C) in interleaved rounds
// (A,B,C,A,B,C,…) so machine noise hits all three alike.
//
// Scenarios, per path, in this order: buffered (open model at fixed
// rates), throughput (closed loop), streams, embeddings (a batch of 16
// inputs to /v1/embeddings, float and base64, open model and closed loop,
// on processes of its own), idle (many slow open streams, fresh processes).
//
//	go run ./cmd/bench            # full: ~10 s per point, about 8 minutes
//	go run ./cmd/bench -quick     # every scenario, a second or two per point
//	go run ./cmd/bench -scenarios embeddings   # only some scenarios: about 3 minutes
//	go run ./cmd/bench -scenarios embeddings -embed-rate 100 -embed-formats base64
//	go run ./cmd/bench -profile prof/   # CPU profiles of service and floor, gateway @1000 req/s
//	go run ./cmd/bench -profile prof/ -profile-scenario streams|idle|embeddings -profile-path gateway|ollama
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

	quick        bool
	out, md      string
	serviceBin   string
	logLevel     string
	keep         bool
	paths        string
	rounds       int
	roundSeconds float64
	idleStreams  int
	profileDir   string
	profileSecs  float64
	profileRate  int
	profileScen  string
	profilePath  string
	scenarios    string
	embedRate    int
	embedFormats string
	embedInputs  int
}

func main() { os.Exit(run()) }

func run() int {
	var o options
	flag.StringVar(&o.role, "role", "", "internal: run as upstream or floor")
	flag.StringVar(&o.target, "target", "", "internal (floor): the upstream base URL")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "internal (floor): write a CPU profile here until stopped")
	flag.StringVar(&o.heapprofile, "heapprofile", "", "internal (floor): on SIGUSR1 write a heap profile here")
	flag.BoolVar(&o.dump, "dump", false, "upstream: log the first chat request the service sends on each protocol")
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
	flag.IntVar(&o.idleStreams, "idle-streams", 2000, "concurrent idle streams in the memory scenario")
	flag.StringVar(&o.profileDir, "profile", "", "profile mode: write CPU profiles of the service and the floor under the gateway @rate scenario into this directory")
	flag.Float64Var(&o.profileSecs, "profile-seconds", 20, "profile mode: seconds of load per process")
	flag.IntVar(&o.profileRate, "profile-rate", 1000, "profile mode: arrival rate (req/s)")
	flag.StringVar(&o.profileScen, "profile-scenario", "buffered", "profile mode: buffered (@rate, CPU), streams (100-chunk streams, CPU), idle (idle streams, live heap) or embeddings (@-embed-rate, first of -embed-formats, CPU)")
	flag.StringVar(&o.profilePath, "profile-path", "gateway", "profile mode: gateway or ollama")
	flag.Parse()

	raiseNoFile()
	switch o.role {
	case "upstream":
		return runUpstream(o.dump)
	case "floor":
		return runFloor(o.target, o.cpuprofile, o.heapprofile)
	case "":
	default:
		fmt.Fprintf(os.Stderr, "bench: unknown -role %q\n", o.role)
		return 2
	}

	h := &harness{opts: o, began: time.Now()}
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
	StreamWorkers   int     `json:"stream_concurrency"`
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

func (h *harness) settings() Settings {
	s := Settings{Mode: "full", Rounds: 3, RoundSeconds: 3, WarmSeconds: 1, Rates: []int{1000, 3000}, Conns: 64,
		StreamWorkers: 50, StreamChunks: 100, IdleStreams: h.opts.idleStreams, IdleChunks: 10, IdleIntervalMs: 1000,
		IdleHoldSeconds: 3, LogLevel: h.opts.logLevel, RlimitNoFile: noFileLimit(),
		EmbedRate: h.opts.embedRate, EmbedInputs: h.opts.embedInputs, EmbedChars: 300, EmbedDims: embedDims,
		EmbedRoundSeconds: 2, EmbedWarmSeconds: 1}
	if h.opts.quick {
		s.Mode, s.Rounds, s.RoundSeconds, s.WarmSeconds, s.IdleHoldSeconds = "quick", 1, 1.5, 0.3, 1
		s.EmbedRoundSeconds, s.EmbedWarmSeconds = 0.4, 0.15
	}
	if h.opts.rounds > 0 {
		s.Rounds = h.opts.rounds
	}
	if h.opts.roundSeconds > 0 {
		s.RoundSeconds, s.EmbedRoundSeconds = h.opts.roundSeconds, h.opts.roundSeconds
	}
	return s
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
