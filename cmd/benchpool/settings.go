package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Settings are the knobs of a run, recorded in the report.
type Settings struct {
	Quick      bool   `json:"quick"`
	Seed       uint64 `json:"seed"`
	Strategies string `json:"strategies"`

	// The hosts: Hosts lists how many models fit on each; Missing names
	// models a host does not list ("2=phi3:14b", hosts counted from 1).
	Hosts         string  `json:"hosts"`
	Missing       string  `json:"missing,omitempty"`
	Models        int     `json:"models"`
	Zipf          float64 `json:"zipf"`
	Parallel      int     `json:"parallel"`
	LoadDelay     dur     `json:"load_delay"`
	PromptToken   dur     `json:"prompt_eval_per_token"`
	SharedPrefill bool    `json:"shared_prefill"`
	PrefillBatch  int     `json:"prefill_batch"`
	GenTokens     int     `json:"gen_tokens"`
	TokenDelay    dur     `json:"token_delay"`

	// The workload.
	Conversations int      `json:"conversations"`
	Concurrency   int      `json:"concurrency"`
	System        tokRange `json:"system_tokens"`
	FirstUser     tokRange `json:"first_user_tokens"`
	NextUser      tokRange `json:"next_user_tokens"`
	SharedSystem  float64  `json:"shared_system"`
	AppsPerModel  int      `json:"apps_per_model"`
	MaxTurns      int      `json:"max_turns"`
	Think         dur      `json:"think_mean"`
	Ramp          dur      `json:"ramp"`
	MaxDuration   dur      `json:"max_duration"`
	User          bool     `json:"send_user"`

	// The service.
	ResidencyInterval dur `json:"residency_interval"`
	HealthInterval    dur `json:"health_interval"`
	UpstreamTimeout   dur `json:"upstream_timeout"`
	ServiceLimit      int `json:"service_limit"` // per-host concurrency in the service; -1: its default
}

// register binds the settings to flags, with the full run's defaults.
func (s *Settings) register(fs *flag.FlagSet) {
	fs.BoolVar(&s.Quick, "quick", false, "scaled-down run (CI): shorter loads and think times, fewer conversations; flags given explicitly still win")
	fs.Uint64Var(&s.Seed, "seed", 1, "seed of the workload")
	fs.StringVar(&s.Strategies, "strategies", "model_aware,least_busy,round_robin", "POOL_STRATEGY values to run, in order")

	fs.StringVar(&s.Hosts, "hosts", "2,2,2,2", "one entry per fake host: how many models fit in its memory at once")
	fs.StringVar(&s.Missing, "missing", "", "models a host does not list, e.g. 4=phi3:14b (hosts counted from 1, comma-separated)")
	fs.IntVar(&s.Models, "models", 6, "number of models")
	fs.Float64Var(&s.Zipf, "zipf", 1.0, "model popularity: the k-th model gets a share ∝ 1/k^zipf")
	fs.IntVar(&s.Parallel, "parallel", 4, "generations at once per loaded model (OLLAMA_NUM_PARALLEL), each with a prompt cache")
	fs.DurationVar((*time.Duration)(&s.LoadDelay), "load-delay", 2*time.Second, "time to load a model")
	fs.DurationVar((*time.Duration)(&s.PromptToken), "prompt-token", 250*time.Microsecond, "prompt evaluation time per token not in cache")
	fs.BoolVar(&s.SharedPrefill, "shared-prefill", true, "a host's prompt evaluations share its GPU, whatever the model: they take turns, -prefill-batch tokens at a time")
	fs.IntVar(&s.PrefillBatch, "prefill-batch", 512, "tokens evaluated per turn when prefill is shared (Ollama's num_batch)")
	fs.IntVar(&s.GenTokens, "gen-tokens", 24, "tokens per answer")
	fs.DurationVar((*time.Duration)(&s.TokenDelay), "token-delay", 4*time.Millisecond, "time per generated token")

	fs.IntVar(&s.Conversations, "conversations", 260, "conversations in the workload")
	fs.IntVar(&s.Concurrency, "concurrency", 16, "conversations active at a time (closed loop)")
	s.System, s.FirstUser, s.NextUser = tokRange{1500, 3000}, tokRange{100, 400}, tokRange{20, 120}
	fs.Var(&s.System, "system", "system prompt size in tokens, MIN-MAX")
	fs.Var(&s.FirstUser, "first-user", "first user message size in tokens, MIN-MAX")
	fs.Var(&s.NextUser, "next-user", "follow-up user message size in tokens, MIN-MAX")
	fs.Float64Var(&s.SharedSystem, "shared-system", 0.5, "share of conversations whose system prompt is their app's (the rest have their own)")
	fs.IntVar(&s.AppsPerModel, "apps", 2, "apps per model, each with its own system prompt")
	fs.IntVar(&s.MaxTurns, "max-turns", 8, "most turns of a conversation (P(t) ∝ 1/t)")
	fs.DurationVar((*time.Duration)(&s.Think), "think", 3*time.Second, "mean think time before a follow-up turn (exponential, capped at 4×)")
	fs.DurationVar((*time.Duration)(&s.Ramp), "ramp", 2*time.Second, "the first conversations start spread over this time")
	fs.DurationVar((*time.Duration)(&s.MaxDuration), "max-duration", 120*time.Second, "per strategy: no turn starts after this (the rest count as not sent)")
	fs.BoolVar(&s.User, "user", false, "send each conversation's id as the user field")

	fs.DurationVar((*time.Duration)(&s.ResidencyInterval), "residency-interval", 500*time.Millisecond, "POOL_RESIDENCY_INTERVAL: how often the service reads each host's /api/ps")
	fs.DurationVar((*time.Duration)(&s.HealthInterval), "health-interval", 2*time.Second, "health.interval of the service (reads /api/tags)")
	fs.DurationVar((*time.Duration)(&s.UpstreamTimeout), "upstream-timeout", time.Minute, "upstream_timeout of the service (first token)")
	fs.IntVar(&s.ServiceLimit, "service-limit", -1, "ollama.resilience.limit.concurrency of the service (per host in a pool); -1 keeps its default, 0 switches it off")
}

// quickDefaults are -quick's values for the flags not given explicitly.
var quickDefaults = map[string]string{
	"load-delay":         "200ms",
	"conversations":      "32",
	"concurrency":        "8",
	"think":              "200ms",
	"ramp":               "300ms",
	"max-duration":       "20s",
	"residency-interval": "250ms",
	"health-interval":    "1s",
}

// applyQuick sets quickDefaults on fs for the flags not set explicitly.
func applyQuick(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range quickDefaults {
		if !set[name] {
			if err := fs.Set(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// hostFits parses -hosts.
func (s *Settings) hostFits() []int {
	var out []int
	for _, f := range strings.Split(s.Hosts, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// check validates the settings.
func (s *Settings) check() error {
	for _, f := range strings.Split(s.Hosts, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err != nil || n < 1 {
			return fmt.Errorf("-hosts %q: want a comma-separated list of positive counts", s.Hosts)
		}
	}
	if _, err := s.missing(); err != nil {
		return err
	}
	for _, st := range s.strategies() {
		switch st {
		case "model_aware", "least_busy", "round_robin":
		default:
			return fmt.Errorf("-strategies: unknown %q (model_aware, least_busy, round_robin)", st)
		}
	}
	switch {
	case s.Models < 1:
		return fmt.Errorf("-models %d: want at least 1", s.Models)
	case s.Conversations < 1 || s.Concurrency < 1:
		return fmt.Errorf("-conversations and -concurrency must be at least 1")
	case s.MaxTurns < 1:
		return fmt.Errorf("-max-turns %d: want at least 1", s.MaxTurns)
	case s.GenTokens < 1:
		return fmt.Errorf("-gen-tokens %d: want at least 1", s.GenTokens)
	}
	return nil
}

func (s *Settings) strategies() []string {
	var out []string
	for _, st := range strings.Split(s.Strategies, ",") {
		if st = strings.TrimSpace(st); st != "" {
			out = append(out, st)
		}
	}
	return out
}

// missing parses -missing: host index (from 0) -> models it does not list.
func (s *Settings) missing() (map[int][]string, error) {
	out := map[int][]string{}
	if strings.TrimSpace(s.Missing) == "" {
		return out, nil
	}
	n := len(s.hostFits())
	for _, item := range strings.Split(s.Missing, ",") {
		h, model, ok := strings.Cut(strings.TrimSpace(item), "=")
		i, err := strconv.Atoi(h)
		if !ok || err != nil || i < 1 || i > n || model == "" {
			return nil, fmt.Errorf("-missing %q: want HOST=MODEL items, HOST from 1 to %d", item, n)
		}
		out[i-1] = append(out[i-1], model)
	}
	return out, nil
}

// hostConfigs are the fake hosts of a run.
func (s *Settings) hostConfigs() []HostConfig {
	missing, _ := s.missing()
	models := modelNames(s.Models)
	var out []HostConfig
	for i, fits := range s.hostFits() {
		var listed []string
		for _, m := range models {
			if !slices.Contains(missing[i], m) {
				listed = append(listed, m)
			}
		}
		out = append(out, HostConfig{Name: fmt.Sprintf("host%d", i+1), Models: listed, Fits: fits, Parallel: s.Parallel,
			LoadDelay: time.Duration(s.LoadDelay), PromptToken: time.Duration(s.PromptToken), SharedPrefill: s.SharedPrefill,
			PrefillBatch: s.PrefillBatch, GenTokens: s.GenTokens, TokenDelay: time.Duration(s.TokenDelay)})
	}
	return out
}

// workload is the WorkloadConfig the settings describe.
func (s *Settings) workload() WorkloadConfig {
	return WorkloadConfig{Seed: s.Seed, Conversations: s.Conversations, Models: modelNames(s.Models), Zipf: s.Zipf,
		SystemMin: s.System.Lo, SystemMax: s.System.Hi, SharedSystem: s.SharedSystem, AppsPerModel: s.AppsPerModel,
		MaxTurns: s.MaxTurns, FirstUserMin: s.FirstUser.Lo, FirstUserMax: s.FirstUser.Hi,
		NextUserMin: s.NextUser.Lo, NextUserMax: s.NextUser.Hi, Think: time.Duration(s.Think)}
}

// serviceConfig is the YAML file the service runs with.
func (s *Settings) serviceConfig() string {
	var b strings.Builder
	timeout := min(time.Duration(s.HealthInterval)/2, time.Second)
	fmt.Fprintf(&b, "upstream_timeout: %s\nhealth:\n  interval: %s\n  timeout: %s\n", s.UpstreamTimeout, s.HealthInterval, dur(timeout))
	switch {
	case s.ServiceLimit == 0:
		b.WriteString("ollama:\n  resilience:\n    limit:\n      concurrency: 0\n      queue: 0\n      max_wait: 0s\n")
	case s.ServiceLimit > 0:
		fmt.Fprintf(&b, "ollama:\n  resilience:\n    limit:\n      concurrency: %d\n      queue: 1024\n      max_wait: %s\n", s.ServiceLimit, s.UpstreamTimeout)
	}
	return b.String()
}

// dur is a duration that reads as one in JSON ("2s").
type dur time.Duration

func (d dur) String() string { return time.Duration(d).String() }

func (d dur) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// tokRange is a MIN-MAX flag.
type tokRange struct{ Lo, Hi int }

func (r *tokRange) String() string { return fmt.Sprintf("%d-%d", r.Lo, r.Hi) }

func (r *tokRange) Set(v string) error {
	lo, hi, ok := strings.Cut(v, "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 0 || b < a {
		return fmt.Errorf("want MIN-MAX with 0 ≤ MIN ≤ MAX, got %q", v)
	}
	r.Lo, r.Hi = a, b
	return nil
}

func (r tokRange) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }
