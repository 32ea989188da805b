package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// runtimeMetrics writes, in Prometheus' text format and under the names
// the service's Go collector gives them, the runtime figures the harness
// reads from the service's /metrics: the floor's equivalent, on its own
// port. It reads runtime.MemStats (a short stop of the world), so the
// harness asks only between measurements.
func runtimeMetrics(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "go_goroutines %d\ngo_memstats_heap_alloc_bytes %d\ngo_memstats_heap_inuse_bytes %d\ngo_memstats_heap_idle_bytes %d\n"+
		"go_memstats_heap_released_bytes %d\ngo_memstats_stack_inuse_bytes %d\ngo_memstats_next_gc_bytes %d\ngo_memstats_sys_bytes %d\n"+
		"go_memstats_mallocs_total %d\ngo_memstats_frees_total %d\ngo_gc_duration_seconds_count %d\n",
		runtime.NumGoroutine(), m.HeapAlloc, m.HeapInuse, m.HeapIdle, m.HeapReleased, m.StackInuse, m.NextGC, m.Sys, m.Mallocs, m.Frees, m.NumGC)
}

// runFloor is the floor: a bare httputil.ReverseProxy that flushes every
// write (FlushInterval -1). Its transport keeps as many idle upstream
// connections as the service's (512 in all, 256 per host), so neither side
// pays for connection churn the other does not.
//
// readBody makes it read each request's body before proxying it: the
// stock proxy then no longer meets golang/go#40747 (the server closes the
// inbound body once the response starts, while the transport may still be
// reading it, and the transport then drops the upstream connection in the
// middle of the answer), at the cost of holding the body in memory.
func runFloor(target, cpuprofile, heapprofile string, readBody bool) int {
	dumpOnUSR1(heapprofile)
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		fmt.Fprintf(os.Stderr, "floor: bad -target %q\n", target)
		return 2
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 512
	tr.MaxIdleConnsPerHost = 256
	tr.DisableCompression = true
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(u) },
		FlushInterval: -1,
		Transport:     tr,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// The runtime's figures go out on a port of their own, off the
	// proxy's path.
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	msrv := &http.Server{Handler: http.HandlerFunc(runtimeMetrics), ReadHeaderTimeout: 10 * time.Second}
	go msrv.Serve(mln)
	var h http.Handler = rp
	if readBody {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			rp.ServeHTTP(w, r)
		})
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	fmt.Printf("READY %s %s\n", ln.Addr(), mln.Addr())
	waitSignal(context.Background())
	return 0
}
