package app_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/redisstore/redistest"
)

// replica is a service process: this test binary re-executed as the
// service (see TestMain), configured through the environment.
type replica struct {
	cmd  *exec.Cmd
	base string
}

func startReplica(t *testing.T, env ...string) *replica {
	t.Helper()
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"=1", "CHATGPT_API_PORT="+strconv.Itoa(port), "LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // the service's log, in the test's
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			t.Log("replica :" + strconv.Itoa(port) + ": " + s.Text())
		}
	}()
	r := &replica{cmd: cmd, base: "http://127.0.0.1:" + strconv.Itoa(port)}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("replica on port %d did not stop cleanly: %v", port, err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("replica on port %d did not stop within 30s of SIGTERM", port)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(r.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica on port %d not ready within 30s: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicasShareResponsesThroughRedis: two service processes on one
// Redis, as Kubernetes runs replicas. A response made through one is
// continued with previous_response_id through the other, and read back,
// listed and deleted through either.
func TestReplicasShareResponsesThroughRedis(t *testing.T) {
	ol := newOllama(t, upstreamModel)
	ol.CallTools = []ollamatest.ToolCall{ollamatest.Call("get_weather", `{"city":"Paris"}`)}
	ol.Reply = "Sunny."
	env := []string{"GATEWAY_URL=", "OLLAMA_URL=" + ol.URL, "RESPONSES_REDIS_URL=" + redistest.URL(t)}
	a, b := startReplica(t, env...), startReplica(t, env...)
	newClient := func(r *replica) *openai.Client {
		c := openai.NewClient(option.WithBaseURL(r.base+"/v1"), option.WithAPIKey("unused"), option.WithMaxRetries(0),
			option.WithHTTPClient(newHTTPClient(t)))
		return &c
	}
	ca, cb := newClient(a), newClient(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first, err := ca.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-4", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Weather in Paris?")},
		Tools: []responses.ToolUnionParam{weatherFunction},
	})
	if err != nil {
		t.Fatalf("responses.create through replica A: %v", err)
	}
	call := first.Output[0].AsFunctionCall()
	output := responses.ResponseInputItemParamOfFunctionCallOutput("sunny")
	output.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	second, err := cb.Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-4", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{output}},
		Tools: []responses.ToolUnionParam{weatherFunction},
	})
	if err != nil {
		t.Fatalf("continuing replica A's response through replica B: %v", err)
	}
	if second.OutputText() != "Sunny." {
		t.Errorf("second answer %s", second.RawJSON())
	}
	reqs := ol.Requests()
	if last := string(reqs[len(reqs)-1]); !strings.Contains(last, `"Weather in Paris?"`) || !strings.Contains(last, `"get_weather"`) {
		t.Errorf("replica B did not rebuild the conversation from Redis: Ollama got %s", last)
	}
	if got, err := ca.Responses.Get(ctx, second.ID, responses.ResponseGetParams{}); err != nil || got.OutputText() != "Sunny." {
		t.Errorf("reading replica B's response through replica A: %v", err)
	}
	if err := ca.Responses.Delete(ctx, second.ID); err != nil {
		t.Fatalf("delete through A: %v", err)
	}
	_, err = cb.Responses.Get(ctx, second.ID, responses.ResponseGetParams{})
	apiError(t, err, http.StatusNotFound, "")
}
