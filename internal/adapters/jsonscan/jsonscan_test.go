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
