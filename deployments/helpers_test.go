package deployments

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// Paths relative to this directory (go test runs in the package directory).
const (
	repoRoot       = ".."
	dockerfilePath = "Dockerfile"
	kustomizeDir   = "kubernetes"
	exampleOverlay = "overlays/example"
	// Overlays for the stored responses: a Redis of your own, or one
	// replica with the embedded store on a PersistentVolumeClaim.
	managedRedisOverlay  = "overlays/managed-redis"
	singleReplicaOverlay = "overlays/single-replica"
	rulesPath            = "prometheus/rules.yml"
	dashboardsGlob       = "grafana/*.json"
)

// serviceConfigPath is the service's documented configuration, the one the
// image ships and the ConfigMap carries.
var serviceConfigPath = filepath.Join(repoRoot, "configs", "config.yaml")

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return data
}

// serviceConfig is the part of configs/config.yaml the manifests depend on.
type serviceConfig struct {
	Port         int
	DrainTimeout time.Duration
	Responses    responsesConfig
}

// responsesConfig is the section responses: where /v1/responses keeps the
// responses it answers.
type responsesConfig struct {
	DataDir       string        // data_dir: the embedded store's directory
	RedisURL      string        // redis_url: Redis instead, shared by replicas
	TTL           time.Duration // ttl: 0 keeps them until deleted
	MaxBytes      int64         // max_bytes: the largest response stored
	StoreMaxBytes int64         // store_max_bytes: the embedded store's cap
}

func loadServiceConfig(t *testing.T) serviceConfig {
	t.Helper()
	var raw struct {
		Server struct {
			Port         int    `json:"port"`
			DrainTimeout string `json:"drain_timeout"`
		} `json:"server"`
		Responses *struct {
			DataDir       string `json:"data_dir"`
			RedisURL      string `json:"redis_url"`
			TTL           string `json:"ttl"`
			MaxBytes      int64  `json:"max_bytes"`
			StoreMaxBytes int64  `json:"store_max_bytes"`
		} `json:"responses"`
	}
	if err := yaml.Unmarshal(readFile(t, serviceConfigPath), &raw); err != nil {
		t.Fatalf("parse %s: %v", serviceConfigPath, err)
	}
	if raw.Server.Port == 0 {
		t.Fatalf("%s: server.port is not set", serviceConfigPath)
	}
	d, err := parseServiceDuration(raw.Server.DrainTimeout)
	if err != nil {
		t.Fatalf("%s: server.drain_timeout=%q: %v", serviceConfigPath, raw.Server.DrainTimeout, err)
	}
	r := raw.Responses
	if r == nil {
		t.Fatalf("%s: no responses section (the stored responses of /v1/responses)", serviceConfigPath)
	}
	ttl, err := parseServiceDuration(r.TTL)
	if err != nil {
		t.Fatalf("%s: responses.ttl=%q: %v", serviceConfigPath, r.TTL, err)
	}
	return serviceConfig{Port: raw.Server.Port, DrainTimeout: d, Responses: responsesConfig{
		DataDir: r.DataDir, RedisURL: r.RedisURL, TTL: ttl, MaxBytes: r.MaxBytes, StoreMaxBytes: r.StoreMaxBytes}}
}

// parseServiceDuration reads durations the way the service does
// (internal/app.ParseDuration): "30s", "2m", or a number of seconds.
func parseServiceDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

// dockerInstruction is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstruction struct {
	Line int    // first line
	Cmd  string // upper case: FROM, RUN, ...
	Args string // the rest, trimmed
}

// dockerStage is the instructions from one FROM to the next.
type dockerStage struct {
	From         string // image reference, ARGs declared before the first FROM expanded
	Name         string // "AS name", if any
	Instructions []dockerInstruction
}

// parseDockerfile is a small Dockerfile reader: comments, blank lines,
// backslash continuations, stages and global ARG defaults. It is enough for
// the Dockerfile in this directory; exotic syntax (heredocs, escape
// directives) fails the test rather than being misread.
func parseDockerfile(data []byte) (globalArgs map[string]string, stages []dockerStage, err error) {
	globalArgs = map[string]string{}
	var (
		cur     strings.Builder
		curLine int
		insts   []dockerInstruction
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") && cur.Len() == 0 {
			if strings.Contains(strings.ToLower(trimmed), "escape=") {
				return nil, nil, fmt.Errorf("line %d: escape directives are not supported", n)
			}
			continue
		}
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() > 0) {
			continue // comment or blank line inside a continuation
		}
		if trimmed == "" {
			continue
		}
		if cur.Len() == 0 {
			curLine = n
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(trimmed)
		text := cur.String()
		cur.Reset()
		if strings.Contains(text, "<<") && strings.HasPrefix(strings.ToUpper(text), "RUN") {
			return nil, nil, fmt.Errorf("line %d: heredocs are not supported", curLine)
		}
		cmd, args, _ := strings.Cut(text, " ")
		insts = append(insts, dockerInstruction{Line: curLine, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if cur.Len() > 0 {
		return nil, nil, fmt.Errorf("line %d: the file ends inside a continuation", curLine)
	}
	argRef := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	for _, in := range insts {
		switch {
		case in.Cmd == "ARG" && len(stages) == 0:
			name, def, _ := strings.Cut(in.Args, "=")
			globalArgs[name] = strings.Trim(def, `"`)
		case in.Cmd == "FROM":
			fields := strings.Fields(in.Args)
			var st dockerStage
			for _, f := range fields {
				if strings.HasPrefix(f, "--") {
					continue
				}
				if st.From == "" {
					st.From = argRef.ReplaceAllStringFunc(f, func(m string) string {
						return globalArgs[argRef.FindStringSubmatch(m)[1]]
					})
				}
			}
			if len(fields) >= 3 && strings.EqualFold(fields[len(fields)-2], "AS") {
				st.Name = fields[len(fields)-1]
			}
			stages = append(stages, st)
		case len(stages) == 0:
			return nil, nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
		default:
			stages[len(stages)-1].Instructions = append(stages[len(stages)-1].Instructions, in)
		}
	}
	if len(stages) == 0 {
		return nil, nil, fmt.Errorf("no FROM instruction")
	}
	return globalArgs, stages, nil
}

// only returns the stage's single instruction cmd; it fails the test when
// there is none or more than one.
func (s dockerStage) only(t *testing.T, cmd string) dockerInstruction {
	t.Helper()
	var found []dockerInstruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		t.Fatalf("stage %q: want exactly one %s instruction, found %d", s.From, cmd, len(found))
	}
	return found[0]
}

// flagsAndArgs splits the arguments of COPY/ADD into their --flags
// (name -> value) and the rest (sources, then the destination).
func flagsAndArgs(args string) (flags map[string]string, rest []string) {
	flags = map[string]string{}
	for _, f := range strings.Fields(args) {
		if name, ok := strings.CutPrefix(f, "--"); ok && len(rest) == 0 {
			k, v, _ := strings.Cut(name, "=")
			flags[k] = v
			continue
		}
		rest = append(rest, f)
	}
	return flags, rest
}

// envPairs parses the arguments of an ENV instruction: KEY=VALUE pairs
// (values may be double-quoted) or the legacy `ENV KEY VALUE`.
func envPairs(args string) (map[string]string, error) {
	out := map[string]string{}
	if k, v, ok := strings.Cut(args, " "); ok && !strings.Contains(k, "=") {
		out[k] = strings.TrimSpace(v)
		return out, nil
	}
	for rest := strings.TrimSpace(args); rest != ""; rest = strings.TrimSpace(rest) {
		k, after, ok := strings.Cut(rest, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\"") {
			return nil, fmt.Errorf("ENV %s: want KEY=VALUE pairs", args)
		}
		var v string
		if strings.HasPrefix(after, `"`) {
			end := strings.Index(after[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("ENV %s: unterminated quote", args)
			}
			v, rest = after[1:1+end], after[2+end:]
		} else {
			v, rest, _ = strings.Cut(after, " ")
		}
		out[k] = v
	}
	return out, nil
}

// volumePaths parses the arguments of a VOLUME instruction: a JSON array
// or space-separated paths.
func volumePaths(args string) []string {
	var paths []string
	if err := json.Unmarshal([]byte(args), &paths); err == nil {
		return paths
	}
	return strings.Fields(args)
}

// runtimeImage is what the final stage of the Dockerfile sets: the
// environment of its ENV instructions and its VOLUMEs.
type runtimeImage struct {
	Env     map[string]string
	Volumes []string
}

func loadRuntimeImage(t *testing.T) runtimeImage {
	t.Helper()
	_, stages, err := parseDockerfile(readFile(t, dockerfilePath))
	if err != nil {
		t.Fatalf("%s: %v", dockerfilePath, err)
	}
	img := runtimeImage{Env: map[string]string{}}
	for _, in := range stages[len(stages)-1].Instructions {
		switch in.Cmd {
		case "ENV":
			pairs, err := envPairs(in.Args)
			if err != nil {
				t.Fatalf("%s line %d: %v", dockerfilePath, in.Line, err)
			}
			for k, v := range pairs {
				img.Env[k] = v
			}
		case "VOLUME":
			img.Volumes = append(img.Volumes, volumePaths(in.Args)...)
		}
	}
	return img
}

// execForm parses the JSON (exec) form of ENTRYPOINT/CMD.
func execForm(args string) ([]string, error) {
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil {
		return nil, fmt.Errorf("not the exec (JSON array) form: %v", err)
	}
	return argv, nil
}

// imageConfigPath is the --config argument of the final stage's ENTRYPOINT.
func imageConfigPath(t *testing.T) string {
	t.Helper()
	_, stages, err := parseDockerfile(readFile(t, dockerfilePath))
	if err != nil {
		t.Fatalf("%s: %v", dockerfilePath, err)
	}
	argv, err := execForm(stages[len(stages)-1].only(t, "ENTRYPOINT").Args)
	if err != nil {
		t.Fatalf("%s ENTRYPOINT: %v", dockerfilePath, err)
	}
	for i, a := range argv {
		if a == "--config" && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
	}
	t.Fatalf("%s ENTRYPOINT %q has no --config argument", dockerfilePath, argv)
	return ""
}
