package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is every setting of the service. Defaults come from Default, then
// the YAML file, then the environment.
type Config struct {
	Server          ServerConfig      `yaml:"server"`
	Log             LogConfig         `yaml:"log"`
	AgentID         string            `yaml:"agent_id"`
	UpstreamTimeout Duration          `yaml:"upstream_timeout"`
	Gateway         EndpointConfig    `yaml:"gateway"`
	Ollama          EndpointConfig    `yaml:"ollama"`
	Backends        []BackendConfig   `yaml:"backends"`
	Models          map[string]string `yaml:"models"`
	CORS            CORSConfig        `yaml:"cors"`
	Health          HealthConfig      `yaml:"health"`
	Images          ImagesConfig      `yaml:"images"`
	Resilience      Resilience        `yaml:"resilience"`
	Auth            AuthConfig        `yaml:"auth"`
	Streaming       StreamingConfig   `yaml:"streaming"`
	Embeddings      EmbeddingsConfig  `yaml:"embeddings"`
	Responses       ResponsesConfig   `yaml:"responses"`
	Pool            PoolConfig        `yaml:"pool"`
}

// PoolConfig governs how a backend with several hosts picks one (see
// package pool).
type PoolConfig struct {
	// Strategy: model_aware (default), least_busy or round_robin.
	Strategy string `yaml:"strategy"`
	// AffinityTTL is how long a conversation stays with the host of its
	// last turn; AffinityEntries bounds the conversations remembered.
	AffinityTTL     Duration `yaml:"affinity_ttl"`
	AffinityEntries int      `yaml:"affinity_entries"`
	// ResidencyInterval is how often each Ollama host's loaded models
	// (/api/ps) are read.
	ResidencyInterval Duration `yaml:"residency_interval"`
	// SessionHeader names the request header a client may name its
	// conversation with; empty: none is read.
	SessionHeader string `yaml:"session_header"`
}

// HostConfig is one host of a backend's pool.
type HostConfig struct {
	URL    string            `yaml:"url"`
	Name   string            `yaml:"name"`   // default: host:port
	Weight int               `yaml:"weight"` // relative capacity; default 1
	Labels map[string]string `yaml:"labels"` // shown in /health
}

// ResponsesConfig governs the stored responses of /v1/responses (what
// previous_response_id continues). They hold what clients sent, which may
// be personal data: they are kept TTL, then dropped.
type ResponsesConfig struct {
	// DataDir holds the embedded store's file (responses.db), used when
	// no RedisURL is set; one replica only.
	DataDir string `yaml:"data_dir"`
	// RedisURL (redis:// or rediss://) keeps responses in Redis, shared by
	// every replica.
	RedisURL string `yaml:"redis_url"`
	// TTL is how long a response is kept after it was made.
	TTL Duration `yaml:"ttl"`
	// MaxBytes caps one stored response (its object and conversation); a
	// larger one is answered but not stored (store: false in it).
	MaxBytes int `yaml:"max_bytes"`
	// StoreMaxBytes caps the embedded store; the responses that expire
	// first are dropped to make room. Redis has maxmemory for that.
	StoreMaxBytes int64 `yaml:"store_max_bytes"`
}

// EmbeddingsConfig governs /v1/embeddings.
type EmbeddingsConfig struct {
	// Model is the local embedding model OpenAI's embedding model names
	// (OpenAIEmbeddingModels) stand for, unless models maps them.
	Model string `yaml:"model"`
	// BatchSize is the most inputs sent to a backend in one call; larger
	// requests (OpenAI allows 2048 inputs) are split, order kept.
	BatchSize int `yaml:"batch_size"`
	// Truncate cuts inputs longer than the model's context instead of
	// answering 400 as OpenAI does.
	Truncate bool `yaml:"truncate"`
}

// OpenAIEmbeddingModels are the embedding model names OpenAI's SDKs and
// LangChain use by default; each stands for embeddings.model.
var OpenAIEmbeddingModels = []string{"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}

// Aliases returns the model table clients' names are resolved with: the
// models map, and OpenAI's embedding model names for embeddings.model
// where the map does not name them.
func (c *Config) Aliases() map[string]string {
	out := make(map[string]string, len(c.Models)+len(OpenAIEmbeddingModels))
	for k, v := range c.Models {
		out[k] = v
	}
	for _, name := range OpenAIEmbeddingModels {
		if _, ok := out[name]; !ok && c.Embeddings.Model != "" {
			out[name] = c.Embeddings.Model
		}
	}
	return out
}

// AuthConfig switches on API keys: when any key is configured, requests
// to /v1 and /health need "Authorization: Bearer <key>".
type AuthConfig struct {
	Keys     []string `yaml:"keys"`      // prefer CHATGPT_API_KEYS or a key file for secrets
	KeysFile string   `yaml:"keys_file"` // one key per line; # comments and blank lines ignored
}

// StreamingConfig tunes streamed answers.
type StreamingConfig struct {
	// PingInterval: while no chunk has arrived yet, an SSE comment is sent
	// this often so proxies and load balancers keep the stream open; 0 off.
	PingInterval Duration `yaml:"ping_interval"`
}

// ImagesConfig governs image_url parts sent to Ollama, which needs the
// image bytes: data: URLs are always accepted; http(s) URLs are fetched
// only when FetchRemote is on.
type ImagesConfig struct {
	FetchRemote  bool     `yaml:"fetch_remote"`
	MaxBytes     int64    `yaml:"max_bytes"`
	Timeout      Duration `yaml:"timeout"`
	AllowPrivate bool     `yaml:"allow_private"`
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// ServerConfig is the HTTP listener.
type ServerConfig struct {
	Host              string   `yaml:"host"`
	Port              int      `yaml:"port"`
	AdminPort         int      `yaml:"admin_port"`
	DrainTimeout      Duration `yaml:"drain_timeout"`
	ShutdownDelay     Duration `yaml:"shutdown_delay"`
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int      `yaml:"max_header_bytes"`
	MaxBodyBytes      int64    `yaml:"max_body_bytes"`
}

// LogConfig is the zap logger.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// EndpointConfig is the gateway or the Ollama host of the default backend list.
type EndpointConfig struct {
	// URL is one host, or several separated by commas (a pool); Hosts
	// lists them with weights and labels instead.
	URL   string       `yaml:"url"`
	Hosts []HostConfig `yaml:"hosts"`
	// ResponsesAPI says the backend serves /v1/responses itself (an
	// OpenAI-compatible gateway): Responses requests go there. Else they
	// go through its chat completions.
	ResponsesAPI bool              `yaml:"responses_api"`
	APIKey       string            `yaml:"api_key"`
	Models       map[string]string `yaml:"models"`
	NumCtx       map[string]int    `yaml:"num_ctx"`
	Resilience   Resilience        `yaml:"resilience"`
}

// BackendConfig is one backend of an explicit list.
type BackendConfig struct {
	Name         string            `yaml:"name"`
	ResponsesAPI bool              `yaml:"responses_api"` // see EndpointConfig
	Protocol     string            `yaml:"protocol"`
	URL          string            `yaml:"url"` // see EndpointConfig
	Hosts        []HostConfig      `yaml:"hosts"`
	APIKey       string            `yaml:"api_key"`
	Timeout      Duration          `yaml:"timeout"` // the first-byte timeout; same as resilience.timeouts.first_byte
	Models       map[string]string `yaml:"models"`
	NumCtx       map[string]int    `yaml:"num_ctx"`
	Resilience   Resilience        `yaml:"resilience"`
}

// Resilience is how one backend is protected and waited for. In the
// per-backend form (gateway, ollama, backends[]), a zero field inherits the
// top-level value, unless the file wrote that 0 explicitly: an explicit 0
// switches the guard off for that backend (see over).
type Resilience struct {
	Timeouts TimeoutsConfig `yaml:"timeouts"`
	Retries  RetriesConfig  `yaml:"retries"`
	Breaker  BreakerConfig  `yaml:"breaker"`
	Limit    LimitConfig    `yaml:"limit"`

	// written holds the fields a per-backend block of the YAML file set
	// explicitly (bit i: resilienceFields[i]); decodeYAML records them.
	// Go code that builds a Config leaves it empty: its zeros inherit.
	written uint16
}

// TimeoutsConfig bounds one upstream request.
type TimeoutsConfig struct {
	Connect   Duration `yaml:"connect"`
	FirstByte Duration `yaml:"first_byte"`
	Idle      Duration `yaml:"idle"`
	Total     Duration `yaml:"total"`
}

// RetriesConfig retries dial errors, 429 and 503 on the same backend.
type RetriesConfig struct {
	Attempts      int      `yaml:"attempts"`
	BaseDelay     Duration `yaml:"base_delay"`
	MaxDelay      Duration `yaml:"max_delay"`
	MaxRetryAfter Duration `yaml:"max_retry_after"`
}

// BreakerConfig opens a backend's circuit after repeated failures.
type BreakerConfig struct {
	Failures int      `yaml:"failures"`
	Cooldown Duration `yaml:"cooldown"`
}

// LimitConfig bounds the requests in flight to a backend.
type LimitConfig struct {
	Concurrency int      `yaml:"concurrency"`
	Queue       int      `yaml:"queue"`
	MaxWait     Duration `yaml:"max_wait"`
}

// The fields of Resilience, as indexes into resilienceFields.
const (
	resConnect = iota
	resFirstByte
	resIdle
	resTotal
	resAttempts
	resBaseDelay
	resMaxDelay
	resMaxRetryAfter
	resFailures
	resCooldown
	resConcurrency
	resQueue
	resMaxWait
	numResilienceFields
)

// resilienceField is one field of Resilience: its YAML key below
// "resilience" and where it is, a duration or a count.
type resilienceField struct {
	key string
	dur func(*Resilience) *Duration
	num func(*Resilience) *int
}

var resilienceFields = [numResilienceFields]resilienceField{
	resConnect:       {key: "timeouts.connect", dur: func(r *Resilience) *Duration { return &r.Timeouts.Connect }},
	resFirstByte:     {key: "timeouts.first_byte", dur: func(r *Resilience) *Duration { return &r.Timeouts.FirstByte }},
	resIdle:          {key: "timeouts.idle", dur: func(r *Resilience) *Duration { return &r.Timeouts.Idle }},
	resTotal:         {key: "timeouts.total", dur: func(r *Resilience) *Duration { return &r.Timeouts.Total }},
	resAttempts:      {key: "retries.attempts", num: func(r *Resilience) *int { return &r.Retries.Attempts }},
	resBaseDelay:     {key: "retries.base_delay", dur: func(r *Resilience) *Duration { return &r.Retries.BaseDelay }},
	resMaxDelay:      {key: "retries.max_delay", dur: func(r *Resilience) *Duration { return &r.Retries.MaxDelay }},
	resMaxRetryAfter: {key: "retries.max_retry_after", dur: func(r *Resilience) *Duration { return &r.Retries.MaxRetryAfter }},
	resFailures:      {key: "breaker.failures", num: func(r *Resilience) *int { return &r.Breaker.Failures }},
	resCooldown:      {key: "breaker.cooldown", dur: func(r *Resilience) *Duration { return &r.Breaker.Cooldown }},
	resConcurrency:   {key: "limit.concurrency", num: func(r *Resilience) *int { return &r.Limit.Concurrency }},
	resQueue:         {key: "limit.queue", num: func(r *Resilience) *int { return &r.Limit.Queue }},
	resMaxWait:       {key: "limit.max_wait", dur: func(r *Resilience) *Duration { return &r.Limit.MaxWait }},
}

func (f resilienceField) get(r *Resilience) int64 {
	if f.dur != nil {
		return int64(*f.dur(r))
	}
	return int64(*f.num(r))
}

func (f resilienceField) set(r *Resilience, v int64) {
	if f.dur != nil {
		*f.dur(r) = Duration(v)
	} else {
		*f.num(r) = int(v)
	}
}

// show is the field's value for an error message.
func (f resilienceField) show(r *Resilience) string {
	if f.dur != nil {
		return quote(*f.dur(r))
	}
	return quote(*f.num(r))
}

func (r Resilience) isWritten(i int) bool { return r.written&(1<<i) != 0 }

// resilienceKeys names, for each field of a Resilience, the key its value
// was written under (or would be), as the user spells it.
type resilienceKeys [numResilienceFields]string

func keysUnder(prefix string) resilienceKeys {
	var k resilienceKeys
	for i, f := range resilienceFields {
		k[i] = prefix + f.key
	}
	return k
}

// over returns r with its unset fields taken from base, and the key each
// resulting value comes from (keys for r's own, baseKeys for inherited).
// A field is unset when it is zero and the file did not write it: an
// explicit 0 is kept, switching that guard off for the backend. An
// explicit limit.concurrency 0 switches the whole limit off: queue and
// max_wait are then only what is written beside it, else 0 (no queue).
func (r Resilience) over(base Resilience, keys, baseKeys resilienceKeys) (Resilience, resilienceKeys) {
	out := r
	out.written = 0
	limitOff := r.isWritten(resConcurrency) && r.Limit.Concurrency == 0
	for i, f := range resilienceFields {
		switch {
		case r.isWritten(i):
		case limitOff && (i == resQueue || i == resMaxWait):
			f.set(&out, 0)
		case f.get(&r) == 0:
			f.set(&out, f.get(&base))
			keys[i] = baseKeys[i]
		}
	}
	return out, keys
}

// checkNegative rejects a negative duration or count.
func (r Resilience) checkNegative(keys resilienceKeys) error {
	for i, f := range resilienceFields {
		if f.get(&r) < 0 {
			return fmt.Errorf("config: %s=%s: must not be negative", keys[i], f.show(&r))
		}
	}
	return nil
}

// check rejects values that make no sense together, in a complete (top
// level or resolved) Resilience; keys name where each value was written.
func (r Resilience) check(keys resilienceKeys) error {
	if err := r.checkNegative(keys); err != nil {
		return err
	}
	bad := func(i int, why string) error {
		return fmt.Errorf("config: %s=%s: %s", keys[i], resilienceFields[i].show(&r), why)
	}
	ref := func(i int) string { return keys[i] + "=" + resilienceFields[i].show(&r) }
	t := r.Timeouts
	if t.Total > 0 && t.FirstByte > t.Total {
		return bad(resFirstByte, "must not exceed "+ref(resTotal)+", which bounds the whole request")
	}
	if t.Total > 0 && t.Idle > t.Total {
		return bad(resIdle, "must not exceed "+ref(resTotal)+", which bounds the whole request")
	}
	if d := r.Retries; d.BaseDelay > 0 && d.MaxDelay > 0 && d.BaseDelay > d.MaxDelay {
		return bad(resBaseDelay, "must not exceed "+ref(resMaxDelay))
	}
	if r.Breaker.Failures > 0 && r.Breaker.Cooldown == 0 {
		return bad(resCooldown, "must be positive while the breaker is on ("+ref(resFailures)+"; failures 0 switches it off)")
	}
	if r.Limit.Queue > 0 && r.Limit.Concurrency == 0 {
		return bad(resQueue, "a queue needs a concurrency limit ("+ref(resConcurrency)+" means none)")
	}
	if r.Limit.Queue > 0 && r.Limit.MaxWait == 0 {
		return bad(resMaxWait, "must be positive when requests may queue ("+ref(resQueue)+"): a queue needs a wait bound")
	}
	return nil
}

// resilienceBase is the top-level Resilience that backends inherit, with
// its first_byte 0 standing for upstream_timeout, and its keys.
func (c *Config) resilienceBase() (Resilience, resilienceKeys) {
	base, keys := c.Resilience, keysUnder("resilience.")
	if base.Timeouts.FirstByte == 0 {
		base.Timeouts.FirstByte = c.UpstreamTimeout
		keys[resFirstByte] = "upstream_timeout (UPSTREAM_TIMEOUT)"
	}
	return base, keys
}

// CORSConfig lists the origins browsers may call from; "*" allows all.
type CORSConfig struct {
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// HealthConfig is the background backend checker.
type HealthConfig struct {
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
}

// Protocols a backend may speak.
const (
	ProtocolOpenAI = "openai"
	ProtocolOllama = "ollama"
)

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Server: ServerConfig{
			Host:              "",
			Port:              3111,
			DrainTimeout:      Duration(25 * time.Second),
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(60 * time.Second),
			IdleTimeout:       Duration(2 * time.Minute),
			MaxHeaderBytes:    64 << 10,
			MaxBodyBytes:      20 << 20,
		},
		Log:             LogConfig{Level: "info", Format: "json"},
		AgentID:         "chatgpt-api-adapter",
		UpstreamTimeout: Duration(30 * time.Second),
		Ollama: EndpointConfig{URL: "http://localhost:11434", Resilience: Resilience{
			// Ollama serves few requests at a time; more wait here, briefly.
			Limit: LimitConfig{Concurrency: 4, Queue: 64, MaxWait: Duration(30 * time.Second)},
		}},
		Models: map[string]string{
			"gpt-4":         "qwen2.5:32b",
			"gpt-4-turbo":   "qwen2.5:32b",
			"gpt-3.5-turbo": "qwen2.5:14b",
			"gpt-4-mini":    "qwen2.5:3b",
			"gpt-4o":        "qwen2.5:32b",
			"gpt-4o-mini":   "qwen2.5:3b",
		},
		CORS:   CORSConfig{AllowedOrigins: []string{"*"}},
		Health: HealthConfig{Interval: Duration(15 * time.Second), Timeout: Duration(3 * time.Second)},
		Images: ImagesConfig{MaxBytes: 20 << 20, Timeout: Duration(10 * time.Second)},
		Resilience: Resilience{
			Timeouts: TimeoutsConfig{Connect: Duration(5 * time.Second), Idle: Duration(60 * time.Second), Total: Duration(10 * time.Minute)},
			Retries:  RetriesConfig{Attempts: 2, BaseDelay: Duration(100 * time.Millisecond), MaxDelay: Duration(time.Second), MaxRetryAfter: Duration(5 * time.Second)},
			Breaker:  BreakerConfig{Failures: 5, Cooldown: Duration(30 * time.Second)},
		},
		Streaming:  StreamingConfig{PingInterval: Duration(10 * time.Second)},
		Embeddings: EmbeddingsConfig{Model: "nomic-embed-text", BatchSize: 256},
		Responses: ResponsesConfig{DataDir: "data", TTL: Duration(30 * 24 * time.Hour), MaxBytes: 16 << 20,
			StoreMaxBytes: 1 << 30},
		Pool: PoolConfig{Strategy: "model_aware", AffinityTTL: Duration(30 * time.Minute), AffinityEntries: 100_000,
			ResidencyInterval: Duration(5 * time.Second), SessionHeader: "X-Session-Id"},
	}
}

// Load reads the YAML file at path (none when path is empty) over the
// defaults, applies the environment (lookupEnv, as os.LookupEnv), and
// validates the result. Errors are one line naming the key and the value.
func Load(path string, lookupEnv func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: cannot read %s: %w", path, err)
		}
		if err := decodeYAML(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config: %s: %v", path, err)
		}
	}
	if err := cfg.applyEnv(lookupEnv); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

var yamlLine = regexp.MustCompile(`line (\d+)`)

// decodeYAML reads data over cfg. Unknown keys are errors. A models table
// in the file replaces the built-in aliases (rather than adding to them).
// An error names the key and the value it could not take.
func decodeYAML(data []byte, cfg *Config) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return errors.New(oneLine(err.Error()))
	}
	if len(root.Content) == 0 {
		return nil // an empty file: defaults
	}
	doc := root.Content[0]
	if doc.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(doc.Content); i += 2 {
			if doc.Content[i].Value == "models" {
				cfg.Models = nil
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(cfg)
	if err == nil || errors.Is(err, io.EOF) {
		markWritten(doc, cfg)
		return nil
	}
	msg := oneLine(err.Error())
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if key, value, ok := keyAtLine(doc, "", line); ok {
			return fmt.Errorf("%s=%q: %s", key, value, strings.TrimPrefix(msg, "yaml: unmarshal errors: "))
		}
	}
	return errors.New(msg)
}

// markWritten records which fields of the per-backend resilience blocks
// the document wrote (Resilience.written), so that an explicit 0 there
// switches a guard off instead of inheriting the top-level value.
func markWritten(doc *yaml.Node, cfg *Config) {
	mark := func(r *Resilience, block *yaml.Node) {
		for i, f := range resilienceFields {
			section, field, _ := strings.Cut(f.key, ".")
			if v := lookup(lookup(block, section), field); v != nil && v.ShortTag() != "!!null" {
				r.written |= 1 << i
			}
		}
	}
	mark(&cfg.Gateway.Resilience, lookup(lookup(doc, "gateway"), "resilience"))
	mark(&cfg.Ollama.Resilience, lookup(lookup(doc, "ollama"), "resilience"))
	if list := lookup(doc, "backends"); list != nil && list.Kind == yaml.SequenceNode {
		for i, b := range list.Content {
			if i < len(cfg.Backends) {
				mark(&cfg.Backends[i].Resilience, lookup(b, "resilience"))
			}
		}
	}
}

// lookup returns the value of key in the mapping n as yaml.v3 decodes it:
// aliases followed, a key written in the mapping itself before merged ones
// (<<), and the first merged mapping that has it before later ones. Nil
// when n is no mapping or lacks the key.
func lookup(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var merge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merge = deref(n.Content[i+1])
			continue
		}
		if k.Value == key {
			return deref(n.Content[i+1])
		}
	}
	if merge != nil && merge.Kind == yaml.SequenceNode {
		for _, m := range merge.Content {
			if v := lookup(m, key); v != nil {
				return v
			}
		}
		return nil
	}
	return lookup(merge, key)
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// keyAtLine finds the dotted key whose value (or whose own key, for
// unknown keys) sits on line.
func keyAtLine(n *yaml.Node, prefix string, line int) (key, value string, ok bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			if key, value, ok := keyAtLine(v, path, line); ok {
				return key, value, true
			}
			if k.Line == line || (v.Line == line && v.Kind == yaml.ScalarNode) {
				return path, v.Value, true
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			if key, value, ok := keyAtLine(v, fmt.Sprintf("%s[%d]", prefix, i), line); ok {
				return key, value, true
			}
		}
	}
	return "", "", false
}

// Environment variables and the keys they set.
var envKeys = []string{
	"CHATGPT_API_PORT", "GATEWAY_URL", "GATEWAY_API_KEY", "OLLAMA_URL", "AGENT_ID",
	"LOG_LEVEL", "UPSTREAM_TIMEOUT", "CORS_ALLOWED_ORIGINS", "DRAIN_TIMEOUT",
	"CHATGPT_API_KEYS", "CHATGPT_API_KEYS_FILE", "EMBEDDINGS_MODEL",
	"RESPONSES_DATA_DIR", "RESPONSES_REDIS_URL", "RESPONSES_TTL",
	"POOL_STRATEGY", "POOL_RESIDENCY_INTERVAL",
}

func (c *Config) applyEnv(lookupEnv func(string) (string, bool)) error {
	for _, key := range envKeys {
		v, ok := lookupEnv(key)
		v = strings.TrimSpace(v)
		// Set but empty switches a backend off; for other keys it means unset.
		if !ok || (v == "" && key != "GATEWAY_URL" && key != "OLLAMA_URL") {
			continue
		}
		bad := func(why string) error { return fmt.Errorf("config: %s=%q: %s", key, v, why) }
		switch key {
		case "CHATGPT_API_PORT":
			p, err := strconv.Atoi(v)
			if err != nil {
				return bad("must be a port number between 1 and 65535")
			}
			c.Server.Port = p
		case "GATEWAY_URL":
			c.Gateway.URL, c.Gateway.Hosts = v, nil
		case "GATEWAY_API_KEY":
			c.Gateway.APIKey = v
		case "OLLAMA_URL":
			c.Ollama.URL, c.Ollama.Hosts = v, nil
		case "AGENT_ID":
			c.AgentID = v
		case "LOG_LEVEL":
			c.Log.Level = strings.ToLower(v)
		case "UPSTREAM_TIMEOUT", "DRAIN_TIMEOUT":
			d, err := ParseDuration(v)
			if err != nil {
				return bad("must be a duration such as 30s or 2m")
			}
			if key == "UPSTREAM_TIMEOUT" {
				c.UpstreamTimeout = d
			} else {
				c.Server.DrainTimeout = d
			}
		case "CORS_ALLOWED_ORIGINS":
			c.CORS.AllowedOrigins = splitList(v)
		case "CHATGPT_API_KEYS":
			c.Auth.Keys = splitList(v)
		case "EMBEDDINGS_MODEL":
			c.Embeddings.Model = v
		case "RESPONSES_DATA_DIR":
			c.Responses.DataDir = v
		case "RESPONSES_REDIS_URL":
			c.Responses.RedisURL = v
		case "RESPONSES_TTL":
			d, err := ParseDuration(v)
			if err != nil {
				return bad("must be a duration such as 720h")
			}
			c.Responses.TTL = d
		case "CHATGPT_API_KEYS_FILE":
			c.Auth.KeysFile = v
		case "POOL_STRATEGY":
			c.Pool.Strategy = strings.ToLower(v)
		case "POOL_RESIDENCY_INTERVAL":
			d, err := ParseDuration(v)
			if err != nil {
				return bad("must be a duration such as 5s")
			}
			c.Pool.ResidencyInterval = d
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks every value; the error names the key and the value.
func (c *Config) Validate() error {
	bad := func(key string, v any, why string) error {
		return fmt.Errorf("config: %s=%v: %s", key, quote(v), why)
	}
	if c.Server.Port < 1 || c.Server.Port > 65535 {
		return bad("server.port (CHATGPT_API_PORT)", c.Server.Port, "must be a port number between 1 and 65535")
	}
	if c.Server.AdminPort < 0 || c.Server.AdminPort > 65535 || (c.Server.AdminPort != 0 && c.Server.AdminPort == c.Server.Port) {
		return bad("server.admin_port", c.Server.AdminPort, "must be 0 (metrics on the main port) or another port number")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level (LOG_LEVEL)", c.Log.Level, "must be one of debug, info, warn, error")
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		return bad("log.format", c.Log.Format, "must be json or console")
	}
	if strings.TrimSpace(c.AgentID) == "" {
		return bad("agent_id (AGENT_ID)", c.AgentID, "must not be empty")
	}
	for key, d := range map[string]Duration{
		"upstream_timeout (UPSTREAM_TIMEOUT)":  c.UpstreamTimeout,
		"server.drain_timeout (DRAIN_TIMEOUT)": c.Server.DrainTimeout,
		"server.read_header_timeout":           c.Server.ReadHeaderTimeout,
		"server.read_timeout":                  c.Server.ReadTimeout,
		"server.idle_timeout":                  c.Server.IdleTimeout,
		"health.interval":                      c.Health.Interval,
		"health.timeout":                       c.Health.Timeout,
		"images.timeout":                       c.Images.Timeout,
	} {
		if d <= 0 {
			return bad(key, d, "must be a positive duration")
		}
	}
	if c.Health.Timeout >= c.Health.Interval {
		return bad("health.timeout", c.Health.Timeout, "must be shorter than health.interval="+quote(c.Health.Interval))
	}
	if c.Server.ShutdownDelay < 0 {
		return bad("server.shutdown_delay", c.Server.ShutdownDelay, "must not be negative")
	}
	if c.Images.MaxBytes < 1 {
		return bad("images.max_bytes", c.Images.MaxBytes, "must be positive")
	}
	if c.Server.MaxHeaderBytes < 4096 {
		return bad("server.max_header_bytes", c.Server.MaxHeaderBytes, "must be at least 4096")
	}
	if c.Streaming.PingInterval < 0 {
		return bad("streaming.ping_interval", c.Streaming.PingInterval, "must not be negative (0 switches pings off)")
	}
	if c.Responses.TTL < 0 {
		return bad("responses.ttl (RESPONSES_TTL)", c.Responses.TTL, "must not be negative (0 keeps responses until deleted)")
	}
	if c.Responses.MaxBytes < 0 || c.Responses.StoreMaxBytes < 0 {
		return bad("responses.max_bytes", c.Responses.MaxBytes, "sizes must not be negative (0: no limit)")
	}
	if c.Responses.StoreMaxBytes > 0 && int64(c.Responses.MaxBytes) > c.Responses.StoreMaxBytes {
		return bad("responses.max_bytes", c.Responses.MaxBytes, "must not exceed responses.store_max_bytes")
	}
	if u := c.Responses.RedisURL; u != "" && !strings.HasPrefix(u, "redis://") && !strings.HasPrefix(u, "rediss://") && !strings.HasPrefix(u, "unix://") {
		return bad("responses.redis_url (RESPONSES_REDIS_URL)", "(redacted)", "must be a redis:// or rediss:// URL")
	}
	if c.Responses.RedisURL == "" && strings.TrimSpace(c.Responses.DataDir) == "" {
		return bad("responses.data_dir (RESPONSES_DATA_DIR)", c.Responses.DataDir, "must name a directory for the stored responses when no redis_url is set")
	}
	if c.Embeddings.BatchSize < 1 {
		return bad("embeddings.batch_size", c.Embeddings.BatchSize, "must be at least 1")
	}
	switch c.Pool.Strategy {
	case "model_aware", "least_busy", "round_robin":
	default:
		return bad("pool.strategy (POOL_STRATEGY)", c.Pool.Strategy, "must be model_aware, least_busy or round_robin")
	}
	if c.Pool.AffinityTTL <= 0 {
		return bad("pool.affinity_ttl", c.Pool.AffinityTTL, "must be a positive duration")
	}
	if c.Pool.AffinityEntries < 1 {
		return bad("pool.affinity_entries", c.Pool.AffinityEntries, "must be at least 1")
	}
	if c.Pool.ResidencyInterval <= 0 {
		return bad("pool.residency_interval (POOL_RESIDENCY_INTERVAL)", c.Pool.ResidencyInterval, "must be a positive duration")
	}
	if h := c.Pool.SessionHeader; h != "" && !validHeaderName(h) {
		return bad("pool.session_header", h, "must be an HTTP header name (letters, digits, '-')")
	}
	if strings.TrimSpace(c.Embeddings.Model) == "" {
		return bad("embeddings.model (EMBEDDINGS_MODEL)", c.Embeddings.Model, "must name the local embedding model OpenAI's embedding models stand for")
	}
	if _, err := c.APIKeys(); err != nil {
		return err
	}
	if c.Server.MaxBodyBytes < 1024 {
		return bad("server.max_body_bytes", c.Server.MaxBodyBytes, "must be at least 1024")
	}
	for alias, target := range c.Models {
		if strings.TrimSpace(alias) == "" || strings.TrimSpace(target) == "" {
			return bad("models."+alias, target, "aliases and their models must not be empty")
		}
	}
	if len(c.CORS.AllowedOrigins) == 0 {
		return bad("cors.allowed_origins (CORS_ALLOWED_ORIGINS)", "", `must list origins, or "*" for all`)
	}
	// The resilience every backend inherits, and the per-backend blocks of
	// the default list even when unused; BackendList checks each backend's
	// resolved values.
	base, baseKeys := c.resilienceBase()
	if err := base.check(baseKeys); err != nil {
		return err
	}
	if err := c.Gateway.Resilience.checkNegative(keysUnder("gateway.resilience.")); err != nil {
		return err
	}
	if err := c.Ollama.Resilience.checkNegative(keysUnder("ollama.resilience.")); err != nil {
		return err
	}
	backends, err := c.BackendList()
	if err != nil {
		return err
	}
	if len(backends) == 0 {
		return errors.New("config: no backend: set GATEWAY_URL or OLLAMA_URL, or list backends")
	}
	return nil
}

func quote(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case Duration:
		return strconv.Quote(v.String())
	}
	return fmt.Sprint(v)
}

// BackendSpec is a validated backend: its hosts' URLs normalised.
type BackendSpec struct {
	Name         string
	ResponsesAPI bool
	Protocol     string
	URL          *url.URL // the first host's
	Hosts        []HostSpec
	APIKey       string
	Resilience   Resilience // complete: defaults filled in
	Overrides    map[string]string
	NumCtx       map[string]int
}

// BackendList returns the backends in the order they are tried: the
// explicit list when one is configured, else the gateway (when its URL is
// set) followed by Ollama (when its URL is set).
func (c *Config) BackendList() ([]BackendSpec, error) {
	list := c.Backends
	keyPrefix := "backends"
	if len(list) == 0 {
		keyPrefix = ""
		if c.Gateway.URL != "" || len(c.Gateway.Hosts) > 0 {
			list = append(list, BackendConfig{Name: "gateway", Protocol: ProtocolOpenAI, URL: c.Gateway.URL, Hosts: c.Gateway.Hosts, APIKey: c.Gateway.APIKey, ResponsesAPI: c.Gateway.ResponsesAPI, Models: c.Gateway.Models, NumCtx: c.Gateway.NumCtx, Resilience: c.Gateway.Resilience})
		}
		if c.Ollama.URL != "" || len(c.Ollama.Hosts) > 0 {
			list = append(list, BackendConfig{Name: "ollama", Protocol: ProtocolOllama, URL: c.Ollama.URL, Hosts: c.Ollama.Hosts, APIKey: c.Ollama.APIKey, Models: c.Ollama.Models, NumCtx: c.Ollama.NumCtx, Resilience: c.Ollama.Resilience})
		}
	}
	seen := map[string]bool{}
	out := make([]BackendSpec, 0, len(list))
	for i, b := range list {
		key := fmt.Sprintf("%s[%d]", keyPrefix, i)
		if keyPrefix == "" {
			key = b.Name + ".url"
			if b.Name == "gateway" {
				key += " (GATEWAY_URL)"
			} else {
				key += " (OLLAMA_URL)"
			}
		}
		if b.Name == "" {
			return nil, fmt.Errorf("config: %s.name is empty: every backend needs a name", key)
		}
		if seen[b.Name] {
			return nil, fmt.Errorf("config: %s.name=%q: names must be unique", key, b.Name)
		}
		seen[b.Name] = true
		if b.Protocol != ProtocolOpenAI && b.Protocol != ProtocolOllama {
			return nil, fmt.Errorf("config: %s.protocol=%q: must be openai or ollama", key, b.Protocol)
		}
		section := b.Name // gateway or ollama
		if keyPrefix != "" {
			section = key
		}
		hosts, err := hostList(b, key, section)
		if err != nil {
			return nil, err
		}
		if err := checkModelMaps(section, b.Models, b.NumCtx); err != nil {
			return nil, err
		}
		r, keys := b.Resilience, keysUnder(section+".resilience.")
		if b.Timeout < 0 {
			return nil, fmt.Errorf("config: %s.timeout=%s: must not be negative", section, quote(b.Timeout))
		}
		if b.Timeout > 0 {
			if (r.Timeouts.FirstByte != 0 || r.isWritten(resFirstByte)) && r.Timeouts.FirstByte != b.Timeout {
				return nil, fmt.Errorf("config: %s.timeout=%s: contradicts %s=%s; set one of them",
					section, quote(b.Timeout), keys[resFirstByte], quote(r.Timeouts.FirstByte))
			}
			r.Timeouts.FirstByte = b.Timeout
			keys[resFirstByte] = section + ".timeout"
		}
		base, baseKeys := c.resilienceBase()
		resolved, keys := r.over(base, keys, baseKeys)
		if err := resolved.check(keys); err != nil {
			return nil, err
		}
		if b.ResponsesAPI && b.Protocol != ProtocolOpenAI {
			return nil, fmt.Errorf("config: %s.responses_api=true: only an openai-protocol backend can serve /v1/responses itself", section)
		}
		out = append(out, BackendSpec{Name: b.Name, ResponsesAPI: b.ResponsesAPI, Protocol: b.Protocol, URL: hosts[0].URL, Hosts: hosts,
			APIKey: b.APIKey, Resilience: resolved, Overrides: b.Models, NumCtx: b.NumCtx})
	}
	return out, nil
}

// HostSpec is a validated host of a backend.
type HostSpec struct {
	Name   string
	URL    *url.URL
	Weight int
	Labels map[string]string
}

// hostList validates a backend's hosts: its url (one, or several separated
// by commas) or its hosts list, not both. key names the url setting,
// section the backend's block.
func hostList(b BackendConfig, key, section string) ([]HostSpec, error) {
	var list []HostConfig
	switch {
	case b.URL != "" && len(b.Hosts) > 0:
		return nil, fmt.Errorf("config: %s=%q: %s.hosts is set too; list the hosts in one place", key, b.URL, section)
	case len(b.Hosts) > 0:
		list = b.Hosts
	default:
		for _, u := range strings.Split(b.URL, ",") {
			list = append(list, HostConfig{URL: u})
		}
	}
	out := make([]HostSpec, 0, len(list))
	names := map[string]bool{}
	for i, h := range list {
		at := key
		if len(b.Hosts) > 0 {
			at = fmt.Sprintf("%s.hosts[%d].url", section, i)
		}
		u, err := NormalizeURL(h.URL, b.Protocol)
		if err != nil {
			if len(list) > 1 && len(b.Hosts) == 0 {
				return nil, fmt.Errorf("config: %s=%q: host %d (%q): %v", key, b.URL, i+1, strings.TrimSpace(h.URL), err)
			}
			return nil, fmt.Errorf("config: %s=%q: %v", at, h.URL, err)
		}
		name := strings.TrimSpace(h.Name)
		if name == "" {
			name = u.Host
		}
		if names[name] {
			return nil, fmt.Errorf("config: %s=%q: the host %q is listed twice (give each host a distinct name)", at, h.URL, name)
		}
		names[name] = true
		if h.Weight < 0 {
			return nil, fmt.Errorf("config: %s.hosts[%d].weight=%d: must not be negative (0 = 1)", section, i, h.Weight)
		}
		out = append(out, HostSpec{Name: name, URL: u, Weight: max(h.Weight, 1), Labels: h.Labels})
	}
	return out, nil
}

// validHeaderName reports whether s is a plain HTTP header name.
func validHeaderName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != ""
}

// checkModelMaps rejects an empty model name in a backend's models table
// and a negative num_ctx.
func checkModelMaps(section string, models map[string]string, numCtx map[string]int) error {
	for _, name := range slices.Sorted(maps.Keys(models)) {
		if strings.TrimSpace(name) == "" || strings.TrimSpace(models[name]) == "" {
			return fmt.Errorf("config: %s.models.%s=%q: model names must not be empty", section, name, models[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(numCtx)) {
		if numCtx[name] < 0 {
			return fmt.Errorf("config: %s.num_ctx.%s=%d: must not be negative (0 = Ollama's default)", section, name, numCtx[name])
		}
	}
	return nil
}

// NormalizeURL accepts "host:port" without a scheme (http is assumed) and,
// for the openai protocol, adds the /v1 base path when none is given.
func NormalizeURL(raw, protocol string) (*url.URL, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return nil, errors.New("must not be empty")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("the scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("the URL has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, errors.New("the port must be between 1 and 65535")
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if protocol == ProtocolOpenAI && u.Path == "" {
		u.Path = "/v1"
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// Duration is a time.Duration read from "30s"-style text.
type Duration time.Duration

// maxSeconds bounds a duration given as a plain number (about 31 years).
const maxSeconds = 1e9

// ParseDuration parses "30s", "2m", or a plain number of seconds.
func ParseDuration(s string) (Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(n) || math.IsInf(n, 0) || n < 0 || n > maxSeconds {
			return 0, errors.New("out of range")
		}
		return Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	return Duration(d), err
}

// UnmarshalYAML reads a duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: not a duration such as 30s or 2m", n.Line)
	}
	*d = v
	return nil
}

func (d Duration) String() string { return time.Duration(d).String() }

// APIKeys returns the keys clients must present: auth.keys plus the lines
// of auth.keys_file. None means no authentication.
func (c *Config) APIKeys() ([]string, error) {
	keys := append([]string(nil), c.Auth.Keys...)
	if c.Auth.KeysFile != "" {
		data, err := os.ReadFile(c.Auth.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("config: auth.keys_file (CHATGPT_API_KEYS_FILE)=%q: %v", c.Auth.KeysFile, errors.Unwrap(err))
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				keys = append(keys, line)
			}
		}
	}
	for i, k := range keys {
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("config: API key %d contains white space", i+1)
		}
	}
	return keys, nil
}
