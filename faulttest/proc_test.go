package faulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the ssobroker executable built once by TestMain.
var binary string

// repoRoot is the module root (the parent of this package's directory).
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		fmt.Fprintf(os.Stderr, "faulttest: %s is not the module root: %v\n", root, err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "faulttest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "ssobroker")
	start := time.Now()
	build := exec.Command("go", "build", "-o", binary, "./cmd/ssobroker")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faulttest: go build ./cmd/ssobroker: %v\n%s", err, out)
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("faulttest: built %s in %s\n", binary, time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

// syncBuffer collects a child's output and records when watched strings
// first appear in it.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	seen  map[string]time.Time
	watch []string
}

func newSyncBuffer(watch ...string) *syncBuffer {
	return &syncBuffer{seen: map[string]time.Time{}, watch: watch}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	for _, w := range s.watch {
		if _, ok := s.seen[w]; !ok && bytes.Contains(s.b.Bytes(), []byte(w)) {
			s.seen[w] = now
		}
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// seenAt reports when w first appeared (w must have been watched).
func (s *syncBuffer) seenAt(w string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.seen[w]
	return at, ok
}

// proc is one running ssobroker process.
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	stdout  *syncBuffer
	stderr  *syncBuffer
	started time.Time
	done    chan struct{} // closed when the process has exited
	exitErr error         // cmd.Wait's error, valid after done
	exited  time.Time
}

// startProc starts the binary with args and exactly env (plus PATH and
// HOME). It is killed at cleanup if still running, and its output is
// logged if the test failed.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, stdout: newSyncBuffer(devReadyLine), stderr: newSyncBuffer(drainingLine), done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	// The child dies with the test binary even if the test is killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		p.exited = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("---- %s (pid %d) stderr ----\n%s", p.name, p.cmd.Process.Pid, tail(p.stderr.String(), 24<<10))
			if out := p.stdout.String(); out != "" {
				t.Logf("---- %s stdout ----\n%s", p.name, tail(out, 8<<10))
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signalling %s: %v", p.name, err)
	}
}

// kill9 kills the process with SIGKILL and waits for it to be gone.
func (p *proc) kill9() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	if _, err := p.wait(10 * time.Second); err == nil {
		p.t.Fatalf("%s exited cleanly after SIGKILL", p.name)
	}
}

// wait waits up to d for the process to exit and returns its exit code
// and cmd.Wait's error.
func (p *proc) wait(d time.Duration) (int, error) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("%s did not exit within %s", p.name, d)
	}
	return p.cmd.ProcessState.ExitCode(), p.exitErr
}

// waitReady polls url until it answers 200, failing fast if the process
// exits first.
func (p *proc) waitReady(url string, d time.Duration) time.Duration {
	p.t.Helper()
	if err := p.pollReady(url, d); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	return time.Since(p.started)
}

func (p *proc) pollReady(url string, d time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("exited (%v) before %s answered 200; stderr:\n%s", p.exitErr, url, tail(p.stderr.String(), 4<<10))
		}
		res, err := hc.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		time.Sleep(15 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within %s (last: %s)", url, d, last)
}

// freeAddr returns a 127.0.0.1 address no one listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const adminToken = "faulttest-admin-token-0123456789abcdef"

// serveConfig is the environment of one `ssobroker serve`.
type serveConfig struct {
	listen      string
	issuer      string
	databaseURL string
	masterKey   string
	extra       []string // more NAME=value settings
}

func newServeConfig(t *testing.T, databaseURL string) serveConfig {
	t.Helper()
	addr := freeAddr(t)
	return serveConfig{listen: addr, issuer: "http://" + addr, databaseURL: databaseURL, masterKey: newMasterKey(t)}
}

func newMasterKey(t *testing.T) string {
	t.Helper()
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k[:])
}

func (c serveConfig) env() []string {
	env := []string{
		"SSOBROKER_LISTEN=" + c.listen,
		"SSOBROKER_ISSUER=" + c.issuer,
		"SSOBROKER_DATABASE_URL=" + c.databaseURL,
		"SSOBROKER_ADMIN_TOKEN=" + adminToken,
		"SSOBROKER_MASTER_KEY=" + c.masterKey,
		"SSOBROKER_MIGRATE=true",
		"SSOBROKER_LOG_LEVEL=info",
		// Every request of these tests comes from 127.0.0.1.
		"SSOBROKER_RATE_LIMIT_LOGIN_PER_IP=1000000",
		"SSOBROKER_RATE_LIMIT_LOGIN_PER_TENANT=1000000",
		"SSOBROKER_RATE_LIMIT_ACS_PER_IP=1000000",
		"SSOBROKER_RATE_LIMIT_TOKEN_PER_CLIENT=1000000",
		"SSOBROKER_RATE_LIMIT_TOKEN_PER_IP=1000000",
		"SSOBROKER_RATE_LIMIT_ADMIN_PER_IP=1000000",
	}
	return append(env, c.extra...)
}

func (c serveConfig) base() string { return "http://" + c.listen }

// startServe starts `ssobroker serve` and waits until /readyz is 200.
func startServe(t *testing.T, name string, c serveConfig) *proc {
	t.Helper()
	p := startProc(t, name, c.env(), "serve")
	d := p.waitReady(c.base()+"/readyz", 30*time.Second)
	t.Logf("%s ready after %s", name, d.Round(time.Millisecond))
	return p
}

// httpStatus GETs url and returns its status code.
func httpStatus(ctx context.Context, hc *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// isConnRefused reports whether err is a refused TCP connection.
func isConnRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(fmt.Sprint(err), "connection refused")
}

// Lines the binary prints that tests wait for.
const (
	devReadyLine = "ssobroker dev is ready"
	drainingLine = "shutting down: draining in-flight requests"
)

// serverErrors returns the access log lines of requests the process
// answered with a 5xx status.
func (p *proc) serverErrors() []string {
	var out []string
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		var e struct {
			Msg    string `json:"msg"`
			Status int    `json:"status"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "http request" && e.Status >= 500 {
			out = append(out, line)
		}
	}
	return out
}
