package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/backendtest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// TestContract runs the contract every chat backend owes the domain.
func TestContract(t *testing.T) {
	backendtest.Run(t, contractHarness("gateway", gateway.Options{}, func(n int) domain.ChatRequest { return chat(backendtest.Model, n) }))
}

// contractHarness runs the contract against a client of a gateway serving
// what opts says, given the requests request builds.
func contractHarness(name string, opts gateway.Options, request func(n int) domain.ChatRequest) backendtest.Harness {
	return backendtest.Harness{
		Name: name,
		New: func(t testing.TB, b backendtest.Behaviour, limits upstream.Timeouts) ports.ChatBackend {
			return contractClient(t, b, limits, opts)
		},
		Request: request,
	}
}

// TestContractText holds /completions to the same contract.
func TestContractText(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		Name: "gateway-completions",
		New: func(t testing.TB, b backendtest.Behaviour, limits upstream.Timeouts) ports.ChatBackend {
			return backendtest.TextAsChat(contractClient(t, b, limits, gateway.Options{}), func(n int) domain.TextRequest {
				body := fmt.Sprintf(`{"model":"alias","n":%d,"prompt":"hi"}`, n)
				return domain.TextRequest{Model: backendtest.Model, N: n, Prompts: []domain.Input{{Text: "hi"}}, Passthrough: wire.CompletionBody(body)}
			})
		},
		Request: func(n int) domain.ChatRequest { return chat(backendtest.Model, n) },
	})
}

// contractClient starts the fake gateway acting out b and returns a client
// pointed at it, of a gateway serving what opts says.
func contractClient(t testing.TB, b backendtest.Behaviour, limits upstream.Timeouts, opts gateway.Options) *gateway.Client {
	models := []string{backendtest.Model}
	if b.Missing {
		models = []string{"another-model"}
	}
	srv := gatewaytest.New(models...)
	t.Cleanup(srv.Close)
	srv.Pieces, srv.FirstDelay, srv.PieceDelay, srv.BreakAfter = b.Pieces, b.FirstDelay, b.PieceDelay, b.BreakAfter
	srv.Hang, srv.Garbage = b.Hang, b.Garbage
	if b.Status != 0 {
		srv.Status, srv.ErrorMessage = b.Status, "told to fail"
	}
	base := srv.URL + "/v1"
	if b.WrongPath {
		base = srv.URL + "/api" // GATEWAY_URL=http://gw:8080/api-style mistakes: the fake knows /v1 only
	}
	if b.Down {
		srv.Close()
	}
	u, _ := url.Parse(base)
	return gateway.New(upstream.Options{Name: "gateway", BaseURL: u, Timeouts: limits}, opts)
}

func chat(model string, n int) domain.ChatRequest {
	body := fmt.Sprintf(`{"model":"alias","n":%d,"messages":[{"role":"user","content":"hi"}]}`, n)
	return domain.ChatRequest{Model: model, N: n, Messages: []domain.Message{{Role: "user", Content: "hi"}}, Passthrough: wire.ChatBody(body)}
}

func TestRewriteBody(t *testing.T) {
	raw := []byte(`{"model":"gpt-4","messages":[{"role":"user","content":"hi"}],"stream":false,"stream_options":{"include_usage":false},"logit_bias":{"50256":-100},"foo":{"bar":[1,2]},"temperature":null}`)
	got, err := gateway.RewriteBody(raw, "qwen2.5:32b")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"messages":[{"role":"user","content":"hi"}],"logit_bias":{"50256":-100},"foo":{"bar":[1,2]},"temperature":null,` +
		`"model":"qwen2.5:32b","stream":true,"stream_options":{"include_usage":true}}`
	if string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func newClient(srv *gatewaytest.Server, key string) *gateway.Client {
	u, _ := url.Parse(srv.URL + "/v1")
	return gateway.New(upstream.Options{Name: "gateway", BaseURL: u, AgentID: "agent-7", APIKey: key, Timeouts: upstream.Timeouts{FirstByte: 5 * time.Second}})
}

// TestChatAsksForAStreamWithUsage checks what the upstream receives and
// what comes back: the answer is always streamed from the upstream, with
// its usage after the finishing chunk.
func TestChatAsksForAStreamWithUsage(t *testing.T) {
	srv := gatewaytest.New("qwen2.5:32b")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"a", "b"}
	ctx := domain.WithRequestID(context.Background(), "req-42")
	f := &backendtest.Frames{}
	if err := newClient(srv, "sk-gw").Chat(ctx, chat("qwen2.5:32b", 1), f); err != nil {
		t.Fatal(err)
	}
	want := []domain.Chunk{{}, {Content: "a"}, {Content: "b"}, {FinishReason: "stop"}, {Usage: &domain.Usage{PromptTokens: 12, CompletionTokens: 5}}}
	if diff := cmp.Diff(want, f.Chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	req := srv.Requests()[0]
	var body map[string]any
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["model"] != "qwen2.5:32b" || body["stream"] != true || !cmp.Equal(body["stream_options"], map[string]any{"include_usage": true}) {
		t.Errorf("upstream body %s: want the upstream's model name, a stream, with usage", req.Body)
	}
	for k, v := range map[string]string{"Authorization": "Bearer sk-gw", "X-Agent-Id": "agent-7", "X-Request-Id": "req-42", "Content-Type": "application/json"} {
		if req.Header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, req.Header.Get(k), v)
		}
	}
}

func TestNoKeyNoAuthorization(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	if err := newClient(srv, "").Chat(context.Background(), chat("m", 1), &backendtest.Frames{}); err != nil {
		t.Fatal(err)
	}
	if h := srv.Requests()[0].Header.Get("Authorization"); h != "" {
		t.Errorf("no key configured, but Authorization %q was sent", h)
	}
}

// TestClassification checks what the backend's own words turn into: a 404
// is a missing model only when the backend says so.
func TestClassification(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	c := newClient(srv, "")
	for _, tc := range []struct {
		status int
		msg    string
		kind   domain.FailureKind
	}{
		{404, "The model `m` does not exist.", domain.FailureModelMissing}, // vLLM
		{404, `model "m" not found, try pulling it first`, domain.FailureModelMissing},
		{404, "Not Found", domain.FailureMisrouted},
		{404, "Invalid URL (POST /chat/completions)", domain.FailureMisrouted},
		{401, "Incorrect API key provided.", domain.FailureUnauthorized},
		{403, "Forbidden", domain.FailureUnauthorized},
		{422, "Unprocessable", domain.FailureRejected},
		{502, "Bad gateway", domain.FailureServer},
		{504, "Gateway timeout", domain.FailureTimeout},
		{429, "slow down", domain.FailureRateLimited},
	} {
		srv.Set(func(s *gatewaytest.Server) { s.Status, s.ErrorMessage = tc.status, tc.msg })
		err := c.Chat(context.Background(), chat("m", 1), &backendtest.Frames{})
		ue, ok := err.(*domain.UpstreamError)
		if !ok || ue.Kind != tc.kind || ue.Message != tc.msg || !strings.Contains(ue.Detail, fmt.Sprint(tc.status)) {
			t.Errorf("%d %q: %#v, want kind %v", tc.status, tc.msg, err, tc.kind)
		}
	}
}

func TestListModels(t *testing.T) {
	srv := gatewaytest.New("a", "b")
	t.Cleanup(srv.Close)
	got, err := newClient(srv, "").ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Model{{ID: "a", Created: 1715367049, OwnedBy: "gateway"}, {ID: "b", Created: 1715367049, OwnedBy: "gateway"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// FuzzRewriteBody checks the splice against decoding: the result is valid
// JSON with every member of the input but model, stream and stream_options,
// which are set. The embeddings splice is held to the same: every member
// but model and input, which are set (the input to a batch made from the
// fuzzed bytes, strings and token ids); and so is the Responses splice:
// every member but previous_response_id, which is dropped, and model,
// input, store and stream, which are set.
func FuzzRewriteBody(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4","messages":[],"stream_options":{"a":"}"}}`))
	f.Add([]byte(` { "a" : [1, {"b": "\\"}] , "model" : null, "model": "x" } `))
	f.Add([]byte(`{"mo\u0064el":"x","stream_options":null,"stream":false}`))
	f.Add([]byte(`{"input":["a",[1,2]],"encoding_format":"base64","dimensions":8,"inp\u0075t":1}`))
	f.Add([]byte(`{"input":"hi","previous_response_id":"resp_1","store":true,"stream":false,"previous_response_id":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"tools":[{"function":{"parameters":{"properties":{"名前":{},"a\u00e9":{}}}}}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var in map[string]json.RawMessage
		if json.Unmarshal(raw, &in) != nil || in == nil {
			return // only objects reach RewriteBody (null decodes into a map too)
		}
		out, err := gateway.RewriteBody(raw, "m:1")
		if err != nil {
			t.Fatalf("valid object refused: %v", err)
		}
		want := map[string]string{}
		for k, v := range in {
			want[k] = string(compactJSON(v))
		}
		want["model"], want["stream"], want["stream_options"] = `"m:1"`, `true`, `{"include_usage":true}`
		checkMembers(t, raw, out, want)

		batch := []domain.Input{{Text: string(raw)}, {Tokens: []int{len(raw), -1}}, {Tokens: []int{}}}
		out, err = gateway.EmbedBody(raw, "m:1", batch)
		if err != nil {
			t.Fatalf("valid object refused: %v", err)
		}
		var members map[string]json.RawMessage
		var input []any
		if json.Unmarshal(out, &members) != nil || json.Unmarshal(members["input"], &input) != nil {
			t.Fatalf("invalid JSON %s from %s", out, raw)
		}
		if len(input) != 3 || input[0] != validUTF8(raw) ||
			!cmp.Equal(input[1], []any{float64(len(raw)), float64(-1)}) || !cmp.Equal(input[2], []any{}) {
			t.Fatalf("%s -> %s: input %#v", raw, out, input)
		}
		want = map[string]string{}
		for k, v := range in {
			want[k] = string(compactJSON(v))
		}
		want["model"] = `"m:1"`
		delete(want, "input")
		checkMembers(t, raw, out, want, "input")

		const conversation = `[{"role":"user","content":"hi"}]`
		out, err = gateway.RewriteResponsesBody(wire.ResponsesBody{Raw: raw, Input: []byte(conversation)}, "m:1")
		if err != nil {
			t.Fatalf("valid object refused: %v", err)
		}
		want = map[string]string{}
		for k, v := range in {
			want[k] = string(compactJSON(v))
		}
		delete(want, "previous_response_id")
		want["model"], want["input"], want["store"], want["stream"] = `"m:1"`, conversation, `false`, `true`
		checkMembers(t, raw, out, want)
	})
}

// checkMembers checks that out is a JSON object with the members of want
// (compact JSON), and others only among skip.
func checkMembers(t *testing.T, raw, out []byte, want map[string]string, skip ...string) {
	t.Helper()
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("invalid JSON %s from %s", out, raw)
	}
	gotS := map[string]string{}
	for k, v := range got {
		if !slices.Contains(skip, k) {
			gotS[k] = string(compactJSON(v))
		}
	}
	if diff := cmp.Diff(want, gotS); diff != "" {
		t.Fatalf("%s -> %s (-want +got):\n%s", raw, out, diff)
	}
}

// validUTF8 is b as encoding/json reads it into a string: each byte of
// invalid UTF-8 a U+FFFD.
func validUTF8(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		sb.WriteRune(r)
		b = b[size:]
	}
	return sb.String()
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// TestFinishedAnswersKeepTheirConnection: streams read to their end hand
// the connection back, so chat and text completions one after the other
// use one connection (closing a body before its chunked end would dial a
// new one per answer, and handshake again with an https gateway).
func TestFinishedAnswersKeepTheirConnection(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"a", "b", "c"}
	srv.EndDelay = 5 * time.Millisecond // the body ends after the last frame was read
	var dials backendtest.Dials
	u, _ := url.Parse(srv.URL + "/v1")
	c := gateway.New(dials.Options(upstream.Options{Name: "gateway", BaseURL: u, Timeouts: upstream.Timeouts{FirstByte: 5 * time.Second}}))
	for range 3 {
		if err := c.Chat(context.Background(), chat("m", 1), &backendtest.Frames{}); err != nil {
			t.Fatal(err)
		}
		if err := c.Complete(context.Background(), textRequest("m", `{"model":"m","prompt":"p"}`, 1, 1), &textFrames{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := dials.Count(); n != 1 {
		t.Errorf("6 answers one after the other opened %d connections, want 1", n)
	}
}

// TestABodyHeldOpenAfterTheAnswerDoesNotHoldItUp: a gateway that keeps
// the body open after [DONE] costs the connection, not the client's time.
func TestABodyHeldOpenAfterTheAnswerDoesNotHoldItUp(t *testing.T) {
	srv := gatewaytest.New("m")
	t.Cleanup(srv.Close)
	srv.EndDelay = 10 * time.Second
	start := time.Now()
	if err := newClient(srv, "").Chat(context.Background(), chat("m", 1), &backendtest.Frames{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the answer took %v: the service waited for the body to end", d)
	}
}
