package ollamatest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestWireFormat pins the fake's answers to Ollama's bytes: fields in the
// order of Ollama's api structs (GenerateResponse puts logprobs after the
// metrics, ChatResponse before them), zero counts and context on raw
// prompts left out, HTML characters escaped as encoding/json does, and
// Ollama's error texts.
func TestWireFormat(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	s.Pieces = []string{"Hi", " <you>"}
	s.MaxInputChars = 5
	const (
		head = `{"model":"m","created_at":"2026-11-26T08:52:19.385406455Z",`
		done = `"done":true,"done_reason":"stop"`
		mets = `"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":4,"eval_duration":4535599000`
		hi   = `{"token":"Hi","logprob":-0.125,"bytes":[72,105]}`
		you  = `{"token":" \u003cyou\u003e","logprob":-0.25,"bytes":[32,60,121,111,117,62]}`
	)
	for _, tc := range []struct {
		path, body  string
		status      int
		contentType string
		want        string
	}{
		{"/api/generate", `{"model":"m","prompt":"a b","raw":true,"logprobs":true,"top_logprobs":2}`, 200, "application/x-ndjson",
			head + `"response":"Hi","done":false,"logprobs":[{"token":"Hi","logprob":-0.125,"bytes":[72,105],"top_logprobs":[` + hi + `,{"token":"alt1","logprob":-1.125,"bytes":[97,108,116,49]}]}]}` + "\n" +
				head + `"response":" \u003cyou\u003e","done":false,"logprobs":[{"token":" \u003cyou\u003e","logprob":-0.25,"bytes":[32,60,121,111,117,62],"top_logprobs":[` + you + `,{"token":"alt1","logprob":-1.25,"bytes":[97,108,116,49]}]}]}` + "\n" +
				head + `"response":"",` + done + `,` + mets + "}\n"},
		{"/api/generate", `{"model":"m","prompt":"a b","stream":false}`, 200, "application/json; charset=utf-8",
			head + `"response":"Hi \u003cyou\u003e",` + done + `,"context":[100,101,102,103],` + mets + `}`},
		{"/api/generate", `{"model":"m","prompt":"a","stream":false,"raw":true,"logprobs":true}`, 200, "application/json; charset=utf-8",
			head + `"response":"Hi \u003cyou\u003e",` + done + `,` + mets + `,"logprobs":[` + hi + `,` + you + `]}`},
		{"/api/generate", `{"model":"x","prompt":"a"}`, 404, "application/json; charset=utf-8", `{"error":"model 'x' not found"}`},
		{"/api/generate", `{"model":"m","prompt":"a","logprobs":true,"top_logprobs":21}`, 400, "application/json; charset=utf-8", `{"error":"top_logprobs must be between 0 and 20"}`},
		{"/api/chat", `{"model":"m","messages":[],"logprobs":true}`, 200, "application/x-ndjson",
			head + `"message":{"role":"assistant","content":"Hi"},"done":false,"logprobs":[` + hi + `]}` + "\n" +
				head + `"message":{"role":"assistant","content":" \u003cyou\u003e"},"done":false,"logprobs":[` + you + `]}` + "\n" +
				head + `"message":{"role":"assistant","content":""},` + done + `,` + mets + "}\n"},
		{"/api/chat", `{"model":"m","messages":[],"stream":false,"logprobs":true}`, 200, "application/json; charset=utf-8",
			head + `"message":{"role":"assistant","content":"Hi \u003cyou\u003e"},` + done + `,"logprobs":[` + hi + `,` + you + `],` + mets + `}`},
		{"/api/embed", `{"model":"m","input":["a b","c"],"dimensions":3}`, 200, "application/json; charset=utf-8",
			`{"model":"m","embeddings":[[-0.4974285,0.8144078,0.298839],[0.5278706,-0.6544518,0.5413367]],"total_duration":14143917,"load_duration":1019500,"prompt_eval_count":3}`},
		{"/api/embed", `{"model":"m","input":[]}`, 200, "application/json; charset=utf-8", `{"model":"m","embeddings":[]}`},
		{"/api/embed", `{"model":"m","input":[1]}`, 400, "application/json; charset=utf-8", `{"error":"invalid input type"}`},
		{"/api/embed", `{"model":"m","input":["a","too long"],"truncate":false}`, 400, "application/json; charset=utf-8", `{"error":"the input length exceeds the context length"}`},
		{"/api/embed", `{"model":"x","input":"a"}`, 404, "application/json; charset=utf-8", `{"error":"model 'x' not found"}`},
	} {
		resp, err := http.Post(s.URL+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.contentType || string(got) != tc.want {
			t.Errorf("%s %s:\ngot  %d %s\n%s\nwant %d %s\n%s", tc.path, tc.body, resp.StatusCode, resp.Header.Get("Content-Type"), got,
				tc.status, tc.contentType, tc.want)
		}
	}
	if n := len(s.RequestsTo("/api/embed")); n != 5 {
		t.Errorf("%d /api/embed bodies recorded, want 5", n)
	}
}

// TestEmbeddingDimensions checks the vectors follow Ollama: unit length,
// cut to dimensions when smaller than the model's, whole when larger.
func TestEmbeddingDimensions(t *testing.T) {
	for _, tc := range []struct{ dims, want int }{{0, 8}, {3, 3}, {8, 8}, {20, 8}} {
		v := Embedding("x", 8, tc.dims)
		var sum float64
		for _, f := range v {
			sum += float64(f) * float64(f)
		}
		if len(v) != tc.want || sum < 0.9999 || sum > 1.0001 {
			t.Errorf("dimensions %d: %d numbers, squared norm %v; want %d, 1", tc.dims, len(v), sum, tc.want)
		}
	}
}
