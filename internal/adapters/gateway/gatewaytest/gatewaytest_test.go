package gatewaytest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
)

func post(t *testing.T, s *Server, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(s.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestCompletionBytes holds the text completion answers to OpenAI's bytes:
// frames with "model" after "choices", the usage frame without choices,
// the legacy logprobs lists; a whole answer indented.
func TestCompletionBytes(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	s.Pieces = []string{"Hi", " there"}
	const head = `data: {"id":"cmpl-gw0123456789abcdefghijklmn","object":"text_completion","created":1764146000,`
	for _, tc := range []struct{ body, want string }{
		{`{"model":"m","prompt":"Say","stream":true,"logprobs":2,"stream_options":{"include_usage":true}}`,
			head + `"choices":[{"text":"Hi","index":0,"logprobs":{"tokens":["Hi"],"token_logprobs":[-0.0625],"top_logprobs":[{"Hi":-0.0625," the":-0.8125}],"text_offset":[3]},"finish_reason":null}],"model":"m"}` + "\n\n" +
				head + `"choices":[{"text":" there","index":0,"logprobs":{"tokens":[" there"],"token_logprobs":[-0.25],"top_logprobs":[{" there":-0.25," the":-1.0}],"text_offset":[5]},"finish_reason":null}],"model":"m"}` + "\n\n" +
				head + `"choices":[{"text":"","index":0,"logprobs":{"tokens":[],"token_logprobs":[],"top_logprobs":[],"text_offset":[]},"finish_reason":"stop"}],"model":"m"}` + "\n\n" +
				head + `"model":"m","usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17},"choices":[]}` + "\n\n" +
				"data: [DONE]\n\n"},
		{`{"model":"m","prompt":["a b","c"],"echo":true,"stream":true}`,
			head + `"choices":[{"text":"a b","index":0,"logprobs":null,"finish_reason":null}],"model":"m"}` + "\n\n" +
				head + `"choices":[{"text":"c","index":1,"logprobs":null,"finish_reason":null}],"model":"m"}` + "\n\n" +
				head + `"choices":[{"text":"Hi","index":0,"logprobs":null,"finish_reason":null}],"model":"m"}` + "\n\n" +
				head + `"choices":[{"text":"Hi","index":1,"logprobs":null,"finish_reason":null}],"model":"m"}` + "\n\n" +
				head + `"choices":[{"text":" there","index":0,"logprobs":null,"finish_reason":null}],"model":"m"}` + "\n\n" +
				head + `"choices":[{"text":" there","index":1,"logprobs":null,"finish_reason":null}],"model":"m"}` + "\n\n" +
				head + `"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}],"model":"m"}` + "\n\n" +
				head + `"choices":[{"text":"","index":1,"logprobs":null,"finish_reason":"stop"}],"model":"m"}` + "\n\n" +
				"data: [DONE]\n\n"},
		{`{"model":"m","prompt":"Say hi","echo":true,"logprobs":1}`, `{
  "id": "cmpl-gw0123456789abcdefghijklmn",
  "object": "text_completion",
  "created": 1764146000,
  "model": "m",
  "choices": [
    {
      "text": "Say hiHi there",
      "index": 0,
      "logprobs": {
        "tokens": [
          "Say",
          " hi",
          "Hi",
          " there"
        ],
        "token_logprobs": [
          null,
          -0.25,
          -0.4375,
          -0.125
        ],
        "top_logprobs": [
          null,
          {
            " hi": -0.25
          },
          {
            "Hi": -0.4375
          },
          {
            " there": -0.125
          }
        ],
        "text_offset": [
          0,
          3,
          6,
          8
        ]
      },
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17
  }
}
`},
	} {
		status, got := post(t, s, PathCompletions, tc.body)
		if status != 200 || got != tc.want {
			t.Errorf("%s: %d\n got %s\nwant %s", tc.body, status, got, tc.want)
		}
	}
}

// TestCompletionChoices: choice p*n+k is completion k of prompt p, for
// every form of prompt.
func TestCompletionChoices(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	s.Pieces = []string{"x"}
	for body, want := range map[string]int{
		`{"model":"m","prompt":"a","n":3}`:           3,
		`{"model":"m","prompt":["a","b"],"n":2}`:     4,
		`{"model":"m","prompt":[1,2,3],"n":2}`:       2,
		`{"model":"m","prompt":[[1],[2],[3]],"n":1}`: 3,
		`{"model":"m"}`: 1,
	} {
		status, got := post(t, s, PathCompletions, body)
		var answer struct {
			Choices []struct{ Index int } `json:"choices"`
		}
		if err := json.Unmarshal([]byte(got), &answer); err != nil || status != 200 {
			t.Fatalf("%s: %d %s", body, status, got)
		}
		if len(answer.Choices) != want {
			t.Errorf("%s: %d choices, want %d", body, len(answer.Choices), want)
		}
		for i, c := range answer.Choices {
			if c.Index != i {
				t.Errorf("%s: choice %d has index %d", body, i, c.Index)
			}
		}
	}
}

// TestEmbeddingBytes holds the embeddings answer to OpenAI's bytes.
func TestEmbeddingBytes(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	s.Dimensions = 3
	for _, tc := range []struct{ body, want string }{
		{`{"model":"m","input":"hello"}`, `{
  "object": "list",
  "data": [
    {
      "object": "embedding",
      "index": 0,
      "embedding": [
        0.7914720177650452,
        0.20774687826633453,
        -0.5748158097267151
      ]
    }
  ],
  "model": "m",
  "usage": {
    "prompt_tokens": 1,
    "total_tokens": 1
  }
}
`},
		{`{"model":"m","input":["hello"],"encoding_format":"base64","dimensions":2}`, `{
  "object": "list",
  "data": [
    {
      "object": "embedding",
      "index": 0,
      "embedding": "vJx3P8L8gT4="
    }
  ],
  "model": "m",
  "usage": {
    "prompt_tokens": 1,
    "total_tokens": 1
  }
}
`},
	} {
		status, got := post(t, s, PathEmbeddings, tc.body)
		if status != 200 || got != tc.want {
			t.Errorf("%s: %d\n got %s\nwant %s", tc.body, status, got, tc.want)
		}
	}
}

// TestEmbeddingValues: the float and base64 forms carry the same float32
// values, Embedding's; vectors have unit length; a shorter one is a longer
// one's start, rescaled.
func TestEmbeddingValues(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	s.Dimensions = 32
	type answer struct {
		Data []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	read := func(body string) answer {
		status, got := post(t, s, PathEmbeddings, body)
		var a answer
		if err := json.Unmarshal([]byte(got), &a); err != nil || status != 200 {
			t.Fatalf("%s: %d %s", body, status, got)
		}
		return a
	}
	floats := read(`{"model":"m","input":["one","two three"]}`)
	b64 := read(`{"model":"m","input":["one","two three"],"encoding_format":"base64"}`)
	if floats.Usage.PromptTokens != 3 || b64.Usage.PromptTokens != 3 {
		t.Errorf("usage %d and %d, want 3", floats.Usage.PromptTokens, b64.Usage.PromptTokens)
	}
	for i, text := range []string{"one", "two three"} {
		want := Embedding(text, 32)
		var f []float32
		if err := json.Unmarshal(floats.Data[i].Embedding, &f); err != nil {
			t.Fatal(err)
		}
		var enc string
		if err := json.Unmarshal(b64.Data[i].Embedding, &enc); err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(raw) != 4*32 {
			t.Fatalf("base64 %q: %v", enc, err)
		}
		var norm float64
		for k := range want {
			if f[k] != want[k] || math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:])) != want[k] {
				t.Fatalf("%q value %d: float %v, base64 %v, want %v", text, k, f[k], math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:])), want[k])
			}
			norm += float64(want[k]) * float64(want[k])
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Errorf("%q: squared norm %v, want 1", text, norm)
		}
		short := Embedding(text, 4)
		scale := float64(short[0]) / float64(want[0])
		for k := range short {
			if math.Abs(float64(short[k])-scale*float64(want[k])) > 1e-6 {
				t.Errorf("%q: the 4-dimension vector is not the start of the 32-dimension one", text)
			}
		}
	}
	if TokensEmbedding([]int{1, 2}, 8)[0] == Embedding("1 2", 8)[0] {
		t.Error("token ids and the text of their numbers share a vector")
	}
}

func TestRefusals(t *testing.T) {
	s := New("m")
	t.Cleanup(s.Close)
	s.Dimensions = 8
	for _, tc := range []struct {
		path, body  string
		status      int
		param, code string
	}{
		{PathEmbeddings, `{"model":"m","input":""}`, 400, "", ""},
		{PathEmbeddings, `{"model":"m","input":[]}`, 400, "", ""},
		{PathEmbeddings, `{"model":"m","input":["a",""]}`, 400, "", ""},
		{PathEmbeddings, `{"model":"m","input":[[1],[]]}`, 400, "", ""},
		{PathEmbeddings, `{"model":"m"}`, 400, "", ""},
		{PathEmbeddings, `{"model":"m","input":"a","dimensions":9}`, 400, "dimensions", ""},
		{PathEmbeddings, `{"model":"m","input":"a","encoding_format":"int8"}`, 400, "encoding_format", ""},
		{PathEmbeddings, `{"model":"x","input":"a"}`, 404, "", "model_not_found"},
		{PathCompletions, `{"model":"m","prompt":[]}`, 400, "prompt", ""},
		{PathCompletions, `{"model":"m","prompt":["a",[1]]}`, 400, "prompt", ""},
		{PathCompletions, `{"model":"x","prompt":"a"}`, 404, "", "model_not_found"},
		{"/v1/embedding", `{"model":"m","input":"a"}`, 404, "", ""},
	} {
		status, got := post(t, s, tc.path, tc.body)
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(got), &e); err != nil || e.Error.Message == "" || e.Error.Type != "invalid_request_error" {
			t.Errorf("%s %s: %s", tc.path, tc.body, got)
		}
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		if status != tc.status || str(e.Error.Param) != tc.param || str(e.Error.Code) != tc.code {
			t.Errorf("%s %s: %d param %q code %q, want %d %q %q", tc.path, tc.body, status, str(e.Error.Param), str(e.Error.Code), tc.status, tc.param, tc.code)
		}
	}
	if n := len(s.RequestsTo(PathEmbeddings)); n != 8 {
		t.Errorf("%d embeddings requests recorded, want 8", n)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d chat requests recorded, want 0", n)
	}
}
