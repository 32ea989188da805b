package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

func embedRequest(model, body string, inputs ...domain.Input) domain.EmbedRequest {
	return domain.EmbedRequest{Model: model, Requested: "alias", Inputs: inputs, Passthrough: wire.EmbeddingsBody(body)}
}

func texts(ss ...string) []domain.Input {
	out := make([]domain.Input, len(ss))
	for i, s := range ss {
		out[i] = domain.Input{Text: s}
	}
	return out
}

// TestEmbedBody: the batch replaces the client's input (strings, or token
// ids; an array even for one input), the model is the upstream's, and
// everything else (encoding_format and dimensions among it) passes as the
// client wrote it.
func TestEmbedBody(t *testing.T) {
	raw := []byte(`{"input":["all","the","client's","inputs"],"model":"text-embedding-3-small","encoding_format":"base64",` +
		`"dimensions":4,"user":"u-1","x":{"input":[1]}}`)
	rest := `"encoding_format":"base64","dimensions":4,"user":"u-1","x":{"input":[1]},"model":"emb:up"`
	for _, tc := range []struct {
		inputs []domain.Input
		want   string
	}{
		{texts("the", "client's"), `["the","client's"]`},
		{texts("only one"), `["only one"]`},
		{[]domain.Input{{Tokens: []int{1212, 318}}, {Tokens: []int{0}}}, `[[1212,318],[0]]`},
		{[]domain.Input{{Text: "q\"\\\n\u2028é"}, {Text: "\xff"}}, `["q\"\\\n\u2028é","\ufffd"]`},
	} {
		got, err := gateway.EmbedBody(raw, "emb:up", tc.inputs)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{` + rest + `,"input":` + tc.want + `}`; string(got) != want {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	}
}

// TestEmbedForwardsTheBatch checks the body the upstream receives.
func TestEmbedForwardsTheBatch(t *testing.T) {
	srv := gatewaytest.New("emb:up")
	t.Cleanup(srv.Close)
	body := `{"model":"text-embedding-3-small","input":[[1,2],[3],[4,5,6]],"dimensions":8,"user":"u"}`
	got, err := newClient(srv, "sk").Embed(context.Background(), embedRequest("emb:up", body, domain.Input{Tokens: []int{3}}, domain.Input{Tokens: []int{4, 5, 6}}))
	if err != nil {
		t.Fatal(err)
	}
	reqs := srv.RequestsTo(gatewaytest.PathEmbeddings)
	if len(reqs) != 1 {
		t.Fatalf("%d embeddings requests", len(reqs))
	}
	if want := `{"dimensions":8,"user":"u","model":"emb:up","input":[[3],[4,5,6]]}`; string(reqs[0].Body) != want {
		t.Errorf("upstream body\n got %s\nwant %s", reqs[0].Body, want)
	}
	want := [][]float32{gatewaytest.TokensEmbedding([]int{3}, 8), gatewaytest.TokensEmbedding([]int{4, 5, 6}, 8)}
	if diff := cmp.Diff(want, got.Vectors); diff != "" {
		t.Errorf("vectors (-want +got):\n%s", diff)
	}
	if got.Usage == nil || *got.Usage != (domain.Usage{PromptTokens: 4}) {
		t.Errorf("usage %+v, want 4 prompt tokens", got.Usage)
	}
}

// TestEmbedFloatAndBase64Agree: the same inputs asked as floats and as
// base64 decode to exactly the same float32 vectors, the fake's own;
// dimensions shortens them.
func TestEmbedFloatAndBase64Agree(t *testing.T) {
	srv := gatewaytest.New("emb")
	t.Cleanup(srv.Close)
	srv.Dimensions = 64
	c := newClient(srv, "")
	inputs := texts("alpha", "beta gamma", "tiny ε")
	for _, dims := range []int{0, 5} {
		var got [2][][]float32
		for i, format := range []string{`"float"`, `"base64"`} {
			body := `{"model":"emb","input":"x","encoding_format":` + format
			req := embedRequest("emb", "", inputs...)
			if dims > 0 {
				body += `,"dimensions":5`
				req.Dimensions = &dims
			}
			req.Passthrough = wire.EmbeddingsBody(body + `}`)
			e, err := c.Embed(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if e.Usage == nil || *e.Usage != (domain.Usage{PromptTokens: 5}) {
				t.Errorf("usage %+v, want 5 prompt tokens", e.Usage)
			}
			got[i] = e.Vectors
		}
		size := 64
		if dims > 0 {
			size = dims
		}
		var want [][]float32
		for _, in := range inputs {
			want = append(want, gatewaytest.Embedding(in.Text, size))
		}
		for i, format := range []string{"float", "base64"} {
			if diff := cmp.Diff(want, got[i]); diff != "" {
				t.Errorf("dimensions %d, %s (-want +got):\n%s", dims, format, diff)
			}
		}
	}
}

// answer serves one fixed embeddings answer.
func answer(t *testing.T, status int, body string) *gateway.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL + "/v1")
	return gateway.New(upstream.Options{Name: "gateway", BaseURL: u, Timeouts: upstream.Timeouts{FirstByte: 5 * time.Second}})
}

// TestEmbedOrdersByIndex: vectors come back in index order, whatever the
// order of the list; a float and a base64 vector may even be mixed; no
// usage is nil usage.
func TestEmbedOrdersByIndex(t *testing.T) {
	body := `{"object":"list","data":[` +
		`{"object":"embedding","index":2,"embedding":[0.5,-4.547132266452536e-05,1e-45]},` +
		`{"object":"embedding","index":0,"embedding":"AACAPwAAgL8AAAAA"},` + // 1, -1, 0
		`{"object":"embedding","index":1,"embedding":[-0.006929283495992422,0.0,3.4028234663852886e+38]}` +
		`],"model":"m"}`
	got, err := answer(t, 200, body).Embed(context.Background(), embedRequest("m", `{}`, texts("a", "b", "c")...))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float32{{1, -1, 0}, {-0.006929283495992422, 0, 3.4028234663852886e+38}, {0.5, -4.547132266452536e-05, 1e-45}}
	if diff := cmp.Diff(want, got.Vectors); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got.Usage != nil {
		t.Errorf("usage %+v, want nil: the answer had none", got.Usage)
	}
}

// TestEmbedUnreadableAnswers: anything but one vector per input is a
// protocol failure; vectors of another size than the client asked for are
// a bad answer from a healthy backend; an error in a 200 answer is the
// backend's.
func TestEmbedUnreadableAnswers(t *testing.T) {
	two := texts("a", "b")
	item := func(index, vector string) string {
		return `{"object":"embedding","index":` + index + `,"embedding":` + vector + `}`
	}
	list := func(items ...string) string {
		raw := make([]json.RawMessage, len(items))
		for i, it := range items {
			raw[i] = json.RawMessage(it)
		}
		b, err := json.Marshal(map[string]any{"object": "list", "data": raw, "model": "m"})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dims := 2
	for _, tc := range []struct {
		name string
		body string
		dims *int
		kind domain.FailureKind
	}{
		{"too few", list(item("0", "[1]")), nil, domain.FailureProtocol},
		{"too many", list(item("0", "[1]"), item("1", "[1]"), item("2", "[1]")), nil, domain.FailureProtocol},
		{"index repeated", list(item("0", "[1]"), item("0", "[1]")), nil, domain.FailureProtocol},
		{"index out of range", list(item("0", "[1]"), item("2", "[1]")), nil, domain.FailureProtocol},
		{"negative index", list(item("-1", "[1]"), item("0", "[1]")), nil, domain.FailureProtocol},
		{"no vector", list(item("0", "[1]"), item("1", "null")), nil, domain.FailureProtocol},
		{"not base64", list(item("0", "[1]"), item("1", `"!!!!"`)), nil, domain.FailureProtocol},
		{"base64 of a partial float", list(item("0", "[1]"), item("1", `"AACAPwAA"`)), nil, domain.FailureProtocol},
		{"not a number", list(item("0", "[1]"), item("1", `["1"]`)), nil, domain.FailureProtocol},
		{"beyond float32", list(item("0", "[1]"), item("1", `[1e39]`)), nil, domain.FailureProtocol},
		{"NaN in base64", list(item("0", "[1]"), item("1", `"AADAfw=="`)), nil, domain.FailureProtocol},
		{"an object", list(item("0", "[1]"), item("1", `{}`)), nil, domain.FailureProtocol},
		{"other dimensions than asked for", list(item("0", "[1,2]"), item("1", `[1,2,3]`)), &dims, domain.FailureBadOutput},
		{"not JSON", `<html>`, nil, domain.FailureProtocol},
		{"error in a 200", `{"error":{"message":"boom","type":"server_error"}}`, nil, domain.FailureServer},
		{"rate limit in a 200", `{"error":{"message":"slow","code":"rate_limit_exceeded"}}`, nil, domain.FailureRateLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := embedRequest("m", `{}`, two...)
			req.Dimensions = tc.dims
			_, err := answer(t, 200, tc.body).Embed(context.Background(), req)
			checkFailure(t, err, tc.kind)
		})
	}
}

func TestEmbedRefusesAnotherBody(t *testing.T) {
	req := embedRequest("m", "", texts("a")...)
	req.Passthrough = wire.CompletionBody(`{}`)
	var ie *domain.InvalidRequestError
	if _, err := answer(t, 200, `{}`).Embed(context.Background(), req); !errors.As(err, &ie) {
		t.Errorf("error %v (%T), want *domain.InvalidRequestError", err, err)
	}
}

// TestEmbedFailures: embeddings fail as chat does; a body cut after the
// status is a cut answer, and an empty input the upstream refuses is the
// client's to fix.
func TestEmbedFailures(t *testing.T) {
	cases := append(failureCases(), failureCase{name: "empty input refused", kind: domain.FailureRejected})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inputs := texts("a b", "c")
			if tc.name == "empty input refused" {
				inputs = texts("a", "")
			}
			_, err := tc.start(t, "emb").Embed(context.Background(), embedRequest("emb", `{"model":"x","input":"y"}`, inputs...))
			checkFailure(t, err, tc.kind)
		})
	}
}
