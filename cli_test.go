package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// binary is the taskpulse command built once for the process tests.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "taskpulse")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("test binary missing: %v", err)
	}
	return bin
}

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "taskpulse-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "taskpulse"), ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("building taskpulse for the process tests: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	// Every server the tests started has been closed: nothing it started
	// may still run (sessions, writers, hub, broker, store, timers).
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// proc runs the binary with a shared environment.
type proc struct {
	t   *testing.T
	env []string
}

func newProc(t *testing.T) *proc {
	db := "sqlite:" + filepath.Join(t.TempDir(), "cli.db")
	return &proc{t: t, env: append(os.Environ(), "DATABASE_URL="+db, "ADDR=127.0.0.1:0", "DRAIN_TIMEOUT=300ms", "JWT_SECRET=")}
}

func (p *proc) run(args ...string) (stdout, stderr string, code int) {
	p.t.Helper()
	cmd := exec.Command(binary(p.t), args...)
	cmd.Env = p.env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		p.t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// server is a running `taskpulse serve`.
type server struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
	stdout *syncBuffer
	done   chan error
}

func (p *proc) serve(args ...string) *server {
	p.t.Helper()
	cmd := exec.Command(binary(p.t), append([]string{"serve"}, args...)...)
	cmd.Env = p.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &syncBuffer{}, stdout: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	p.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		// The rest through the same scanner: it may already hold the next
		// lines (read with the first), which copying the pipe would lose.
		for sc.Scan() {
			_, _ = s.stdout.Write(append(sc.Bytes(), '\n'))
		}
	}()
	select {
	case l := <-line:
		m := regexp.MustCompile(`^taskpulse listening on (https?://\S+)$`).FindStringSubmatch(l)
		if m == nil {
			p.t.Fatalf("first stdout line %q", l)
		}
		s.url = m[1]
	case <-time.After(10 * time.Second):
		p.t.Fatalf("server did not say where it listens; stderr:\n%s", s.stderr)
	}
	return s
}

// syncBuffer is written by the process's stderr copier and read by tests.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCLIUserAddTokenAndServe(t *testing.T) {
	p := newProc(t)
	if out, errOut, code := p.run("user", "add", "alice", "--name", "Alice", "--email", "alice@example.com"); code != 0 || !strings.Contains(out, "created user alice") {
		t.Fatalf("user add: code %d, out %q, err %q", code, out, errOut)
	}
	if _, errOut, code := p.run("user", "add", "alice", "--name", "Again"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate user add: code %d, stderr %q", code, errOut)
	}
	out, errOut, code := p.run("token", "alice", "--ttl", "10m")
	tok := strings.TrimSpace(out)
	if code != 0 || strings.Count(tok, ".") != 2 || strings.Count(out, "\n") != 1 {
		t.Fatalf("token: code %d, stdout %q (want the JWT alone), stderr %q", code, out, errOut)
	}
	if _, errOut, code := p.run("token", "nobody"); code == 0 || !strings.Contains(errOut, "nobody") {
		t.Fatalf("token for an unknown user: code %d, stderr %q", code, errOut)
	}

	s := p.serve()
	// The token printed by a separate process is accepted by the server:
	// both use the key generated once and kept in the store.
	req, _ := http.NewRequest("POST", s.url+"/graphql", strings.NewReader(`{"query":"{ me { id email } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"me":{"id":"alice","email":"alice@example.com"}`) {
		t.Fatalf("me with the CLI token: %d %s", res.StatusCode, body)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/"} {
		res, err := http.Get(s.url + path)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, err, res)
		}
		res.Body.Close()
	}

	// SIGTERM: open sockets get 1001, the process exits 0.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/graphql", wsclient.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Init(ctx, map[string]any{"token": tok}); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ce, err := c.WaitClose(ctx)
	if err != nil || ce.Code != 1001 {
		t.Fatalf("socket on SIGTERM: want close 1001, got %v %v", ce, err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, s.stderr)
		}
		s.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
}

func TestCLIServeDemoPrintsPlaygroundAndToken(t *testing.T) {
	p := newProc(t)
	s := p.serve("--demo")
	deadline := time.Now().Add(10 * time.Second)
	re := regexp.MustCompile(`(?m)^Playground \(as alice\): (http://\S+/#token=(\S+))$`)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			if !strings.Contains(s.stdout.String(), "Token for bob:") {
				t.Fatalf("no token for bob on stdout:\n%s", s.stdout)
			}
			req, _ := http.NewRequest("POST", s.url+"/graphql", strings.NewReader(`{"query":"{ me { id } projects { name members { id } } }"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+m[2])
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(body), `"me":{"id":"alice"}`) || !strings.Contains(string(body), `"name":"Launch"`) {
				t.Fatalf("demo token/data: %s", body)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no playground URL with a token on stdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
}

func TestCLIRefusesBadUsageAndConfig(t *testing.T) {
	cases := []struct {
		name   string
		env    string
		args   []string
		code   int
		stderr string
	}{
		{"unknown command", "", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"user add without name", "", []string{"user", "add", "x"}, 2, "needs --name"},
		{"token without user", "", []string{"token"}, 2, "exactly one <userID>"},
		{"bad ttl", "", []string{"token", "alice", "--ttl", "-1h"}, 2, "--ttl must be positive"},
		{"bad role", "", []string{"token", "alice", "--role", "root"}, 2, "--role"},
		{"bad duration variable", "DRAIN_TIMEOUT=soon", []string{"serve"}, 2, "DRAIN_TIMEOUT"},
		{"bad database url", "DATABASE_URL=mysql://x", []string{"serve"}, 2, "DATABASE_URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newProc(t)
			if c.env != "" {
				p.env = append(p.env, c.env)
			}
			_, errOut, code := p.run(c.args...)
			if code != c.code || !strings.Contains(errOut, c.stderr) {
				t.Fatalf("code %d (want %d), stderr %q (want %q)", code, c.code, errOut, c.stderr)
			}
		})
	}
}
