package deployments

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestDockerignore applies ../.dockerignore the way Docker does (moby's
// pattern matcher) to the files of the repository: everything the build
// needs must reach the build context, and bulky or private files must not.
func TestDockerignore(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(rel string) bool {
		t.Helper()
		m, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			t.Fatalf("match %s: %v", rel, err)
		}
		return m
	}

	// Needed: the module files, the Dockerfile's COPY sources, and every Go
	// source of the service's module (outside deployments/, its own module).
	needed := []string{"go.mod", "go.sum", "configs/config.yaml"}
	err = filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (rel == ".git" || rel == "deployments" || rel == "bin" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") {
			needed = append(needed, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(needed) < 5 {
		t.Fatalf("found only %v: is the repository root %s?", needed, repoRoot)
	}
	for _, rel := range needed {
		if excluded(rel) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", rel)
		}
	}
	for _, rel := range []string{".git/HEAD", "bin/chatgpt-api", "node_modules/x/index.js", "web/node_modules/x.js",
		"coverage.out", "internal/app/app.test", "deployments/kubernetes/deployment.yaml", ".env"} {
		if !excluded(rel) {
			t.Errorf(".dockerignore lets %s into the build context", rel)
		}
	}
}
