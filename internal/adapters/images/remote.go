package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseHeaderBytes bounds the response headers of a remote fetch.
const maxResponseHeaderBytes = 64 << 10

// initHTTP builds the HTTP client used for remote fetches. Its dialer checks
// every address right before connecting; no proxy is used.
func (l *Loader) initHTTP() {
	l.dialer = &net.Dialer{
		Timeout:   l.opts.Timeout,
		KeepAlive: 30 * time.Second,
		Control:   l.control,
	}
	l.transport = &http.Transport{
		// Deliberately no Proxy (not even http.ProxyFromEnvironment): with
		// a proxy the dialer would check the proxy's address, not the
		// image host's, defeating the SSRF protection.
		Proxy:                  nil,
		DialContext:            l.dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           16,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    l.opts.Timeout,
		ResponseHeaderTimeout:  l.opts.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	l.client = &http.Client{
		Transport:     l.transport,
		CheckRedirect: l.checkRedirect,
		// The whole fetch is bounded by a context deadline in fetch; this
		// is a second, independent bound covering the same span.
		Timeout: l.opts.Timeout,
	}
}

func (l *Loader) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return newError(fmt.Sprintf("image URL redirected more than %d times", maxRedirects))
	}
	if err := l.checkURL(req.URL, "image URL redirect target"); err != nil {
		return err
	}
	return nil
}

// checkURL applies the static checks to a remote URL (the original one and
// every redirect target): scheme, no credentials, host allowlist, and — for
// IP-literal hosts — the address policy, so such URLs fail without any
// connection attempt. Host names are checked at dial time by l.control.
func (l *Loader) checkURL(u *neturl.URL, what string) *Error {
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return newError(what + " must use http or https")
	}
	if u.Opaque != "" {
		return newError(what + " is not a valid http(s) URL")
	}
	if u.User != nil {
		return newError(what + " must not contain credentials (user:password@)")
	}
	host := normaliseHost(u.Hostname())
	if host == "" {
		return newError(what + " has no host")
	}
	if !l.hostAllowed(host) {
		return newError(what + " host " + quote(host, 255) + " is not in the list of allowed image hosts")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !l.permitted(netip.AddrPortFrom(ip.WithZone("").Unmap(), urlPort(u))) {
			return newError(what + " points to a private or reserved network address, which is not allowed")
		}
	}
	return nil
}

// urlPort returns the URL's port, defaulting by scheme; 0 if invalid.
func urlPort(u *neturl.URL) uint16 {
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return 0
		}
		return uint16(n)
	}
	if strings.EqualFold(u.Scheme, "https") {
		return 443
	}
	return 80
}

// normaliseHost lower-cases a host name, drops a trailing dot and brackets.
func normaliseHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(h, ".")
}

// hostAllowed reports whether host (normalised) matches AllowedHosts.
func (l *Loader) hostAllowed(host string) bool {
	if len(l.hosts) == 0 {
		return true
	}
	for _, pat := range l.hosts {
		if suffix, ok := strings.CutPrefix(pat, "*."); ok {
			if suffix != "" && !strings.Contains(suffix, "*") &&
				len(host) > len(suffix)+1 && strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == pat {
			return true
		}
	}
	return false
}

// genericContentTypes are Content-Type values that say nothing about the
// body; the type is then sniffed from the content.
var genericContentTypes = map[string]bool{
	"":                         true,
	"application/octet-stream": true,
	"binary/octet-stream":      true,
	"application/binary":       true,
	"application/unknown":      true,
	"unknown/unknown":          true,
}

// fetch downloads a remote image with all the protections described in the
// package documentation.
func (l *Loader) fetch(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return nil, wrapError("image URL is not a valid URL", err)
	}
	if e := l.checkURL(u, "image URL"); e != nil {
		return nil, e
	}

	fctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, wrapError("image URL is not a valid URL", err)
	}
	req.Header.Set("Accept", "image/png, image/jpeg, image/gif, image/webp;q=0.9, image/*;q=0.5")
	req.Header.Set("User-Agent", "chatgpt-api-adapter-image-fetch/1")

	resp, err := l.client.Do(req)
	if err != nil {
		return nil, l.fetchError(ctx, fctx, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		return nil, newError(fmt.Sprintf("image URL returned HTTP status %d, expected 200", resp.StatusCode))
	}
	if resp.ContentLength > l.opts.MaxBytes {
		return nil, l.tooLarge()
	}

	declared := ""
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mt, _, perr := mime.ParseMediaType(ct)
		if perr != nil {
			mt = "" // unparsable header: treat as missing and sniff
		}
		declared = strings.ToLower(mt)
	}
	if !genericContentTypes[declared] {
		if _, e := checkImageType(declared, "image URL response"); e != nil {
			return nil, e
		}
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, l.opts.MaxBytes+1))
	if err != nil {
		return nil, l.fetchError(ctx, fctx, err)
	}
	if int64(len(body)) > l.opts.MaxBytes {
		return nil, l.tooLarge()
	}
	if len(body) == 0 {
		return nil, newError("image URL returned an empty body")
	}
	if genericContentTypes[declared] {
		sniffed, _, _ := mime.ParseMediaType(http.DetectContentType(body))
		if _, e := checkImageType(sniffed, "image URL response (detected from content)"); e != nil {
			return nil, e
		}
	}
	return body, nil
}

func (l *Loader) tooLarge() *Error {
	return newError(fmt.Sprintf("image at URL is too large: the limit is %d bytes", l.opts.MaxBytes))
}

// fetchError maps a transport or body-read error to a client-facing *Error,
// or returns ctx.Err() if the caller's own context ended.
func (l *Loader) fetchError(ctx, fctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ie *Error
	if errors.As(err, &ie) { // from checkRedirect
		return ie
	}
	var be *blockedAddrError
	if errors.As(err, &be) {
		return wrapError("image URL host resolves to a private or reserved network address, which is not allowed", err)
	}
	if fctx.Err() != nil || isTimeout(err) {
		return wrapError(fmt.Sprintf("timed out fetching image URL (limit %s)", l.opts.Timeout), err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return wrapError("image URL host could not be resolved", err)
	}
	return wrapError("could not fetch image URL", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
