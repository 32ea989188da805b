package openai

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

var fastSeeds = []string{
	`{"model":"gpt-4","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"max_tokens":256}`,
	`{"model":"m","messages":[{"role":"user","content":"x","name":"ann"},{"role":"assistant","content":"y"},{"role":"tool","content":"z","tool_call_id":"c1"}],"top_p":1,"n":2,"seed":42,"user":"u","prompt_cache_key":"k"}`,
	`{"model":"m","messages":[{"role":"user","content":"caf\u00e9 \"q\""}],"presence_penalty":-0.5,"frequency_penalty":2,"max_completion_tokens":5,"metadata":{"a":"b"},"unknown":[1,{"x":null}]}`,
	// Left to encoding/json, each for its own reason.
	`{"model":"m","messages":[{"role":"user","content":"x"}],"Stream":true,"stream":false}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream":false}`,
	`{"model":"m","messages":[{"role":"user","content":"x","Role":"system"}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":null,"max_tokens":-1,"n":1.0,"seed":-3}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1e400}`,
	`{"\u006dodel":"m","model":"n","messages":[{"role":"user","content":"x"}]}`,
	`{"model":"m","messages":{}}`,
	`{"model":5,"messages":[{"role":"user","content":"x"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}]}{}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[],"stop":"s"}`,
	// Read by the fast path, refused by the validation both paths share.
	`{"model":"m","messages":[]}`,
	`{"model":"m","messages":[{"role":"robot","content":"x"}]} `,
	`{"model":"","messages":[{"role":"user","content":"x"}],"temperature":3}`,
}

// fastRead says which of fastSeeds the fast path reads: the first 3 and
// the last 3.
func fastRead(i int) bool { return i < 3 || i >= len(fastSeeds)-3 }

// FuzzChatFastPath holds the fast path to the full one: whatever the body,
// DecodeChatRequest answers the same with it and without it.
func FuzzChatFastPath(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fastReq, fastErr := decodeChatRequest(body, true)
		slowReq, slowErr := decodeChatRequest(body, false)
		if (fastErr == nil) != (slowErr == nil) || (fastErr != nil && fastErr.Error() != slowErr.Error()) {
			t.Fatalf("errors differ for %s:\nfast: %v\nslow: %v", body, fastErr, slowErr)
		}
		var fi, si *domain.InvalidRequestError
		if errors.As(fastErr, &fi) != errors.As(slowErr, &si) || (fi != nil && *fi != *si) {
			t.Fatalf("error values differ for %s:\nfast: %#v\nslow: %#v", body, fastErr, slowErr)
		}
		if diff := cmp.Diff(slowReq, fastReq, cmp.Comparer(func(a, b *domain.Image) bool { return a.URL == b.URL })); diff != "" {
			t.Fatalf("requests differ for %s (-slow +fast):\n%s", body, diff)
		}
	})
}

// TestTheFastPathTakesTheCommonRequests: the requests chat UIs and SDKs
// send without tools go the fast way; the others do not.
func TestTheFastPathTakesTheCommonRequests(t *testing.T) {
	for i, s := range fastSeeds {
		var w requestWire
		var msgs []messageWire
		got := fastChat([]byte(s), &w, &msgs)
		if want := fastRead(i); got != want {
			t.Errorf("fastChat(%s) = %v, want %v", s, got, want)
		}
	}
}

func BenchmarkDecodeChatRequest(b *testing.B) {
	body := []byte(`{"model":"gpt-4","messages":[{"role":"system","content":"You are a helpful assistant."},` +
		`{"role":"user","content":"Write a haiku about the sea, please."}],"temperature":0.7,"max_tokens":256,"stream":true,` +
		`"stream_options":{"include_usage":true},"user":"bench"}`)
	for _, fast := range []bool{false, true} {
		name := "encoding-json"
		if fast {
			name = "fast"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeChatRequest(body, fast); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
