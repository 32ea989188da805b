package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// moduleRoot finds the directory of this repository's go.mod, from the
// working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/llm-gateway/chatgpt-api-adapter\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the chatgpt-api-adapter module (or pass -service-bin)")
		}
		dir = parent
	}
}

// buildService compiles ./cmd/chatgpt-api into dir.
func buildService(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "chatgpt-api")
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/chatgpt-api")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/chatgpt-api: %v\n%s", err, out)
	}
	return bin, nil
}

// revision describes the checked-out source, for the report.
func revision() string {
	root, err := moduleRoot()
	if err != nil {
		return ""
	}
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// serviceEnv is this process's environment without any variable the
// service reads, plus set.
func serviceEnv(set map[string]string) []string {
	exact := []string{"AGENT_ID", "LOG_LEVEL", "UPSTREAM_TIMEOUT", "CORS_ALLOWED_ORIGINS", "DRAIN_TIMEOUT", "EMBEDDINGS_MODEL"}
	prefixes := []string{"CHATGPT_API_", "GATEWAY_", "OLLAMA_", "POOL_", "RESPONSES_", "HEALTH_"}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(exact, k) || slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// Service is a running chatgpt-api process.
type Service struct {
	Addr string // 127.0.0.1:port
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartService runs bin with -config cfgPath and env on a free port, its
// output going to logPath, and waits for /readyz.
func StartService(bin, cfgPath, logPath string, env map[string]string) (*Service, error) {
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		env["CHATGPT_API_PORT"] = strconv.Itoa(port)
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-config", cfgPath)
		cmd.Env = serviceEnv(env)
		cmd.Stdout, cmd.Stderr = logf, logf
		// It dies with the harness, and a terminal's ^C reaches only the
		// harness, which then stops it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, err
		}
		s := &Service{Addr: "127.0.0.1:" + strconv.Itoa(port), Log: logPath, cmd: cmd, done: make(chan struct{})}
		go func() {
			s.err = cmd.Wait()
			logf.Close()
			close(s.done)
		}()
		if lastErr = s.waitReady(30 * time.Second); lastErr == nil {
			return s, nil
		}
		s.Stop(2 * time.Second)
	}
	return nil, fmt.Errorf("the service did not start: %v; see %s:\n%s", lastErr, logPath, tail(logPath, 15))
}

func (s *Service) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	cl := &http.Client{Timeout: time.Second}
	defer cl.CloseIdleConnections()
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("it exited (%v)", s.err)
		default:
		}
		if resp, err := cl.Get("http://" + s.Addr + "/readyz"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not ready within " + limit.String())
}

// WaitModels waits until /v1/models lists every model (the service has
// read the hosts' lists), or limit passes.
func (s *Service) WaitModels(models []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	cl := &http.Client{Timeout: 2 * time.Second}
	defer cl.CloseIdleConnections()
	var missing []string
	for {
		missing = missing[:0]
		var list struct {
			Data []modelEntry `json:"data"`
		}
		if resp, err := cl.Get("http://" + s.Addr + "/v1/models"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&list)
			resp.Body.Close()
		}
		for _, m := range models {
			if !slices.ContainsFunc(list.Data, func(d modelEntry) bool { return d.ID == m }) {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/v1/models still lacks %s after %s", strings.Join(missing, ", "), limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type modelEntry struct {
	ID string `json:"id"`
}

// Stop sends SIGTERM, then SIGKILL after grace. Only this process is
// signalled.
func (s *Service) Stop(grace time.Duration) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Exited reports whether the process has ended, and how.
func (s *Service) Exited() (bool, error) {
	select {
	case <-s.done:
		return true, s.err
	default:
		return false, nil
	}
}

// freePort asks the kernel for a free port on 127.0.0.1; it is released
// before the service binds it (a collision is retried).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
