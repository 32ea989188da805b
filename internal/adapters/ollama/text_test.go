package ollama_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/backendtest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// vocab is a Detokenizer for tests: per tokenizer (the model name the
// client asked for), the text of each token id.
type vocab map[string]map[int]string

func (v vocab) Decode(model string, ids []int) (string, error) {
	words, ok := v[model]
	if !ok {
		return "", fmt.Errorf("no tokenizer for model %s", model)
	}
	var b strings.Builder
	for _, id := range ids {
		w, ok := words[id]
		if !ok {
			return "", fmt.Errorf("token id %d is not in the vocabulary", id)
		}
		b.WriteString(w)
	}
	return b.String(), nil
}

var words = map[int]string{1: "Once", 2: " upon", 3: " a", 4: " time", 5: "The", 6: " end"}

var testVocab = vocab{"gpt-3.5-turbo-instruct": words, "text-embedding-3-small": words}

// upstreamNames routes the OpenAI names of the golden requests to Ollama
// models, as the catalog would: the client's name stays in Requested.
var upstreamNames = map[string]string{"gpt-3.5-turbo-instruct": "llama3.2:3b", "text-embedding-3-small": "nomic-embed-text"}

// inputs reads an OpenAI prompt or input: a string, strings, token ids or
// lists of token ids.
func inputs(t *testing.T, raw json.RawMessage) []domain.Input {
	t.Helper()
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []domain.Input{{Text: one}}
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil {
		out := make([]domain.Input, len(texts))
		for i, s := range texts {
			out[i] = domain.Input{Text: s}
		}
		return out
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return []domain.Input{{Tokens: ids}}
	}
	var lists [][]int
	if err := json.Unmarshal(raw, &lists); err != nil {
		t.Fatalf("unreadable prompt or input %s", raw)
	}
	out := make([]domain.Input, len(lists))
	for i, l := range lists {
		out[i] = domain.Input{Tokens: l}
	}
	return out
}

// textRequest decodes the part of an OpenAI /v1/completions body these
// tests need, routed as the use case would (the inbound adapter's own
// decoding and validation are its package's to test).
func textRequest(t *testing.T, body []byte) domain.TextRequest {
	t.Helper()
	var w struct {
		Model            string          `json:"model"`
		Prompt           json.RawMessage `json:"prompt"`
		Suffix           string          `json:"suffix"`
		Echo             bool            `json:"echo"`
		N                int             `json:"n"`
		Logprobs         *int            `json:"logprobs"`
		MaxTokens        *int            `json:"max_tokens"`
		Temperature      *float64        `json:"temperature"`
		TopP             *float64        `json:"top_p"`
		Stop             []string        `json:"stop"`
		Seed             *int64          `json:"seed"`
		PresencePenalty  *float64        `json:"presence_penalty"`
		FrequencyPenalty *float64        `json:"frequency_penalty"`
		User             string          `json:"user"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		t.Fatal(err)
	}
	req := domain.TextRequest{Model: w.Model, Requested: w.Model, Prompts: inputs(t, w.Prompt), Suffix: w.Suffix, Echo: w.Echo,
		N: max(w.N, 1), Logprobs: w.Logprobs, User: w.User, Passthrough: wire.CompletionBody(body),
		Sampling: domain.Sampling{Temperature: w.Temperature, TopP: w.TopP, MaxTokens: w.MaxTokens, Stop: w.Stop, Seed: w.Seed,
			PresencePenalty: w.PresencePenalty, FrequencyPenalty: w.FrequencyPenalty}}
	if m, ok := upstreamNames[w.Model]; ok {
		req.Model = m
	}
	return req
}

// embedRequest decodes an OpenAI /v1/embeddings body, routed.
func embedRequest(t *testing.T, body []byte) domain.EmbedRequest {
	t.Helper()
	var w struct {
		Model      string          `json:"model"`
		Input      json.RawMessage `json:"input"`
		Dimensions *int            `json:"dimensions"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		t.Fatal(err)
	}
	req := domain.EmbedRequest{Model: w.Model, Requested: w.Model, Inputs: inputs(t, w.Input), Dimensions: w.Dimensions,
		Passthrough: wire.EmbeddingsBody(body)}
	if m, ok := upstreamNames[w.Model]; ok {
		req.Model = m
	}
	return req
}

func indented(t *testing.T, v any) []byte {
	t.Helper()
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func goldenClient() *ollama.Client {
	return ollama.New(upstream.Options{}, ollama.Options{NumCtx: map[string]int{"qwen3:8b": 40960}, Detokenizer: testVocab})
}

// TestGenerateTranslation checks the /api/generate bodies of text
// completions: one per generation (prompt by prompt, n each), raw unless
// a suffix needs the model's template, the seed varied per completion,
// token prompts decoded with the client's model's tokenizer.
func TestGenerateTranslation(t *testing.T) {
	for _, name := range []string{"generate_raw", "generate_suffix", "generate_logprobs", "generate_tokens"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name+".request.json"))
			if err != nil {
				t.Fatal(err)
			}
			bodies, err := goldenClient().TranslateText(textRequest(t, in))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".ollama.json", indented(t, bodies))
			for i := range bodies {
				sent, err := ollama.EncodeGenerate(&bodies[i])
				sameJSON(t, sent, err, bodies[i])
			}
		})
	}
}

// TestEmbedTranslation checks the /api/embed bodies: truncate always sent
// (false unless asked), dimensions, Ollama's extras, token inputs decoded.
func TestEmbedTranslation(t *testing.T) {
	for _, name := range []string{"embed_minimal", "embed_dimensions", "embed_tokens"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name+".request.json"))
			if err != nil {
				t.Fatal(err)
			}
			body, err := goldenClient().TranslateEmbed(embedRequest(t, in))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".ollama.json", indented(t, body))
		})
	}
}

func newTextClient(t *testing.T, srv *ollamatest.Server, detok ollama.Detokenizer) *ollama.Client {
	t.Helper()
	u, _ := url.Parse(srv.URL)
	return ollama.New(upstream.Options{Name: "ollama", BaseURL: u, Timeouts: upstream.Timeouts{FirstByte: 5 * time.Second}},
		ollama.Options{Detokenizer: detok})
}

// textFrames is a sink of text chunks that notes flushes.
type textFrames struct {
	mu      sync.Mutex
	Chunks  []domain.TextChunk
	Flushes int
}

func (f *textFrames) Send(c domain.TextChunk) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Chunks = append(f.Chunks, c)
	return nil
}

func (f *textFrames) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Flushes++
	return nil
}

func (f *textFrames) completion(n int) domain.TextCompletion {
	var a domain.TextAssembler
	for _, c := range f.Chunks {
		a.Add(c)
	}
	return a.Completion(n)
}

func text(prompts ...string) domain.TextRequest {
	req := domain.TextRequest{Model: "m", Requested: "m", N: 1}
	for _, p := range prompts {
		req.Prompts = append(req.Prompts, domain.Input{Text: p})
	}
	return req
}

// TestCompleteStreamsPromptsAndChoices checks 2 prompts x n=2: four
// generations one after the other, their pieces streamed with index
// p*n+k, each prompt's completions seeded apart, and the usage reported
// once, at the very end: each prompt's tokens once, every completion's.
func TestCompleteStreamsPromptsAndChoices(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"Hel", "lo", " there"}
	srv.PromptEvalCount, srv.EvalCount = 10, 3
	req := text("first", "second")
	req.N = 2
	req.Sampling.Seed = ptr(int64(5))
	f := &textFrames{}
	if err := newTextClient(t, srv, nil).Complete(context.Background(), req, f); err != nil {
		t.Fatal(err)
	}
	var want []domain.TextChunk
	for i := range 4 {
		want = append(want, domain.TextChunk{Index: i, Text: "Hel"}, domain.TextChunk{Index: i, Text: "lo"},
			domain.TextChunk{Index: i, Text: " there"}, domain.TextChunk{Index: i, FinishReason: "stop"})
	}
	want[len(want)-1].Usage = &domain.Usage{PromptTokens: 20, CompletionTokens: 12}
	if diff := cmp.Diff(want, f.Chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	if f.Flushes < 4 {
		t.Errorf("%d flushes: the chunks of each generation must be flushed before waiting for the next", f.Flushes)
	}
	type sent struct {
		Prompt  string
		Raw     bool
		Stream  bool
		Options struct{ Seed int }
	}
	var got []sent
	for _, body := range srv.RequestsTo("/api/generate") {
		var s sent
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	wantSent := []sent{{"first", true, true, struct{ Seed int }{5}}, {"first", true, true, struct{ Seed int }{6}},
		{"second", true, true, struct{ Seed int }{5}}, {"second", true, true, struct{ Seed int }{6}}}
	if diff := cmp.Diff(wantSent, got); diff != "" {
		t.Errorf("generations sent (-want +got):\n%s", diff)
	}
}

func TestCompleteLength(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	srv.DoneReason = "length"
	f := &textFrames{}
	if err := newTextClient(t, srv, nil).Complete(context.Background(), text("go on"), f); err != nil {
		t.Fatal(err)
	}
	c := f.completion(1)
	if c.Choices[0].FinishReason != "length" || c.Choices[0].Text != "Hello from Ollama!" {
		t.Errorf("choice %+v, want the whole reply cut at length", c.Choices[0])
	}
}

// TestCompleteEcho checks each completion begins with its prompt.
func TestCompleteEcho(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{" world", "!"}
	req := text("Hello", "Bye")
	req.N, req.Echo = 2, true
	f := &textFrames{}
	if err := newTextClient(t, srv, nil).Complete(context.Background(), req, f); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range f.completion(4).Choices {
		got = append(got, ch.Text)
	}
	if diff := cmp.Diff([]string{"Hello world!", "Hello world!", "Bye world!", "Bye world!"}, got); diff != "" {
		t.Errorf("texts (-want +got):\n%s", diff)
	}
	if first := f.Chunks[0]; first.Text != "Hello world" {
		t.Errorf("first chunk %q: the prompt rides on the first chunk the host answered", first.Text)
	}
}

// TestCompleteEchoWithLogprobs checks echo with logprobs is refused before
// anything is sent: Ollama reports no log probabilities for the prompt.
func TestCompleteEchoWithLogprobs(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	req := text("Hello")
	req.Echo, req.Logprobs = true, ptr(0)
	err := newTextClient(t, srv, nil).Complete(context.Background(), req, &textFrames{})
	var inv *domain.InvalidRequestError
	if !errors.As(err, &inv) || inv.Param != "echo" {
		t.Fatalf("error %v, want an invalid request naming echo", err)
	}
	if n := len(srv.RequestsTo("/api/generate")); n != 0 {
		t.Errorf("%d requests sent for a refused request", n)
	}
}

func fakeLogprob(i int, token string, top int) domain.TokenLogprob {
	lp := ollamatest.Logprobs(i, token, top)
	out := domain.TokenLogprob{Token: lp.Token, Logprob: lp.Logprob, Bytes: []byte(lp.Token)}
	for _, t := range lp.TopLogprobs {
		out.Top = append(out.Top, domain.TopLogprob{Token: t.Token, Logprob: t.Logprob, Bytes: []byte(t.Token)})
	}
	return out
}

// TestCompleteLogprobs checks logprobs n asks Ollama for n alternatives and
// maps each line's log probabilities onto its chunk.
func TestCompleteLogprobs(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"Hi", " you"}
	req := text("Say")
	req.Logprobs = ptr(2)
	f := &textFrames{}
	if err := newTextClient(t, srv, nil).Complete(context.Background(), req, f); err != nil {
		t.Fatal(err)
	}
	want := []domain.TextChunk{
		{Text: "Hi", Logprobs: []domain.TokenLogprob{fakeLogprob(0, "Hi", 2)}},
		{Text: " you", Logprobs: []domain.TokenLogprob{fakeLogprob(1, " you", 2)}},
		{FinishReason: "stop", Usage: &domain.Usage{PromptTokens: 26, CompletionTokens: 4}},
	}
	if diff := cmp.Diff(want, f.Chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	if r := srv.LastRequestTo("/api/generate"); r["logprobs"] != true || r["top_logprobs"] != 2.0 {
		t.Errorf("logprobs %v, top_logprobs %v sent; want true and 2", r["logprobs"], r["top_logprobs"])
	}
}

// TestChatLogprobs checks chat log probabilities are asked for and mapped
// (the lines carrying them go through encoding/json), and dropped when a
// tool call is forced: the answer is then the call, which has none.
func TestChatLogprobs(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	srv.Pieces = []string{"Hel", "lo"}
	req := chat("m")
	req.Logprobs, req.TopLogprobs = true, ptr(1)
	f := &backendtest.Frames{}
	if err := newClient(t, srv, 5*time.Second).Chat(context.Background(), req, f); err != nil {
		t.Fatal(err)
	}
	want := []domain.Chunk{
		{Content: "Hel", Logprobs: []domain.TokenLogprob{fakeLogprob(0, "Hel", 1)}},
		{Content: "lo", Logprobs: []domain.TokenLogprob{fakeLogprob(1, "lo", 1)}},
		{FinishReason: "stop", Usage: &domain.Usage{PromptTokens: 26, CompletionTokens: 4}},
	}
	if diff := cmp.Diff(want, f.Chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	if r := srv.LastRequest(); r["logprobs"] != true || r["top_logprobs"] != 1.0 {
		t.Errorf("logprobs %v, top_logprobs %v sent; want true and 1", r["logprobs"], r["top_logprobs"])
	}

	srv.Set(func(s *ollamatest.Server) { s.Pieces = []string{`{"city":`, `"Paris"}`} })
	req.Tools = []domain.Tool{{Name: "get_weather", Parameters: []byte(`{"type":"object"}`)}}
	req.ToolChoice = domain.ToolChoice{Mode: domain.ToolChoiceFunction, Name: "get_weather"}
	f = &backendtest.Frames{}
	if err := newClient(t, srv, 5*time.Second).Chat(context.Background(), req, f); err != nil {
		t.Fatal(err)
	}
	if _, asked := srv.LastRequest()["logprobs"]; asked {
		t.Error("logprobs asked for under a forced tool call")
	}
	for _, ch := range f.Chunks {
		if len(ch.Logprobs) > 0 {
			t.Errorf("chunk %+v carries logprobs for a tool call", ch)
		}
	}
}

// TestCompleteTokenPrompts checks prompts given as token ids are decoded
// with the tokenizer of the model the client asked for, and refused with
// the prompt named when they cannot be.
func TestCompleteTokenPrompts(t *testing.T) {
	srv := ollamatest.New("llama3.2:3b")
	t.Cleanup(srv.Close)
	req := domain.TextRequest{Model: "llama3.2:3b", Requested: "gpt-3.5-turbo-instruct", N: 1,
		Prompts: []domain.Input{{Text: "plain"}, {Tokens: []int{5, 6}}}}
	if err := newTextClient(t, srv, testVocab).Complete(context.Background(), req, &textFrames{}); err != nil {
		t.Fatal(err)
	}
	var prompts []string
	for _, body := range srv.RequestsTo("/api/generate") {
		var r struct{ Prompt string }
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		prompts = append(prompts, r.Prompt)
	}
	if diff := cmp.Diff([]string{"plain", "The end"}, prompts); diff != "" {
		t.Errorf("prompts sent (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name  string
		detok ollama.Detokenizer
		ids   []int
		want  string
	}{
		{"no detokenizer", nil, []int{5}, "prompt 1: it is given as token ids"},
		{"not a token", testVocab, []int{5, 99}, "prompt 1: its token ids cannot be read as tokens of model gpt-3.5-turbo-instruct: token id 99"},
	} {
		req.Prompts[1].Tokens = tc.ids
		before := len(srv.RequestsTo("/api/generate"))
		err := newTextClient(t, srv, tc.detok).Complete(context.Background(), req, &textFrames{})
		var inv *domain.InvalidRequestError
		if !errors.As(err, &inv) || inv.Param != "prompt" || !strings.Contains(inv.Message, tc.want) {
			t.Errorf("%s: %v, want an invalid prompt saying %q", tc.name, err, tc.want)
		}
		if n := len(srv.RequestsTo("/api/generate")) - before; n != 0 {
			t.Errorf("%s: %d generations ran before the bad prompt was found", tc.name, n)
		}
	}
}

// TestModelMissing checks Ollama's 404 for a model it does not have is a
// missing model on every endpoint, not a wrong URL.
func TestModelMissing(t *testing.T) {
	srv := ollamatest.New("m")
	t.Cleanup(srv.Close)
	c := newTextClient(t, srv, nil)
	var ue *domain.UpstreamError
	req := text("hi")
	req.Model = "x"
	err := c.Complete(context.Background(), req, &textFrames{})
	if !errors.As(err, &ue) || ue.Kind != domain.FailureModelMissing || ue.Message != "model 'x' not found" {
		t.Errorf("completion: %#v, want a missing model", err)
	}
	_, err = c.Embed(context.Background(), domain.EmbedRequest{Model: "x", Inputs: []domain.Input{{Text: "a"}}})
	if !errors.As(err, &ue) || ue.Kind != domain.FailureModelMissing || ue.Message != "model 'x' not found" {
		t.Errorf("embeddings: %#v, want a missing model", err)
	}
}

// TestContractText holds /api/generate to the contract chat backends owe
// the domain: time limits, flushing, cancellation, failure kinds, n.
func TestContractText(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		Name: "ollama-generate",
		New: func(t testing.TB, b backendtest.Behaviour, limits upstream.Timeouts) ports.ChatBackend {
			models := []string{backendtest.Model}
			if b.Missing {
				models = []string{"another-model"}
			}
			srv := ollamatest.New(models...)
			t.Cleanup(srv.Close)
			srv.Pieces, srv.FirstDelay, srv.PieceDelay, srv.BreakAfter = b.Pieces, b.FirstDelay, b.PieceDelay, b.BreakAfter
			srv.Hang, srv.Garbage = b.Hang, b.Garbage
			if b.Status != 0 {
				srv.Status, srv.ErrorText = b.Status, "told to fail"
			}
			base := srv.URL
			if b.WrongPath {
				base += "/ollama"
			}
			if b.Down {
				srv.Close()
			}
			u, _ := url.Parse(base)
			c := ollama.New(upstream.Options{Name: "ollama", BaseURL: u, Timeouts: limits}, ollama.Options{})
			return backendtest.TextAsChat(c, func(n int) domain.TextRequest {
				return domain.TextRequest{Model: backendtest.Model, Prompts: []domain.Input{{Text: "hi"}}, N: n}
			})
		},
		Request: func(n int) domain.ChatRequest {
			r := chat(backendtest.Model)
			r.N = n
			return r
		},
	})
}

func embed(inputs ...string) domain.EmbedRequest {
	req := domain.EmbedRequest{Model: "embedder", Requested: "text-embedding-3-small"}
	for _, in := range inputs {
		req.Inputs = append(req.Inputs, domain.Input{Text: in})
	}
	return req
}

// TestEmbedInOrder checks the vectors come in input order, with Ollama's
// token count as usage, and over-long inputs are refused (truncate false)
// unless the request allows cutting them.
func TestEmbedInOrder(t *testing.T) {
	srv := ollamatest.New("embedder")
	t.Cleanup(srv.Close)
	c := newTextClient(t, srv, nil)
	inputs := []string{"one", "two words", "three little words"}
	got, err := c.Embed(context.Background(), embed(inputs...))
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Embeddings{Usage: &domain.Usage{PromptTokens: 6}}
	for _, in := range inputs {
		want.Vectors = append(want.Vectors, ollamatest.Embedding(in, 8, 0))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if r := srv.LastRequestTo("/api/embed"); r["truncate"] != false {
		t.Errorf("truncate %v sent, want false: OpenAI refuses over-long inputs", r["truncate"])
	}

	// An input of no tokens: Ollama leaves the count out, and so no usage.
	got, err = c.Embed(context.Background(), embed(""))
	if err != nil || got.Usage != nil || len(got.Vectors) != 1 {
		t.Errorf("%+v, %v: want one vector and no usage", got, err)
	}
}

// TestEmbedDimensions checks dimensions goes to Ollama, which cuts the
// vectors to a smaller size; a larger one than the model makes is the
// client's mistake, named.
func TestEmbedDimensions(t *testing.T) {
	srv := ollamatest.New("embedder")
	t.Cleanup(srv.Close)
	c := newTextClient(t, srv, nil)
	req := embed("a", "b")
	req.Dimensions = ptr(4)
	got, err := c.Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]float32{ollamatest.Embedding("a", 8, 4), ollamatest.Embedding("b", 8, 4)}, got.Vectors); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	req.Dimensions = ptr(16)
	_, err = c.Embed(context.Background(), req)
	var inv *domain.InvalidRequestError
	if !errors.As(err, &inv) || inv.Param != "dimensions" || !strings.Contains(inv.Message, "model text-embedding-3-small makes 8-dimensional embeddings") {
		t.Errorf("%v, want an invalid dimensions saying the model's size", err)
	}
}

// TestEmbedInputTooLong checks an input longer than the model's context
// is named by its index: Ollama refuses the batch without saying which,
// so the inputs are then tried one by one.
func TestEmbedInputTooLong(t *testing.T) {
	srv := ollamatest.New("embedder")
	t.Cleanup(srv.Close)
	srv.MaxInputChars = 10
	c := newTextClient(t, srv, nil)
	_, err := c.Embed(context.Background(), embed("short", "tiny", "small", "far too long for it", "also much too long"))
	var ie *domain.InputError
	if !errors.As(err, &ie) || ie.Index != 3 || !strings.Contains(ie.Message, "longer than the model's context") ||
		!strings.Contains(ie.Message, "the input length exceeds the context length") {
		t.Fatalf("%#v, want input 3 named as too long", err)
	}
	if n := len(srv.RequestsTo("/api/embed")); n != 5 {
		t.Errorf("%d calls, want the batch and inputs 0 to 3 one by one", n)
	}

	_, err = c.Embed(context.Background(), embed("far too long for it"))
	if !errors.As(err, &ie) || ie.Index != 0 {
		t.Errorf("%#v, want the single input named", err)
	}
	if n := len(srv.RequestsTo("/api/embed")); n != 6 {
		t.Errorf("%d calls: a single input needs no search", n)
	}

	req := embed("short", "far too long for it")
	req.Truncate = true
	if got, err := c.Embed(context.Background(), req); err != nil || len(got.Vectors) != 2 {
		t.Errorf("%v: with truncate, Ollama cuts the input instead", err)
	}
}

// TestEmbedTokenInputs checks inputs given as token ids are decoded with
// the tokenizer of the client's model, and a failure names the input's
// index in the batch (the use case rebases it onto the request).
func TestEmbedTokenInputs(t *testing.T) {
	srv := ollamatest.New("embedder")
	t.Cleanup(srv.Close)
	req := embed("plain")
	req.Inputs = append(req.Inputs, domain.Input{Tokens: []int{1, 2, 3, 4}})
	got, err := newTextClient(t, srv, testVocab).Embed(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]float32{ollamatest.Embedding("plain", 8, 0), ollamatest.Embedding("Once upon a time", 8, 0)}, got.Vectors); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if r := srv.LastRequestTo("/api/embed"); fmt.Sprint(r["input"]) != "[plain Once upon a time]" {
		t.Errorf("input sent %v", r["input"])
	}
	for _, detok := range []ollama.Detokenizer{nil, testVocab} {
		req.Inputs[1].Tokens = []int{1, 42}
		_, err := newTextClient(t, srv, detok).Embed(context.Background(), req)
		var ie *domain.InputError
		if !errors.As(err, &ie) || ie.Index != 1 {
			t.Errorf("detokenizer %v: %#v, want input 1 named", detok, err)
		}
	}
}
