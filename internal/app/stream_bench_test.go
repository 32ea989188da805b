package app_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
)

// Whole streamed requests through the running service, one at a time, on
// loopback: the fixed cost of a stream (decode, validate, route, guards,
// metrics, log, headers) plus 20 relayed frames. The fake upstream and the
// client run in the same process, so ns/op and allocs/op count them too;
// compare runs of these benchmarks with each other, and use
// `make bench` for the service against a bare proxy. Profile the service's
// part with -cpuprofile and look below internal/.

const benchPieces = 20

func pieces() []string {
	out := make([]string, benchPieces)
	for i := range out {
		out[i] = " w" + strconv.Itoa(i)
	}
	return out
}

func benchStream(b *testing.B, cfgGateway, cfgOllama, path, body, end string) {
	cfg := testConfig(cfgGateway, cfgOllama)
	cfg.Log.Level = "info" // as in production: an access line per request
	r := startApp(b, cfg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)
	url := r.BaseURL() + path
	buf := make([]byte, 32<<10)
	one := func() {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.ReadFull(bufio.NewReader(resp.Body), buf)
		resp.Body.Close()
		if err != io.ErrUnexpectedEOF && err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(buf[:n], []byte(end)) {
			b.Fatalf("status %d err %v: %.300s", resp.StatusCode, err, buf[:n])
		}
	}
	one()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		one()
	}
}

func benchGateway(b *testing.B) string {
	gw := gatewaytest.New(upstreamModel)
	gw.Pieces = pieces()
	b.Cleanup(gw.Close)
	return gw.URL
}

func benchOllama(b *testing.B) string {
	ol := ollamatest.New(upstreamModel)
	ol.Pieces = pieces()
	b.Cleanup(ol.Close)
	return ol.URL
}

const (
	benchChat      = `{"model":"gpt-4","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Tell me about the sea."}]}`
	benchText      = `{"model":"gpt-4","stream":true,"prompt":"Once upon a time","max_tokens":64}`
	benchResponses = `{"model":"gpt-4","stream":true,"store":false,"instructions":"You are terse.","input":"Tell me about the sea."}`
)

func BenchmarkStreamChatGateway(b *testing.B) {
	benchStream(b, benchGateway(b), "", "/v1/chat/completions", benchChat, "[DONE]")
}

func BenchmarkStreamChatOllama(b *testing.B) {
	benchStream(b, "", benchOllama(b), "/v1/chat/completions", benchChat, "[DONE]")
}

func BenchmarkStreamCompletionsGateway(b *testing.B) {
	benchStream(b, benchGateway(b), "", "/v1/completions", benchText, "[DONE]")
}

func BenchmarkStreamCompletionsOllama(b *testing.B) {
	benchStream(b, "", benchOllama(b), "/v1/completions", benchText, "[DONE]")
}

func BenchmarkStreamResponsesGateway(b *testing.B) {
	benchStream(b, benchGateway(b), "", "/v1/responses", benchResponses, "response.completed")
}

func BenchmarkStreamResponsesOllama(b *testing.B) {
	benchStream(b, "", benchOllama(b), "/v1/responses", benchResponses, "response.completed")
}
