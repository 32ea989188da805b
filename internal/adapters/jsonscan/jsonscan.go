// Package jsonscan reads the few JSON shapes on the streaming hot path (an
// upstream's per-token frame) without reflection. It is a fast path only:
// whatever it does not recognise, it reports as not handled, and the
// caller decodes with encoding/json instead. Fuzz tests hold the two to the
// same results.
package jsonscan

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Scanner walks one JSON text. The zero value is not usable; use New.
type Scanner struct {
	b    []byte
	i    int
	buf  []byte // scratch for unescaping strings
	kbuf []byte // scratch for unescaping keys (Members)
}

// Reset makes the scanner read b from the start; its scratch space is kept.
func (s *Scanner) Reset(b []byte) { s.b, s.i = b, 0 }

// Done reports whether only white space is left.
func (s *Scanner) Done() bool { s.ws(); return s.i == len(s.b) }

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *Scanner) peek() byte {
	// Compact JSON, as upstreams send it, has no white space to skip.
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return s.b[s.i]
	}
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// plainByte marks the bytes a string holds as they are: printable ASCII
// other than the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Object calls member for each key of the object at the cursor; member
// must consume the value (with a typed read or Skip) and return false to
// give up. Keys are only valid during the call and must be plain (no
// escapes) to match.
//
// It is the fast paths' loop, kept apart from object so that the
// per-frame path makes no wrapper call per key.
func (s *Scanner) Object(member func(key []byte) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		key, plain, ok := s.rawString()
		if !ok || s.peek() != ':' || !plain {
			return false // escaped keys are left to encoding/json
		}
		s.i++
		if !member(key) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// Members calls member for each member of the object at the cursor, like
// Object, but with every key as encoding/json reads it (escapes resolved,
// invalid UTF-8 replaced), valid until the next key is read, and with the
// offset at which the member begins (its key's opening quote). member must
// consume the value; after it, Pos is the offset just past the value.
func (s *Scanner) Members(member func(key []byte, at int) bool) bool {
	return s.object(decodedKeys, member)
}

// How object hands keys to member.
type keyMode uint8

const (
	decodedKeys keyMode = iota // as encoding/json reads them
	anyKeys                    // as they are, escapes checked (a value skipped)
)

// object walks the members of the object at the cursor.
func (s *Scanner) object(keys keyMode, member func(key []byte, at int) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		at := s.i
		key, plain, ok := s.rawString()
		if !ok || s.peek() != ':' {
			return false
		}
		if !plain {
			switch keys {
			case decodedKeys:
				if key, ok = unescape(s.kbuf[:0], key); !ok {
					return false
				}
				s.kbuf = key
			case anyKeys:
				if !validEscapes(key) {
					return false
				}
			}
		}
		s.i++
		if !member(key, at) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// Pos is the cursor's offset in the text.
func (s *Scanner) Pos() int { return s.i }

// Peek returns the first byte of the value at the cursor, after white
// space: '{', '[', '"', 't', 'f', 'n', '-' or a digit; 0 at the end.
func (s *Scanner) Peek() byte { return s.peek() }

// Array calls elem for each element of the array at the cursor.
func (s *Scanner) Array(elem func() bool) bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// Null consumes a null and reports whether there was one.
func (s *Scanner) Null() bool {
	if s.peek() == 'n' && s.i+4 <= len(s.b) && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// Bool reads true or false.
func (s *Scanner) Bool() (v, ok bool) {
	switch s.peek() {
	case 't':
		if s.i+4 <= len(s.b) && string(s.b[s.i:s.i+4]) == "true" {
			s.i += 4
			return true, true
		}
	case 'f':
		if s.i+5 <= len(s.b) && string(s.b[s.i:s.i+5]) == "false" {
			s.i += 5
			return false, true
		}
	}
	return false, false
}

// Int reads a small non-negative integer written without fraction or
// exponent.
func (s *Scanner) Int() (int, bool) {
	s.ws()
	start := s.i
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		if s.i-start > 8 {
			return 0, false
		}
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start || (s.i-start > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	return n, true
}

// String reads a string (or null, as ""). The result is a new string.
func (s *Scanner) String() (string, bool) {
	if s.Null() {
		return "", true
	}
	raw, plain, ok := s.rawString()
	if !ok {
		return "", false
	}
	if plain {
		return string(raw), true
	}
	out, ok := unescape(s.buf[:0], raw)
	s.buf = out
	return string(out), ok
}

// rawString returns the bytes between the quotes of the string at the
// cursor, escapes untouched; plain is true when they hold neither an escape
// nor a non-ASCII byte (the bytes are then the string itself).
func (s *Scanner) rawString() (raw []byte, plain, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	return s.stringFrom(s.i+1, s.i+1)
}

// stringFrom scans the string whose contents begin at start, from i (the
// bytes between are plain), to its closing quote.
func (s *Scanner) stringFrom(start, i int) (raw []byte, plain, ok bool) {
	b := s.b
	plain = true
	for ; i < len(b); i++ {
		// Runs of plain bytes, the common case, cost one load each.
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		if i == len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return b[start:i], plain, true
		case c == '\\':
			plain = false
			i++
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return nil, false, false
}

// validEscapes reports whether every escape in a string's contents is one
// JSON allows.
func validEscapes(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i+1 >= len(raw) {
			return false
		}
		switch raw[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i++
		case 'u':
			if _, ok := hex4(raw, i+2); !ok {
				return false
			}
			i += 5
		default:
			return false
		}
	}
	return true
}

// unescape decodes a JSON string's contents as encoding/json does:
// escapes resolved, invalid UTF-8 and lone surrogates become U+FFFD.
func unescape(out, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, raw[i:i+size]...)
			}
			i += size
			continue
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return nil, false
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			out = append(out, raw[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(raw, i+2)
			if !ok {
				return nil, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(raw, i+2); ok && i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						out = utf8.AppendRune(out, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return nil, false
		}
		i += 2
	}
	return out, true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Skip consumes any value.
func (s *Scanner) Skip() bool {
	switch s.peek() {
	case '"':
		raw, plain, ok := s.rawString()
		return ok && (plain || validEscapes(raw))
	case '{':
		// Any keys: a value skipped must be accepted whatever they hold
		// (Object, for the fast paths, takes plain ones only).
		return s.object(anyKeys, func([]byte, int) bool { return s.Skip() })
	case '[':
		return s.Array(s.Skip)
	case 't', 'f':
		_, ok := s.Bool()
		return ok
	case 'n':
		return s.Null()
	}
	return s.number()
}

// number consumes a number in JSON's exact grammar:
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	digits := func() bool {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	s.i = i
	return true
}

// FoldsTo reports whether key matches one of names only when case is
// ignored: encoding/json would take it for that field, so a fast path must
// leave such a value to encoding/json.
func FoldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if len(key) == len(n) && string(key) != n && strings.EqualFold(string(key), n) {
			return true
		}
	}
	return false
}

// AppendString reads a string (not null) and appends its contents, as
// encoding/json reads them (escapes resolved, invalid UTF-8 and lone
// surrogates replaced), to dst: many strings of one text can share one
// buffer, and then one allocation.
func (s *Scanner) AppendString(dst []byte) ([]byte, bool) {
	raw, plain, ok := s.rawString()
	if !ok {
		return dst, false
	}
	if plain {
		return append(dst, raw...), true
	}
	out, ok := unescape(dst, raw)
	if !ok {
		return dst, false
	}
	return out, true
}

// Float64 reads a number (not null) as encoding/json reads one into a
// float64; ok is false for anything else, or a number out of its range.
func (s *Scanner) Float64() (float64, bool) {
	s.peek()
	start := s.i
	if !s.number() {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
	return f, err == nil
}
