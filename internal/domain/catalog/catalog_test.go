package catalog_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain/catalog"
)

type lists map[string][]domain.Model

func (l lists) Models(b string) ([]domain.Model, bool) { m, ok := l[b]; return m, ok }

var aliases = map[string]string{"gpt-4": "qwen2.5:32b", "gpt-3.5-turbo": "qwen2.5:14b"}

func newCatalog(src lists) *catalog.Catalog {
	return catalog.New(aliases, []catalog.Backend{
		{Name: "gateway", Overrides: map[string]string{"qwen2.5:32b": "qwen-32b-instruct", "gpt-3.5-turbo": "fast"}},
		{Name: "ollama"},
	}, src, time.Unix(1000, 0))
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   lists
		model string
		want  []catalog.Target
	}{
		{"alias, lists unknown: every backend, with overrides", lists{}, "gpt-4",
			[]catalog.Target{{"gateway", "qwen-32b-instruct"}, {"ollama", "qwen2.5:32b"}}},
		{"override keyed by the alias itself", lists{}, "gpt-3.5-turbo",
			[]catalog.Target{{"gateway", "fast"}, {"ollama", "qwen2.5:14b"}}},
		{"unmapped name passes unchanged", lists{}, "qwen2.5:7b",
			[]catalog.Target{{"gateway", "qwen2.5:7b"}, {"ollama", "qwen2.5:7b"}}},
		{"known lists filter backends", lists{"gateway": {{ID: "other"}}, "ollama": {{ID: "qwen2.5:32b"}}}, "gpt-4",
			[]catalog.Target{{"ollama", "qwen2.5:32b"}}},
		{"untagged name matches :latest", lists{"gateway": {}, "ollama": {{ID: "llama3:latest"}}}, "llama3",
			[]catalog.Target{{"ollama", "llama3:latest"}}},
		{"served nowhere", lists{"gateway": {}, "ollama": {{ID: "a"}}}, "gpt-4", []catalog.Target{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newCatalog(tc.src).Targets(tc.model)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestListDeduplicatesAndDatesAliases(t *testing.T) {
	src := lists{
		"gateway": {{ID: "qwen2.5:32b", Created: 500, OwnedBy: "gateway"}, {ID: "shared", Created: 1, OwnedBy: "gateway"}},
		"ollama":  {{ID: "shared", Created: 2, OwnedBy: "ollama"}, {ID: "qwen2.5:7b", Created: 3, OwnedBy: "ollama"}, {ID: "gpt-4", OwnedBy: "ollama"}},
	}
	want := []domain.Model{
		{ID: "gpt-3.5-turbo", Created: 1000, OwnedBy: catalog.Owner},
		{ID: "gpt-4", Created: 500, OwnedBy: catalog.Owner},
		{ID: "qwen2.5:32b", Created: 500, OwnedBy: "gateway"},
		{ID: "shared", Created: 1, OwnedBy: "gateway"},
		{ID: "qwen2.5:7b", Created: 3, OwnedBy: "ollama"},
	}
	if diff := cmp.Diff(want, newCatalog(src).List()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestGet(t *testing.T) {
	c := newCatalog(lists{"ollama": {{ID: "hf.co/org/model:Q4", Created: 7, OwnedBy: "ollama"}, {ID: "llama3:latest", OwnedBy: "ollama"}}})
	for _, id := range []string{"gpt-4", "hf.co/org/model:Q4", "llama3"} {
		m, err := c.Get(id)
		if err != nil || m.ID != id {
			t.Errorf("Get(%q) = %+v, %v", id, m, err)
		}
	}
	_, err := c.Get("nope")
	if !errors.Is(err, domain.ErrModelNotFound) {
		t.Errorf("Get(nope) err = %v", err)
	}
}
