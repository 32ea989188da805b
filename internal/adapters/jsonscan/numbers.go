package jsonscan

import (
	"encoding/binary"
	"math"
	"strconv"
	"unsafe"
)

// Float32s reads an array of numbers (an embedding) and appends each to
// dst as a float32, parsed from its text as encoding/json parses it into a
// float32 (strconv.ParseFloat with bit size 32: correctly rounded). ok is
// false for anything but an array of numbers, and for a number beyond
// float32's range, which encoding/json refuses; dst may then hold part of
// the array.
func (s *Scanner) Float32s(dst []float32) (_ []float32, ok bool) {
	if s.peek() != '[' {
		return dst, false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return dst, true
	}
	b := s.b
	for {
		f, end, ok := parseFloat32(b, s.i)
		if !ok {
			return dst, false
		}
		dst = append(dst, f)
		s.i = end
		if s.i < len(b) && b[s.i] == ',' { // the usual case: no white space
			s.i++
			s.ws()
			continue
		}
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			return dst, true
		default:
			return dst, false
		}
	}
}

// Float32Span reads an array of numbers like Float32s, but instead of
// converting them returns the array's text as it stands (brackets
// included; each number as written, which a client parses into the very
// float32 Float32s gives), how many numbers it holds, and whether it holds
// white space (AppendCompact leaves it out). The same arrays are refused.
func (s *Scanner) Float32Span() (span []byte, n int, spaced, ok bool) {
	if s.peek() != '[' {
		return nil, 0, false, false
	}
	b, start := s.b, s.i
	s.i++
	if s.i < len(b) && b[s.i] == ']' {
		s.i++
		return b[start:s.i], 0, false, true
	}
	for {
		if s.i < len(b) && isSpace(b[s.i]) {
			spaced = true
			s.ws()
		}
		if n == 0 && s.i < len(b) && b[s.i] == ']' {
			s.i++
			return b[start:s.i], 0, spaced, true
		}
		end := fraction(b, s.i)
		if end < 0 {
			var ok bool
			if end, ok = fitsFloat32(b, s.i); !ok {
				return nil, 0, false, false
			}
		}
		n++
		s.i = end
		if s.i < len(b) && isSpace(b[s.i]) {
			spaced = true
			s.ws()
		}
		if s.i >= len(b) {
			return nil, 0, false, false
		}
		switch b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return b[start:s.i], n, spaced, true
		default:
			return nil, 0, false, false
		}
	}
}

// AppendCompact appends the text of an array of numbers (a span from
// Float32Span) to dst without its white space.
func AppendCompact(dst, span []byte) []byte {
	for len(span) > 0 {
		i := 0
		for i < len(span) && !isSpace(span[i]) {
			i++
		}
		dst = append(dst, span[:i]...)
		for i < len(span) && isSpace(span[i]) {
			i++
		}
		span = span[i:]
	}
	return dst
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// ParseFloat32 parses b, which must be exactly a JSON number, as
// encoding/json parses it into a float32; ok is false for anything else
// and for a number beyond float32's range.
func ParseFloat32(b []byte) (float32, bool) {
	f, end, ok := parseFloat32(b, 0)
	return f, ok && end == len(b)
}

// pow10 holds 10^k rounded to float64 (exactly so up to 10^22), for the
// exponents of values in float32's range.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25,
	1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39}

// parseFloat32 reads the JSON number at b[i:] and returns its value
// rounded to the nearest float32 and the offset just past it. The usual
// embedding value takes a fast path (fast32): its first 19 significant
// digits as an integer, times a power of ten, in float64 arithmetic, which
// is close enough to the exact value to round to the same float32 but in
// rare cases it recognises; those, values of 2^126 and more or below
// 2^-125, and very long exponents go to strconv.ParseFloat.
func parseFloat32(b []byte, i int) (float32, int, bool) {
	n, end, ok := scanNumber(b, i)
	if !ok {
		return 0, end, false
	}
	if n.w == 0 && !n.trunc {
		if n.neg {
			return float32(math.Copysign(0, -1)), end, true
		}
		return 0, end, true
	}
	if f, ok := fast32(n.w, n.exp, n.trunc); ok {
		if n.neg {
			f = -f
		}
		return f, end, true
	}
	f, err := strconv.ParseFloat(unsafe.String(&b[i], end-i), 32)
	return float32(f), end, err == nil
}

// fraction returns the offset just past the number at b[i:] when it is
// -?0.[0-9]+ and followed by a comma or a bracket, else -1: most values of
// an embedding, which fit a float32 whatever their digits.
func fraction(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i+2 >= len(b) || b[i] != '0' || b[i+1] != '.' || b[i+2] < '0' || b[i+2] > '9' {
		return -1
	}
	i += 3
	for i+8 <= len(b) && eightDigits(binary.LittleEndian.Uint64(b[i:])) {
		i += 8
	}
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i < len(b) && (b[i] == ',' || b[i] == ']') {
		return i
	}
	return -1
}

// fitsFloat32 reports whether the JSON number at b[i:] is one encoding/json
// reads into a float32 (no overflow), and the offset just past it. It
// checks the grammar and counts digits; only a number of 10^38 or more has
// its value computed.
func fitsFloat32(b []byte, i int) (int, bool) {
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	whole := 0 // digits before the point, a lone 0 not counted
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			whole++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		first := i
		for i+8 <= len(b) && eightDigits(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == first {
			return i, false
		}
	}
	exp := 0
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		neg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			neg = b[i] == '-'
			i++
		}
		first := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if exp < 1<<20 {
				exp = exp*10 + int(b[i]-'0')
			}
		}
		if i == first {
			return i, false
		}
		if neg {
			exp = -exp
		}
	}
	if whole+exp <= 38 { // below 10^(whole+exp) ≤ 10^38
		return i, true
	}
	_, end, ok := parseFloat32(b, start)
	return end, ok
}

// decimal is a JSON number read as w·10^exp, plus less than 10^exp when
// trunc (digits beyond the 19 w holds, not all zero); nd counts w's digits.
type decimal struct {
	w          uint64
	exp, nd    int
	neg, trunc bool
}

// scanNumber reads the JSON number at b[i:] in its exact grammar,
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, and returns it and the
// offset just past it.
func scanNumber(b []byte, i int) (n decimal, end int, ok bool) {
	if i < len(b) && b[i] == '-' {
		n.neg = true
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if n.nd < 19 {
				n.w = n.w*10 + uint64(b[i]-'0')
				n.nd++
			} else {
				n.exp++
				n.trunc = n.trunc || b[i] != '0'
			}
		}
	default:
		return n, i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		first := i
		if n.w == 0 {
			for i < len(b) && b[i] == '0' { // leading zeros
				i++
				n.exp--
			}
		}
		// Eight digits at a time while they fit in w.
		for n.nd <= 19-8 && i+8 <= len(b) {
			v := binary.LittleEndian.Uint64(b[i:])
			if !eightDigits(v) {
				break
			}
			n.w = n.w*1e8 + parseEight(v)
			n.nd += 8
			n.exp -= 8
			i += 8
		}
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			switch {
			case n.nd < 19 && (n.w != 0 || b[i] != '0'):
				n.w = n.w*10 + uint64(b[i]-'0')
				n.nd++
				n.exp--
			case n.nd < 19: // a leading zero
				n.exp--
			default:
				n.trunc = n.trunc || b[i] != '0'
			}
		}
		if i == first {
			return n, i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		first := i
		e := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if e < 1<<20 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if i == first {
			return n, i, false
		}
		if eneg {
			e = -e
		}
		n.exp += e
	}
	return n, i, true
}

// eightDigits reports whether the eight bytes of v (little-endian) are all
// ASCII digits.
func eightDigits(v uint64) bool {
	return (v&0xF0F0F0F0F0F0F0F0)|((v+0x0606060606060606)&0xF0F0F0F0F0F0F0F0)>>4 == 0x3333333333333333
}

// parseEight returns the value of eight ASCII digits (the first in v's low
// byte): pairs, then quads, then the whole, each step one multiply.
func parseEight(v uint64) uint64 {
	v -= 0x3030303030303030
	v = v*10 + v>>8 // byte 2k: the value of digits 2k, 2k+1
	v = ((v&0x000000FF000000FF)*(100+1000000<<32) + (v>>16&0x000000FF000000FF)*(1+10000<<32)) >> 32
	return v & 0xFFFFFFFF
}

// fast32 is parseFloat32's fast path for the value w·10^exp (plus less than
// one unit of w when trunc): the float32 it rounds to, when it can tell.
//
// w as a float64, times 10^exp rounded to float64, rounded again: each of
// the three roundings is off by at most half a unit in the last place, so
// the product is within two units of w·10^exp (the digits dropped when
// trunc add less than a thousandth of one). Rounding it to float32 gives
// the value's float32 unless a float32 rounding boundary (a midpoint
// between two float32 values) lies that close, which the product's low 29
// bits tell; those rare values, and those outside float32's normal range,
// are left to strconv.
func fast32(w uint64, exp int, trunc bool) (float32, bool) {
	var f float64
	switch {
	case exp >= 0 && exp < len(pow10):
		f = float64(w) * pow10[exp]
	case exp < 0 && -exp < len(negPow10):
		f = float64(w) * negPow10[-exp]
	default:
		return 0, false
	}
	bits := math.Float64bits(f)
	if e := int(bits>>52&0x7ff) - 1023; e <= -126 || e >= 126 {
		return 0, false
	}
	// The distance to the float32 midpoint at 1<<28, in units of the last
	// place (a unit in the binade below is half of one here: 16 of them
	// leave room for the 2 units of error, twice over and more).
	if d := int64(bits&(1<<29-1)) - 1<<28; d >= -16 && d <= 16 {
		return 0, false
	}
	_ = trunc // less than 2^-59 of the value: within the margin
	return float32(f), true
}

// negPow10 holds 10^-k rounded to float64, for the exponents of values in
// float32's normal range written with up to 19 digits.
var negPow10 = func() (t [66]float64) {
	for k := range t {
		t[k], _ = strconv.ParseFloat("1e-"+strconv.Itoa(k), 64)
	}
	return t
}()
