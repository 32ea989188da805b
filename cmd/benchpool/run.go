package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runner runs one strategy after another, each on a service process of
// its own in front of fresh fake hosts.
type runner struct {
	set     Settings
	bin     string // the service binary
	tmp     string
	cfgPath string
	wl      *Workload
	logf    func(format string, args ...any)
	// requests, when set, gets every request's result as a JSON line.
	requests io.Writer
}

// run plays the workload through the service with POOL_STRATEGY=strategy.
func (rn *runner) run(ctx context.Context, strategy string) (*StrategyResult, error) {
	began := time.Now()
	cfgs := rn.set.hostConfigs()
	fakes := make([]*FakeOllama, len(cfgs))
	urls := make([]string, len(cfgs))
	for i, c := range cfgs {
		fakes[i] = StartFake(c, realClock{})
		urls[i] = fakes[i].URL()
	}
	defer func() {
		for _, f := range fakes {
			f.Close()
		}
	}()
	dataDir := filepath.Join(rn.tmp, "data-"+strategy)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	env := map[string]string{
		"GATEWAY_URL":             "",
		"OLLAMA_URL":              strings.Join(urls, ","),
		"POOL_STRATEGY":           strategy,
		"POOL_RESIDENCY_INTERVAL": rn.set.ResidencyInterval.String(),
		"RESPONSES_DATA_DIR":      dataDir,
		"LOG_LEVEL":               "warn",
		"DRAIN_TIMEOUT":           "5s",
	}
	svc, err := StartService(rn.bin, rn.cfgPath, filepath.Join(rn.tmp, "service-"+strategy+".log"), env)
	if err != nil {
		return nil, err
	}
	defer svc.Stop(10 * time.Second)
	if err := svc.WaitModels(modelNames(rn.set.Models), 20*time.Second); err != nil {
		rn.logf("%s: warning: %v (going on)", strategy, err)
	}
	cl := NewClient("http://"+svc.Addr, rn.set.Concurrency)
	defer cl.Close()
	rn.logf("%s: service on %s in front of %d hosts; %d conversations, %d at a time", strategy, svc.Addr, len(fakes),
		len(rn.wl.Conversations), rn.set.Concurrency)
	results, notSent := Drive(ctx, cl, rn.wl, DriveConfig{
		Concurrency: rn.set.Concurrency, Ramp: time.Duration(rn.set.Ramp), MaxDuration: time.Duration(rn.set.MaxDuration),
		RequestTimeout: 3 * time.Minute, User: rn.set.User, ProgressEvery: 15 * time.Second,
		Progress: func(sent, failed int, el time.Duration) {
			rn.logf("%s: %d requests sent, %d failed, %.0f s", strategy, sent, failed, el.Seconds())
		},
	})
	if exited, err := svc.Exited(); exited {
		return nil, fmt.Errorf("%s: the service exited during the run (%v); see %s:\n%s", strategy, err, svc.Log, tail(svc.Log, 15))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	hosts := make([]HostReport, len(fakes))
	for i, f := range fakes {
		hosts[i] = HostReport{Name: f.cfg.Name, URL: f.URL(), HostStats: f.Stats()}
	}
	if rn.requests != nil {
		enc := json.NewEncoder(rn.requests)
		for _, r := range results {
			if err := enc.Encode(struct {
				Strategy string `json:"strategy"`
				Result
			}{strategy, r}); err != nil {
				return nil, err
			}
		}
	}
	served, unmatched := countServed(results, hosts)
	for i := range hosts {
		hosts[i].Served = served[i]
	}
	res := summarize(strategy, results, notSent, hosts)
	res.Wall = time.Since(began)
	res.HostHeader = unmatched
	rn.check(res, unmatched)
	return res, nil
}

// countServed attributes each completed request to the fake its
// X-Backend-Host names (by URL or port); it also returns the values that
// named none.
func countServed(results []Result, hosts []HostReport) ([]int, map[string]int) {
	served := make([]int, len(hosts))
	unmatched := map[string]int{}
	for _, r := range results {
		if r.Err != "" {
			continue
		}
		found := false
		for i, h := range hosts {
			hostPort := strings.TrimPrefix(h.URL, "http://")
			_, port, _ := strings.Cut(hostPort, ":")
			if r.Host != "" && (strings.Contains(r.Host, hostPort) || strings.HasSuffix(r.Host, ":"+port)) {
				served[i]++
				found = true
				break
			}
		}
		if !found {
			unmatched[r.Host]++
		}
	}
	return served, unmatched
}

// check warns about what makes a run's figures doubtful: a service that
// does not route over the pool, or hosts it never used.
func (rn *runner) check(res *StrategyResult, unmatched map[string]int) {
	if len(res.Hosts) < 2 {
		return
	}
	switch n := unmatched[""]; {
	case n > 0 && n == res.Completed:
		rn.logf("%s: warning: no answer carried X-Backend-Host: does the service route over pools yet?", res.Strategy)
	case n > 0:
		// The service commits its headers with its first keep-alive ping
		// (streaming.ping_interval) when the first token is later.
		rn.logf("%s: %d answers carried no X-Backend-Host (their first token came after the service's first ping)", res.Strategy, n)
	}
	idle := 0
	for _, h := range res.Hosts {
		if h.Requests == 0 {
			idle++
		}
	}
	if idle > 0 {
		rn.logf("%s: warning: %d of %d hosts got no request", res.Strategy, idle, len(res.Hosts))
	}
}
