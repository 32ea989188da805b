package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// profile runs one scenario of one path (-profile-path) against a profiling build of the
// service (cmd/bench/svcprof: the same app.Main under runtime/pprof) and
// against the floor (this binary, also profiled), one after the other, and
// prints the top of each profile. Scenarios: buffered (open model at
// -profile-rate; CPU), streams (100-chunk streams of the first of
// -stream-endpoints, at the highest of -stream-concurrency; CPU), idle
// (-idle-streams idle streams of that endpoint; live heap and runtime
// memory while they are open),
// embeddings (open model at -embed-rate, the first of -embed-formats; CPU).
func (h *harness) profile() int {
	var err error
	if h.set, err = h.settings(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	scen := h.opts.profileScen
	if scen != "buffered" && scen != "streams" && scen != "idle" && scen != "embeddings" {
		fmt.Fprintf(os.Stderr, "bench: -profile-scenario %q: want buffered, streams, idle or embeddings\n", scen)
		return 2
	}
	formats, err := parseFormats(h.opts.embedFormats)
	// Streams and idle profile the first of -stream-endpoints, streams at
	// the highest of -stream-concurrency.
	ep, workers := h.set.StreamEndpoints[0], slices.Max(h.set.StreamLevels)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	dir, err := filepath.Abs(h.opts.profileDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := h.prepare(false); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	h.logf("service source: %s %v", h.revision, h.changes)
	prof := filepath.Join(dir, "svcprof")
	cmd := exec.Command("go", "build", "-o", prof, "./cmd/bench/svcprof")
	cmd.Dir, cmd.Stdout, cmd.Stderr = h.root, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: go build ./cmd/bench/svcprof:", err)
		return 1
	}
	p := pathSpec{name: "gateway", upstream: h.up.addrs[0]}
	switch h.opts.profilePath {
	case "gateway":
	case "ollama":
		p = pathSpec{name: "ollama", ollama: true, upstream: h.up.addrs[1]}
	default:
		fmt.Fprintf(os.Stderr, "bench: -profile-path %q: want gateway or ollama\n", h.opts.profilePath)
		return 2
	}
	cfg, env, err := h.serviceConfig(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	file := func(who, kind string) string { return filepath.Join(dir, who+"."+p.name+"."+scen+"."+kind+".pprof") }
	svcArgs := []string{"-cpuprofile", file("service", "cpu"), "-memprofile", file("service", "allocs")}
	floorArgs := []string{"-role", "floor", "-target", "http://" + p.upstream, "-cpuprofile", file("floor", "cpu")}
	if scen == "idle" {
		svcArgs = []string{"-heapprofile", file("service", "heap")}
		floorArgs = []string{"-role", "floor", "-target", "http://" + p.upstream, "-heapprofile", file("floor", "heap")}
	}
	if h.opts.floorReadBody {
		floorArgs = append(floorArgs, "-floor-read-body")
	}
	svc, err := startService("service-prof", filepath.Join(h.tmp, "service-prof.log"), prof, svcArgs, cfg, env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	floor, err := startRole("floor-prof", filepath.Join(h.tmp, "floor-prof.log"), floorArgs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.smp = newSampler(ctx, 100*time.Millisecond)
	ts := h.targets(p, floor, svc)[1:]
	err = sanity(ts, h.set.StreamChunks)
	if (scen == "streams" || scen == "idle") && err == nil {
		ts = h.streamTargets(p, floor, svc, ep)[1:]
		err = streamSanity(ts, h.set.StreamChunks)
	}
	if scen == "embeddings" && err == nil {
		texts := embedTexts(h.set.EmbedInputs, h.set.EmbedChars)
		ts = h.embedTargets(p, floor, svc, formats[0], texts, map[string]*http.Client{})
		err = embedSanity(ts, p.ollama, len(texts), &EmbedResult{RequestBytes: map[string]int{}, ResponseBytes: map[string]int{}})
		ts = ts[1:]
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	dur := secs(h.opts.profileSecs)
	for _, t := range ts {
		switch scen {
		case "buffered", "embeddings":
			rate := h.opts.profileRate
			if scen == "embeddings" {
				rate = h.set.EmbedRate
				h.logf("embeddings: %d inputs, encoding_format %s", h.set.EmbedInputs, formats[0])
			}
			h.logf("profiling %s: %d req/s for %.0fs", t.name, rate, dur.Seconds())
			r := runRate([]*target{t}, rate, 1, dur, time.Second, h.smp)[t.name]
			h.logf("%s: %d sent, %.2f%% ok, p50 %.3f ms, p99 %.3f ms, CPU %.3f s / 1000 req", t.name, r.Sent, r.SuccessPct, r.Latency.P50, r.Latency.P99, r.CPUPer1000)
		case "streams":
			h.logf("profiling %s: %s streams of %d chunks, %d concurrent, for %.0fs", t.name, ep, h.set.StreamChunks, workers, dur.Seconds())
			r := runStreamPoint([]*target{t}, workers, h.set.StreamChunks, 1, dur, time.Second, h.smp).Targets[t.name]
			h.logf("%s: %.1f streams/s, TTFB p99 %.3f ms, CPU %.3f ms / stream", t.name, r.StreamsPerSec, r.TTFB.P99, r.CPUMsPerStrm)
		case "idle":
			h.logf("profiling %s: %d idle %s streams", t.name, h.set.IdleStreams, ep)
			pid := t.pid
			r := runIdle(t, h.set.IdleStreams, h.set.IdleChunks, 2*time.Second, func() {
				syscall.Kill(pid, syscall.SIGUSR1)
				time.Sleep(time.Second)
			})
			h.logf("%s: %d open, RSS %.1f → %.1f MiB, %.1f KiB per stream", t.name, r.Opened, mib(r.RSSBeforeKiB), mib(r.RSSOpenKiB), r.PerStreamKiB)
		}
	}
	svc.stop(40 * time.Second) // SIGTERM: app.Main returns, the CPU profile is written
	floor.stop(10 * time.Second)
	self, _ := os.Executable()
	kinds := []string{"cpu"}
	if scen == "idle" {
		kinds = []string{"heap"}
	}
	for _, f := range []struct{ name, bin string }{{"service", prof}, {"floor", self}} {
		for _, kind := range kinds {
			pf := file(f.name, kind)
			if kind == "heap" {
				if txt, err := os.ReadFile(pf + ".txt"); err == nil {
					fmt.Printf("\n==== %s: runtime memory with the streams open ====\n%s", f.name, txt)
				}
			}
			for _, mode := range [][]string{{"-top", "-nodecount=30"}, {"-top", "-cum", "-nodecount=40"}} {
				args := append([]string{"tool", "pprof"}, mode...)
				args = append(args, f.bin, pf)
				out, err := exec.Command("go", args...).CombinedOutput()
				fmt.Printf("\n==== %s %s: go tool pprof %v ====\n%s", f.name, kind, mode, out)
				if err != nil {
					fmt.Fprintln(os.Stderr, "bench: pprof:", err)
				}
			}
		}
	}
	h.logf("profiles in %s (svcprof is the service binary they belong to)", dir)
	return 0
}
