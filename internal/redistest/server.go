// server.go: redis-server processes a test starts on loopback ports of its
// own — for outages (Kill, Start), restarts that lose everything, and Redis
// Cluster tests (cluster.go) — so the shared server on 6379 is never
// stopped, flushed or reconfigured.

package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/internal/testsvc"
)

// ServerBinEnv names the redis-server binary (default "redis-server", as
// Debian's redis-server package installs it).
const ServerBinEnv = "TASKPULSE_TEST_REDIS_SERVER"

// startTimeout bounds a server's start: the process up and answering PING.
const startTimeout = 10 * time.Second

// Server is one redis-server started by a test on 127.0.0.1, without
// persistence (a restart is empty). It is killed when the test ends.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	args []string
	// Addr is host:port; it stays the same across Kill and Start.
	Addr string

	// conf, for a Sentinel, is its configuration file's first content
	// (Sentinel rewrites the file as it learns).
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *tailBuffer   // the server's log, for failure messages
}

// StartServer starts a redis-server on a free loopback port with extra
// configuration args (e.g. "--maxmemory", "1mb"). Without the binary the
// test is skipped, or fails under CI=true.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	return startServer(t, false, args...)
}

// startServer starts one server; bus: the port+10000 a Cluster node's bus
// takes must be free too.
func startServer(t testing.TB, bus bool, args ...string) *Server {
	t.Helper()
	return startWith(t, bus, "", args...)
}

// startWith starts a server, a Sentinel when conf is set.
func startWith(t testing.TB, bus bool, conf string, args ...string) *Server {
	t.Helper()
	bin := os.Getenv(ServerBinEnv)
	if bin == "" {
		bin = "redis-server"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		testsvc.Unreachable(t, "redistest", "redis-server", "", "install Debian's redis-server or set "+ServerBinEnv, err)
		return nil
	}
	s := &Server{t: t, bin: path, dir: t.TempDir(), args: args, conf: conf}
	t.Cleanup(s.Kill)
	var last error
	// A port found free may be taken before the server binds it: retry
	// with another.
	for range 5 {
		port, err := freePort(bus)
		if err != nil {
			t.Fatalf("redistest: no free port: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if last = s.start(); last == nil {
			return s
		}
	}
	t.Fatalf("redistest: redis-server did not start: %v", last)
	return nil
}

// StartSentinel starts a Redis Sentinel on a free loopback port watching
// master under name (quorum 1: it alone decides). Its URL is not a data
// server's: address it as redis+sentinel://Addr/name.
func StartSentinel(t testing.TB, master *Server, name string) *Server {
	t.Helper()
	host, port, _ := net.SplitHostPort(master.Addr)
	conf := fmt.Sprintf("sentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 2000\n", name, host, port, name)
	return startWith(t, false, conf)
}

// URL is the server's redis:// URL, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a client to the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Kill stops the server at once (SIGKILL: a crash) and waits for it to
// exit; its data is gone. A stopped server stays stopped.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Log is the end of the server's log (its last 8 KiB).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// Start starts the server again, empty, on the same address (after Kill);
// the test fails if it cannot.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart on %s: %v", s.Addr, err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	var args []string
	if s.conf != "" {
		conf := filepath.Join(s.dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(s.conf), 0o600); err != nil {
			return err
		}
		args = []string{conf, "--sentinel"}
	}
	args = append(append(args,
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--logfile", "",
	), s.args...)
	cmd := exec.Command(s.bin, args...)
	out := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if err := waitReady(s.Addr, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w; its log: %s", err, out.String())
	}
	s.cmd, s.done, s.out = cmd, done, out
	return nil
}

// waitReady polls PING until the server answers, its process exits, or
// startTimeout passes.
func waitReady(addr string, exited <-chan struct{}) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		var reply redis.Error
		if err == nil || errors.As(err, &reply) && !strings.HasPrefix(err.Error(), "LOADING") {
			return nil // it answers (perhaps "NOAUTH": it has a password)
		}
		select {
		case <-exited:
			return errors.New("redis-server exited")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING within %v: %w", startTimeout, err)
		}
	}
}

// freePort is a loopback port nothing listens on; with bus, port+10000
// (a Cluster node's bus) is free as well.
func freePort(bus bool) (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if !bus {
			_ = ln.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			_ = ln.Close()
			continue
		}
		busLn, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		_ = ln.Close()
		if err == nil {
			_ = busLn.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port with a free bus port found in 50 tries")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if over := w.b.Len() - w.max; over > 0 {
		w.b.Next(over)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
