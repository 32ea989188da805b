package app_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway/gatewaytest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama/ollamatest"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/app"
)

// Shared helpers for the tests of package app: fakes, a running
// application, and clients for it. Every server binds 127.0.0.1.

// upstreamModel is what the aliases gpt-4, gpt-4-turbo and gpt-4o stand for
// in app.Default().
const upstreamModel = "qwen2.5:32b"

// testConfig is app.Default() bound to a random loopback port, quiet, with
// the given backend URLs ("" switches a backend off).
func testConfig(gatewayURL, ollamaURL string) app.Config {
	cfg := app.Default()
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.Port = 0
	cfg.Server.DrainTimeout = app.Duration(5 * time.Second)
	cfg.Log.Level = "error"
	cfg.AgentID = "e2e-agent"
	cfg.UpstreamTimeout = app.Duration(5 * time.Second)
	cfg.Health.Timeout = app.Duration(2 * time.Second)
	cfg.Gateway.URL = gatewayURL
	cfg.Ollama.URL = ollamaURL
	cfg.Responses.DataDir = tempDir()
	return cfg
}

// tempDir is a fresh directory removed when the test binary ends, for the
// embedded response store of one application.
func tempDir() string {
	dir, err := os.MkdirTemp(testTmp, "responses-")
	if err != nil {
		panic(err)
	}
	return dir
}

// newGateway starts a fake gateway closed when the test ends.
func newGateway(t testing.TB, models ...string) *gatewaytest.Server {
	t.Helper()
	gw := gatewaytest.New(models...)
	t.Cleanup(gw.Close)
	return gw
}

// newOllama starts a fake Ollama host closed when the test ends.
func newOllama(t testing.TB, models ...string) *ollamatest.Server {
	t.Helper()
	ol := ollamatest.New(models...)
	t.Cleanup(ol.Close)
	return ol
}

// downURL is the URL of a server that was started and closed again: nothing
// listens there any more.
func downURL(t testing.TB) string {
	t.Helper()
	gw := gatewaytest.New()
	u := gw.URL
	gw.Close()
	return u
}

// running is a started application.
type running struct {
	App  *fx.App
	Addr string // host:port
	Logs *observer.ObservedLogs
}

// BaseURL is the service's root, http://host:port.
func (r *running) BaseURL() string { return "http://" + r.Addr }

// startApp starts the real application for cfg and stops it when the test
// ends (before the fakes registered earlier are closed). Its logs at warn
// and above are captured in Logs.
func startApp(t testing.TB, cfg app.Config) *running {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	var srv *app.Server
	a := app.New(cfg,
		fx.Decorate(func(*zap.Logger) *zap.Logger { return zap.New(core) }),
		fx.Populate(&srv),
	)
	if err := a.Err(); err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("app.Start: %v", err)
	}
	// A second Stop (after a test stopped the app itself) is a no-op.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("app.Stop: %v", err)
		}
	})
	r := &running{App: a, Addr: srv.Addr(), Logs: logs}
	if r.Addr == "" || !strings.HasPrefix(r.Addr, "127.0.0.1:") {
		t.Fatalf("server address %q: want 127.0.0.1:<port>", r.Addr)
	}
	return r
}

// newHTTPClient returns a client with its own transport, closed when the test
// ends. Compression is not negotiated transparently, so a Content-Encoding the
// service sends stays visible.
func newHTTPClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true, Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// sdkClient is the official OpenAI SDK pointed at r.
func sdkClient(t testing.TB, r *running, opts ...option.RequestOption) openai.Client {
	t.Helper()
	base := []option.RequestOption{
		option.WithBaseURL(r.BaseURL() + "/v1"),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
		option.WithHTTPClient(newHTTPClient(t)),
		option.WithRequestTimeout(10 * time.Second),
	}
	return openai.NewClient(append(base, opts...)...)
}

// TestValidateApp checks the dependency graph without running constructors.
func TestValidateApp(t *testing.T) {
	t.Parallel()
	if err := fx.ValidateApp(fx.Supply(app.Default()), app.Module, fx.NopLogger); err != nil {
		t.Fatalf("fx.ValidateApp with a Config: %v", err)
	}
	// Without a Config the graph is incomplete, and fx says so.
	if err := fx.ValidateApp(app.Module, fx.NopLogger); err == nil || !strings.Contains(err.Error(), "app.Config") {
		t.Fatalf("fx.ValidateApp without a Config: got %v, want a missing app.Config error", err)
	}
}

// TestFxSmoke starts and stops the module under fxtest, with both backends
// served by fakes, and checks the server answers in between and not after.
func TestFxSmoke(t *testing.T) {
	t.Parallel()
	gw := newGateway(t, upstreamModel)
	ol := newOllama(t, upstreamModel)
	cfg := testConfig(gw.URL, ol.URL)
	var srv *app.Server
	fa := fxtest.New(t,
		fx.Supply(cfg),
		app.Module,
		fx.Populate(&srv),
	)
	fa.RequireStart()
	addr := srv.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<port>", addr)
	}
	hc := newHTTPClient(t)
	for _, p := range []string{"/livez", "/readyz", "/health"} {
		resp, err := hc.Get("http://" + addr + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", p, resp.StatusCode)
		}
	}
	hc.CloseIdleConnections()
	fa.RequireStop()
	if resp, err := hc.Get("http://" + addr + "/livez"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /livez after stop: status %d, want a refused connection", resp.StatusCode)
	}
}
