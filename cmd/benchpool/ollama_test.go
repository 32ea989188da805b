package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func startTestFake(t *testing.T) *FakeOllama {
	t.Helper()
	f := StartFake(HostConfig{Name: "h", Models: []string{"qwen2.5:7b", "llama3.1:8b"}, Fits: 1, Parallel: 2,
		LoadDelay: 30 * time.Millisecond, PromptToken: time.Microsecond, GenTokens: 3, TokenDelay: time.Millisecond}, realClock{})
	t.Cleanup(f.Close)
	return f
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func TestFakeListsModels(t *testing.T) {
	f := startTestFake(t)
	code, ctype, body := get(t, f.URL()+"/api/tags")
	want := `{"models":[{"name":"qwen2.5:7b","model":"qwen2.5:7b","modified_at":"2026-05-10T08:06:48.639712648-07:00","size":4683087332,"digest":"` +
		digest("qwen2.5:7b") + `","details":{"parent_model":"","format":"gguf","family":"qwen2","families":["qwen2"],"parameter_size":"7.6B","quantization_level":"Q4_K_M"}},`
	if code != 200 || ctype != "application/json; charset=utf-8" || !strings.HasPrefix(body, want) {
		t.Fatalf("/api/tags: %d %s\n%s", code, ctype, body)
	}
	if _, _, body := get(t, f.URL()+"/api/ps"); body != `{"models":[]}` {
		t.Fatalf("/api/ps with nothing loaded: %s", body)
	}
	if _, _, body := get(t, f.URL()+"/api/version"); body != `{"version":"0.12.6"}` {
		t.Fatalf("/api/version: %s", body)
	}
	if code, _, _ := get(t, f.URL()+"/api/nothing"); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
}

func chat(t *testing.T, f *FakeOllama, body string) (*http.Response, []string) {
	t.Helper()
	resp, err := http.Post(f.URL()+"/api/chat", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return resp, lines
}

var (
	tokenLine = regexp.MustCompile(`^\{"model":"qwen2\.5:7b","created_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z","message":\{"role":"assistant","content":"[^"]+"\},"done":false\}$`)
	finalLine = regexp.MustCompile(`^\{"model":"qwen2\.5:7b","created_at":"[^"]+","message":\{"role":"assistant","content":""\},"done":true,"done_reason":"stop","total_duration":\d+(,"load_duration":\d+)?,"prompt_eval_count":\d+,"prompt_eval_duration":\d+,"eval_count":3,"eval_duration":3000000\}$`)
	psLine    = regexp.MustCompile(`^\{"models":\[\{"name":"qwen2\.5:7b","model":"qwen2\.5:7b","size":4683087332,"digest":"[0-9a-f]{64}","details":\{[^}]*\},"expires_at":"[^"]+","size_vram":4683087332,"context_length":4096\}\]\}$`)
)

func TestFakeStreamsChat(t *testing.T) {
	f := startTestFake(t)
	body := `{"model":"qwen2.5:7b","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}],"stream":true}`
	resp, lines := chat(t, f, body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 4 {
		t.Fatalf("%d %s, %d lines:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), len(lines), strings.Join(lines, "\n"))
	}
	var answer strings.Builder
	for _, l := range lines[:3] {
		if !tokenLine.MatchString(l) {
			t.Fatalf("token line %s", l)
		}
		var m struct{ Message Message }
		json.Unmarshal([]byte(l), &m)
		answer.WriteString(m.Message.Content)
	}
	if !finalLine.MatchString(lines[3]) || !strings.Contains(lines[3], `"load_duration"`) {
		t.Fatalf("final line %s", lines[3])
	}
	msgs := []Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello"}}
	if want := strings.Join(answerFor("qwen2.5:7b", msgs, 3), ""); answer.String() != want {
		t.Fatalf("answer %q, want %q", answer.String(), want)
	}
	if _, _, ps := get(t, f.URL()+"/api/ps"); !psLine.MatchString(ps) {
		t.Fatalf("/api/ps: %s", ps)
	}
	// The next turn: warm, most of the prompt cached, no load_duration.
	next := `{"model":"qwen2.5:7b","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"},` +
		`{"role":"assistant","content":` + str(answer.String()) + `},{"role":"user","content":"more"}]}`
	_, lines = chat(t, f, next)
	var final struct {
		LoadDuration    int64 `json:"load_duration"`
		PromptEvalCount int   `json:"prompt_eval_count"`
	}
	json.Unmarshal([]byte(lines[len(lines)-1]), &final)
	if final.LoadDuration > int64(10*time.Millisecond) || final.PromptEvalCount > 12 {
		t.Fatalf("follow-up: %s", lines[len(lines)-1])
	}
	if st := f.Stats(); st.Requests != 2 || st.Loads != 1 || st.CacheHits != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFakeBufferedAndErrors(t *testing.T) {
	f := startTestFake(t)
	resp, lines := chat(t, f, `{"model":"llama3.1:8b","messages":[{"role":"user","content":"hi"}],"stream":false}`)
	if resp.StatusCode != 200 || len(lines) != 1 || !strings.Contains(lines[0], `"done":true,"done_reason":"stop"`) ||
		resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("buffered: %d %v", resp.StatusCode, lines)
	}
	resp, lines = chat(t, f, `{"model":"nope:1b","messages":[]}`)
	if resp.StatusCode != 404 || lines[0] != `{"error":"model \"nope:1b\" not found, try pulling it first"}` {
		t.Fatalf("unknown model: %d %v", resp.StatusCode, lines)
	}
	resp, lines = chat(t, f, `{"messages":[]}`)
	if resp.StatusCode != 400 || lines[0] != `{"error":"model is required"}` {
		t.Fatalf("no model: %d %v", resp.StatusCode, lines)
	}
}
