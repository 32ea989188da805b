package boltstore_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/boltstore"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/wire"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// The save path of a Responses stream: one finished response (a
// 100-chunk answer's object, ~2.5 KB, and its input) kept with the
// service's defaults (a 30-day TTL, a 1 GiB cap), one at a time and from
// 50 goroutines, and a save followed at once by the read a
// previous_response_id makes. Each benchmark ends with Close, so what is
// measured includes every commit (and fsync) of the records it wrote;
// cpu-ns/op is the process's CPU time (user and system) per Put.

// benchID makes the records' ids: random ones (wire.RandomText, as
// response ids were) unless set otherwise.
var benchID = func(int) string { return wire.RandomText("resp_") }

// timeOrderedID is an id that begins with the time, in lowercase hex, as
// openai.NewResponseID's do.
func timeOrderedID(int) string {
	return "resp_" + strconv.FormatInt(time.Now().UnixMilli(), 16) + wire.RandomText("")[:20]
}

func benchRecord(i int) domain.StoredResponse {
	id := benchID(i)
	now := time.Now()
	text := bytes.Repeat([]byte(" token"), 100)
	resp := []byte(`{"id":"` + id + `","object":"response","created_at":1764146000,"status":"completed","completed_at":1764146001,"error":null,` +
		`"incomplete_details":null,"instructions":"You are a helpful assistant. Answer briefly.","max_output_tokens":256,"model":"gpt-4o-mini",` +
		`"output":[{"type":"message","id":"msg_0123456789ABCDEFGHIJKLMNOP","role":"assistant","content":[{"type":"output_text","text":"` +
		string(text) + `","annotations":[],"logprobs":[]}],"status":"completed"}],"parallel_tool_calls":true,"previous_response_id":null,` +
		`"reasoning":{"effort":null,"summary":null},"store":true,"temperature":0.7,"text":{"format":{"type":"text"}},"tool_choice":"auto",` +
		`"tools":[],"top_p":null,"truncation":"disabled","usage":{"input_tokens":24,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},` +
		`"output_tokens":100,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":124},"metadata":{}}`)
	input := []byte(`[{"type":"message","role":"system","content":[{"type":"input_text","text":"You are a helpful assistant. Answer briefly."}]},` +
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"bench:chunks=100:interval=0 Write a haiku about the sea, please."}]}]`)
	return domain.StoredResponse{ID: id, CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour), Response: resp, Input: input}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchDelay is the CommitDelay of the benchmarks' stores.
var benchDelay time.Duration

func benchOpen(b *testing.B) *boltstore.Store {
	b.Helper()
	s, err := boltstore.Open(filepath.Join(b.TempDir(), boltstore.FileName), boltstore.Options{MaxBytes: 1 << 30, CommitDelay: benchDelay})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchPuts runs put(i) for i in [0, b.N) (from parallelism×GOMAXPROCS
// goroutines when parallelism > 0; one every pace when pace > 0), then
// closes the store.
func benchPuts(b *testing.B, parallelism int, pace time.Duration, put func(s *boltstore.Store, r domain.StoredResponse)) {
	s := benchOpen(b)
	recs := make([]domain.StoredResponse, b.N)
	for i := range recs {
		recs[i] = benchRecord(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	if parallelism == 0 {
		for i := range b.N {
			put(s, recs[i])
			if pace > 0 {
				time.Sleep(pace)
			}
		}
	} else {
		var next atomic.Int64
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				put(s, recs[next.Add(1)-1])
			}
		})
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func putOne(b *testing.B) func(s *boltstore.Store, r domain.StoredResponse) {
	return func(s *boltstore.Store, r domain.StoredResponse) {
		if err := s.Put(context.Background(), r); err != nil {
			b.Error(err)
		}
	}
}

func putThenGet(b *testing.B) func(s *boltstore.Store, r domain.StoredResponse) {
	return func(s *boltstore.Store, r domain.StoredResponse) {
		if err := s.Put(context.Background(), r); err != nil {
			b.Error(err)
		}
		got, err := s.Get(context.Background(), r.ID)
		if err != nil || len(got.Response) != len(r.Response) {
			b.Errorf("get after put: %d bytes, %v", len(got.Response), err)
		}
	}
}

func BenchmarkPut(b *testing.B)          { benchPuts(b, 0, 0, putOne(b)) }
func BenchmarkPut50(b *testing.B)        { benchPuts(b, 25, 0, putOne(b)) }
func BenchmarkPutThenGet(b *testing.B)   { benchPuts(b, 0, 0, putThenGet(b)) }
func BenchmarkPutThenGet50(b *testing.B) { benchPuts(b, 25, 0, putThenGet(b)) }

// One Put every millisecond: the commits carry what queued meanwhile.
func BenchmarkPutPaced(b *testing.B) { benchPuts(b, 0, time.Millisecond, putOne(b)) }

// The same with time-ordered ids, and with commit delays other than the
// default.
func BenchmarkPutPacedVariants(b *testing.B) {
	for _, delay := range []time.Duration{-1, 10 * time.Millisecond, 0} {
		for _, ordered := range []bool{false, true} {
			name := fmt.Sprintf("delay=%v/ordered=%v", delay, ordered)
			if delay == 0 {
				name = fmt.Sprintf("delay=default/ordered=%v", ordered)
			}
			b.Run(name, func(b *testing.B) {
				benchDelay = delay
				if ordered {
					benchID = timeOrderedID
				}
				defer func() { benchDelay, benchID = 0, func(int) string { return wire.RandomText("resp_") } }()
				benchPuts(b, 0, time.Millisecond, putOne(b))
			})
		}
	}
}

func BenchmarkPut50Ordered(b *testing.B) {
	benchID = timeOrderedID
	defer func() { benchID = func(int) string { return wire.RandomText("resp_") } }()
	benchPuts(b, 25, 0, putOne(b))
}

// The pace alone (a sleep of 1 ms per op, no store): what the paced
// benchmarks' cpu-ns/op holds besides the Puts.
func BenchmarkPaceOnly(b *testing.B) {
	cpu0 := cpuTime()
	for range b.N {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
