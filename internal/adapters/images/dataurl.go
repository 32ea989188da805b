package images

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// supportedTypes maps accepted image media types (and common aliases) to
// their canonical form. These are the formats OpenAI documents for image
// inputs and that Ollama's vision models decode.
var supportedTypes = map[string]string{
	"image/png":  "image/png",
	"image/jpeg": "image/jpeg",
	"image/jpg":  "image/jpeg", // common non-standard alias
	"image/gif":  "image/gif",
	"image/webp": "image/webp",
}

const supportedTypesHint = "supported types are image/png, image/jpeg, image/gif and image/webp"

// checkImageType validates a (lower-cased, parameter-free) media type and
// returns its canonical form, or a client-facing error.
func checkImageType(mt, what string) (string, *Error) {
	if c, ok := supportedTypes[mt]; ok {
		return c, nil
	}
	if mt == "" {
		return "", newError(what + " has no media type; " + supportedTypesHint)
	}
	if strings.HasPrefix(mt, "image/") {
		return "", newError(what + " has unsupported image type " + quote(mt, 64) + "; " + supportedTypesHint)
	}
	return "", newError(what + " has media type " + quote(mt, 64) + ", which is not an image; " + supportedTypesHint)
}

// parseDataURL parses an RFC 2397 data: URL
//
//	data:[<mediatype>][;<attribute>=<value>]*;base64,<data>
//
// and returns the canonical media type and decoded bytes. The scheme,
// media type and ";base64" marker are case-insensitive. The media type must
// be a supported image type and the payload must be base64 (standard or
// URL-safe alphabet, padded or not; ASCII whitespace and %XX escapes are
// tolerated). maxBytes is enforced on the decoded size, computed from the
// payload length before anything is allocated or decoded. An empty image is
// rejected.
func parseDataURL(s string, maxBytes int64) (string, []byte, *Error) {
	if len(s) < 5 || !strings.EqualFold(s[:5], "data:") {
		return "", nil, newError("image URL is not a data: URL")
	}
	header, payload, ok := strings.Cut(s[5:], ",")
	if !ok {
		return "", nil, newError("malformed image data: URL: missing ',' before the data")
	}

	// header is <mediatype>[;attr=value]*[;base64]. Only the media type and
	// the final ";base64" marker matter; other parameters are ignored. (No
	// strings.Split: a header of many ';' must not cost many allocations.)
	mediaType, isBase64 := header, false
	if i := strings.IndexByte(header, ';'); i >= 0 {
		mediaType = header[:i]
		j := strings.LastIndexByte(header, ';')
		isBase64 = strings.EqualFold(strings.TrimSpace(header[j+1:]), "base64")
	}
	mt, err := checkImageType(strings.ToLower(strings.TrimSpace(mediaType)), "image data: URL")
	if err != nil {
		return "", nil, err
	}
	if !isBase64 {
		return "", nil, newError("image data: URL must be base64-encoded (data:" + mt + ";base64,...)")
	}

	// Cheap O(1) bound first: a valid payload is at most ~4/3 of the decoded
	// size plus whitespace/escapes; anything over 4x is rejected unscanned.
	if maxBytes < 1<<60 && int64(len(payload)) > 4*(maxBytes/3+1)*4+64 {
		return "", nil, newError(fmt.Sprintf("image is too large: the limit is %d bytes", maxBytes))
	}
	n, err := base64Chars(payload)
	if err != nil {
		return "", nil, err
	}
	if n == 0 {
		return "", nil, newError("image data: URL contains no image data")
	}
	if n%4 == 1 {
		return "", nil, newError("image data: URL contains invalid base64 data (truncated)")
	}
	// Exact decoded size of n significant base64 characters.
	if size := int64(n)/4*3 + int64(n%4)*3/4; size > maxBytes {
		return "", nil, newError(fmt.Sprintf("image is too large: %d bytes decoded, the limit is %d bytes", size, maxBytes))
	}

	buf, err := normaliseBase64(payload, n)
	if err != nil {
		return "", nil, err
	}
	data := make([]byte, base64.RawStdEncoding.DecodedLen(len(buf)))
	m, derr := base64.RawStdEncoding.Decode(data, buf)
	if derr != nil {
		return "", nil, wrapError("image data: URL contains invalid base64 data", derr)
	}
	return mt, data[:m], nil
}

func isBase64Space(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// nextByte returns the payload byte at p[i] after %XX decoding and the index
// of the following byte.
func nextByte(p string, i int) (byte, int, *Error) {
	c := p[i]
	if c != '%' {
		return c, i + 1, nil
	}
	if i+2 >= len(p) {
		return 0, 0, newError("image data: URL contains an invalid %-escape")
	}
	hi, ok1 := unhex(p[i+1])
	lo, ok2 := unhex(p[i+2])
	if !ok1 || !ok2 {
		return 0, 0, newError("image data: URL contains an invalid %-escape")
	}
	return hi<<4 | lo, i + 3, nil
}

// base64Chars counts the significant base64 characters of the payload
// (excluding whitespace and trailing '=' padding) without allocating, and
// rejects characters outside both base64 alphabets and misplaced padding.
func base64Chars(p string) (int, *Error) {
	n, pad := 0, 0
	for i := 0; i < len(p); {
		c, next, err := nextByte(p, i)
		if err != nil {
			return 0, err
		}
		i = next
		switch {
		case isBase64Space(c):
		case c == '=':
			pad++
		case pad > 0:
			return 0, newError("image data: URL contains invalid base64 data (data after '=' padding)")
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '+', c == '/', c == '-', c == '_':
			n++
		default:
			return 0, newError(fmt.Sprintf("image data: URL contains invalid base64 data (unexpected character %q)", c))
		}
	}
	if pad > 0 && (pad > 2 || (n+pad)%4 != 0) {
		return 0, newError("image data: URL contains invalid base64 data (bad '=' padding)")
	}
	return n, nil
}

// normaliseBase64 returns the payload's n significant characters in the
// standard alphabet without padding, ready for RawStdEncoding. The payload
// must already have been validated by base64Chars.
func normaliseBase64(p string, n int) ([]byte, *Error) {
	buf := make([]byte, 0, n)
	for i := 0; i < len(p); {
		c, next, err := nextByte(p, i)
		if err != nil {
			return nil, err
		}
		i = next
		switch c {
		case ' ', '\t', '\n', '\r', '\f', '=':
		case '-':
			buf = append(buf, '+')
		case '_':
			buf = append(buf, '/')
		default:
			buf = append(buf, c)
		}
	}
	return buf, nil
}
