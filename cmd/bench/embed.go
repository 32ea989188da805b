package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The embeddings scenario: a RAG ingest request, a batch of documentation
// chunks of about 300 characters each, measured like buffered chat (open
// model at a fixed rate, then a closed loop for maximum throughput) with
// the same code (runRate, runThroughput), on processes of its own.

// embedClientModel is the model clients name; the service maps it to its
// embeddings.model (nomic-embed-text).
const embedClientModel = "text-embedding-3-small"

// embedCorpus is the prose the inputs are cut from.
const embedCorpus = "The adapter accepts requests in the OpenAI format and forwards them to a gateway or to a local Ollama server. " +
	"Each backend has its own circuit breaker, concurrency limit and retry policy, and a request falls back to the next backend only while nothing has reached the client. " +
	"Models are resolved through an alias table before the backends are asked; an embedding model name from OpenAI's SDKs stands for the configured local model. " +
	"Streaming answers are relayed chunk by chunk as server-sent events, with a ping comment every ten seconds so that proxies keep the connection open. " +
	"Usage is reported by the backend when it counts tokens, and estimated with a local tokenizer when it does not; estimated usage is marked in a response header. " +
	"Operators configure the service with a YAML file and environment variables; secrets such as API keys belong in the environment or a key file, never in the file itself. " +
	"Health endpoints report whether each backend answered its last model listing, and readiness waits until at least one backend is known to serve a model. " +
	"Metrics count requests, attempts, fallbacks, tokens and latencies per route, so a dashboard can show which backend served what and how long it took. "

// embedTexts returns n distinct chunks of embedCorpus, each the whole
// words that reach about chars characters, starting at different words.
func embedTexts(n, chars int) []string {
	words := strings.Fields(embedCorpus)
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for j := (i * 17) % len(words); b.Len() < chars; j = (j + 1) % len(words) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[j])
		}
		out[i] = b.String()
	}
	return out
}

// openAIEmbedBody is a CreateEmbeddingRequest as the official Python SDK
// sends it (members in its order).
func openAIEmbedBody(texts []string, format string) []byte {
	in, _ := json.Marshal(texts)
	return []byte(fmt.Sprintf(`{"input":%s,"model":%q,"encoding_format":%q}`, in, embedClientModel, format))
}

// ollamaEmbedBody is the /api/embed request the service sends for
// openAIEmbedBody (checked with -keep, which logs it in upstream.log).
func ollamaEmbedBody(texts []string) []byte {
	in, _ := json.Marshal(texts)
	return []byte(fmt.Sprintf(`{"model":%q,"input":%s,"truncate":false}`, embedModelTag, in))
}

// EmbedResult is one encoding_format of the embeddings scenario on a path.
type EmbedResult struct {
	Format     string `json:"encoding_format"`
	Inputs     int    `json:"inputs"`
	InputChars int    `json:"input_chars"` // of every input together
	Dimensions int    `json:"dimensions"`
	// Bytes of one request and of its answer, per target.
	RequestBytes  map[string]int                    `json:"request_bytes"`
	ResponseBytes map[string]int                    `json:"response_bytes"`
	Rate          map[string]map[string]*RateResult `json:"open_model"` // rate -> target -> result
	Throughput    map[string]*ThroughputResult      `json:"max_throughput"`
}

// embedTargets are direct, floor and service for one encoding format; the
// clients are the given ones (one per target, shared by the formats).
func (h *harness) embedTargets(p pathSpec, floor, svc *child, format string, texts []string, cls map[string]*http.Client) []*target {
	native, nativeBody, nativeCheck := "/v1/embeddings", openAIEmbedBody(texts, format), []byte(`"total_tokens":`)
	if p.ollama {
		// Ollama has no base64: direct and floor get the same /api/embed
		// request whatever the client asked the service for.
		native, nativeBody, nativeCheck = "/api/embed", ollamaEmbedBody(texts), []byte(`"prompt_eval_count":`)
	}
	mk := func(name, addr, path string, body, check []byte, pid int) *target {
		if cls[name] == nil {
			cls[name] = newClient(1024)
		}
		return &target{name: name, url: "http://" + addr + path, buffered: body, bufCheck: check, pid: pid, cl: cls[name]}
	}
	return []*target{
		mk("direct", p.upstream, native, nativeBody, nativeCheck, h.up.pid),
		mk("floor", floor.addrs[0], native, nativeBody, nativeCheck, floor.pid),
		mk("service", svc.addrs[0], "/v1/embeddings", openAIEmbedBody(texts, format), []byte(`"total_tokens":`), svc.pid),
	}
}

// checkEmbeddings decodes an answer (OpenAI's list, or /api/embed's when
// ollama) and checks it holds the fakes' vectors, exactly, in input order.
func checkEmbeddings(body []byte, ollama bool, n int) error {
	var vecs [][]float32
	if ollama {
		var w struct {
			Embeddings [][]float32 `json:"embeddings"`
		}
		if err := json.Unmarshal(body, &w); err != nil {
			return err
		}
		vecs = w.Embeddings
	} else {
		var w struct {
			Object string `json:"object"`
			Data   []struct {
				Index     int             `json:"index"`
				Embedding json.RawMessage `json:"embedding"`
			} `json:"data"`
			Usage struct {
				PromptTokens int `json:"prompt_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(body, &w); err != nil {
			return err
		}
		if w.Object != "list" || w.Usage.PromptTokens != n*embedTokensPerInput {
			return fmt.Errorf("object %q, prompt_tokens %d", w.Object, w.Usage.PromptTokens)
		}
		for i, d := range w.Data {
			if d.Index != i {
				return fmt.Errorf("data[%d] has index %d", i, d.Index)
			}
			var v []float32
			if len(d.Embedding) > 0 && d.Embedding[0] == '"' {
				var s string
				json.Unmarshal(d.Embedding, &s)
				raw, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return fmt.Errorf("data[%d]: %v", i, err)
				}
				for k := 0; k+4 <= len(raw); k += 4 {
					v = append(v, math.Float32frombits(binary.LittleEndian.Uint32(raw[k:])))
				}
			} else if err := json.Unmarshal(d.Embedding, &v); err != nil {
				return fmt.Errorf("data[%d]: %v", i, err)
			}
			vecs = append(vecs, v)
		}
	}
	if len(vecs) != n {
		return fmt.Errorf("%d embeddings for %d inputs", len(vecs), n)
	}
	for i, v := range vecs {
		want := embedVectors[i%embedDistinct]
		if len(v) != len(want) {
			return fmt.Errorf("embedding %d has %d dimensions, want %d", i, len(v), len(want))
		}
		for j := range v {
			if v[j] != want[j] {
				return fmt.Errorf("embedding %d differs at %d: %v, want %v", i, j, v[j], want[j])
			}
		}
	}
	return nil
}

// embedSanity sends one request to each target, checks the vectors, and
// records the request and answer sizes.
func embedSanity(ts []*target, ollama bool, n int, r *EmbedResult) error {
	for _, t := range ts {
		var body []byte
		err := retryCut(func() error {
			resp, err := t.cl.Post(t.url, "application/json", bytes.NewReader(t.buffered))
			if err != nil {
				return err
			}
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, t.bufCheck) {
				return fmt.Errorf("status %d, body %.300s", resp.StatusCode, body)
			}
			return checkEmbeddings(body, ollama && t.name != "service", n)
		})
		if err != nil {
			return fmt.Errorf("%s: %v", t.name, err)
		}
		r.RequestBytes[t.name], r.ResponseBytes[t.name] = len(t.buffered), len(body)
	}
	return nil
}

// runEmbeddings measures every encoding format on freshly started floor
// and service processes: what earlier scenarios left in their heaps does
// not count, and their VmHWM stays the chat scenarios'.
func (h *harness) runEmbeddings(p pathSpec) (map[string]*EmbedResult, error) {
	s := h.set
	floor, svc, err := h.startPair(p, "embed")
	if err != nil {
		return nil, err
	}
	defer func() {
		h.smp.forget(floor.pid)
		h.smp.forget(svc.pid)
		floor.stop(3 * time.Second)
		svc.stop(5 * time.Second)
	}()
	cls := map[string]*http.Client{}
	defer func() {
		for _, c := range cls {
			closeClient(c)
		}
	}()
	texts := embedTexts(s.EmbedInputs, s.EmbedChars)
	chars := 0
	for _, t := range texts {
		chars += len(t)
	}
	round, warm := secs(s.EmbedRoundSeconds), secs(s.EmbedWarmSeconds)
	out := map[string]*EmbedResult{}
	for _, format := range s.EmbedFormats {
		r := &EmbedResult{Format: format, Inputs: len(texts), InputChars: chars, Dimensions: embedDims,
			RequestBytes: map[string]int{}, ResponseBytes: map[string]int{}, Rate: map[string]map[string]*RateResult{}}
		ts := h.embedTargets(p, floor, svc, format, texts, cls)
		if err := embedSanity(ts, p.ollama, len(texts), r); err != nil {
			return nil, fmt.Errorf("%s: embeddings (%s) sanity check: %v", p.name, format, err)
		}
		h.logf("%s: embeddings %s, %d inputs of ~%d chars @%d req/s, %d×%.1fs per target", p.name, format, len(texts), s.EmbedChars, s.EmbedRate, s.Rounds, s.EmbedRoundSeconds)
		r.Rate[strconv.Itoa(s.EmbedRate)] = runRate(ts, s.EmbedRate, s.Rounds, round, warm, h.smp)
		if slices.Contains(s.EmbedTputFormats, format) {
			h.logf("%s: embeddings %s, max throughput, %d connections", p.name, format, s.Conns)
			r.Throughput = runThroughput(ts, s.Conns, s.Rounds, round, warm, h.smp)
		}
		out[format] = r
	}
	return out, nil
}
