package wire_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"
	"unicode/utf8"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
)

func TestAppendStringRoundTrips(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "new\nline\ttab\rcr", "\x00\x01\x1f control",
		"<html> & friends", "emoji 👋🏽 and 日本語", "\u2028 line sep \u2029", "bad \xff\xfe utf8", "trailing \xe2\x82",
	} {
		b := wire.AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, b, err)
		}
		// encoding/json is the reference: each invalid byte becomes U+FFFD.
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if got != want {
			t.Errorf("%q -> %s -> %q", s, b, got)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("hello \"world\"\n")
	f.Add("\xff")
	f.Add("<a href=\"x\">&\b\f\u2028\x01</a>")
	f.Fuzz(func(t *testing.T, s string) {
		b := wire.AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("invalid JSON for %q: %s", s, b)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("%q round-tripped to %q", s, got)
		}
		// Byte for byte what encoding/json writes, with and without its
		// HTML escaping.
		var enc bytes.Buffer
		e := json.NewEncoder(&enc)
		e.SetEscapeHTML(false)
		if err := e.Encode(s); err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(enc.Bytes(), []byte("\n")); !bytes.Equal(b, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, b, want)
		}
		want, _ := json.Marshal(s)
		if h := wire.AppendStringHTML(nil, s); !bytes.Equal(h, want) {
			t.Fatalf("AppendStringHTML(%q) = %s, json.Marshal writes %s", s, h, want)
		}
	})
}

func TestRandomText(t *testing.T) {
	id := regexp.MustCompile(`^call_[A-Z2-7]{26}$`)
	seen := map[string]bool{}
	for range 1000 {
		s := wire.NewToolCallID()
		if !id.MatchString(s) || seen[s] {
			t.Fatalf("NewToolCallID() = %q: want call_ and 26 base32 characters, never repeated", s)
		}
		seen[s] = true
	}
}
