package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The reference data comes from OpenAI's tiktoken (npm "tiktoken", the WASM
// build of its Rust core); regenerate it with
//
//	cd testdata/reference && npm ci && node gen.mjs
const (
	corpusDir      = "testdata/corpus"
	referencePath  = "testdata/reference_counts.json"
	promptsPath    = "testdata/prompts.json"
	longCorpusFile = "long_mixed.txt"
)

// encodingModel is a model of each encoding, to test through the public API.
var encodingModel = map[string]string{O200kBase: "gpt-4o", Cl100kBase: "gpt-4"}

type referenceFile struct {
	SHA256       string   `json:"sha256"`
	O200k        int      `json:"o200k_base"`
	Cl100k       int      `json:"cl100k_base"`
	TokensO200k  []uint32 `json:"tokens_o200k"`
	TokensCl100k []uint32 `json:"tokens_cl100k"`
}

func (r referenceFile) count(enc string) int {
	if enc == Cl100kBase {
		return r.Cl100k
	}
	return r.O200k
}

func (r referenceFile) tokens(enc string) []uint32 {
	if enc == Cl100kBase {
		return r.TokensCl100k
	}
	return r.TokensO200k
}

type reference struct {
	Generator string                    `json:"generator"`
	Files     map[string]referenceFile  `json:"files"`
	Prompts   map[string]map[string]int `json:"prompts"`
}

func loadReference(t testing.TB) reference {
	t.Helper()
	data, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("%s: %v", referencePath, err)
	}
	return ref
}

func readCorpus(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestReferenceCoversCorpus fails when a corpus file was added, removed or
// changed without regenerating the reference data.
func TestReferenceCoversCorpus(t *testing.T) {
	ref := loadReference(t)
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			files = append(files, e.Name())
		}
	}
	var refFiles []string
	for name := range ref.Files {
		refFiles = append(refFiles, name)
	}
	slices.Sort(refFiles)
	if !slices.Equal(files, refFiles) {
		t.Fatalf("corpus files %q, reference has %q: regenerate %s", files, refFiles, referencePath)
	}
	for name, want := range ref.Files {
		sum := sha256.Sum256([]byte(readCorpus(t, name)))
		if got := hex.EncodeToString(sum[:]); got != want.SHA256 {
			t.Errorf("%s changed since the reference data was generated: regenerate %s", name, referencePath)
		}
	}
	if len(readCorpus(t, longCorpusFile)) <= 20*1024 {
		t.Errorf("%s should be over 20 KB", longCorpusFile)
	}
}

func TestTextMatchesReference(t *testing.T) {
	ref := loadReference(t)
	c := New()
	for name, want := range ref.Files {
		text := readCorpus(t, name)
		for _, enc := range []string{O200kBase, Cl100kBase} {
			if got := c.Text(encodingModel[enc], text); got != want.count(enc) {
				t.Errorf("%s %s: %d tokens, reference %d", name, enc, got, want.count(enc))
			}
			if want.tokens(enc) == nil {
				continue // long file: counts only
			}
			ids := loaded(enc).encode(text)
			if i := firstDiff(ids, want.tokens(enc)); i >= 0 {
				t.Errorf("%s %s: token ids differ from index %d: got %v, reference %v",
					name, enc, i, ids[i:min(i+8, len(ids))], want.tokens(enc)[i:min(i+8, len(want.tokens(enc)))])
			}
		}
	}
}

func firstDiff(a, b []uint32) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func TestPromptMatchesReference(t *testing.T) {
	ref := loadReference(t)
	data, err := os.ReadFile(promptsPath)
	if err != nil {
		t.Fatal(err)
	}
	var prompts map[string][]Message
	if err := json.Unmarshal(data, &prompts); err != nil {
		t.Fatal(err)
	}
	if len(prompts) == 0 || len(prompts) != len(ref.Prompts) {
		t.Fatalf("%d prompts, %d in reference: regenerate %s", len(prompts), len(ref.Prompts), referencePath)
	}
	c := New()
	for name, msgs := range prompts {
		for _, enc := range []string{O200kBase, Cl100kBase} {
			want, ok := ref.Prompts[name][enc]
			if !ok {
				t.Fatalf("prompt %s has no %s reference", name, enc)
			}
			if got := c.Prompt(encodingModel[enc], msgs); got != want {
				t.Errorf("prompt %s %s: %d tokens, reference %d", name, enc, got, want)
			}
		}
	}
}

// TestPromptCookbookExample checks the numbers published in OpenAI's cookbook
// "How to count tokens with tiktoken" for its example conversation.
func TestPromptCookbookExample(t *testing.T) {
	data, err := os.ReadFile(promptsPath)
	if err != nil {
		t.Fatal(err)
	}
	var prompts map[string][]Message
	if err := json.Unmarshal(data, &prompts); err != nil {
		t.Fatal(err)
	}
	msgs := prompts["cookbook_example"]
	c := New()
	for model, want := range map[string]int{"gpt-4o": 124, "gpt-4o-mini": 124, "gpt-4": 129, "gpt-3.5-turbo": 129} {
		if got := c.Prompt(model, msgs); got != want {
			t.Errorf("Prompt(%q, cookbook example) = %d, want %d", model, got, want)
		}
	}
}

func TestPromptOverhead(t *testing.T) {
	c := New()
	cases := []struct {
		msgs []Message
		want int
	}{
		{nil, 3},
		{[]Message{{Role: "user"}}, 3 + 3 + 1},
		{[]Message{{Role: "user", Content: "hello"}}, 3 + 3 + 1 + 1},
		{[]Message{{Role: "user", Content: "hello", Name: "bob"}}, 3 + 3 + 1 + 1 + 1 + 1},
	}
	for _, tc := range cases {
		for _, model := range []string{"gpt-4o", "gpt-4"} {
			if got := c.Prompt(model, tc.msgs); got != tc.want {
				t.Errorf("Prompt(%q, %+v) = %d, want %d", model, tc.msgs, got, tc.want)
			}
		}
	}
}

func TestEncodingFor(t *testing.T) {
	cases := map[string]string{
		"gpt-4o":                    O200kBase,
		"gpt-4o-mini":               O200kBase,
		"gpt-4o-2024-08-06":         O200kBase,
		"chatgpt-4o-latest":         O200kBase,
		"gpt-4.1":                   O200kBase,
		"gpt-4.1-nano":              O200kBase,
		"gpt-4.5-preview":           O200kBase,
		"gpt-5":                     O200kBase,
		"gpt-5-mini":                O200kBase,
		"o1":                        O200kBase,
		"o1-mini":                   O200kBase,
		"o3-mini":                   O200kBase,
		"o4-mini":                   O200kBase,
		"gpt-4":                     Cl100kBase,
		"gpt-4-0613":                Cl100kBase,
		"gpt-4-turbo":               Cl100kBase,
		"gpt-4-turbo-2024-04-09":    Cl100kBase,
		"gpt-4-32k":                 Cl100kBase,
		"gpt-3.5-turbo":             Cl100kBase,
		"gpt-3.5-turbo-0125":        Cl100kBase,
		"gpt-35-turbo":              Cl100kBase,
		"text-embedding-3-small":    Cl100kBase,
		"text-embedding-3-large":    Cl100kBase,
		"text-embedding-ada-002":    Cl100kBase,
		"GPT-4":                     Cl100kBase,
		"openai/gpt-4-turbo":        Cl100kBase,
		"ft:gpt-3.5-turbo:acme::x1": Cl100kBase,
		"ft:gpt-4o-mini:acme::x1":   O200kBase,
		"qwen2.5:32b":               O200kBase,
		"llama3.1:8b":               O200kBase,
		"":                          O200kBase,
	}
	for model, want := range cases {
		if got := EncodingFor(model); got != want {
			t.Errorf("EncodingFor(%q) = %q, want %q", model, got, want)
		}
	}
}

func TestTextUsesModelEncoding(t *testing.T) {
	ref := loadReference(t)
	text := readCorpus(t, "unicode_hindi.txt")
	want := ref.Files["unicode_hindi.txt"]
	if want.O200k == want.Cl100k {
		t.Fatal("pick a file whose counts differ between encodings")
	}
	c := New()
	for model, want := range map[string]int{
		"gpt-4o": want.O200k, "qwen2.5:32b": want.O200k, "gpt-3.5-turbo": want.Cl100k, "gpt-4-turbo": want.Cl100k,
	} {
		if got := c.Text(model, text); got != want {
			t.Errorf("Text(%q, hindi) = %d, want %d", model, got, want)
		}
	}
}

func TestTextEdgeCases(t *testing.T) {
	c := New()
	if got := c.Text("gpt-4o", ""); got != 0 {
		t.Errorf("empty text: %d tokens", got)
	}
	for _, model := range []string{"gpt-4o", "gpt-4"} {
		if got, want := c.Text(model, "a\xffb\xe2\x82"), c.Text(model, "a\uFFFDb\uFFFD"); got != want {
			t.Errorf("%s: invalid UTF-8 counts %d, its replacement %d", model, got, want)
		}
	}
}

func TestZeroValueCounter(t *testing.T) {
	var c Counter
	if got := c.Text("gpt-4o", "Hello, world!"); got != 4 {
		t.Errorf("zero Counter: %d tokens, want 4", got)
	}
}

// TestConcurrentUse races first loads and counts of both encodings; run it
// with -race.
func TestConcurrentUse(t *testing.T) {
	ref := loadReference(t)
	texts := map[string]referenceFile{}
	for _, name := range []string{"emoji.txt", "code_go.go.txt", "unicode_cjk.txt", "contractions.txt"} {
		texts[readCorpus(t, name)] = ref.Files[name]
	}
	c := New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 3 {
				for text, want := range texts {
					enc := []string{O200kBase, Cl100kBase}[g%2]
					if got := c.Text(encodingModel[enc], text); got != want.count(enc) {
						t.Errorf("%s: %d tokens, reference %d", enc, got, want.count(enc))
					}
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkText(b *testing.B) {
	text := readCorpus(b, longCorpusFile)
	for _, enc := range []string{O200kBase, Cl100kBase} {
		b.Run(enc, func(b *testing.B) {
			c := New()
			model := encodingModel[enc]
			c.Text(model, "warm up") // load outside the timed loop
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				c.Text(model, text)
			}
		})
	}
}
