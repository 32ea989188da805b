// Package archtest guards the architecture: the domain and its ports depend
// on the standard library only.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

func TestDomainImportsStandardLibraryOnly(t *testing.T) {
	const module = "github.com/llm-gateway/chatgpt-api-adapter/"
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		"../domain/...", "../ports/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var bad []string
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasPrefix(p, module+"internal/domain") && !strings.HasPrefix(p, module+"internal/ports") {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		t.Errorf("domain/ports depend on non-standard packages: %v", bad)
	}
	std, err := exec.Command("go", "list", "-deps", "../domain/...", "../ports/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, std)
	}
	for _, p := range strings.Fields(string(std)) {
		if p == "net/http" {
			t.Errorf("domain/ports import net/http")
		}
	}
}

// TestOutboundAdaptersDoNotImportTheInboundWire: backend clients share
// with the inbound OpenAI adapter only the small wire package (ids, JSON
// strings, the passthrough body); they never import the inbound adapter or
// the HTTP handlers, and those never import a backend client.
func TestOutboundAdaptersDoNotImportTheInboundWire(t *testing.T) {
	const module = "github.com/llm-gateway/chatgpt-api-adapter/internal/adapters/"
	rules := []struct {
		pkgs      []string
		forbidden []string
	}{
		{[]string{"../adapters/gateway/...", "../adapters/ollama/...", "../adapters/upstream/...", "../adapters/images/...",
			"../adapters/wire/...", "../adapters/jsonscan/...", "../adapters/tokenizer/..."},
			[]string{module + "openai", module + "httpapi"}},
		{[]string{"../adapters/httpapi/...", "../adapters/openai/..."},
			[]string{module + "gateway", module + "ollama", module + "upstream"}},
	}
	for _, r := range rules {
		args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, r.pkgs...)
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		for _, p := range strings.Fields(string(out)) {
			for _, f := range r.forbidden {
				if p == f || strings.HasPrefix(p, f+"/") {
					t.Errorf("%v depend on %s", r.pkgs, p)
				}
			}
		}
	}
}
