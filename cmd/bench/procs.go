package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// raiseNoFile lifts RLIMIT_NOFILE to its hard limit: every role holds
// thousands of sockets in the idle-stream scenario.
func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

func noFileLimit() uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return rl.Cur
}

// freePort asks the kernel for a free port on 127.0.0.1. The port is
// released before the service binds it; a collision is retried by the caller.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// child is one process the harness started.
type child struct {
	name  string
	cmd   *exec.Cmd
	pid   int
	log   string
	addrs []string // what a role printed after READY
	done  chan struct{}
	err   error // exit status, once done is closed
}

var (
	childrenMu sync.Mutex
	children   = map[int]*child{}
)

func register(c *child) {
	childrenMu.Lock()
	children[c.pid] = c
	childrenMu.Unlock()
}

// killAll ends every child still running: SIGTERM, then SIGKILL after grace.
func killAll(grace time.Duration) {
	childrenMu.Lock()
	list := make([]*child, 0, len(children))
	for _, c := range children {
		list = append(list, c)
	}
	childrenMu.Unlock()
	var wg sync.WaitGroup
	for _, c := range list {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(grace) }()
	}
	wg.Wait()
}

func (c *child) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL. Only this child's
// own pid is signalled.
func (c *child) stop(grace time.Duration) {
	if c == nil {
		return
	}
	if c.running() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	childrenMu.Lock()
	delete(children, c.pid)
	childrenMu.Unlock()
}

// spawn starts a process with stderr (and stdout unless a pipe is wanted)
// going to logPath. Children die with the harness (Pdeathsig) and sit in
// their own process group, so a terminal's ^C reaches only the harness,
// which then stops them in order.
func spawn(name, logPath string, env []string, wantStdout bool, bin string, args ...string) (*child, io.Reader, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = logf
	var out io.Reader
	if wantStdout {
		pr, err := cmd.StdoutPipe()
		if err != nil {
			logf.Close()
			return nil, nil, err
		}
		out = pr
	} else {
		cmd.Stdout = logf
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	c := &child{name: name, cmd: cmd, pid: cmd.Process.Pid, log: logPath, done: make(chan struct{})}
	register(c)
	go func() {
		c.err = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, out, nil
}

// startRole re-executes this binary in a role and waits for its
// "READY addr…" line.
func startRole(name, logPath string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c, out, err := spawn(name, logPath, os.Environ(), true, self, args...)
	if err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if t := sc.Text(); strings.HasPrefix(t, "READY") {
				line <- t
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		c.addrs = strings.Fields(l)[1:]
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v); see %s", name, c.err, logPath)
	case <-time.After(30 * time.Second):
		c.stop(time.Second)
		return nil, fmt.Errorf("%s not ready within 30s; see %s", name, logPath)
	}
}

// serviceEnv is the environment without any variable the service reads,
// plus the given ones.
func serviceEnv(set map[string]string) []string {
	drop := map[string]bool{}
	for _, k := range []string{"CHATGPT_API_PORT", "GATEWAY_URL", "GATEWAY_API_KEY", "OLLAMA_URL", "AGENT_ID",
		"LOG_LEVEL", "UPSTREAM_TIMEOUT", "CORS_ALLOWED_ORIGINS", "DRAIN_TIMEOUT", "CHATGPT_API_KEYS", "CHATGPT_API_KEYS_FILE",
		"EMBEDDINGS_MODEL", "RESPONSES_DATA_DIR", "RESPONSES_REDIS_URL", "RESPONSES_TTL", "POOL_STRATEGY",
		"POOL_RESIDENCY_INTERVAL"} {
		drop[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// startService runs the service binary (or the profiling variant) with
// cfgPath and env on a free port, and waits for /readyz.
func startService(name, logPath, bin string, extraArgs []string, cfgPath string, env map[string]string) (*child, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		env["CHATGPT_API_PORT"] = strconv.Itoa(port)
		// Each instance keeps its stored responses apart: the embedded
		// store locks its file.
		env["RESPONSES_DATA_DIR"] = filepath.Join(filepath.Dir(logPath), fmt.Sprintf("%s-data-%d", filepath.Base(logPath), port))
		args := append(append([]string(nil), extraArgs...), "--config", cfgPath)
		c, _, err := spawn(name, logPath, serviceEnv(env), false, bin, args...)
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if err := waitReady(c, "http://"+addr+"/readyz", 30*time.Second); err != nil {
			c.stop(2 * time.Second)
			lastErr = err
			continue
		}
		c.addrs = []string{addr}
		return c, nil
	}
	return nil, fmt.Errorf("%s: %v; see %s", name, lastErr, logPath)
}

func waitReady(c *child, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	cl := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if !c.running() {
			return fmt.Errorf("exited before it was ready (%v)", c.err)
		}
		resp, err := cl.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cl.CloseIdleConnections()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not ready within " + limit.String())
}

// ---- /proc ---------------------------------------------------------------

var clkTck = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}()

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	// After the command: state is field 3; utime and stime are 14 and 15.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func ticksToSeconds(t int64) float64 { return float64(t) / float64(clkTck) }

// procStatusKiB reads a "VmXXX:  123 kB" line of /proc/<pid>/status.
func procStatusKiB(pid int, key string) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key+":") {
			f := strings.Fields(line[len(key)+1:])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func rssKiB(pid int) int64 { return procStatusKiB(pid, "VmRSS") }
func hwmKiB(pid int) int64 { return procStatusKiB(pid, "VmHWM") }

// sampler polls VmRSS of watched pids and keeps each one's maximum since
// its last reset: the per-scenario peak.
type sampler struct {
	mu   sync.Mutex
	peak map[int]int64
}

func newSampler(ctx context.Context, every time.Duration) *sampler {
	s := &sampler{peak: map[int]int64{}}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.poll()
			}
		}
	}()
	return s
}

func (s *sampler) poll() {
	s.mu.Lock()
	pids := make([]int, 0, len(s.peak))
	for p := range s.peak {
		pids = append(pids, p)
	}
	s.mu.Unlock()
	for _, p := range pids {
		v := rssKiB(p)
		s.mu.Lock()
		if cur, ok := s.peak[p]; ok && v > cur {
			s.peak[p] = v
		}
		s.mu.Unlock()
	}
}

// reset starts a new peak for pid from its current RSS.
func (s *sampler) reset(pid int) {
	if pid <= 0 {
		return
	}
	v := rssKiB(pid)
	s.mu.Lock()
	s.peak[pid] = v
	s.mu.Unlock()
}

// max returns the peak since reset, after one last sample.
func (s *sampler) max(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	v := rssKiB(pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if v > s.peak[pid] {
		s.peak[pid] = v
	}
	return s.peak[pid]
}

func (s *sampler) forget(pid int) {
	s.mu.Lock()
	delete(s.peak, pid)
	s.mu.Unlock()
}
