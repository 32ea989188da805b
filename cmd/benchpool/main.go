// Command benchpool measures how the service routes chat requests over a
// pool of Ollama hosts — its own rule, model_aware, against the naive
// least_busy and round_robin — on a workload shaped like local use: few
// hosts, several models that do not all fit, long multi-turn prompts.
//
// For each strategy, one after another, it starts fresh fake hosts and the
// real service (built from ./cmd/chatgpt-api) with OLLAMA_URL listing
// them and POOL_STRATEGY set, plays the same seeded workload through
// POST /v1/chat/completions (streamed) and reads the fakes' counters.
// The service keeps its defaults but for GATEWAY_URL (empty), LOG_LEVEL
// warn, POOL_RESIDENCY_INTERVAL 500ms, health.interval 2s and
// upstream_timeout 1m; its per-host limit (ollama.resilience.limit: 4 at
// a time, 64 queued) stays unless -service-limit changes it.
//
// # The fake Ollama hosts
//
// Each is an HTTP server on 127.0.0.1 speaking Ollama's wire format byte
// for byte (/api/tags, /api/ps, /api/version, /api/chat streaming NDJSON)
// and modelling what costs time on local hardware (defaults of the full
// run; -quick loads in 200 ms):
//
//   - memory: 4 hosts, each fitting 2 models (-hosts 2,2,2,2; all models
//     are the same size). Every host lists all 6 models (-missing takes
//     some off a host), so residency, not availability, decides;
//   - loading: a request for a model not in memory waits 2 s (-load-delay)
//     before its first token; a host loads one model at a time; its
//     load_duration reports the wait;
//   - eviction: loading into a full host evicts the least recently used
//     model with no request in flight; when every model is busy, the
//     request waits for one to go idle — and, as Ollama's scheduler admits
//     requests one at a time in order, so do the requests behind it on
//     that host. An evicted model's prompt caches go with it;
//   - parallelism and prompt cache: 4 generations at once per loaded model
//     (-parallel, OLLAMA_NUM_PARALLEL), more wait. Each of the 4 slots keeps
//     the KV cache of what it last evaluated (prompt and answer); a request
//     takes the free slot sharing the longest prefix with its prompt, and
//     evaluates only the tokens past that prefix, at 0.25 ms per token
//     (-prompt-token; a token is 4 bytes of the rendered messages: 2,500
//     tokens cold take 625 ms, a cached follow-up about 25 ms). A host's
//     evaluations share its GPU whatever the model: they take turns 512
//     tokens at a time (-prefill-batch, Ollama's num_batch), in order;
//   - generation: 24 tokens (-gen-tokens) at 4 ms each (-token-delay),
//     each flushed as its own line. The answer depends only on the model
//     and the messages, so every strategy sees the same conversations;
//   - counters per host: requests, loads, evictions, requests that waited
//     for a load, cache hits (at least half the prompt cached) and prompt
//     tokens reused.
//
// # The workload
//
// 260 conversations (-conversations), 16 active at a time (-concurrency),
// closed loop: a worker starts the next conversation when its current one
// ends; the first 16 start over 2 s (-ramp). Each conversation uses one of
// 6 models, drawn with Zipf popularity (share ∝ 1/k: 41%, 20%, 14%, 10%,
// 8%, 7%), and a system prompt of 1500–3000 tokens — for half of the
// conversations that of one of the model's 2 apps, shared, for the other
// half its own. It has 1–8 turns (P(t) ∝ 1/t, mean 2.9; 780 requests in
// all with seed 1), the first user message 100–400 tokens, follow-ups
// 20–120 tokens after a think time (exponential, mean 3 s, at most 12 s).
// Each turn sends the whole conversation so far — system prompt, user
// messages and the answers received — so the prompt grows and its prefix
// stays. Requests stream (stream: true); time to first token is measured
// client side, to the first content delta. No turn starts after 120 s
// (-max-duration): a strategy that has not played the whole workload by
// then reports the rest as not sent, and its throughput over what it ran.
//
// -quick scales this down for CI: loads of 200 ms, 32 conversations, 8 at
// a time, think 200 ms, at most 20 s per strategy.
//
// # The report
//
// Per strategy: requests, errors, model loads (per 1000 requests), TTFT
// p50 of follow-up turns, p50 and p99 of all, throughput, the share of
// follow-up turns the service reported as affinity hits (X-Affinity);
// then model_aware against round_robin with the targets: loads
// ≤ 0.2×, follow-up TTFT p50 ≤ 0.5×, TTFT p99 ≤ 1×, throughput ≥ 1×. A
// missed target is reported, not an error: the exit status is non-zero
// only when requests failed or the harness could not run.
//
//	go run ./cmd/benchpool                 # full: about 2 minutes per strategy, 7 in all
//	go run ./cmd/benchpool -quick          # CI: about 20 s per strategy
//	go run ./cmd/benchpool -out pool.json -md pool.md -strategies model_aware,round_robin
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		set        Settings
		out, md    string
		serviceBin string
		keep       bool
		requests   string
	)
	fs := flag.CommandLine
	set.register(fs)
	fs.StringVar(&out, "out", "", "also write every number here as JSON")
	fs.StringVar(&md, "md", "", "also write the Markdown report here")
	fs.StringVar(&serviceBin, "service-bin", "", "use this chatgpt-api binary instead of building ./cmd/chatgpt-api")
	fs.BoolVar(&keep, "keep", false, "keep the temporary directory (service binary, config, logs)")
	fs.StringVar(&requests, "requests", "", "also write every request's result here, one JSON object a line")
	flag.Parse()
	if set.Quick {
		if err := applyQuick(fs); err != nil {
			fmt.Fprintln(os.Stderr, "benchpool:", err)
			return 2
		}
	}
	if err := set.check(); err != nil {
		fmt.Fprintln(os.Stderr, "benchpool:", err)
		return 2
	}

	began := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	tmp, err := os.MkdirTemp("", "benchpool-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpool:", err)
		return 1
	}
	defer func() {
		if keep {
			logf("kept %s", tmp)
		} else {
			os.RemoveAll(tmp)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rn := &runner{set: set, tmp: tmp, logf: logf, bin: serviceBin}
	if rn.bin == "" {
		logf("building ./cmd/chatgpt-api")
		if rn.bin, err = buildService(tmp); err != nil {
			fmt.Fprintln(os.Stderr, "benchpool:", err)
			return 1
		}
	}
	rn.cfgPath = filepath.Join(tmp, "config.yaml")
	if err := os.WriteFile(rn.cfgPath, []byte(set.serviceConfig()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchpool:", err)
		return 1
	}
	if requests != "" {
		f, err := os.Create(requests)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchpool:", err)
			return 1
		}
		defer f.Close()
		rn.requests = f
	}
	rn.wl = NewWorkload(set.workload())
	rep := &Report{Revision: revision(), Settings: set, Workload: WorkloadSummary{
		Conversations: len(rn.wl.Conversations), Requests: rn.wl.Requests, ModelShare: rn.wl.ModelShare()}}
	logf("workload: %d conversations, %d requests; strategies %s", len(rn.wl.Conversations), rn.wl.Requests, set.Strategies)

	byName := map[string]*StrategyResult{}
	for i, st := range set.strategies() {
		if i > 0 {
			time.Sleep(time.Second) // let the previous processes' sockets and CPU settle
		}
		res, err := rn.run(ctx, st)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchpool:", err)
			return 1
		}
		logf("%s: %d requests, %d errors, %d loads, TTFT p50 %s (follow-up %s), p99 %s, %.2f req/s",
			st, res.Requests, res.Errors, res.Loads, fmtDur(res.TTFTP50), fmtDur(res.TTFTFollowP50), fmtDur(res.TTFTP99), res.Throughput)
		rep.Strategies = append(rep.Strategies, res)
		byName[st] = res
	}
	if ma, rr := byName["model_aware"], byName["round_robin"]; ma != nil && rr != nil {
		rep.Targets = targets(ma, rr)
	}
	rep.Wall = time.Since(began)
	fmt.Print(rep.Markdown())
	if err := rep.write(out, md); err != nil {
		fmt.Fprintln(os.Stderr, "benchpool:", err)
		return 1
	}
	failed := 0
	for _, r := range rep.Strategies {
		failed += r.Errors
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "benchpool: %d requests failed (see the errors above)\n", failed)
		return 1
	}
	return 0
}
