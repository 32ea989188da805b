package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// WorkloadConfig shapes the conversations.
type WorkloadConfig struct {
	Seed          uint64
	Conversations int
	Models        []string
	Zipf          float64 // popularity of model k (1-based) ∝ 1/k^Zipf
	// SystemMin and SystemMax bound the system prompt (tokens).
	SystemMin, SystemMax int
	// SharedSystem is the share of conversations whose system prompt is
	// that of an app (AppsPerModel apps per model); the others have one
	// of their own.
	SharedSystem float64
	AppsPerModel int
	// MaxTurns bounds the turns of a conversation: P(t) ∝ 1/t, t = 1..MaxTurns.
	MaxTurns int
	// FirstUser and NextUser bound the user messages (tokens): the first
	// carries the question and its material, the next ones follow up.
	FirstUserMin, FirstUserMax int
	NextUserMin, NextUserMax   int
	// Think is the mean pause before a follow-up turn (exponential, at
	// most 4× the mean).
	Think time.Duration
}

// Conversation is one user's exchange with one model.
type Conversation struct {
	ID     int
	Model  string
	App    int // index of the shared system prompt, -1 for its own
	System string
	Users  []string        // the user message of each turn
	Think  []time.Duration // pause before each turn (0 before the first)
}

// Workload is every conversation, in the order they start.
type Workload struct {
	Config        WorkloadConfig
	Conversations []Conversation
	Requests      int // turns in all
}

// NewWorkload draws the conversations: the same config (seed included)
// always gives the same ones.
func NewWorkload(cfg WorkloadConfig) *Workload {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xbe9c4))
	modelCDF := zipfCDF(len(cfg.Models), cfg.Zipf)
	turnCDF := zipfCDF(max(cfg.MaxTurns, 1), 1)
	apps := make([]string, len(cfg.Models)*cfg.AppsPerModel)
	for i := range apps {
		apps[i] = fmt.Sprintf("You are the assistant of app %d. ", i) + text(rng, between(rng, cfg.SystemMin, cfg.SystemMax)*bytesPerToken)
	}
	w := &Workload{Config: cfg}
	for id := range cfg.Conversations {
		m := draw(rng, modelCDF)
		c := Conversation{ID: id, Model: cfg.Models[m], App: -1}
		if cfg.AppsPerModel > 0 && rng.Float64() < cfg.SharedSystem {
			c.App = m*cfg.AppsPerModel + rng.IntN(cfg.AppsPerModel)
			c.System = apps[c.App]
		} else {
			c.System = fmt.Sprintf("You are the assistant of user %d. ", id) + text(rng, between(rng, cfg.SystemMin, cfg.SystemMax)*bytesPerToken)
		}
		turns := draw(rng, turnCDF) + 1
		for t := range turns {
			lo, hi := cfg.NextUserMin, cfg.NextUserMax
			var pause time.Duration
			if t == 0 {
				lo, hi = cfg.FirstUserMin, cfg.FirstUserMax
			} else {
				pause = time.Duration(min(rng.ExpFloat64(), 4) * float64(cfg.Think))
			}
			c.Users = append(c.Users, fmt.Sprintf("Question %d.%d: ", id, t+1)+text(rng, between(rng, lo, hi)*bytesPerToken))
			c.Think = append(c.Think, pause)
		}
		w.Requests += turns
		w.Conversations = append(w.Conversations, c)
	}
	return w
}

// ModelShare is the share of requests each model gets.
func (w *Workload) ModelShare() map[string]float64 {
	out := map[string]float64{}
	for _, c := range w.Conversations {
		out[c.Model] += float64(len(c.Users)) / float64(w.Requests)
	}
	return out
}

// zipfCDF is the cumulative distribution of ranks 1..n with P(k) ∝ 1/k^s.
func zipfCDF(n int, s float64) []float64 {
	cdf := make([]float64, n)
	sum := 0.0
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	return cdf
}

// draw picks an index from a cumulative distribution.
func draw(rng *rand.Rand, cdf []float64) int {
	u := rng.Float64()
	for i, c := range cdf {
		if u < c {
			return i
		}
	}
	return len(cdf) - 1
}

func between(rng *rand.Rand, lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + rng.IntN(hi-lo+1)
}

// text is about n bytes of words.
func text(rng *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(n + 16)
	for b.Len() < n {
		if b.Len() > 0 {
			if rng.IntN(12) == 0 {
				b.WriteString(". ")
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(vocabulary[rng.IntN(len(vocabulary))])
	}
	return b.String()
}

// vocabulary is what the texts are made of.
var vocabulary = strings.Fields(`
the a of to and in is it that for on with as this be are by from at or an
not have has was can will which their there more when what about into than
them these other some only also then its our each would could should may
system request model answer question report table value number order field
service host memory cache token prompt reply stream server client record
invoice customer ticket refund policy summary section contract clause date
amount account balance payment shipping product review rating error status
please explain describe compare list check update write translate improve
first second next last every several many few long short new old small large
quickly carefully briefly clearly exactly usually often rarely never always`)
