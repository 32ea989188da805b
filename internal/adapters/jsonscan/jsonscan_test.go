package jsonscan_test

import (
	"encoding/json"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/jsonscan"
)

// TestSkipAgreesWithEncodingJSON: Skip accepts exactly the values
// encoding/json accepts, on a table of tricky ones.
func TestSkipAgreesWithEncodingJSON(t *testing.T) {
	for _, v := range []string{
		`0`, `-0`, `12`, `-1.5e+3`, `1E9`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
		`"a"`, `"\u00e9"`, `"\ud83d\ude00"`, `"\x"`, `"\u12"`, "\"a\tb\"", `"\/"`,
		`true`, `false`, `null`, `nul`, `tru`,
		`[]`, `[1,2]`, `[1,]`, `{}`, `{"a":1}`, `{"a":1,}`, `{"a"}`, `{"a":[{"b":null}]}`,
		`{"\u00e9":1}`, `{"a":{"é":{"\n":[]}}}`, `{"a":{"\x":1}}`, `{"a":{"b\"":1,"c":2}}`, "{\"a\":{\"\xff\":1}}",
	} {
		var s jsonscan.Scanner
		s.Reset([]byte(v))
		got := s.Skip() && s.Done()
		if want := json.Valid([]byte(v)); got != want {
			t.Errorf("Skip(%s) = %v, encoding/json says %v", v, got, want)
		}
	}
}

func TestStringUnescapesLikeEncodingJSON(t *testing.T) {
	for _, v := range []string{
		`"plain"`, `"tab\there"`, `"quote\" slash\/ back\\"`, `"\u00e9t\u00e9"`, `"\ud83d\ude00"`,
		`"lone \ud800 surrogate"`, "\"bad \xff utf8\"", `"\b\f\n\r"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(v), &want); err != nil {
			t.Fatal(err)
		}
		var s jsonscan.Scanner
		s.Reset([]byte(v))
		got, ok := s.String()
		if !ok || got != want {
			t.Errorf("String(%s) = %q, %v; encoding/json: %q", v, got, ok, want)
		}
	}
}

// FuzzSkip holds Skip to encoding/json on any text: a value it skips must
// be one encoding/json accepts, and the other way round (the request
// splices refuse a body Skip refuses).
func FuzzSkip(f *testing.F) {
	for _, v := range []string{`{"a":{"\u00e9":[1,{"b":"\"x"}]}}`, `[1,-0.5e3,true,null,"\ud83d"]`, `{"é":{}}`} {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s jsonscan.Scanner
		s.Reset(b)
		if got, want := s.Skip() && s.Done(), json.Valid(b); got != want {
			t.Fatalf("Skip(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}
