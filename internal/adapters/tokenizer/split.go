package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Pre-tokenization: before byte-pair merging, tiktoken cuts text into pieces
// with a regex, and merges never cross a piece boundary. Go's regexp has no
// lookahead, so the two patterns are implemented by hand below, following
// the leftmost-first, backtracking semantics tiktoken's regex engine gives
// them. split_test.go checks them against a backtracking regex engine
// (dlclark/regexp2) running tiktoken's own pattern text.

// o200kPattern and cl100kPattern are tiktoken's pre-tokenization regexes,
// which nextO200k and nextCl100k implement.
const (
	o200kPattern = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// Character classes of the patterns, as bits of a class.
const (
	classLetter  = 1 << iota // \p{L}
	classNumber              // \p{N}
	classSpace               // \s: Unicode White_Space
	classUpper               // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
	classLower               // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
	classNewline             // [\r\n]
)

type class uint8

var asciiClasses = func() (t [utf8.RuneSelf]class) {
	for r := range rune(utf8.RuneSelf) {
		t[r] = classify(r)
	}
	return t
}()

func classify(r rune) class {
	var c class
	switch {
	case unicode.IsLetter(r):
		c |= classLetter
		if unicode.In(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo) {
			c |= classUpper
		}
		if unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo) {
			c |= classLower
		}
	case unicode.IsMark(r):
		c |= classUpper | classLower
	case unicode.IsNumber(r):
		c |= classNumber
	case unicode.IsSpace(r):
		c |= classSpace
		if r == '\r' || r == '\n' {
			c |= classNewline
		}
	}
	return c
}

// at returns the rune at byte offset i of s, its size and its classes.
func at(s string, i int) (rune, int, class) {
	if b := s[i]; b < utf8.RuneSelf {
		return rune(b), 1, asciiClasses[b]
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return r, n, classify(r)
}

// before returns the rune ending at byte offset i of s, its size and classes.
func before(s string, i int) (rune, int, class) {
	if b := s[i-1]; b < utf8.RuneSelf {
		return rune(b), 1, asciiClasses[b]
	}
	r, n := utf8.DecodeLastRuneInString(s[:i])
	return r, n, classify(r)
}

// run returns the end of the run of runes having any of classes want from
// byte offset i, and how many runes it holds, stopping after max runes.
func run(s string, i int, want class, max int) (end, runes int) {
	for i < len(s) && runes < max {
		_, n, c := at(s, i)
		if c&want == 0 {
			break
		}
		i += n
		runes++
	}
	return i, runes
}

// runNot is like run for the runes having none of classes reject.
func runNot(s string, i int, reject class) int {
	for i < len(s) {
		_, n, c := at(s, i)
		if c&reject != 0 {
			break
		}
		i += n
	}
	return i
}

const unlimited = int(^uint(0) >> 1)

// nextO200k returns the end of the o200k_base piece that starts at byte
// offset i of s (i < len(s)).
func nextO200k(s string, i int) int {
	r, n, c := at(s, i)
	// [^\r\n\p{L}\p{N}]? followed by a word, the first alternative (lower
	// case ending) tried with then without the prefix, then the second.
	prefix := c&(classLetter|classNumber|classNewline) == 0
	if prefix {
		if end := o200kLowerWord(s, i+n); end >= 0 {
			return end
		}
	}
	if end := o200kLowerWord(s, i); end >= 0 {
		return end
	}
	if prefix {
		if end := o200kUpperWord(s, i+n); end >= 0 {
			return end
		}
	}
	if end := o200kUpperWord(s, i); end >= 0 {
		return end
	}
	return nextCommon(s, i, r, n, c, true)
}

// o200kLowerWord matches [Upper]*[Lower]+ contraction? at byte offset i and
// returns its end, or -1.
func o200kLowerWord(s string, i int) int {
	upperEnd, _ := run(s, i, classUpper, unlimited)
	if upperEnd < len(s) {
		if _, _, c := at(s, upperEnd); c&classLower != 0 {
			end, _ := run(s, upperEnd, classLower, unlimited)
			return contraction(s, end)
		}
	}
	// Backtrack [Upper]* one rune at a time until [Lower]+ matches: at the
	// last rune of the upper run that is also lower (Lm, Lo or M). Runes after
	// it are not lower, so [Lower]+ takes that one rune.
	for j := upperEnd; j > i; {
		_, n, c := before(s, j)
		j -= n
		if c&classLower != 0 {
			return contraction(s, j+n)
		}
	}
	return -1
}

// o200kUpperWord matches [Upper]+[Lower]* contraction? at byte offset i and
// returns its end, or -1.
func o200kUpperWord(s string, i int) int {
	upperEnd, runes := run(s, i, classUpper, unlimited)
	if runes == 0 {
		return -1
	}
	end, _ := run(s, upperEnd, classLower, unlimited)
	return contraction(s, end)
}

// contraction returns the end of (?i:'s|'t|'re|'ve|'m|'ll|'d) at byte offset
// i of s, or i when there is none.
func contraction(s string, i int) int {
	if end := matchContraction(s, i); end >= 0 {
		return end
	}
	return i
}

// matchContraction returns the end of (?i:'s|'t|'re|'ve|'m|'ll|'d) at byte
// offset i of s, or -1. Case folding is Unicode's: s also matches ſ (U+017F).
func matchContraction(s string, i int) int {
	if i >= len(s) || s[i] != '\'' {
		return -1
	}
	i++
	if i >= len(s) {
		return -1
	}
	lower := func(b byte) byte { return b | 0x20 }
	switch lower(s[i]) {
	case 's', 't', 'm', 'd':
		return i + 1
	case 'r', 'v':
		if i+1 < len(s) && lower(s[i+1]) == 'e' {
			return i + 2
		}
	case 'l':
		if i+1 < len(s) && lower(s[i+1]) == 'l' {
			return i + 2
		}
	default:
		if r, n := utf8.DecodeRuneInString(s[i:]); r == 'ſ' {
			return i + n
		}
	}
	return -1
}

// nextCl100k returns the end of the cl100k_base piece that starts at byte
// offset i of s (i < len(s)).
func nextCl100k(s string, i int) int {
	if end := matchContraction(s, i); end >= 0 {
		return end
	}
	r, n, c := at(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c&(classLetter|classNumber|classNewline) == 0 {
		if end, runes := run(s, i+n, classLetter, unlimited); runes > 0 {
			return end
		}
	}
	if end, runes := run(s, i, classLetter, unlimited); runes > 0 {
		return end
	}
	return nextCommon(s, i, r, n, c, false)
}

// nextCommon matches the alternatives both patterns end with, at byte offset
// i of s where rune r of n bytes and classes c starts:
//
//	\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// where o200k_base, which asks for slash, also takes slashes after
// punctuation: [\r\n/]*.
func nextCommon(s string, i int, r rune, n int, c class, slash bool) int {
	if c&classNumber != 0 {
		end, _ := run(s, i, classNumber, 3)
		return end
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'; the optional space can only be a space,
	// and without it the rune at i must not be a space.
	if k := i + btoi(r == ' '); k < len(s) {
		if end := runNot(s, k, classLetter|classNumber|classSpace); end > k {
			return trailingRun(s, end, slash)
		}
	}
	if c&classSpace == 0 {
		return i + n // unreachable: every rune is a letter, mark, number, space or other
	}
	spaceEnd, _ := run(s, i, classSpace, unlimited)
	// \s*[\r\n]+: backtracking \s* leaves the space run at its last newline.
	for j := spaceEnd; j > i; {
		_, n, c := before(s, j)
		if c&classNewline != 0 {
			return j
		}
		j -= n
	}
	// \s+(?!\S): the whole run at the end of text, else all but its last
	// rune (which then precedes a non-space), if that leaves any.
	if spaceEnd == len(s) {
		return spaceEnd
	}
	if _, n, _ := before(s, spaceEnd); spaceEnd-n > i {
		return spaceEnd - n
	}
	return spaceEnd // \s+
}

// trailingRun returns the end of [\r\n]*, or [\r\n/]* with slash, at byte
// offset i of s.
func trailingRun(s string, i int, slash bool) int {
	for i < len(s) && (s[i] == '\r' || s[i] == '\n' || slash && s[i] == '/') {
		i++
	}
	return i
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
