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
