// Package app wires the service with fx: configuration, logger, backend
// clients, domain services, the HTTP server and its lifecycle.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/gateway"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/httpapi"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/images"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/ollama"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/boltstore"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/store/redisstore"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/telemetry"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/tokenizer"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/upstream"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/breaker"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/catalog"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/conversation"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/dispatch"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/health"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/limiter"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/pool"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/ports"
)

// Module is the application graph; it needs a Config supplied.
var Module = fx.Options(
	fx.Provide(
		newLogger,
		newRegistry,
		newMetrics,
		newGuards,
		newBackends,
		newChecker,
		newCatalog,
		newDispatch,
		newResponseStore,
		newConversations,
		newReady,
		newRouter,
		newServer,
	),
	fx.Invoke(runChecker, runResidency, runAdmin, func(*Server) {}),
)

// New builds the fx application for cfg; extra options are for tests.
func New(cfg Config, extra ...fx.Option) *fx.App {
	opts := []fx.Option{
		fx.Supply(cfg),
		Module,
		fx.StopTimeout(time.Duration(cfg.Server.ShutdownDelay) + time.Duration(cfg.Server.DrainTimeout) + 5*time.Second),
		fx.WithLogger(func(log *zap.Logger) fxevent.Logger {
			l := &fxevent.ZapLogger{Logger: log}
			l.UseLogLevel(zap.DebugLevel)
			return l
		}),
	}
	return fx.New(append(opts, extra...)...)
}

func newLogger(lc fx.Lifecycle, cfg Config) (*zap.Logger, error) {
	log, stop, err := telemetry.NewLogger(cfg.Log.Level, cfg.Log.Format, os.Stderr)
	if err != nil {
		return nil, err
	}
	// Appended first, so it runs last on stop: every line is written.
	lc.Append(fx.Hook{OnStop: func(context.Context) error { return stop() }})
	return log, nil
}

// Backend is one configured backend: the pool of its hosts, each with its
// client and guards.
type Backend struct {
	Name      string
	Protocol  string
	URL       string // its hosts' URLs without credentials, comma-separated, for display
	Overrides map[string]string
	Pool      *pool.Pool
	Listers   []ports.ModelLister // per host
	// Settings name the configuration keys of its credentials and URL.
	Settings telemetry.BackendSettings
}

// Guards reports each backend's circuit breakers, queues and hosts, for
// /health and the metrics.
type Guards map[string]Backend

// Breaker is the state of the backend's circuit breakers taken together:
// closed while any host's is, else half-open while any host's is, else open.
func (g Guards) Breaker(name string) string {
	b, ok := g[name]
	if !ok {
		return breaker.Closed.String()
	}
	best := breaker.Open
	for i := range b.Pool.Len() {
		st := breaker.Closed
		if br := b.Pool.Host(i).Breaker; br != nil {
			st = br.State()
		}
		if st < best {
			best = st
		}
	}
	return best.String()
}

// Queue is the number of requests waiting for one of the backend's hosts.
func (g Guards) Queue(name string) int {
	n := 0
	if b, ok := g[name]; ok {
		for _, h := range b.Pool.Stats() {
			n += h.Queued
		}
	}
	return n
}

// InFlight is the number of requests the backend's hosts are serving.
func (g Guards) InFlight(name string) int {
	n := 0
	if b, ok := g[name]; ok {
		for _, h := range b.Pool.Stats() {
			n += h.InFlight
		}
	}
	return n
}

// Hosts reports each host of the backend.
func (g Guards) Hosts(name string) []pool.HostStats {
	if b, ok := g[name]; ok {
		return b.Pool.Stats()
	}
	return nil
}

func newGuards(backends []Backend) Guards {
	g := make(Guards, len(backends))
	for _, b := range backends {
		g[b.Name] = b
	}
	return g
}

func newBackends(cfg Config) ([]Backend, error) {
	list, err := cfg.BackendList()
	if err != nil {
		return nil, err
	}
	img := images.New(images.Options{
		FetchRemote: cfg.Images.FetchRemote, MaxBytes: cfg.Images.MaxBytes, Timeout: time.Duration(cfg.Images.Timeout),
		AllowPrivate: cfg.Images.AllowPrivate, AllowedHosts: cfg.Images.AllowedHosts,
	})
	tokens := tokenizer.New()
	ps := pool.Settings{Strategy: pool.Strategy(cfg.Pool.Strategy), AffinityTTL: time.Duration(cfg.Pool.AffinityTTL),
		AffinityEntries: cfg.Pool.AffinityEntries}
	out := make([]Backend, 0, len(list))
	for i, b := range list {
		r := b.Resilience
		be := Backend{Name: b.Name, Protocol: b.Protocol, Overrides: b.Overrides, Settings: settingsOf(cfg, i, b.Name)}
		hosts := make([]pool.Host, 0, len(b.Hosts))
		urls := make([]string, 0, len(b.Hosts))
		for _, h := range b.Hosts {
			opts := upstream.Options{Name: b.Name, BaseURL: h.URL, AgentID: cfg.AgentID, APIKey: b.APIKey,
				Timeouts: upstream.Timeouts{
					Connect: time.Duration(r.Timeouts.Connect), FirstByte: time.Duration(r.Timeouts.FirstByte),
					Idle: time.Duration(r.Timeouts.Idle), Total: time.Duration(r.Timeouts.Total),
				},
				Retry: upstream.Retry{
					Attempts: r.Retries.Attempts, BaseDelay: time.Duration(r.Retries.BaseDelay),
					MaxDelay: time.Duration(r.Retries.MaxDelay), MaxRetryAfter: time.Duration(r.Retries.MaxRetryAfter),
				},
			}
			shown := *h.URL
			shown.User = nil
			ph := pool.Host{Name: h.Name, URL: shown.String(), Weight: h.Weight, Labels: h.Labels,
				Breaker: breaker.New(breaker.Settings{Failures: r.Breaker.Failures, Cooldown: time.Duration(r.Breaker.Cooldown)}, nil),
				Limiter: limiter.New(limiter.Settings{Concurrency: r.Limit.Concurrency, Queue: r.Limit.Queue, MaxWait: time.Duration(r.Limit.MaxWait)}),
			}
			switch b.Protocol {
			case ProtocolOpenAI:
				c := gateway.New(opts, gateway.Options{Responses: b.ResponsesAPI})
				ph.Client = c
				be.Listers = append(be.Listers, c)
			default:
				c := ollama.New(opts, ollama.Options{NumCtx: b.NumCtx, Images: img, Detokenizer: tokens})
				ph.Client = c
				be.Listers = append(be.Listers, c)
			}
			hosts = append(hosts, ph)
			urls = append(urls, ph.URL)
		}
		be.URL = strings.Join(urls, ",")
		be.Pool = pool.New(b.Name, hosts, ps)
		out = append(out, be)
	}
	return out, nil
}

// settingsOf names where backend i's credentials and URL are configured,
// as the user wrote them.
func settingsOf(cfg Config, i int, name string) telemetry.BackendSettings {
	switch {
	case len(cfg.Backends) > 0:
		return telemetry.BackendSettings{APIKey: fmt.Sprintf("backends[%d].api_key", i), URL: fmt.Sprintf("backends[%d].url", i)}
	case name == "gateway":
		return telemetry.BackendSettings{APIKey: "GATEWAY_API_KEY (gateway.api_key)", URL: "GATEWAY_URL (gateway.url)"}
	}
	return telemetry.BackendSettings{APIKey: "ollama.api_key", URL: "OLLAMA_URL (ollama.url)"}
}

func newChecker(cfg Config, backends []Backend) *health.Checker {
	hb := make([]health.Backend, len(backends))
	for i, b := range backends {
		hosts := make([]health.Host, b.Pool.Len())
		for j := range hosts {
			h := b.Pool.Host(j)
			hosts[j] = health.Host{Name: h.Name, URL: h.URL, Lister: b.Listers[j]}
		}
		hb[i] = health.Backend{Name: b.Name, Protocol: b.Protocol, Hosts: hosts, Observer: b.Pool}
	}
	return health.NewChecker(hb, time.Duration(cfg.Health.Interval), time.Duration(cfg.Health.Timeout))
}

func newCatalog(cfg Config, backends []Backend, checker *health.Checker) *catalog.Catalog {
	cb := make([]catalog.Backend, len(backends))
	for i, b := range backends {
		cb[i] = catalog.Backend{Name: b.Name, Overrides: b.Overrides}
	}
	return catalog.New(cfg.Aliases(), cb, checker, time.Now())
}

func newRegistry() (*prometheus.Registry, prometheus.Registerer) {
	reg := telemetry.NewRegistry()
	return reg, reg
}

func newMetrics(cfg Config, reg prometheus.Registerer, checker *health.Checker, guards Guards) (*telemetry.Metrics, error) {
	aliases := cfg.Aliases()
	models := make([]string, 0, len(aliases)*2)
	for alias, target := range aliases {
		models = append(models, alias, target)
	}
	return telemetry.NewMetrics(reg, Version, models, checker, guards)
}

func newDispatch(cfg Config, cat *catalog.Catalog, backends []Backend, checker *health.Checker, log *zap.Logger, m *telemetry.Metrics) *dispatch.Service {
	db := make([]dispatch.Backend, len(backends))
	settings := make(map[string]telemetry.BackendSettings, len(backends))
	for i, b := range backends {
		db[i] = dispatch.Backend{Name: b.Name, Pool: b.Pool}
		settings[b.Name] = b.Settings
	}
	return dispatch.New(cat, db, dispatch.Observers{telemetry.Attempts{Log: log, Metrics: m, Settings: settings}, checker},
		dispatch.EmbedBatch(cfg.Embeddings.BatchSize), dispatch.Refresh(checker))
}

// Ready is true from start-up until draining begins.
type Ready struct{ atomic.Bool }

func newReady() *Ready { return new(Ready) }

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// newResponseStore opens where stored responses live: Redis when a URL is
// configured (several replicas share it), else the embedded file under
// responses.data_dir. It is closed when the application stops.
func newResponseStore(lc fx.Lifecycle, cfg Config, log *zap.Logger) (ports.ResponseStore, error) {
	rc := cfg.Responses
	if rc.RedisURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := redisstore.Open(ctx, rc.RedisURL, redisstore.Options{})
		if err != nil {
			return nil, fmt.Errorf("responses.redis_url: %w", err)
		}
		log.Info("stored responses in Redis", zap.String("url", redisstore.Redact(rc.RedisURL)))
		lc.Append(fx.Hook{OnStop: func(context.Context) error { return s.Close() }})
		return s, nil
	}
	path := filepath.Join(rc.DataDir, boltstore.FileName)
	s, err := boltstore.Open(path, boltstore.Options{MaxBytes: rc.StoreMaxBytes,
		OnSweepError: func(err error) { log.Warn("sweeping expired responses failed", zap.Error(err)) },
		OnWriteError: func(err error) {
			log.Error("committing a stored response failed; previous_response_id will not find it", zap.Error(err))
		}})
	if err != nil {
		return nil, fmt.Errorf("responses.data_dir: %w", err)
	}
	log.Info("stored responses in a file", zap.String("path", path))
	lc.Append(fx.Hook{OnStop: func(context.Context) error { return s.Close() }})
	return s, nil
}

func newConversations(cfg Config, store ports.ResponseStore) *conversation.Service {
	return conversation.New(store, time.Duration(cfg.Responses.TTL), cfg.Responses.MaxBytes)
}

func newRouter(cfg Config, svc *dispatch.Service, convs *conversation.Service, cat *catalog.Catalog, checker *health.Checker, ready *Ready,
	log *zap.Logger, m *telemetry.Metrics, reg *prometheus.Registry, guards Guards) (http.Handler, error) {
	deps := httpapi.Deps{Chat: svc, Text: svc, Embed: svc, Conversations: convs, Catalog: cat, Health: checker, Guards: guards, Ready: &ready.Bool, Log: log, Metrics: m, Usage: tokenizer.New()}
	if cfg.Server.AdminPort == 0 {
		deps.MetricsHandler = metricsHandler(reg)
	}
	keys, err := cfg.APIKeys()
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		log.Info("API keys required", zap.Int("keys", len(keys)))
	}
	return httpapi.NewRouter(httpapi.Options{
		CORSOrigins: cfg.CORS.AllowedOrigins, MaxBodyBytes: cfg.Server.MaxBodyBytes,
		PingInterval: time.Duration(cfg.Streaming.PingInterval), APIKeys: keys, TruncateEmbeddings: cfg.Embeddings.Truncate,
		SessionHeader: cfg.Pool.SessionHeader,
	}, deps), nil
}

// runAdmin serves /metrics on server.admin_port when one is set, so
// scrapes can stay off the public port.
func runAdmin(lc fx.Lifecycle, cfg Config, reg *prometheus.Registry, log *zap.Logger) {
	if cfg.Server.AdminPort == 0 {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(reg))
	srv := &http.Server{
		Addr:              net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.AdminPort)),
		Handler:           mux,
		ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
	}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", srv.Addr)
			if err != nil {
				return err
			}
			log.Info("metrics listening", zap.String("addr", ln.Addr().String()))
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("metrics server stopped", zap.Error(err))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error { return srv.Shutdown(ctx) },
	})
}

// runChecker runs the health checker for the life of the application. The
// first check completes before the server starts taking requests, so model
// lists and /health are filled from the first request on.
func runChecker(lc fx.Lifecycle, checker *health.Checker) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(start context.Context) error {
			checker.CheckNow(start)
			go func() {
				defer close(done)
				checker.Run(ctx)
			}()
			return nil
		},
		OnStop: func(context.Context) error {
			cancel()
			<-done
			return nil
		},
	})
}

// runResidency reads, for the life of the application, which models each
// host of a pool holds in memory (Ollama's /api/ps), so requests go where
// their model is loaded. The first read completes before the server
// starts.
func runResidency(lc fx.Lifecycle, cfg Config, backends []Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	lc.Append(fx.Hook{
		OnStart: func(start context.Context) error {
			for _, b := range backends {
				if b.Pool.Len() < 2 {
					continue
				}
				rctx, rcancel := context.WithTimeout(start, time.Duration(cfg.Health.Timeout))
				b.Pool.RefreshResidency(rctx)
				rcancel()
				wg.Add(1)
				go func() {
					defer wg.Done()
					b.Pool.RunResidency(ctx, time.Duration(cfg.Pool.ResidencyInterval), time.Duration(cfg.Health.Timeout))
				}()
			}
			return nil
		},
		OnStop: func(context.Context) error {
			cancel()
			wg.Wait()
			return nil
		},
	})
}

// Server is the HTTP server; fx starts and stops it.
type Server struct {
	srv   *http.Server
	addr  atomic.Value // string, the bound address once listening
	drain time.Duration
	delay time.Duration
	log   *zap.Logger
}

// Addr is the address the server listens on (host:port) once started.
func (s *Server) Addr() string {
	a, _ := s.addr.Load().(string)
	return a
}

func newServer(lc fx.Lifecycle, cfg Config, h http.Handler, ready *Ready, log *zap.Logger) *Server {
	base, cut := context.WithCancelCause(context.Background())
	s := &Server{
		srv: &http.Server{
			Addr:              net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.Port)),
			Handler:           h,
			ReadHeaderTimeout: time.Duration(cfg.Server.ReadHeaderTimeout),
			ReadTimeout:       time.Duration(cfg.Server.ReadTimeout),
			IdleTimeout:       time.Duration(cfg.Server.IdleTimeout),
			MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
			ErrorLog:          zap.NewStdLog(log.Named("http")),
			// Every request's context derives from base: cutting it at the
			// end of the drain ends the open streams with an error frame.
			BaseContext: func(net.Listener) context.Context { return base },
		},
		drain: time.Duration(cfg.Server.DrainTimeout),
		delay: time.Duration(cfg.Server.ShutdownDelay),
		log:   log,
	}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", s.srv.Addr)
			if err != nil {
				return err
			}
			s.addr.Store(ln.Addr().String())
			ready.Store(true)
			log.Info("listening", zap.String("addr", ln.Addr().String()))
			go func() {
				if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					log.Error("server stopped", zap.Error(err))
				}
			}()
			return nil
		},
		OnStop: func(context.Context) error {
			// Readiness fails first; during the delay the listener still
			// serves, so load balancers see the 503 and stop routing here.
			ready.Store(false)
			if s.delay > 0 {
				log.Info("not ready; waiting before draining", zap.Duration("shutdown_delay", s.delay))
				time.Sleep(s.delay)
			}
			log.Info("draining", zap.Duration("drain_timeout", s.drain))
			ctx, cancel := context.WithTimeout(context.Background(), s.drain)
			defer cancel()
			if err := s.srv.Shutdown(ctx); err != nil {
				log.Warn("drain timeout reached; ending the remaining streams", zap.Error(err))
				cut(httpapi.ErrShuttingDown)
				// Let the handlers write their error frames, then close.
				grace, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				if s.srv.Shutdown(grace) != nil {
					return s.srv.Close()
				}
			}
			log.Info("drained")
			return nil
		},
	})
	return s
}
