package images

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
)

func TestLoadDataURL(t *testing.T) {
	pngData := pngBytes(t)
	std := base64.StdEncoding.EncodeToString(pngData)
	// Data whose encoding uses '+' and '/' (so URL-safe variants differ)
	// and needs padding.
	odd := []byte{0xfb, 0xff, 0xbf, 0xfe, 0x01}
	oddStd := base64.StdEncoding.EncodeToString(odd) // "+/+//gE="

	tests := []struct {
		name    string
		url     string
		max     int64
		want    []byte // decoded image on success
		wantErr string // substring of the *Error message
	}{
		{name: "png", url: "data:image/png;base64," + std, want: pngData},
		{name: "jpeg", url: "data:image/jpeg;base64," + oddStd, want: odd},
		{name: "jpg alias", url: "data:image/jpg;base64," + oddStd, want: odd},
		{name: "gif", url: "data:image/gif;base64," + oddStd, want: odd},
		{name: "webp", url: "data:image/webp;base64," + oddStd, want: odd},
		{name: "case-insensitive scheme, type and marker", url: "DATA:Image/PNG;BASE64," + std, want: pngData},
		{name: "extra parameters", url: "data:image/png;name=a.png;charset=binary;base64," + std, want: pngData},
		{name: "surrounding whitespace", url: "  data:image/png;base64," + std + "\n", want: pngData},
		{name: "url-safe alphabet", url: "data:image/png;base64," + base64.URLEncoding.EncodeToString(odd), want: odd},
		{name: "unpadded", url: "data:image/png;base64," + base64.RawStdEncoding.EncodeToString(odd), want: odd},
		{name: "url-safe unpadded", url: "data:image/png;base64," + base64.RawURLEncoding.EncodeToString(odd), want: odd},
		{name: "line-wrapped", url: "data:image/png;base64," + std[:8] + "\r\n" + std[8:20] + " \t" + std[20:], want: pngData},
		{name: "percent-encoded", url: "data:image/png;base64," + strings.NewReplacer("+", "%2B", "/", "%2f", "=", "%3D").Replace(oddStd), want: odd},
		{name: "exactly max", url: "data:image/png;base64," + oddStd, max: int64(len(odd)), want: odd},

		{name: "bad base64 character", url: "data:image/png;base64,iVBO!w0K", wantErr: "invalid base64"},
		{name: "bad base64 truncated", url: "data:image/png;base64,iVBOR", wantErr: "invalid base64"},
		{name: "bad base64 data after padding", url: "data:image/png;base64,AA==AA==", wantErr: "invalid base64"},
		{name: "bad base64 padding", url: "data:image/png;base64,AAA==", wantErr: "invalid base64"},
		{name: "bad base64 too much padding", url: "data:image/png;base64,A===", wantErr: "invalid base64"},
		{name: "bad percent escape", url: "data:image/png;base64,AA%G1", wantErr: "%-escape"},
		{name: "double percent decoding not done", url: "data:image/png;base64,AA%252B", wantErr: "invalid base64"},
		{name: "empty data", url: "data:image/png;base64,", wantErr: "no image data"},
		{name: "only padding", url: "data:image/png;base64,====", wantErr: "invalid base64"},
		{name: "missing comma", url: "data:image/png;base64", wantErr: "missing ','"},
		{name: "not base64", url: "data:image/png,%89PNG", wantErr: "must be base64-encoded"},
		{name: "base64 not last", url: "data:image/png;base64;x=y," + std, wantErr: "must be base64-encoded"},
		{name: "non-image type", url: "data:text/plain;base64," + std, wantErr: `media type "text/plain", which is not an image`},
		{name: "html", url: "data:text/html;base64,PHNjcmlwdD4=", wantErr: "not an image"},
		{name: "application/pdf", url: "data:application/pdf;base64," + std, wantErr: "not an image"},
		{name: "unsupported image type", url: "data:image/svg+xml;base64,PHN2Zz4=", wantErr: `unsupported image type "image/svg+xml"`},
		{name: "no media type", url: "data:;base64," + std, wantErr: "has no media type"},
		{name: "default media type", url: "data:," + std, wantErr: "has no media type"},
		{name: "over size", url: "data:image/png;base64," + oddStd, max: int64(len(odd)) - 1, wantErr: "image is too large: 5 bytes decoded, the limit is 4 bytes"},
		{name: "over size by length alone", url: "data:image/png;base64," + strings.Repeat(" ", 1000) + "AAAA", max: 10, wantErr: "image is too large: the limit is 10 bytes"},
		{name: "over default 20 MiB", url: "data:image/png;base64," + strings.Repeat("A", int(4*(DefaultMaxBytes/3+1))), wantErr: "image is too large"},

		{name: "empty", url: "", wantErr: "image URL is empty"},
		{name: "raw base64 without data:", url: std, wantErr: "not a valid URL"},
		{name: "file scheme", url: "file:///etc/passwd", wantErr: `unsupported image URL scheme "file"`},
		{name: "ftp scheme", url: "ftp://example.com/a.png", wantErr: `unsupported image URL scheme "ftp"`},
		{name: "gopher scheme", url: "gopher://127.0.0.1:6379/_INFO", wantErr: `unsupported image URL scheme "gopher"`},
		{name: "remote disabled http", url: "http://example.com/a.png", wantErr: "image URLs are not fetched by this service; send the image as a data: URL, or enable images.fetch_remote"},
		{name: "remote disabled https", url: "HTTPS://example.com/a.png", wantErr: "enable images.fetch_remote"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// FetchRemote is off: nothing here may touch the network.
			l := New(Options{MaxBytes: tc.max})
			got, err := l.Load(context.Background(), tc.url)
			if tc.wantErr != "" {
				wantError(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if want := base64.StdEncoding.EncodeToString(tc.want); got != want {
				t.Fatalf("Load = %q, want canonical %q", got, want)
			}
		})
	}
}

// The size check must happen before decoding: an oversized payload is
// rejected even when it is not valid base64 past the point a decoder would
// have reached, and without allocating its decoded form.
func TestDataURLSizeCheckedBeforeDecoding(t *testing.T) {
	const max = 1 << 20
	payload := strings.Repeat("A", 4<<20) // would decode to 3 MiB
	url := "data:image/png;base64," + payload
	allocs := testing.AllocsPerRun(3, func() {
		if _, _, err := parseDataURL(url, max); err == nil || !strings.Contains(err.Message, "too large") {
			t.Fatalf("expected too large, got %v", err)
		}
	})
	// Only the error value and its message are allocated — no buffers.
	if allocs > 10 {
		t.Fatalf("oversized data URL caused %v allocations; the payload was probably copied or decoded", allocs)
	}
}

func FuzzParseDataURL(f *testing.F) {
	pngData := pngBytes(f)
	for _, s := range []string{
		"data:image/png;base64," + base64.StdEncoding.EncodeToString(pngData),
		"data:image/jpeg;base64,+/+//gE=",
		"data:image/webp;base64,-_-__gE",
		"data:image/gif;base64,%2B%2F%2B%2F%2FgE%3D",
		"DATA:IMAGE/PNG;BASE64,AAAA\r\nAAAA",
		"data:image/png;base64,AA==AA==",
		"data:image/png,raw",
		"data:text/plain;base64,SGVsbG8=",
		"data:,",
		"data:image/png;base64",
		"",
	} {
		f.Add(s, int64(64))
	}
	f.Fuzz(func(t *testing.T, s string, max int64) {
		if max <= 0 || max > 1<<20 {
			max = 1 << 20
		}
		mt, data, err := parseDataURL(s, max)
		if err != nil {
			if mt != "" || data != nil {
				t.Fatalf("error %q returned with values %q, %d bytes", err.Message, mt, len(data))
			}
			if err.Message == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if _, ok := supportedTypes[mt]; !ok || supportedTypes[mt] != mt {
			t.Fatalf("accepted non-canonical or unsupported media type %q", mt)
		}
		if len(data) == 0 || int64(len(data)) > max {
			t.Fatalf("accepted %d bytes with max %d", len(data), max)
		}
		// Round trip: the canonical re-encoding parses to the same bytes.
		canon := "data:" + mt + ";base64," + base64.StdEncoding.EncodeToString(data)
		mt2, data2, err := parseDataURL(canon, max)
		if err != nil || mt2 != mt || !bytes.Equal(data, data2) {
			t.Fatalf("canonical form %q did not round-trip: %v", canon, err)
		}
		// Oracle: for payloads without escapes or whitespace, the result is
		// what encoding/base64 decodes after mapping the URL-safe alphabet
		// to the standard one and dropping padding.
		_, payload, _ := strings.Cut(s, ",")
		if !strings.ContainsAny(payload, "% \t\r\n\f") {
			norm := strings.NewReplacer("-", "+", "_", "/").Replace(strings.TrimRight(payload, "="))
			want, oerr := base64.RawStdEncoding.DecodeString(norm)
			if oerr != nil || !bytes.Equal(want, data) {
				t.Fatalf("payload %q: got %x, encoding/base64 gives %x (%v)", payload, data, want, oerr)
			}
		}
	})
}
