package deployments

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	imageBinary = "/usr/local/bin/chatgpt-api"
	imageConfig = "/etc/chatgpt-api/config.yaml"
	imageUser   = "65532:65532"
	// versionVar is the -X target of the build; it must name a variable
	// that exists in the service.
	versionVar = "github.com/llm-gateway/chatgpt-api-adapter/internal/app.Version"
)

func TestDockerfile(t *testing.T) {
	globalArgs, stages, err := parseDockerfile(readFile(t, dockerfilePath))
	if err != nil {
		t.Fatalf("%s: %v", dockerfilePath, err)
	}
	if len(stages) != 2 {
		t.Fatalf("want a two-stage build (builder, runtime), got %d stages", len(stages))
	}
	builder, final := stages[0], stages[1]

	t.Run("builder", func(t *testing.T) {
		if !regexp.MustCompile(`^golang:1\.26(\.\d+)?-bookworm$`).MatchString(builder.From) {
			t.Errorf("builder FROM %q (GO_VERSION=%q), want golang:1.26-bookworm", builder.From, globalArgs["GO_VERSION"])
		}
		if builder.Name != "builder" {
			t.Errorf("builder stage is named %q, want builder", builder.Name)
		}
		// Layer caching: go.mod/go.sum copied and downloaded before the sources.
		order := []string{"COPY go.mod go.sum", "RUN go mod download", "COPY . .", "RUN CGO_ENABLED=0 go build"}
		next := 0
		var build string
		for _, in := range builder.Instructions {
			text := in.Cmd + " " + strings.Join(strings.Fields(in.Args), " ")
			if next < len(order) && strings.HasPrefix(text, order[next]) {
				next++
			}
			if strings.HasPrefix(text, "RUN CGO_ENABLED=0 go build") {
				build = text
			}
		}
		if next != len(order) {
			t.Fatalf("builder steps out of order; want %q in this order, missing %q", order, order[next])
		}
		for _, want := range []string{"-trimpath", `-ldflags "-s -w -X ` + versionVar + `=${VERSION}"`, "-o /out/chatgpt-api", "./cmd/chatgpt-api"} {
			if !strings.Contains(build, want) {
				t.Errorf("go build line %q lacks %q", build, want)
			}
		}
		if _, err := os.Stat(filepath.Join(repoRoot, "cmd", "chatgpt-api")); err != nil {
			t.Errorf("build package ./cmd/chatgpt-api: %v", err)
		}
		// The -X target must exist, or the version silently stays "dev".
		if !packageDeclares(t, filepath.Join(repoRoot, "internal", "app"), regexp.MustCompile(`(?m)^var Version\s*=`)) {
			t.Errorf("internal/app declares no `var Version = ...`: -X %s would set nothing", versionVar)
		}
	})

	t.Run("runtime", func(t *testing.T) {
		if final.From != "gcr.io/distroless/static-debian12:nonroot" {
			t.Errorf("runtime FROM %q, want gcr.io/distroless/static-debian12:nonroot", final.From)
		}
		if got := final.only(t, "USER").Args; got != imageUser {
			t.Errorf("USER %q, want %q", got, imageUser)
		}
		cfg := loadServiceConfig(t)
		if got := final.only(t, "EXPOSE").Args; got != strconv.Itoa(cfg.Port) && got != strconv.Itoa(cfg.Port)+"/tcp" {
			t.Errorf("EXPOSE %q, want %d (server.port of %s)", got, cfg.Port, serviceConfigPath)
		}
		argv, err := execForm(final.only(t, "ENTRYPOINT").Args)
		if err != nil {
			t.Fatalf("ENTRYPOINT: %v", err)
		}
		if want := []string{imageBinary, "--config", imageConfig}; !slices.Equal(argv, want) {
			t.Errorf("ENTRYPOINT %q, want %q", argv, want)
		}
		if got := imageConfigPath(t); got != imageConfig {
			t.Errorf("--config path %q, want %q", got, imageConfig)
		}
		for _, in := range final.Instructions {
			if in.Cmd == "RUN" || in.Cmd == "SHELL" {
				t.Errorf("line %d: %s in the distroless stage: it has no shell", in.Line, in.Cmd)
			}
		}
		copies := map[string]string{} // destination -> source
		for _, in := range final.Instructions {
			if in.Cmd != "COPY" {
				continue
			}
			f := strings.Fields(in.Args)
			copies[f[len(f)-1]] = strings.Join(f[:len(f)-1], " ")
		}
		if got := copies[imageBinary]; got != "--from=builder /out/chatgpt-api" {
			t.Errorf("binary copied from %q, want --from=builder /out/chatgpt-api", got)
		}
		if got := copies[imageConfig]; got != "configs/config.yaml" {
			t.Errorf("config copied from %q, want configs/config.yaml", got)
		}
		if _, err := os.Stat(serviceConfigPath); err != nil {
			t.Error(err)
		}
	})
}

// packageDeclares reports whether a non-test Go file of dir matches re.
func packageDeclares(t *testing.T, dir string, re *regexp.Regexp) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") && re.Match(readFile(t, f)) {
			return true
		}
	}
	return false
}

func TestDockerfileParser(t *testing.T) {
	src := "# c\nARG V=1.2\nFROM img:${V} AS b\nRUN a \\\n  # inside\n  b\nFROM x\nENTRYPOINT [\"/x\", \"--config\", \"/c\"]\n"
	args, stages, err := parseDockerfile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if args["V"] != "1.2" || len(stages) != 2 || stages[0].From != "img:1.2" || stages[0].Name != "b" {
		t.Fatalf("args %v stages %+v", args, stages)
	}
	if got := stages[0].Instructions[0]; got.Cmd != "RUN" || strings.Join(strings.Fields(got.Args), " ") != "a b" || got.Line != 4 {
		t.Errorf("continuation: %+v", got)
	}
	if _, err := execForm(`/x --config /c`); err == nil {
		t.Error("shell form accepted as exec form")
	}
	if _, _, err := parseDockerfile([]byte("RUN x\n")); err == nil {
		t.Error("instruction before FROM accepted")
	}
}
