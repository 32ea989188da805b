package images

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// testServer is an httptest server on a loopback address that counts hits.
type testServer struct {
	*httptest.Server
	hits atomic.Int64
	done chan struct{} // closed at cleanup to release stalling handlers
}

func newServer(t *testing.T, network, addr string, h http.HandlerFunc) *testServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	s := &testServer{done: make(chan struct{})}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	s.Listener.Close()
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.done) }) // runs before Close
	return s
}

func newServer4(t *testing.T, h http.HandlerFunc) *testServer {
	return newServer(t, "tcp4", "127.0.0.1:0", h)
}

func (s *testServer) port() string {
	_, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	return p
}

func (s *testServer) addrPort() netip.AddrPort {
	return netip.MustParseAddrPort(s.Listener.Addr().String())
}

// serveBytes serves body with the given Content-Type ("" = no header at all).
func serveBytes(ct string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct == "" {
			w.Header()["Content-Type"] = nil // suppress net/http's sniffing
		} else {
			w.Header().Set("Content-Type", ct)
		}
		w.Write(body)
	}
}

func TestLoadRemote(t *testing.T) {
	pngData := pngBytes(t)
	html := []byte("<!DOCTYPE html><html><body>not an image</body></html>")

	tests := []struct {
		name    string
		opts    Options
		handler http.HandlerFunc
		path    string
		noHits  bool // the server must not have been contacted
		wantErr string
	}{
		{
			name:    "disabled by default",
			opts:    Options{},
			handler: serveBytes("image/png", pngData),
			noHits:  true,
			wantErr: "image URLs are not fetched by this service; send the image as a data: URL, or enable images.fetch_remote",
		},
		{
			name:    "loopback refused when AllowPrivate is false",
			opts:    Options{FetchRemote: true},
			handler: serveBytes("image/png", pngData),
			noHits:  true,
			wantErr: "private or reserved network address",
		},
		{
			name:    "loopback allowed when AllowPrivate is true",
			opts:    Options{FetchRemote: true, AllowPrivate: true},
			handler: serveBytes("image/png", pngData),
		},
		{
			name:    "content type with parameters",
			opts:    Options{FetchRemote: true, AllowPrivate: true},
			handler: serveBytes("IMAGE/PNG; charset=binary", pngData),
		},
		{
			name:    "missing content type is sniffed",
			opts:    Options{FetchRemote: true, AllowPrivate: true},
			handler: serveBytes("", pngData),
		},
		{
			name:    "generic content type is sniffed",
			opts:    Options{FetchRemote: true, AllowPrivate: true},
			handler: serveBytes("application/octet-stream", pngData),
		},
		{
			name:    "non-image content type refused",
			opts:    Options{FetchRemote: true, AllowPrivate: true},
			handler: serveBytes("text/html; charset=utf-8", html),
			wantErr: `media type "text/html", which is not an image`,
		},
		{
			name:    "unsupported image content type refused",
			opts:    Options{FetchRemote: true, AllowPrivate: true},
			handler: serveBytes("image/svg+xml", []byte("<svg/>")),
			wantErr: `unsupported image type "image/svg+xml"`,
		},
		{
			name:    "generic content type sniffed as html refused",
			opts:    Options{FetchRemote: true, AllowPrivate: true},
			handler: serveBytes("application/octet-stream", html),
			wantErr: "detected from content) has media type \"text/html\"",
		},
		{
			name:    "missing content type sniffed as text refused",
			opts:    Options{FetchRemote: true, AllowPrivate: true},
			handler: serveBytes("", []byte("hello")),
			wantErr: "not an image",
		},
		{
			name: "status other than 200 refused",
			opts: Options{FetchRemote: true, AllowPrivate: true},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "image/png")
				w.WriteHeader(http.StatusNotFound)
				w.Write(pngData)
			},
			wantErr: "HTTP status 404, expected 200",
		},
		{
			name:    "empty body refused",
			opts:    Options{FetchRemote: true, AllowPrivate: true},
			handler: serveBytes("image/png", nil),
			wantErr: "empty body",
		},
		{
			name:    "body exactly MaxBytes accepted",
			opts:    Options{FetchRemote: true, AllowPrivate: true, MaxBytes: int64(len(pngData))},
			handler: serveBytes("image/png", pngData),
		},
		{
			name:    "body over MaxBytes refused (Content-Length)",
			opts:    Options{FetchRemote: true, AllowPrivate: true, MaxBytes: int64(len(pngData)) - 1},
			handler: serveBytes("image/png", pngData),
			wantErr: fmt.Sprintf("too large: the limit is %d bytes", len(pngData)-1),
		},
		{
			name: "body over MaxBytes refused (chunked, no Content-Length)",
			opts: Options{FetchRemote: true, AllowPrivate: true, MaxBytes: 1000},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "image/png")
				chunk := make([]byte, 100)
				for i := 0; i < 1000; i++ { // 100 kB, far over the limit
					if _, err := w.Write(chunk); err != nil {
						return
					}
					w.(http.Flusher).Flush()
				}
			},
			wantErr: "too large: the limit is 1000 bytes",
		},
		{
			name:    "allowlist exact match",
			opts:    Options{FetchRemote: true, AllowPrivate: true, AllowedHosts: []string{"images.example.com", "127.0.0.1"}},
			handler: serveBytes("image/png", pngData),
		},
		{
			name:    "allowlist refuses other hosts",
			opts:    Options{FetchRemote: true, AllowPrivate: true, AllowedHosts: []string{"images.example.com", "*.example.org"}},
			handler: serveBytes("image/png", pngData),
			noHits:  true,
			wantErr: `host "127.0.0.1" is not in the list of allowed image hosts`,
		},
		{
			name:    "allowlist of only invalid entries fails closed",
			opts:    Options{FetchRemote: true, AllowPrivate: true, AllowedHosts: []string{"  ", "."}},
			handler: serveBytes("image/png", pngData),
			noHits:  true,
			wantErr: "not in the list of allowed image hosts",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer4(t, tc.handler)
			l, _ := guardedLoader(t, tc.opts)
			got, err := l.Load(context.Background(), srv.URL+"/img"+tc.path)
			if tc.noHits && srv.hits.Load() != 0 {
				t.Errorf("server was contacted %d times, want 0", srv.hits.Load())
			}
			if tc.wantErr != "" {
				wantError(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if want := base64.StdEncoding.EncodeToString(pngData); got != want {
				t.Fatalf("Load returned %d base64 chars, want the PNG (%d)", len(got), len(want))
			}
		})
	}
}

// A host name (not an IP literal) that resolves to loopback is caught by the
// dialer's Control hook on the resolved address — the DNS-rebinding defence.
func TestLoadRemoteHostnameResolvingToLoopback(t *testing.T) {
	srv := newServer4(t, serveBytes("image/png", pngBytes(t)))
	l, dials := guardedLoader(t, Options{FetchRemote: true})
	_, err := l.Load(context.Background(), "http://localhost:"+srv.port()+"/img")
	wantError(t, err, "host resolves to a private or reserved network address")
	if dials.Load() == 0 {
		t.Fatal("expected the refusal to come from the dialer")
	}
	if srv.hits.Load() != 0 {
		t.Fatalf("server contacted %d times", srv.hits.Load())
	}
	var be *blockedAddrError
	if !errors.As(err, &be) {
		t.Fatalf("cause is %v, want blockedAddrError", errors.Unwrap(err))
	}
}

func TestLoadRemoteIPv6Loopback(t *testing.T) {
	pngData := pngBytes(t)
	srv := newServer(t, "tcp6", "[::1]:0", serveBytes("image/png", pngData))
	u := "http://[::1]:" + srv.port() + "/img"

	l, dials := guardedLoader(t, Options{FetchRemote: true})
	_, err := l.Load(context.Background(), u)
	wantError(t, err, "private or reserved network address")
	if dials.Load() != 0 || srv.hits.Load() != 0 {
		t.Fatalf("dials=%d hits=%d, want no connection attempt", dials.Load(), srv.hits.Load())
	}

	l2, _ := guardedLoader(t, Options{FetchRemote: true, AllowPrivate: true})
	got, err := l2.Load(context.Background(), u)
	if err != nil {
		t.Fatalf("AllowPrivate: %v", err)
	}
	if got != base64.StdEncoding.EncodeToString(pngData) {
		t.Fatal("wrong image")
	}
}

// IP-literal URLs for private targets are refused before any dial attempt.
func TestLoadRemotePrivateLiteralsNoConnection(t *testing.T) {
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"http://10.0.0.1/img.png",
		"https://10.0.0.1:8443/img.png",
		"http://[::1]/img.png",
		"http://[fe80::1%25eth0]/img.png",
		"http://[::ffff:169.254.169.254]/img.png",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://100.64.0.1/img.png",
		"http://0.0.0.0/img.png",
		"http://127.0.0.1./img.png",
	} {
		t.Run(u, func(t *testing.T) {
			l, dials := guardedLoader(t, Options{FetchRemote: true})
			_, err := l.Load(context.Background(), u)
			wantError(t, err, "private or reserved network address")
			if n := dials.Load(); n != 0 {
				t.Fatalf("%d dial attempts, want none", n)
			}
		})
	}
}

func TestLoadRemoteURLChecks(t *testing.T) {
	tests := []struct{ url, wantErr string }{
		{"http://user:pass@127.0.0.1/img.png", "must not contain credentials"},
		{"http://user@127.0.0.1/img.png", "must not contain credentials"},
		{"http:///img.png", "has no host"},
		{"http:img.png", "not a valid http(s) URL"},
		{"http://[::1/img.png", "not a valid URL"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			l, dials := guardedLoader(t, Options{FetchRemote: true, AllowPrivate: true})
			_, err := l.Load(context.Background(), tc.url)
			wantError(t, err, tc.wantErr)
			if dials.Load() != 0 {
				t.Fatal("dialled")
			}
		})
	}
}

func TestLoadRemoteRedirects(t *testing.T) {
	pngData := pngBytes(t)
	target := newServer4(t, serveBytes("image/png", pngData))

	redirectTo := func(loc string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, loc, http.StatusFound) }
	}

	tests := []struct {
		name     string
		location string // redirect target; "" = chain of hops (see hops)
		hops     int
		opts     Options
		onlyOrig bool // permit only the origin server's address
		wantErr  string
	}{
		{name: "to metadata endpoint", location: "http://169.254.169.254/latest/meta-data/", opts: Options{FetchRemote: true}, onlyOrig: true, wantErr: "redirect target points to a private or reserved network address"},
		{name: "to 10.0.0.1", location: "http://10.0.0.1/img.png", opts: Options{FetchRemote: true}, onlyOrig: true, wantErr: "redirect target points to a private or reserved"},
		{name: "to ipv6 loopback", location: "http://[::1]:" + target.port() + "/", opts: Options{FetchRemote: true}, onlyOrig: true, wantErr: "redirect target points to a private or reserved"},
		{name: "to host name resolving to loopback", location: "http://localhost:" + target.port() + "/", opts: Options{FetchRemote: true}, onlyOrig: true, wantErr: "host resolves to a private or reserved network address"},
		{name: "to file scheme", location: "file:///etc/passwd", opts: Options{FetchRemote: true, AllowPrivate: true}, wantErr: "redirect target must use http or https"},
		{name: "to credentials", location: "http://u:p@127.0.0.1:" + target.port() + "/", opts: Options{FetchRemote: true, AllowPrivate: true}, wantErr: "redirect target must not contain credentials"},
		{name: "to host outside allowlist", location: "http://localhost:" + target.port() + "/", opts: Options{FetchRemote: true, AllowPrivate: true, AllowedHosts: []string{"127.0.0.1"}}, wantErr: `redirect target host "localhost" is not in the list`},
		{name: "allowed redirect", location: target.URL + "/img", opts: Options{FetchRemote: true, AllowPrivate: true}},
		{name: "three hops allowed", hops: 3, opts: Options{FetchRemote: true, AllowPrivate: true}},
		{name: "four hops refused", hops: 4, opts: Options{FetchRemote: true, AllowPrivate: true}, wantErr: "redirected more than 3 times"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := target.hits.Load()
			var origin *testServer
			if tc.hops > 0 {
				origin = newServer4(t, func(w http.ResponseWriter, r *http.Request) {
					n, _ := strconv.Atoi(r.URL.Query().Get("n"))
					if n >= tc.hops {
						serveBytes("image/png", pngData)(w, r)
						return
					}
					http.Redirect(w, r, "/img?n="+strconv.Itoa(n+1), http.StatusFound)
				})
			} else {
				origin = newServer4(t, redirectTo(tc.location))
			}
			l, _ := guardedLoader(t, tc.opts)
			if tc.onlyOrig {
				orig := origin.addrPort()
				l.permit = func(ap netip.AddrPort) bool { return ap == orig }
			}
			got, err := l.Load(context.Background(), origin.URL+"/img")
			if tc.wantErr != "" {
				wantError(t, err, tc.wantErr)
				if origin.hits.Load() == 0 {
					t.Fatal("origin was not contacted")
				}
				if target.hits.Load() != before {
					t.Fatal("redirect target was contacted")
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got != base64.StdEncoding.EncodeToString(pngData) {
				t.Fatal("wrong image")
			}
			if tc.hops > 0 && origin.hits.Load() != int64(tc.hops)+1 {
				t.Fatalf("origin hits = %d, want %d", origin.hits.Load(), tc.hops+1)
			}
		})
	}
}

func TestLoadRemoteTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	partial := pngBytes(t)[:16]
	tests := []struct {
		name    string
		handler func(s *testServer) http.HandlerFunc
	}{
		{
			name: "stall before headers",
			handler: func(s *testServer) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-s.done:
					}
				}
			},
		},
		{
			name: "stall mid-body",
			handler: func(s *testServer) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "image/png")
					w.Header().Set("Content-Length", "1000")
					w.Write(partial)
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
					case <-s.done:
					}
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var srv *testServer
			srv = newServer4(t, func(w http.ResponseWriter, r *http.Request) { tc.handler(srv)(w, r) })
			l, _ := guardedLoader(t, Options{FetchRemote: true, AllowPrivate: true, Timeout: timeout})
			start := time.Now()
			_, err := l.Load(context.Background(), srv.URL+"/img")
			elapsed := time.Since(start)
			wantError(t, err, "timed out fetching image URL (limit 300ms)")
			if elapsed < timeout || elapsed > timeout+2*time.Second {
				t.Fatalf("returned after %v, want about %v", elapsed, timeout)
			}
		})
	}
}

// When the caller's own context ends, Load returns ctx.Err() rather than a
// client-facing *Error.
func TestLoadRemoteCallerCancelled(t *testing.T) {
	var srv *testServer
	srv = newServer4(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-srv.done:
		}
	})
	l, _ := guardedLoader(t, Options{FetchRemote: true, AllowPrivate: true})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := l.Load(ctx, srv.URL+"/img")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	var ie *Error
	if errors.As(err, &ie) {
		t.Fatalf("caller cancellation reported as client error %q", ie.Message)
	}
}

// The environment's proxy settings must not be used for image fetches: a
// proxy would make the Control check see the proxy's address, not the image
// host's. net/http never proxies loopback targets (and caches the proxy
// environment once per process), so the end-to-end part below cannot fail on
// its own; the assertion that carries the weight is transport.Proxy == nil.
func TestLoadRemoteIgnoresProxyEnvironment(t *testing.T) {
	proxy := newServer4(t, serveBytes("image/png", pngBytes(t)))
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	srv := newServer4(t, serveBytes("image/png", pngBytes(t)))
	l, _ := guardedLoader(t, Options{FetchRemote: true, AllowPrivate: true})
	if _, err := l.Load(context.Background(), srv.URL+"/img"); err != nil {
		t.Fatal(err)
	}
	if proxy.hits.Load() != 0 || srv.hits.Load() != 1 {
		t.Fatalf("proxy hits=%d server hits=%d; want direct connection", proxy.hits.Load(), srv.hits.Load())
	}
	if l.transport.Proxy != nil {
		t.Fatal("transport has a Proxy func")
	}
}

func TestHostAllowed(t *testing.T) {
	l := New(Options{AllowedHosts: []string{"Images.Example.COM.", "*.cdn.example.net", "*", "a.*.org"}})
	tests := []struct {
		host string
		want bool
	}{
		{"images.example.com", true},
		{"IMAGES.EXAMPLE.COM", true},
		{"images.example.com.", true},
		{"example.com", false},
		{"evil-images.example.com", false},
		{"images.example.com.evil.net", false},
		{"x.cdn.example.net", true},
		{"a.b.cdn.example.net", true},
		{"cdn.example.net", false},
		{"xcdn.example.net", false},
		{"anything.com", false}, // "*" is not a wildcard for everything
		{"a.b.org", false},
	}
	for _, tc := range tests {
		if got := l.hostAllowed(normaliseHost(tc.host)); got != tc.want {
			t.Errorf("hostAllowed(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
	if !New(Options{}).hostAllowed("anything.com") {
		t.Error("empty allowlist must allow any host")
	}
}

func TestDefaults(t *testing.T) {
	l := New(Options{})
	if l.opts.MaxBytes != 20<<20 || l.opts.Timeout != 10*time.Second || l.opts.FetchRemote || l.opts.AllowPrivate {
		t.Fatalf("defaults = %+v", l.opts)
	}
	if l.client.Jar != nil || l.transport.Proxy != nil {
		t.Fatal("client must have no cookie jar and no proxy")
	}
}
