// Package tokenizer counts tokens with OpenAI's byte-pair encodings, so the
// gateway can still report usage (marked as an estimate) when an upstream
// returns none, and decodes token ids back to text, for clients that send
// inputs as ids a local backend cannot take.
//
// Two encodings are supported, both embedded in the binary (no download at
// run time): o200k_base (gpt-4o, gpt-4.1, gpt-5, o1, o3, o4 families) and
// cl100k_base (gpt-4, gpt-4-turbo, gpt-3.5-turbo, text-embedding-3). The
// ranks are OpenAI's rank files; pre-tokenization and byte-pair merging
// follow tiktoken's, and the tests check counts and token ids against
// OpenAI's reference encoder on a committed corpus.
//
// Counts for OpenAI models are exact for text. For any other model (a local
// model such as qwen2.5:32b has its own tokenizer) the o200k_base count is
// an estimate by design: close for English and code, further off for other
// scripts.
//
// Special-token text such as "<|endoftext|>" is counted as ordinary text, as
// tiktoken's encode_ordinary does. Invalid UTF-8 is counted as if each
// invalid sequence were U+FFFD.
package tokenizer

import (
	"strings"
	"sync"
)

// Names of the supported encodings, as returned by EncodingFor.
const (
	O200kBase  = "o200k_base"
	Cl100kBase = "cl100k_base"
)

// Chat overhead from OpenAI's cookbook "How to count tokens with tiktoken",
// valid for every current chat model (gpt-3.5-turbo-0301 differed and is not
// handled).
const (
	tokensPerMessage = 3 // <|start|>{role/name}\n{content}<|end|>\n
	tokensPerName    = 1 // a set name adds one token besides its own
	replyPriming     = 3 // every reply is primed with <|start|>assistant<|message|>
)

// Message is one chat message as far as counting is concerned. Content is
// its text; for content in parts, pass the text parts joined.
type Message struct {
	Role, Content, Name string
}

// Counter counts and decodes tokens. It is safe for concurrent use, and the
// zero value is ready to use. Creating one is free: each encoding is loaded
// on its first use (some tens of milliseconds), once per process, and shared
// by every Counter.
type Counter struct{}

// New returns a Counter.
func New() *Counter {
	return &Counter{}
}

// Text returns the number of tokens in text with the encoding of model.
func (c *Counter) Text(model, text string) int {
	return c.count(EncodingFor(model), text)
}

// Prompt returns the number of prompt tokens of a chat request with msgs for
// model: the tokens of each message's role, content and name, plus the
// per-message and reply-priming overhead that chat models add.
func (c *Counter) Prompt(model string, msgs []Message) int {
	enc := EncodingFor(model)
	n := replyPriming
	for _, m := range msgs {
		n += tokensPerMessage + c.count(enc, m.Role) + c.count(enc, m.Content)
		if m.Name != "" {
			n += tokensPerName + c.count(enc, m.Name)
		}
	}
	return n
}

// EncodingFor returns the name of the encoding used for model: "cl100k_base"
// for gpt-4, gpt-4-turbo (and other gpt-4-* snapshots), gpt-3.5-turbo and
// the text-embedding-3 and ada-002 embedding models, and "o200k_base" for
// everything else: the gpt-4o, gpt-4.1, gpt-5, o1, o3, o4 and chatgpt-4o
// families, and any model that is not OpenAI's. Case, a fine-tune prefix
// ("ft:") and a provider prefix ("openai/") are ignored.
func EncodingFor(model string) string {
	m := strings.ToLower(strings.TrimSpace(model))
	m = strings.TrimPrefix(m, "ft:")
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	switch {
	case m == "gpt-4", strings.HasPrefix(m, "gpt-4-"), // not gpt-4o, gpt-4.1, gpt-4.5
		strings.HasPrefix(m, "gpt-3.5"),
		strings.HasPrefix(m, "gpt-35-"), // Azure's spelling
		strings.HasPrefix(m, "text-embedding-3"),
		strings.HasPrefix(m, "text-embedding-ada-002"):
		return Cl100kBase
	default:
		return O200kBase
	}
}

// count returns the number of tokens of text with encoding enc.
func (c *Counter) count(enc, text string) int {
	if text == "" {
		return 0
	}
	return loaded(enc).count(text)
}

// The encodings, loaded on first use and shared by every Counter.
var (
	o200k  = sync.OnceValue(func() *encoding { return mustLoad(O200kBase, nextO200k) })
	cl100k = sync.OnceValue(func() *encoding { return mustLoad(Cl100kBase, nextCl100k) })
)

// loaded returns encoding enc, loading it if need be.
func loaded(enc string) *encoding {
	if enc == Cl100kBase {
		return cl100k()
	}
	return o200k()
}

func mustLoad(name string, next func(string, int) int) *encoding {
	e, err := loadEncoding(name, next)
	if err != nil {
		panic("tokenizer: embedded encoding is corrupt: " + err.Error()) // a broken build, caught by the tests
	}
	return e
}
