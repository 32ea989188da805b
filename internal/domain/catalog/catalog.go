// Package catalog resolves the model names clients use to the names each
// backend serves, and lists the models the service offers.
package catalog

import (
	"sort"
	"strings"
	"time"

	"github.com/llm-gateway/chatgpt-api-adapter/internal/domain"
)

// Owner is the owned_by of the aliases this service defines.
const Owner = "chatgpt-api"

// Backend is what the catalog knows of one backend: its name and how it
// names models differently from the alias table (keys are client names or
// resolved names, values the backend's own names).
type Backend struct {
	Name      string
	Overrides map[string]string
}

// ModelSource reports the models a backend was last seen to serve. known is
// false while no list has been fetched yet.
type ModelSource interface {
	Models(backend string) (models []domain.Model, known bool)
}

// Catalog maps client model names to backend model names.
type Catalog struct {
	aliases  map[string]string
	backends []Backend
	source   ModelSource
	created  int64
}

// New builds a catalog. aliases maps client names (gpt-4) to model names
// (qwen2.5:32b); created is the timestamp reported for aliases whose target
// no backend dates.
func New(aliases map[string]string, backends []Backend, source ModelSource, created time.Time) *Catalog {
	return &Catalog{aliases: aliases, backends: backends, source: source, created: created.Unix()}
}

// Resolve returns the model name an alias stands for, or name itself.
func (c *Catalog) Resolve(name string) string {
	if target, ok := c.aliases[name]; ok {
		return target
	}
	return name
}

// Target is one backend able to serve a request and the name to ask it for.
type Target struct {
	Backend string
	Model   string
}

// Targets lists, in backend order, the backends that may serve the client's
// model and the name each must be asked for. A backend whose model list is
// not known yet is included; one whose list is known and lacks the model is
// not. An empty result means no backend serves the model.
func (c *Catalog) Targets(name string) []Target {
	resolved := c.Resolve(name)
	out := make([]Target, 0, len(c.backends))
	for _, b := range c.backends {
		upstream := resolved
		if o, ok := b.Overrides[name]; ok {
			upstream = o
		} else if o, ok := b.Overrides[resolved]; ok {
			upstream = o
		}
		models, known := c.source.Models(b.Name)
		if known {
			m, ok := find(models, upstream)
			if !ok {
				continue
			}
			upstream = m.ID
		}
		out = append(out, Target{Backend: b.Name, Model: upstream})
	}
	return out
}

// List returns the aliases (sorted) followed by every model the backends
// report, in backend order, without duplicates.
func (c *Catalog) List() []domain.Model {
	seen := make(map[string]bool)
	var out []domain.Model
	names := make([]string, 0, len(c.aliases))
	for alias := range c.aliases {
		names = append(names, alias)
	}
	sort.Strings(names)
	for _, alias := range names {
		seen[alias] = true
		out = append(out, c.alias(alias))
	}
	for _, b := range c.backends {
		models, _ := c.source.Models(b.Name)
		for _, m := range models {
			if !seen[m.ID] {
				seen[m.ID] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// Get returns one model by id: an alias or a model some backend serves.
func (c *Catalog) Get(id string) (domain.Model, error) {
	if _, ok := c.aliases[id]; ok {
		return c.alias(id), nil
	}
	for _, b := range c.backends {
		models, _ := c.source.Models(b.Name)
		if m, ok := find(models, id); ok {
			m.ID = id
			return m, nil
		}
	}
	return domain.Model{}, &domain.ModelNotFoundError{Model: id}
}

func (c *Catalog) alias(name string) domain.Model {
	m := domain.Model{ID: name, Created: c.created, OwnedBy: Owner}
	target := c.aliases[name]
	for _, b := range c.backends {
		models, _ := c.source.Models(b.Name)
		if t, ok := find(models, target); ok && t.Created > 0 {
			m.Created = t.Created
			break
		}
	}
	return m
}

// find looks name up in models; an untagged name matches its ":latest" tag,
// as Ollama treats them as one.
func find(models []domain.Model, name string) (domain.Model, bool) {
	for _, m := range models {
		if m.ID == name {
			return m, true
		}
	}
	if !strings.Contains(name, ":") {
		latest := name + ":latest"
		for _, m := range models {
			if m.ID == latest {
				return m, true
			}
		}
	}
	return domain.Model{}, false
}
