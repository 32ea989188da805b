// Command loadtest drives the real service (app.New) in front of an
// in-process fake gateway and fake Ollama at a fixed arrival rate (an open
// model: requests keep arriving whatever the latency), mixing buffered and
// streamed chat completions, and takes the gateway down for the middle
// third of the run. With Ollama healthy behind it, every request must be
// served: the exit status is 1 when any failed or was lost.
//
//	go run ./cmd/loadtest -rate 200 -duration 20s -stream-ratio 0.5
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.uber.org/fx"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// upstreamModel is what the alias gpt-4 stands for in app.Default().
const upstreamModel = "qwen2.5:32b"

const (
	bufferedBody = `{"model":"gpt-4","messages":[{"role":"user","content":"Say hello."}]}`
	streamedBody = `{"model":"gpt-4","stream":true,"messages":[{"role":"user","content":"Say hello."}]}`
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rate := fs.Int("rate", 200, "requests per second (fixed arrival rate)")
	duration := fs.Duration("duration", 20*time.Second, "how long requests are sent; the gateway is down for the middle third")
	streamRatio := fs.Float64("stream-ratio", 0.5, "share of streamed requests, 0 to 1")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout of the load generator")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *rate < 1 || *duration <= 0 || *streamRatio < 0 || *streamRatio > 1 || *timeout <= 0 {
		fmt.Fprintln(stderr, "loadtest: -rate must be positive, -duration and -timeout positive, -stream-ratio between 0 and 1")
		return 2
	}
	if err := loadtest(*rate, *duration, *streamRatio, *timeout, stdout); err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 1
	}
	return 0
}

func loadtest(rate int, duration time.Duration, streamRatio float64, timeout time.Duration, out io.Writer) error {
	// The fakes answer at once with fixed replies. The gateway's handler is
	// served behind a listener this program closes and reopens.
	gw := gatewaytest.New(upstreamModel)
	defer gw.Close()
	front, err := newSwitchable(gw.Config.Handler)
	if err != nil {
		return err
	}
	defer front.Close()
	ol := ollamatest.New(upstreamModel)
	defer ol.Close()

	cfg := app.Default()
	data, err := os.MkdirTemp("", "loadtest-responses-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	cfg.Responses.DataDir = data
	cfg.Server.Host, cfg.Server.Port = "127.0.0.1", 0
	cfg.Log.Level = "error"
	cfg.Gateway.URL, cfg.Ollama.URL = front.URL(), ol.URL
	// A short cooldown, so the run shows the gateway taking over again
	// soon after it is back.
	cfg.Gateway.Resilience.Breaker = app.BreakerConfig{Failures: 5, Cooldown: app.Duration(time.Second)}
	cfg.Health.Interval = app.Duration(2 * time.Second)
	cfg.Health.Timeout = app.Duration(time.Second)
	check := cfg
	check.Server.Port = 1 // port 0 (any free port) is for tests and this program only
	if err := check.Validate(); err != nil {
		return err
	}
	var srv *app.Server
	service := app.New(cfg, fx.Populate(&srv))
	if err := service.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := service.Start(startCtx); err != nil {
		return fmt.Errorf("starting the service: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = service.Stop(ctx)
	}()
	base := "http://" + srv.Addr() + "/v1/chat/completions"

	// Every n-th request is streamed so that the share is streamRatio,
	// spread evenly. The query string only tells the results apart; the
	// service ignores it.
	var sent atomic.Uint64
	header := http.Header{"Content-Type": []string{"application/json"}}
	targeter := func(t *vegeta.Target) error {
		i := sent.Add(1) - 1
		streamed := uint64(float64(i+1)*streamRatio) > uint64(float64(i)*streamRatio)
		*t = vegeta.Target{Method: http.MethodPost, URL: base + "?kind=buffered", Body: []byte(bufferedBody), Header: header}
		if streamed {
			t.URL, t.Body = base+"?kind=streamed", []byte(streamedBody)
		}
		return nil
	}

	fmt.Fprintf(out, "loadtest: %d req/s for %v, %.0f%% streamed, service on %s; gateway down from %v to %v\n",
		rate, duration, streamRatio*100, srv.Addr(), (duration / 3).Round(time.Millisecond), (2 * duration / 3).Round(time.Millisecond))
	attacker := vegeta.NewAttacker(vegeta.Timeout(timeout), vegeta.KeepAlive(true))
	began := time.Now()
	results := attacker.Attack(vegeta.Targeter(targeter), vegeta.Rate{Freq: rate, Per: time.Second}, duration, "loadtest")

	// The outage, on its own clock.
	var downAt, upAt time.Duration
	outage := make(chan error, 1)
	go func() {
		time.Sleep(time.Until(began.Add(duration / 3)))
		front.Down()
		downAt = time.Since(began)
		time.Sleep(time.Until(began.Add(2 * duration / 3)))
		err := front.Up()
		upAt = time.Since(began)
		outage <- err
	}()

	s := summary{target: uint64(float64(rate) * duration.Seconds())}
	for r := range results {
		s.add(r)
	}
	if err := <-outage; err != nil {
		return fmt.Errorf("bringing the gateway back: %w", err)
	}
	s.print(out, sent.Load(), began, downAt, upAt)
	if s.failed+s.lost(sent.Load()) > 0 {
		return fmt.Errorf("%d requests failed and %d were lost", s.failed, s.lost(sent.Load()))
	}
	return nil
}

// summary tallies the results.
type summary struct {
	target    uint64 // rate × duration
	results   uint64
	served    uint64
	failed    uint64 // an HTTP answer, but not a complete success
	noAnswer  uint64 // no HTTP answer at all: transport error or timeout
	latencies []time.Duration
	byBackend map[string]uint64
	phases    [3]map[string]uint64 // served per backend: before, during, after the outage
	stamps    []stamp
	errors    map[string]uint64
}

type stamp struct {
	at      time.Time
	backend string
}

func (s *summary) lost(sent uint64) uint64 { return s.noAnswer + (sent - s.results) }

func (s *summary) add(r *vegeta.Result) {
	s.results++
	s.latencies = append(s.latencies, r.Latency)
	if s.errors == nil {
		s.errors = map[string]uint64{}
		s.byBackend = map[string]uint64{}
	}
	if r.Code == 0 {
		s.noAnswer++
		s.errors["no answer: "+r.Error]++
		return
	}
	streamed := strings.HasSuffix(r.URL, "?kind=streamed")
	problem := ""
	switch {
	case r.Code < 200 || r.Code > 299:
		problem = fmt.Sprintf("HTTP %d: %s", r.Code, firstLine(r.Body))
	case streamed && bytes.Contains(r.Body, []byte(`data: {"error"`)):
		problem = "stream ended with an error frame: " + firstLine(r.Body[bytes.Index(r.Body, []byte(`data: {"error"`)):])
	case streamed && !bytes.HasSuffix(r.Body, []byte("data: [DONE]\n\n")):
		problem = "stream without [DONE]"
	case !streamed && !bytes.Contains(r.Body, []byte(`"object":"chat.completion"`)):
		problem = "not a chat.completion: " + firstLine(r.Body)
	}
	if problem != "" {
		s.failed++
		s.errors[problem]++
		return
	}
	s.served++
	backend := r.Headers.Get("X-Backend")
	s.byBackend[backend]++
	s.stamps = append(s.stamps, stamp{r.Timestamp, backend})
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if len(line) > 200 {
		line = line[:200]
	}
	return string(line)
}

func (s *summary) print(out io.Writer, sent uint64, began time.Time, downAt, upAt time.Duration) {
	took := time.Since(began)
	for i := range s.phases {
		s.phases[i] = map[string]uint64{}
	}
	for _, st := range s.stamps {
		at := st.at.Sub(began)
		switch {
		case at < downAt:
			s.phases[0][st.backend]++
		case at < upAt:
			s.phases[1][st.backend]++
		default:
			s.phases[2][st.backend]++
		}
	}
	slices.Sort(s.latencies)
	q := func(p float64) time.Duration {
		if len(s.latencies) == 0 {
			return 0
		}
		return s.latencies[min(len(s.latencies)-1, int(p*float64(len(s.latencies))))]
	}
	fmt.Fprintf(out, "took:      %v\n", took.Round(time.Millisecond))
	fmt.Fprintf(out, "sent:      %d (the generator's target: %d)\n", sent, s.target)
	fmt.Fprintf(out, "served:    %d (2xx with a complete answer)\n", s.served)
	fmt.Fprintf(out, "failed:    %d (an answer, but not a 2xx with a complete body)\n", s.failed)
	fmt.Fprintf(out, "lost:      %d (sent, but no answer at all)\n", s.lost(sent))
	fmt.Fprintf(out, "latency:   p50 %v  p99 %v  max %v\n", q(0.50).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), q(1).Round(10*time.Microsecond))
	fmt.Fprintf(out, "backends:  gateway %d  ollama %d\n", s.byBackend["gateway"], s.byBackend["ollama"])
	for i, name := range []string{
		fmt.Sprintf("before the outage (0-%v)", downAt.Round(10*time.Millisecond)),
		fmt.Sprintf("gateway down (%v-%v)", downAt.Round(10*time.Millisecond), upAt.Round(10*time.Millisecond)),
		fmt.Sprintf("gateway back (%v-)", upAt.Round(10*time.Millisecond)),
	} {
		fmt.Fprintf(out, "  %-32s gateway %5d  ollama %5d\n", name+":", s.phases[i]["gateway"], s.phases[i]["ollama"])
	}
	for e, n := range s.errors {
		fmt.Fprintf(out, "error:     %dx %s\n", n, e)
	}
}

// switchable serves a handler on a fixed loopback address that can be
// taken down (new connections refused, idle ones closed, open ones allowed
// to finish their request) and brought back.
type switchable struct {
	srv  *http.Server
	addr string

	mu     sync.Mutex
	ln     net.Listener
	serves sync.WaitGroup
}

func newSwitchable(h http.Handler) (*switchable, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &switchable{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, addr: ln.Addr().String()}
	s.serve(ln)
	return s, nil
}

func (s *switchable) URL() string { return "http://" + s.addr }

func (s *switchable) serve(ln net.Listener) {
	s.ln = ln
	s.serves.Go(func() { _ = s.srv.Serve(ln) })
}

// Down refuses new connections and ends the kept-alive ones; requests in
// progress finish.
func (s *switchable) Down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv.SetKeepAlivesEnabled(false)
	_ = s.ln.Close()
}

// Up listens on the same address again.
func (s *switchable) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.srv.SetKeepAlivesEnabled(true)
	s.serve(ln)
	return nil
}

func (s *switchable) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.serves.Wait()
}
