package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/internal/testsvc"
)

// Server is a redis-server process of one test's own, on a free loopback
// port, without persistence: tests that stop Redis (an outage), restart it
// (empty) or build a Cluster use one, never the shared server. It is killed
// when the test ends.
type Server struct {
	t    testing.TB
	Port int
	Addr string // 127.0.0.1:Port
	dir  string
	args []string

	mu     sync.Mutex
	proc   *os.Process   // nil: stopped
	exited chan struct{} // closed when proc has been reaped
}

// binary is the server the helpers run (Debian's redis-server).
const binary = "redis-server"

// startAttempts bounds the retries when a port found free is taken before
// the server binds it.
const startAttempts = 5

// StartServer starts a redis-server on a free loopback port with extra
// configuration arguments ("--name", "value", …) and waits until it
// answers. Without the binary the test is skipped (failed under CI=true).
func StartServer(t testing.TB, extra ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath(binary); err != nil {
		testsvc.Unreachable(t, "redistest", "redis-server", binary, "install Debian's redis-server", err)
		return nil
	}
	s := &Server{t: t, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	var last error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: no free port: %v", err)
		}
		s.Port, s.Addr = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.args = append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", "",
		}, extra...)
		if last = s.start(); last == nil {
			return s
		}
	}
	t.Fatalf("redistest: redis-server did not start: %v", last)
	return nil
}

// Start starts the server again on its port, empty (no persistence), after
// Stop. It fails the test if the server does not come up.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart redis-server on %s: %v", s.Addr, err)
	}
}

// Stop kills the server (SIGKILL: an outage, nothing said to clients) and
// waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc, s.exited = nil, nil
}

// Restart is Stop then Start: the server comes back empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Client returns a client of the server, closed when t ends. Its dial
// timeout is short, so a test sees an outage quickly.
func (s *Server) Client(t testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("already running")
	}
	out := &bytes.Buffer{}
	cmd := exec.Command(binary, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited (%v): %s", waitErr, out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("no answer within 10s (%v): %s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.proc, s.exited = cmd.Process, exited
	return nil
}

// freePort returns a loopback port nothing listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
