package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime/pprof"
	"time"
)

// runFloor is the floor: a bare httputil.ReverseProxy that flushes every
// write (FlushInterval -1). Its transport keeps as many idle upstream
// connections as the service's (512 in all, 256 per host), so neither side
// pays for connection churn the other does not.
func runFloor(target, cpuprofile, heapprofile string) int {
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
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	fmt.Printf("READY %s\n", ln.Addr())
	waitSignal(context.Background())
	return 0
}
