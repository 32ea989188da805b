// Package redistest runs a real Redis for tests: a redis-server process
// of their own (Debian's redis-server package), started on first use on a
// free port of 127.0.0.1 with no persistence and a temporary directory,
// and stopped by the package's TestMain (Stop). No system Redis service is
// used; without redis-server on PATH the tests fail (CI installs it).
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const installHint = "redis-server is not on PATH: these tests need a real Redis; " +
	"install Debian's redis-server package (apt-get install -y redis-server; .ci/run does this)"

var server struct {
	once   sync.Once
	url    string
	err    error
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// URL is the test server's URL, starting it on first use. Without
// redis-server the test fails: CI installs it, so a missing one is a
// broken setup, not a reason to skip.
func URL(t testing.TB) string {
	t.Helper()
	server.once.Do(startServer)
	if server.err != nil {
		t.Fatal(server.err)
	}
	return server.url
}

func startServer() {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		server.err = errors.New(installHint)
		return
	}
	server.dir, err = os.MkdirTemp("", "redistest-")
	if err != nil {
		server.err = err
		return
	}
	// A free port can be taken between our probe and redis-server's bind:
	// try a few.
	var errs []error
	for range 3 {
		port, err := FreePort()
		if err != nil {
			server.err = err
			return
		}
		if err := tryStart(bin, port); err != nil {
			errs = append(errs, err)
			continue
		}
		server.url = "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
		return
	}
	server.err = fmt.Errorf("could not start redis-server: %w", errors.Join(errs...))
}

func tryStart(bin string, port int) error {
	logPath := filepath.Join(server.dir, "redis-"+strconv.Itoa(port)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", server.dir,
		"--daemonize", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = serverProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ping(addr) == nil {
			server.cmd, server.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis-server on port %d exited: %s", port, strings.TrimSpace(string(log)))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis-server on port %d did not answer PING within 15s: %s", port, strings.TrimSpace(string(log)))
		}
	}
}

// ping sends an inline PING and wants +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// FreePort is a port of 127.0.0.1 that nothing listened on a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Stop stops redis-server, if it was started, and removes its directory;
// a package's TestMain calls it after the tests.
func Stop() {
	if server.cmd != nil {
		_ = server.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-server.exited:
		case <-time.After(10 * time.Second):
			_ = server.cmd.Process.Kill()
			<-server.exited
		}
	}
	if server.dir != "" {
		_ = os.RemoveAll(server.dir)
	}
}
