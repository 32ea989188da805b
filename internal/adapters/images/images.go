// Package images turns the image_url.url value of an OpenAI Chat Completions
// content part into the raw standard-base64 string Ollama's /api/chat expects
// in a message's "images" array.
//
// Two kinds of URL are understood:
//
//   - data: URLs (RFC 2397) carrying a base64-encoded PNG, JPEG, GIF or WebP
//     image. The payload is validated and re-encoded canonically; URL-safe and
//     unpadded base64, ASCII whitespace and percent-encoded characters are
//     tolerated. The decoded size is checked against Options.MaxBytes from the
//     payload length before anything is decoded.
//   - http and https URLs, which are refused unless Options.FetchRemote is
//     set. When enabled, the download is protected against SSRF: the IP
//     actually being connected to is checked in the dialer's Control hook
//     (so DNS rebinding cannot bypass it), every redirect is re-checked
//     (at most 3 are followed), the body is capped at MaxBytes, the whole
//     fetch is bounded by Options.Timeout, and proxies from the environment
//     (HTTP_PROXY etc.) are deliberately not used — a proxy would make the
//     address check apply to the proxy instead of the image host.
//
// Every other scheme (file:, ftp:, gopher:, ...) is rejected.
//
// Errors caused by the URL or the content behind it are *Error values whose
// Message is safe to show to the API client; it never contains resolved
// addresses or low-level network errors (those are available through
// errors.Unwrap for logging).
package images

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by New for zero (or negative) Options fields.
const (
	DefaultMaxBytes int64         = 20 << 20 // 20 MiB
	DefaultTimeout  time.Duration = 10 * time.Second
)

// maxRedirects is the number of redirects followed for a remote fetch.
const maxRedirects = 3

// Options configures a Loader. The zero value is the safe default: data: URLs
// only, 20 MiB per image.
type Options struct {
	// FetchRemote enables downloading http(s) image URLs. Off by default.
	FetchRemote bool
	// MaxBytes caps the size of one image: the decoded size of a data: URL
	// and the body of a download. <= 0 means DefaultMaxBytes.
	MaxBytes int64
	// Timeout bounds a whole download (connect, redirects, headers and
	// body). <= 0 means DefaultTimeout.
	Timeout time.Duration
	// AllowPrivate allows fetching from loopback, private (RFC 1918,
	// fc00::/7), link-local (169.254/16 including the 169.254.169.254 cloud
	// metadata endpoint, fe80::/10), unspecified, multicast, CGNAT
	// (100.64/10) and other special-purpose addresses. Off by default.
	AllowPrivate bool
	// AllowedHosts optionally restricts remote fetches to these host names:
	// an entry matches exactly ("images.example.com", case-insensitive) or,
	// written "*.example.com", matches any subdomain of example.com (but not
	// example.com itself). Empty means any host; the address check above
	// applies either way. Checked for the original URL and every redirect.
	AllowedHosts []string
}

// Error is a client-facing error: Message explains what is wrong with the
// image URL and is suitable for an HTTP 400 response naming the parameter.
type Error struct {
	Message string
	cause   error // internal detail for logs; not part of Message
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the underlying cause, if any (for logging).
func (e *Error) Unwrap() error { return e.cause }

func newError(msg string) *Error { return &Error{Message: msg} }

func wrapError(msg string, cause error) *Error { return &Error{Message: msg, cause: cause} }

// Loader resolves image URLs. It is safe for concurrent use; create one per
// configuration and reuse it so remote fetches share a connection pool.
type Loader struct {
	opts      Options
	hosts     []string // normalised AllowedHosts
	dialer    *net.Dialer
	transport *http.Transport
	client    *http.Client

	// permit overrides the address policy (tests only); nil means
	// "public addresses only unless opts.AllowPrivate".
	permit func(netip.AddrPort) bool
}

// New returns a Loader for opts, applying defaults to zero fields.
func New(opts Options) *Loader {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	l := &Loader{opts: opts}
	for _, h := range opts.AllowedHosts {
		if h = normaliseHost(h); h != "" {
			l.hosts = append(l.hosts, h)
		} else {
			// Keep a never-matching entry so a list of only invalid
			// entries fails closed instead of meaning "any host".
			l.hosts = append(l.hosts, "\x00")
		}
	}
	l.initHTTP()
	return l
}

// CloseIdleConnections closes idle keep-alive connections of remote fetches.
func (l *Loader) CloseIdleConnections() { l.transport.CloseIdleConnections() }

// Load returns the image referenced by url as standard, padded base64 with no
// data: prefix.
//
// Errors are *Error with a client-facing message, except that if ctx itself
// is cancelled or expires during a remote fetch, ctx.Err() is returned (the
// client went away; that is not a problem with the URL).
func (l *Loader) Load(ctx context.Context, url string) (string, error) {
	url = strings.TrimSpace(url)
	if url == "" {
		return "", newError("image URL is empty; send the image as a data: URL (data:image/png;base64,...)")
	}
	scheme, ok := urlScheme(url)
	switch {
	case ok && scheme == "data":
		_, data, err := parseDataURL(url, l.opts.MaxBytes)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(data), nil
	case ok && (scheme == "http" || scheme == "https"):
		if !l.opts.FetchRemote {
			return "", newError("image URLs are not fetched by this service; send the image as a data: URL, or enable images.fetch_remote")
		}
		data, err := l.fetch(ctx, url)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(data), nil
	case ok:
		return "", newError("unsupported image URL scheme " + quote(scheme, 32) + "; " + l.supportedHint())
	default:
		return "", newError("image URL is not a valid URL; " + l.supportedHint())
	}
}

func (l *Loader) supportedHint() string {
	if l.opts.FetchRemote {
		return "send the image as a data: URL (data:image/png;base64,...) or an http(s) URL"
	}
	return "send the image as a data: URL (data:image/png;base64,...)"
}

// urlScheme returns the lower-cased scheme of s (RFC 3986:
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by ':').
func urlScheme(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case ('0' <= c && c <= '9') || c == '+' || c == '-' || c == '.':
			if i == 0 {
				return "", false
			}
		case c == ':':
			if i == 0 {
				return "", false
			}
			return strings.ToLower(s[:i]), true
		default:
			return "", false
		}
	}
	return "", false
}

// quote returns s Go-quoted and truncated to max bytes, for echoing
// client-supplied values in messages.
func quote(s string, max int) string {
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
