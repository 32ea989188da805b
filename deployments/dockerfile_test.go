package deployments

import (
	"fmt"
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
	// imageDataDir is where the image keeps the embedded response store
	// (RESPONSES_DATA_DIR): owned by imageUser, a VOLUME.
	imageDataDir = "/var/lib/chatgpt-api"
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

	// The embedded response store (used without RESPONSES_REDIS_URL) must
	// be writable by the runtime user in a plain `docker run`: the
	// configured default, "data" under the working directory, is not meant
	// for that, and the distroless stage has no shell to make a directory.
	t.Run("response store directory", func(t *testing.T) {
		img := loadRuntimeImage(t)
		dir := img.Env["RESPONSES_DATA_DIR"]
		if dir != imageDataDir {
			t.Fatalf("ENV RESPONSES_DATA_DIR=%q, want %s", dir, imageDataDir)
		}
		if !filepath.IsAbs(dir) || strings.HasPrefix(dir, "/tmp") || strings.HasPrefix(dir, filepath.Dir(imageConfig)) {
			t.Errorf("RESPONSES_DATA_DIR %q: want an absolute directory of its own", dir)
		}
		// The directory comes from a COPY --from=builder --chown=<USER>, of
		// a directory the builder makes.
		copyAt, volumeAt := -1, -1
		for i, in := range final.Instructions {
			switch in.Cmd {
			case "COPY":
				flags, rest := flagsAndArgs(in.Args)
				if len(rest) != 2 || strings.TrimSuffix(rest[1], "/") != dir {
					continue
				}
				copyAt = i
				if flags["chown"] != imageUser {
					t.Errorf("line %d: %s is copied with --chown=%q, want %s (the USER): the service could not write it", in.Line, dir, flags["chown"], imageUser)
				}
				if flags["from"] != builder.Name {
					t.Errorf("line %d: %s is copied from %q, want the builder stage", in.Line, dir, flags["from"])
				}
				src := strings.TrimSuffix(rest[0], "/")
				made := false
				for _, b := range builder.Instructions {
					if b.Cmd == "RUN" && regexp.MustCompile(`\bmkdir\b`).MatchString(b.Args) && slices.Contains(strings.Fields(b.Args), src) {
						made = true
						if m := regexp.MustCompile(`-m\s*(0?[0-7]{3})`).FindStringSubmatch(b.Args); m != nil {
							if mode, _ := strconv.ParseUint(m[1], 8, 32); mode&0o700 != 0o700 {
								t.Errorf("line %d: mkdir mode %s does not let the owner write", b.Line, m[1])
							}
						}
					}
				}
				if !made {
					t.Errorf("line %d: the builder stage makes no directory %s (RUN mkdir)", in.Line, src)
				}
			case "VOLUME":
				if slices.ContainsFunc(volumePaths(in.Args), func(v string) bool { return strings.TrimSuffix(v, "/") == dir }) {
					volumeAt = i
				}
			}
		}
		if copyAt < 0 {
			t.Fatalf("no COPY --from=builder --chown=%s ... %s in the runtime stage", imageUser, dir)
		}
		// Docker discards what a later step changes in a declared volume.
		if volumeAt < 0 {
			t.Errorf("%s is not a VOLUME: `docker run` would keep the store in the container's layer", dir)
		} else if volumeAt < copyAt {
			t.Errorf("VOLUME %s comes before the COPY that makes it: Docker discards changes to a declared volume", dir)
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

func TestDockerfileInstructionArgs(t *testing.T) {
	flags, rest := flagsAndArgs("--from=builder --chown=65532:65532 /out/data /var/lib/x")
	if flags["from"] != "builder" || flags["chown"] != "65532:65532" || !slices.Equal(rest, []string{"/out/data", "/var/lib/x"}) {
		t.Errorf("flagsAndArgs: %v %v", flags, rest)
	}
	for args, want := range map[string]map[string]string{
		"A=1":                     {"A": "1"},
		`A=1 B="two words" C=`:    {"A": "1", "B": "two words", "C": ""},
		"LEGACY some value":       {"LEGACY": "some value"},
		"RESPONSES_DATA_DIR=/var": {"RESPONSES_DATA_DIR": "/var"},
	} {
		got, err := envPairs(args)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("envPairs(%q) = %v, %v; want %v", args, got, err, want)
		}
	}
	if _, err := envPairs(`A="unterminated`); err == nil {
		t.Error("envPairs accepted an unterminated quote")
	}
	if got := volumePaths(`["/a", "/b"]`); !slices.Equal(got, []string{"/a", "/b"}) {
		t.Errorf("volumePaths JSON: %v", got)
	}
	if got := volumePaths(`/a /b`); !slices.Equal(got, []string{"/a", "/b"}) {
		t.Errorf("volumePaths plain: %v", got)
	}
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
