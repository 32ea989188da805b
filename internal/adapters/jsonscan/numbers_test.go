package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
)

// checkFloat32 holds ParseFloat32 to encoding/json's reading of s into a
// float32: the same acceptance and the very same bits.
func checkFloat32(t *testing.T, s string) {
	t.Helper()
	if strings.TrimLeft(s, " \t\r\n") != s || strings.TrimRight(s, " \t\r\n") != s {
		return // ParseFloat32 takes a number alone; encoding/json allows white space around it
	}
	var want float32
	werr := json.Unmarshal([]byte(s), &want)
	got, ok := jsonscan.ParseFloat32([]byte(s))
	if ok != (werr == nil) {
		t.Fatalf("ParseFloat32(%q) ok = %v; encoding/json: %v", s, ok, werr)
	}
	if ok && math.Float32bits(got) != math.Float32bits(want) {
		t.Fatalf("ParseFloat32(%q) = %v (%#x), encoding/json: %v (%#x)", s, got, math.Float32bits(got), want, math.Float32bits(want))
	}
}

func TestParseFloat32(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "0.0", "-0.0", "1", "-1", "12", "0.5", "1e0", "1E+2", "1e-2", "-4.547132266452536e-05",
		"-0.006929283495992422", "-0.0069292835", "0.036", "3.4028234663852886e+38", "3.4028235e38", "3.4028236e38",
		"1e38", "1e39", "-1e39", "1e-45", "1.4e-45", "7e-46", "1e-46", "1e-50", "1.1754943508222875e-38",
		"1.17549435e-38", "1.1754942e-38", "16777216", "16777217", "16777217.0000000001", "16777218", "33554435",
		"0.1", "0.2", "0.30000000000000004", "123456789012345678901234567890", "0.000000000000000000000000000001",
		"1.00000005960464477539062", "1.000000059604644775390625", "1.0000000596046447753906251",
		"1.00000017881393432617187499999999", "9007199254740993", "18014398509481985e-10",
		"00", "01", "-", "+1", "1.", ".5", "1e", "1e+", "--1", "1.5e3.2", "0x10", "Inf", "NaN", "1_0",
		"1e99999999999999999999", "1e-99999999999999999999", "0e99999", "0.00000000000000000000000000000000000000000000000000001",
	} {
		checkFloat32(t, s)
	}
}

// TestParseFloat32Random: float32 values printed as OpenAI prints them
// (float64 shortest), as Ollama does (float32 shortest), and with fewer
// or more digits, round to what encoding/json reads.
func TestParseFloat32Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	for range n {
		var f float32
		switch r.IntN(3) {
		case 0:
			f = float32(r.NormFloat64() * 0.036)
		case 1:
			f = math.Float32frombits(r.Uint32())
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				continue
			}
		default:
			f = float32(r.Float64() * math.Pow(10, float64(r.IntN(60)-30)))
		}
		checkFloat32(t, strconv.FormatFloat(float64(f), 'g', -1, 64))
		checkFloat32(t, strconv.FormatFloat(float64(f), 'g', -1, 32))
		checkFloat32(t, strconv.FormatFloat(float64(f), 'e', r.IntN(25), 64))
		checkFloat32(t, strconv.FormatFloat(r.NormFloat64(), 'f', r.IntN(30), 64))
	}
}

func FuzzParseFloat32(f *testing.F) {
	for _, s := range []string{"-0.006929283495992422", "1e39", "1.000000059604644775390625", "0.1e-40", "00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkFloat32(t, s) })
}

// TestFloat32s holds Float32s to encoding/json's reading into []float32,
// and Float32Span to the same numbers as written.
func TestFloat32s(t *testing.T) {
	for _, tc := range []struct{ in, text string }{
		{`[]`, `[]`},
		{` [ ] `, `[]`},
		{`[1]`, `[1]`},
		{`[-0.006929283495992422,0.0,3.4028234663852886e+38]`, `[-0.006929283495992422,0.0,3.4028234663852886e+38]`},
		{"[\n  0.5 ,\n\t-1e-3\r\n ]", `[0.5,-1e-3]`},
		{"[ 1]", `[1]`}, {"[1 ]", `[1]`}, {"[ ]", `[]`},
		{`[1e38,3.4028235e38,-3.4028235e+38,99999999999999999999999999999999999999]`, `[1e38,3.4028235e38,-3.4028235e+38,99999999999999999999999999999999999999]`},
		{`[340282356779733661637539395458142568447]`, `[340282356779733661637539395458142568447]`},
		{`[340282356779733661637539395458142568448]`, ``}, {`[0.0000000001e48]`, `[0.0000000001e48]`}, {`[0.0000000001e49]`, ``}, {`[1e-400,0e400]`, `[1e-400,0e400]`},
		{`[1,]`, ``}, {`[,1]`, ``}, {`[1 2]`, ``}, {`[1e39]`, ``}, {`["1"]`, ``}, {`[1`, ``}, {`[1,`, ``},
		{`{}`, ``}, {`[[1]]`, ``}, {`[01]`, ``}, {`[1.]`, ``},
	} {
		var want []float32
		werr := json.Unmarshal([]byte(tc.in), &want)
		var s jsonscan.Scanner
		s.Reset([]byte(tc.in))
		got, ok := s.Float32s(nil)
		ok = ok && s.Done()
		if ok != (werr == nil) {
			t.Errorf("Float32s(%s) ok %v; encoding/json: %v", tc.in, ok, werr)
			continue
		}
		if ok && (len(got) != len(want) || len(want) > 0 && !equalBits(got, want)) {
			t.Errorf("Float32s(%s) = %v, want %v", tc.in, got, want)
		}
		s.Reset([]byte(tc.in))
		span, n, spaced, sok := s.Float32Span()
		sok = sok && s.Done()
		if sok != ok {
			t.Errorf("Float32Span(%s) ok %v, Float32s %v", tc.in, sok, ok)
			continue
		}
		if !sok {
			continue
		}
		text := jsonscan.AppendCompact([]byte("x"), span)
		if string(text) != "x"+tc.text || n != len(want) || spaced != (len(span) != len(tc.text)) {
			t.Errorf("Float32Span(%s) = %q, %d, spaced %v; compacted %s, want %s, %d", tc.in, span, n, spaced, text, "x"+tc.text, len(want))
		}
		var back []float32
		if err := json.Unmarshal(text[1:], &back); err != nil || len(back) != len(want) || len(want) > 0 && !equalBits(back, want) {
			t.Errorf("Float32Span(%s) = %s reads back as %v (%v), want %v", tc.in, text, back, err, want)
		}
	}
}

// TestFloat32sRefusesNull: encoding/json reads a null element as 0; it
// is no embedding value, and Float32s leaves it to encoding/json.
func TestFloat32sRefusesNull(t *testing.T) {
	var s jsonscan.Scanner
	s.Reset([]byte(`[1,null]`))
	if _, ok := s.Float32s(nil); ok {
		t.Error("Float32s took a null element")
	}
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func FuzzFloat32s(f *testing.F) {
	for _, s := range []string{`[]`, `[1,2.5e-3, -0]`, `[1e39]`, "[\n 0.1,\n 0.2\n]", `[1,]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want []float32
		werr := json.Unmarshal(in, &want)
		var s jsonscan.Scanner
		s.Reset(in)
		got, ok := s.Float32s(nil)
		if !ok || !s.Done() {
			// A null element encoding/json leaves as 0 is refused.
			if werr == nil && want != nil && !bytes.Contains(in, []byte("null")) {
				t.Fatalf("Float32s refused %q, encoding/json reads it", in)
			}
			return
		}
		if werr != nil {
			t.Fatalf("Float32s took %q, encoding/json refuses it: %v", in, werr)
		}
		if !equalBits(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("%q: Float32s %v, encoding/json %v", in, got, want)
		}
		s.Reset(in)
		span, n, spaced, ok := s.Float32Span()
		if !ok || !s.Done() || n != len(want) {
			t.Fatalf("Float32Span(%q) = %q, %d, %v", in, span, n, ok)
		}
		text := jsonscan.AppendCompact(nil, span)
		if spaced != (len(text) != len(span)) {
			t.Fatalf("Float32Span(%q): spaced %v, compacted %q", in, spaced, text)
		}
		var back []float32
		if err := json.Unmarshal(text, &back); err != nil || !equalBits(back, want) && len(want) > 0 {
			t.Fatalf("Float32Span(%q) = %q reads back as %v (%v)", in, text, back, err)
		}
	})
}

// TestParseFloat32Midpoints: numbers at, just below and just above the
// midpoint between two float32 values, where rounding twice (to float64,
// then to float32) would go wrong, round as encoding/json rounds them.
func TestParseFloat32Midpoints(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		f := float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20)))
		if f == 0 || math.IsInf(float64(f), 0) {
			continue
		}
		next := math.Nextafter32(f, float32(math.Inf(1)))
		mid := (float64(f) + float64(next)) / 2 // exact: 25 significant bits
		exact := strconv.FormatFloat(mid, 'e', -1, 64)
		full := strconv.FormatFloat(mid, 'e', 60, 64) // every digit of the midpoint, and zeros
		mant, exp, _ := strings.Cut(full, "e")
		mant = strings.TrimRight(mant, "0")
		checkFloat32(t, exact)
		checkFloat32(t, mant+"e"+exp)
		checkFloat32(t, mant+"000001e"+exp) // just above
		checkFloat32(t, strconv.FormatFloat(math.Nextafter(mid, 0), 'e', -1, 64))
		checkFloat32(t, strconv.FormatFloat(math.Nextafter(mid, math.Inf(1)), 'e', -1, 64))
		checkFloat32(t, strconv.FormatFloat(mid, 'e', 16, 64))
		checkFloat32(t, strconv.FormatFloat(mid, 'f', -1, 64))
	}
}

// TestRawString holds RawString to a byte by byte reading, on strings
// with each kind of byte at each place of an eight-byte run.
func TestRawString(t *testing.T) {
	for _, c := range []string{"\"", "\\", "\x00", "\x1f", "\x7f", "\x80", "é", " ", "~", "\\\"", "\\u00e9", "\n"} {
		for at := range 20 {
			text := strings.Repeat("A", at) + c + strings.Repeat("B", 20-at)
			in := []byte(`"` + text + `" `)
			var s jsonscan.Scanner
			s.Reset(in)
			raw, plain, ok := s.RawString()
			// What a byte by byte reading gives.
			var want string
			wantPlain, wantOK := true, false
			for i := 1; i < len(in); i++ {
				b := in[i]
				if b == '"' {
					want, wantOK = string(in[1:i]), true
					break
				}
				if b == '\\' {
					wantPlain = false
					i++
					continue
				}
				if b < 0x20 {
					break
				}
				if b >= 0x80 {
					wantPlain = false
				}
			}
			if ok != wantOK || ok && (string(raw) != want || plain != wantPlain) {
				t.Errorf("RawString(%q) = %q, %v, %v; want %q, %v, %v", in, raw, plain, ok, want, wantPlain, wantOK)
			}
		}
	}
}
