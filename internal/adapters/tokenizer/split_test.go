package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
	"github.com/pkoukk/tiktoken-go-loader/assets"
)

// The hand-written splitters must cut text exactly as tiktoken's regexes do.
// dlclark/regexp2 is a backtracking engine with lookahead that runs the
// pattern text unchanged, so it serves as the oracle here; the reference
// corpus checks the whole tokenizer against tiktoken itself.

var splitters = []struct {
	name    string
	pattern string
	next    func(string, int) int
}{
	{O200kBase, o200kPattern, nextO200k},
	{Cl100kBase, cl100kPattern, nextCl100k},
}

func pieces(s string, next func(string, int) int) []string {
	var out []string
	for i := 0; i < len(s); {
		end := next(s, i)
		if end <= i || end > len(s) {
			panic("splitter made no progress")
		}
		out = append(out, s[i:end])
		i = end
	}
	return out
}

func regexPieces(t testing.TB, re *regexp2.Regexp, s string) []string {
	t.Helper()
	var out []string
	m, err := re.FindStringMatch(s)
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		out = append(out, m.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// splitAlphabet has runes of every class the patterns tell apart, and the
// sequences their alternatives look for.
var splitAlphabet = []string{
	"a", "z", "A", "Z", "é", "É", "ß", "ſ", "\u212a" /* Kelvin sign, Lu */, "ǅ" /* Lt */, "ʰ" /* Lm */, "中", "ا", "ก",
	"\u0301" /* Mn */, "\u0903" /* Mc */, "\u20dd" /* Me */, "1", "9", "٣", "Ⅻ" /* Nl */, "½", /* No */
	"'", "’", "s", "S", "t", "re", "VE", "m", "ll", "Ll", "d", "'s", "'LL", "'ve", "'ſ",
	" ", " ", "  ", "\t", "\n", "\r", "\r\n", "\n\n", "\v", "\f", "\u0085", "\u00a0", "\u3000", "\u2028", "\u2029",
	".", ",", "!", "/", "//", "-", "_", "$", "<|", "|>", "😀", "👍🏽", "\u200d", "\ufe0f", "\ufeff", "\u200b", "\ufffd", "\x00", "\x1c",
}

func TestSplitMatchesRegex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := 4000
	if testing.Short() {
		cases = 500
	}
	var texts []string
	// Every pair of alphabet entries, then random sequences.
	for _, a := range splitAlphabet {
		for _, b := range splitAlphabet {
			texts = append(texts, a+b)
		}
	}
	for range cases {
		var sb strings.Builder
		for range 1 + rng.IntN(24) {
			sb.WriteString(splitAlphabet[rng.IntN(len(splitAlphabet))])
		}
		texts = append(texts, sb.String())
	}
	for _, sp := range splitters {
		re := regexp2.MustCompile(sp.pattern, regexp2.None)
		failures := 0
		for _, text := range texts {
			got, want := pieces(text, sp.next), regexPieces(t, re, text)
			if !slices.Equal(got, want) {
				t.Errorf("%s: %q splits into %q, regex into %q", sp.name, text, got, want)
				if failures++; failures > 10 {
					t.FailNow()
				}
			}
		}
	}
}

func TestSplitCorpusMatchesRegex(t *testing.T) {
	ref := loadReference(t)
	for _, sp := range splitters {
		re := regexp2.MustCompile(sp.pattern, regexp2.None)
		for name := range ref.Files {
			text := readCorpus(t, name)
			if got, want := pieces(text, sp.next), regexPieces(t, re, text); !slices.Equal(got, want) {
				t.Errorf("%s %s: pieces differ from the regex's", sp.name, name)
			}
		}
	}
}

// FuzzSplit compares the splitters with the regex on any valid UTF-8:
//
//	go test -fuzz FuzzSplit ./internal/adapters/tokenizer/
func FuzzSplit(f *testing.F) {
	for _, s := range splitAlphabet {
		f.Add(s + " x" + s + s + "\n")
	}
	res := make([]*regexp2.Regexp, len(splitters))
	for i, sp := range splitters {
		res[i] = regexp2.MustCompile(sp.pattern, regexp2.None)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return // the tokenizer replaces invalid UTF-8 before splitting
		}
		for i, sp := range splitters {
			if got, want := pieces(text, sp.next), regexPieces(t, res[i], text); !slices.Equal(got, want) {
				t.Errorf("%s: %q splits into %q, regex into %q", sp.name, text, got, want)
			}
		}
	})
}

// TestMergeHeapMatchesScan checks the two merge algorithms agree, on pieces
// that are not single tokens, of every length around the switch between them.
func TestMergeHeapMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "b", "e", "th", "in", "ing", " ", "中", "😀", "é", "0", "x"}
	for _, enc := range []string{O200kBase, Cl100kBase} {
		e := loaded(enc)
		for n := range 300 {
			var sb strings.Builder
			for sb.Len() < n+1 {
				sb.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			piece := sb.String()
			scan, heap := e.mergeScan(piece, nil), e.mergeHeap(piece, nil)
			if !slices.Equal(scan, heap) {
				t.Fatalf("%s %q: scan %v, heap %v", enc, piece, scan, heap)
			}
		}
	}
}

// TestRankFiles pins the embedded rank files to the SHA-256 digests tiktoken
// verifies them against.
func TestRankFiles(t *testing.T) {
	for name, want := range map[string]string{
		O200kBase:  "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
		Cl100kBase: "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
	} {
		data, err := assets.Assets.ReadFile(name + ".tiktoken")
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s.tiktoken: sha256 %s, want %s", name, got, want)
		}
	}
	if n := len(loaded(O200kBase).ranks); n != 199998 {
		t.Errorf("o200k_base: %d ranks, want 199998", n)
	}
	if n := len(loaded(Cl100kBase).ranks); n != 100256 {
		t.Errorf("cl100k_base: %d ranks, want 100256", n)
	}
}
