package jsonscan

import "encoding/binary"

// RawString returns the contents of the string at the cursor, escapes
// untouched; plain is true when they hold neither an escape nor a
// non-ASCII byte (the bytes are then the string itself). The bytes are the
// scanned text's. Long plain runs (a base64 embedding) are skipped eight
// bytes at a time.
func (s *Scanner) RawString() (raw []byte, plain, ok bool) {
	if s.peek() != '"' {
		return nil, false, false
	}
	b := s.b
	start := s.i + 1
	i := start
	for i+8 <= len(b) && !special(binary.LittleEndian.Uint64(b[i:])) {
		i += 8
	}
	return s.stringFrom(start, i)
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special reports whether any of the eight bytes of v is a quote, a
// backslash, a control character or not ASCII (the bytes a string's plain
// run cannot hold).
func special(v uint64) bool {
	zero := func(x uint64) uint64 { return (x - ones) &^ x & highs } // a zero byte
	return (v&highs | zero(v^'"'*ones) | zero(v^'\\'*ones) | (v-0x20*ones)&^v&highs) != 0
}
