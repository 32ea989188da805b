package tokenizer

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// ints converts token ids as encode returns them to Decode's argument.
func ints(ids []uint32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

// TestDecodeRoundTrip encodes every corpus file and decodes it back, with
// each encoding, through the public API.
func TestDecodeRoundTrip(t *testing.T) {
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	c := New()
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		text := readCorpus(t, e.Name())
		for _, enc := range []string{O200kBase, Cl100kBase} {
			t.Run(enc+"/"+e.Name(), func(t *testing.T) {
				ids := ints(loaded(enc).encode(text))
				got, err := c.Decode(encodingModel[enc], ids)
				if err != nil {
					t.Fatal(err)
				}
				if got != text {
					t.Errorf("round trip of %d tokens differs (-decoded +original):\n%s", len(ids), cmp.Diff(got, text))
				}
			})
		}
	}
}

// TestDecodeMatchesReference decodes the ids OpenAI's tiktoken produced for
// the corpus (testdata/reference_counts.json, files up to 4 KiB) back to the
// files' text.
func TestDecodeMatchesReference(t *testing.T) {
	ref := loadReference(t)
	c := New()
	checked := 0
	for name, want := range ref.Files {
		text := readCorpus(t, name)
		for _, enc := range []string{O200kBase, Cl100kBase} {
			ids := want.tokens(enc)
			if ids == nil {
				continue // long file: counts only
			}
			checked++
			got, err := c.Decode(encodingModel[enc], ints(ids))
			if err != nil {
				t.Errorf("%s %s: %v", name, enc, err)
				continue
			}
			if got != text {
				t.Errorf("%s %s: tiktoken's ids decode differently (-decoded +file):\n%s", name, enc, cmp.Diff(got, text))
			}
		}
	}
	if checked == 0 {
		t.Fatalf("%s has no token ids", referencePath)
	}
}

// TestDecodeEveryRank checks the reverse lookup against the rank map: each
// rank decodes to the bytes that have it.
func TestDecodeEveryRank(t *testing.T) {
	for _, enc := range []string{O200kBase, Cl100kBase} {
		e := loaded(enc)
		if got, want := len(e.offsets)-1, len(e.ranks); got != want {
			t.Errorf("%s: %d offsets for %d ranks", enc, got, want)
		}
		bad := 0
		for token, rank := range e.ranks {
			if got, ok := e.token(int(rank)); !ok || got != token {
				t.Errorf("%s: rank %d decodes to %q, %v; want %q", enc, rank, got, ok, token)
				if bad++; bad > 10 {
					t.FailNow()
				}
			}
		}
	}
}

// TestDecodeSpecialTokens checks the special tokens of each encoding, as
// tiktoken defines them (tiktoken_ext/openai_public.py), and that an id that
// is special in one encoding is not in the other.
func TestDecodeSpecialTokens(t *testing.T) {
	c := New()
	cases := []struct {
		name  string
		model string
		ids   []int
		want  string
	}{
		{"cl100k endoftext", "gpt-4", []int{100257}, "<|endoftext|>"},
		{"cl100k fim_prefix", "gpt-4", []int{100258}, "<|fim_prefix|>"},
		{"cl100k fim_middle", "gpt-4", []int{100259}, "<|fim_middle|>"},
		{"cl100k fim_suffix", "gpt-4", []int{100260}, "<|fim_suffix|>"},
		{"cl100k endofprompt", "gpt-4", []int{100276}, "<|endofprompt|>"},
		{"o200k endoftext", "gpt-4o", []int{199999}, "<|endoftext|>"},
		{"o200k endofprompt", "gpt-4o", []int{200018}, "<|endofprompt|>"},
		// "Hello" and "!" in each encoding, around a special token.
		{"cl100k among text", "text-embedding-3-small", []int{9906, 100257, 0}, "Hello<|endoftext|>!"},
		{"o200k among text", "gpt-4o-mini", []int{13225, 199999, 0}, "Hello<|endoftext|>!"},
		// cl100k_base's <|endoftext|> id is an ordinary o200k_base token.
		{"cl100k id in o200k", "gpt-4o", []int{100257}, loadedToken(t, O200kBase, 100257)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Decode(tc.model, tc.ids)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Decode(%q, %v) = %q, want %q", tc.model, tc.ids, got, tc.want)
			}
		})
	}
	// Special-token text written as text encodes as ordinary tokens (as
	// encode_ordinary does) and decodes back to the same text.
	for _, enc := range []string{O200kBase, Cl100kBase} {
		ids := ints(loaded(enc).encode("<|endoftext|>"))
		if len(ids) < 2 {
			t.Errorf("%s: <|endoftext|> as text encodes to %v, want ordinary tokens", enc, ids)
		}
		if got, err := c.Decode(encodingModel[enc], ids); err != nil || got != "<|endoftext|>" {
			t.Errorf("%s: %v decode to %q, %v", enc, ids, got, err)
		}
	}
}

func loadedToken(t *testing.T, enc string, id int) string {
	t.Helper()
	tok, ok := loaded(enc).token(id)
	if !ok {
		t.Fatalf("%s has no token %d", enc, id)
	}
	return tok
}

// TestDecodeInvalidID checks that ids outside the vocabulary, past it or in
// its gaps, are errors naming the first one.
func TestDecodeInvalidID(t *testing.T) {
	c := New()
	cases := []struct {
		name  string
		model string
		ids   []int
		want  *DecodeError
	}{
		{"negative", "gpt-4", []int{9906, -1}, &DecodeError{Index: 1, ID: -1, Encoding: Cl100kBase}},
		{"cl100k gap after ranks", "gpt-4", []int{100256}, &DecodeError{Index: 0, ID: 100256, Encoding: Cl100kBase}},
		{"cl100k gap among specials", "gpt-4", []int{100257, 100261}, &DecodeError{Index: 1, ID: 100261, Encoding: Cl100kBase}},
		{"cl100k gap before endofprompt", "gpt-4", []int{100275}, &DecodeError{Index: 0, ID: 100275, Encoding: Cl100kBase}},
		{"cl100k past specials", "text-embedding-3-large", []int{100277}, &DecodeError{Index: 0, ID: 100277, Encoding: Cl100kBase}},
		{"o200k id in cl100k", "gpt-3.5-turbo", []int{0, 1, 2, 199999}, &DecodeError{Index: 3, ID: 199999, Encoding: Cl100kBase}},
		{"o200k gap after ranks", "gpt-4o", []int{199998}, &DecodeError{Index: 0, ID: 199998, Encoding: O200kBase}},
		{"o200k gap among specials", "gpt-4o", []int{200000}, &DecodeError{Index: 0, ID: 200000, Encoding: O200kBase}},
		{"o200k past specials", "gpt-4o", []int{200019}, &DecodeError{Index: 0, ID: 200019, Encoding: O200kBase}},
		{"first of several", "gpt-4o", []int{13225, 999999, -5}, &DecodeError{Index: 1, ID: 999999, Encoding: O200kBase}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Decode(tc.model, tc.ids)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%q, %v) = %q, %v; want a *DecodeError", tc.model, tc.ids, got, err)
			}
			if diff := cmp.Diff(tc.want, de); diff != "" {
				t.Errorf("Decode(%q, %v) error (-want +got):\n%s", tc.model, tc.ids, diff)
			}
			if got != "" {
				t.Errorf("Decode(%q, %v) also returned %q", tc.model, tc.ids, got)
			}
		})
	}
	err := &DecodeError{Index: 3, ID: 999999, Encoding: Cl100kBase}
	if got, want := err.Error(), "token 3 (id 999999) is not in the cl100k_base vocabulary"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDecodeEmpty(t *testing.T) {
	c := New()
	for _, model := range []string{"gpt-4o", "gpt-4", "text-embedding-3-small"} {
		for _, ids := range [][]int{nil, {}} {
			if got, err := c.Decode(model, ids); got != "" || err != nil {
				t.Errorf("Decode(%q, %#v) = %q, %v; want \"\", nil", model, ids, got, err)
			}
		}
	}
}

// TestDecodeSplitMultibyte decodes ids that cut a character: its bytes come
// back as they are, not valid UTF-8 on their own.
func TestDecodeSplitMultibyte(t *testing.T) {
	const parrot = "🦜" // U+1F99C, f0 9f a6 9c: three tokens in both encodings
	c := New()
	cases := []struct {
		model string
		ids   []int
		want  string
	}{
		{"gpt-4", []int{9468, 99, 250}, parrot},
		{"gpt-4", []int{9468, 99}, "\xf0\x9f\xa6"},
		{"gpt-4", []int{250}, "\x9c"},
		{"gpt-4", []int{40, 1093, 9468}, "I like\xf0\x9f"},
		{"gpt-4o", []int{4103, 99, 250}, parrot},
		{"gpt-4o", []int{4103}, "\xf0\x9f"},
		{"gpt-4o", []int{99, 250}, "\xa6\x9c"},
	}
	for _, tc := range cases {
		got, err := c.Decode(tc.model, tc.ids)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Decode(%q, %v) = %q, want %q", tc.model, tc.ids, got, tc.want)
		}
		if utf8.ValidString(got) != (got == parrot) {
			t.Errorf("Decode(%q, %v) = %q: valid UTF-8 %v", tc.model, tc.ids, got, utf8.ValidString(got))
		}
	}
	// The ids are the encoder's for the character.
	for _, enc := range []string{O200kBase, Cl100kBase} {
		want := cases[0].ids
		if enc == O200kBase {
			want = cases[4].ids
		}
		if diff := cmp.Diff(want, ints(loaded(enc).encode(parrot))); diff != "" {
			t.Errorf("%s: ids of %s (-test +encode):\n%s", enc, parrot, diff)
		}
	}
}

// TestDecodeUsesModelEncoding checks Decode picks the encoding EncodingFor
// names: the same ids decode differently in the two encodings.
func TestDecodeUsesModelEncoding(t *testing.T) {
	ref := loadReference(t)
	file := ref.Files["unicode_hindi.txt"]
	text := readCorpus(t, "unicode_hindi.txt")
	c := New()
	cases := []struct {
		model string
		enc   string
	}{
		{"text-embedding-3-small", Cl100kBase},
		{"text-embedding-3-large", Cl100kBase},
		{"text-embedding-ada-002", Cl100kBase},
		{"gpt-3.5-turbo-instruct", Cl100kBase},
		{"gpt-4o", O200kBase},
		{"gpt-4.1-mini", O200kBase},
		{"nomic-embed-text", O200kBase},
	}
	for _, tc := range cases {
		if got := EncodingFor(tc.model); got != tc.enc {
			t.Fatalf("EncodingFor(%q) = %q, want %q", tc.model, got, tc.enc)
		}
		got, err := c.Decode(tc.model, ints(file.tokens(tc.enc)))
		if err != nil || got != text {
			t.Errorf("Decode(%q, %s ids of unicode_hindi.txt) = %q, %v; want the file", tc.model, tc.enc, got, err)
		}
		other := O200kBase
		if tc.enc == O200kBase {
			other = Cl100kBase
		}
		if got, err := c.Decode(tc.model, ints(file.tokens(other))); err == nil && got == text {
			t.Errorf("Decode(%q, %s ids) = the file: used the wrong encoding", tc.model, other)
		}
	}
}

// TestDecodeConcurrent races first loads, decodes and counts; run it with
// -race.
func TestDecodeConcurrent(t *testing.T) {
	text := readCorpus(t, "mixed_short.txt")
	want := map[string][]int{}
	for _, enc := range []string{O200kBase, Cl100kBase} {
		want[enc] = ints(loaded(enc).encode(text))
	}
	c := New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			enc := []string{O200kBase, Cl100kBase}[g%2]
			for range 20 {
				if got, err := c.Decode(encodingModel[enc], want[enc]); err != nil || got != text {
					t.Errorf("%s: %q, %v", enc, got, err)
				}
				c.Text(encodingModel[enc], text)
			}
		})
	}
	wg.Wait()
}

// BenchmarkDecode decodes the ids of a text of about 1,000 tokens, as an
// embedding input of token ids would be.
func BenchmarkDecode(b *testing.B) {
	text := readCorpus(b, longCorpusFile)
	for _, enc := range []string{O200kBase, Cl100kBase} {
		b.Run(enc, func(b *testing.B) {
			ids := ints(loaded(enc).encode(text))[:1000]
			c := New()
			model := encodingModel[enc]
			out, err := c.Decode(model, ids) // loads outside the timed loop
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(out)))
			b.ReportAllocs()
			for b.Loop() {
				c.Decode(model, ids)
			}
		})
	}
}
