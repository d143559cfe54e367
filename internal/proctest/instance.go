package proctest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of an instance's life in a test.
const (
	// startTimeout bounds the start: migrations on a fresh database, then
	// the "listening" line.
	startTimeout = 60 * time.Second
	// readyTimeout bounds the wait for /readyz 200 after that.
	readyTimeout = 30 * time.Second
	// exitTimeout bounds the wait for a signalled process to exit.
	exitTimeout = 30 * time.Second
	// logLimit bounds the output kept per instance (the tail is kept).
	logLimit = 512 << 10
)

var listening = regexp.MustCompile(`^taskpulse listening on (https?://\S+)$`)

// Instance is one running `taskpulse serve` process.
type Instance struct {
	// Name is the test's name for it ("A", "B", …), used in messages.
	Name string
	// URL is its base URL, http://127.0.0.1:<port>.
	URL string

	c    *Cluster
	t    testing.TB
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{} // closed once the process has exited and its output is read
	// set before done closes
	state   *os.ProcessState
	waitErr error
}

// StartOptions adjust one instance's start.
type StartOptions struct {
	// Env is added to (and overrides) the cluster's environment.
	Env map[string]string
	// NoWaitReady returns once the instance listens, without waiting for
	// /readyz to answer 200 (e.g. when its Redis is down on purpose).
	NoWaitReady bool
}

func startInstance(t testing.TB, c *Cluster, name string, env []string, opts StartOptions) *Instance {
	t.Helper()
	i := &Instance{Name: name, c: c, t: t, out: &logBuffer{limit: logLimit}, done: make(chan struct{})}
	urls := make(chan string, 1)
	i.cmd = exec.Command(Binary(t), "serve")
	i.cmd.Env = env
	i.cmd.Stdout = &lineWriter{dst: i.out, prefix: "out| ", first: func(line string) {
		if m := listening.FindStringSubmatch(line); m != nil {
			urls <- m[1]
		}
	}}
	i.cmd.Stderr = &lineWriter{dst: i.out, prefix: "err| "}
	i.cmd.SysProcAttr = sysProcAttr()
	if err := i.cmd.Start(); err != nil {
		t.Fatalf("proctest: start instance %s: %v", name, err)
	}
	go func() {
		err := i.cmd.Wait()
		i.state, i.waitErr = i.cmd.ProcessState, err
		close(i.done)
	}()
	t.Cleanup(func() {
		i.kill()
		if t.Failed() {
			t.Logf("--- instance %s (%s, %s) output, last %d KiB at most:\n%s", i.Name, i.URL, i.exitStatus(), logLimit>>10, i.out.String())
		}
	})
	select {
	case i.URL = <-urls:
	case <-i.done:
		t.Fatalf("proctest: instance %s exited at start (%s); its output follows", name, i.exitStatus())
	case <-time.After(startTimeout):
		t.Fatalf("proctest: instance %s did not say where it listens within %v; its output follows", name, startTimeout)
	}
	if !opts.NoWaitReady {
		i.WaitReady(t, readyTimeout)
	}
	return i
}

// Ready reports GET /readyz's status code (0 when there is no answer).
func (i *Instance) Ready() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", i.URL+"/readyz", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// WaitReady waits until /readyz answers 200, for at most d.
func (i *Instance) WaitReady(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code := i.Ready()
		if code == http.StatusOK {
			return
		}
		if i.Exited() {
			t.Fatalf("proctest: instance %s exited (%s) while waiting for /readyz", i.Name, i.exitStatus())
		}
		if time.Now().After(deadline) {
			t.Fatalf("proctest: instance %s: /readyz answered %d, not 200, for %v", i.Name, code, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Exited reports whether the process has ended.
func (i *Instance) Exited() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Wait waits up to d for the process to end by itself and returns how
// it ended (nil if it is still running).
func (i *Instance) Wait(d time.Duration) *os.ProcessState {
	if i.Exited() { // first: select picks at random among ready cases
		return i.state
	}
	select {
	case <-i.done:
		return i.state
	case <-time.After(d):
		return nil
	}
}

// Kill ends the process with SIGKILL (kill -9) and waits until it is gone.
func (i *Instance) Kill() {
	i.t.Helper()
	if !i.kill() {
		i.t.Fatalf("proctest: instance %s still running %v after SIGKILL", i.Name, exitTimeout)
	}
}

func (i *Instance) kill() bool {
	if !i.Exited() {
		_ = i.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-i.done:
		return true
	case <-time.After(exitTimeout):
		return false
	}
}

// Stop ends the process as an orchestrator does (SIGTERM, then it
// drains) and fails the test unless it exits 0 in time.
func (i *Instance) Stop() {
	i.t.Helper()
	if i.Exited() {
		i.t.Fatalf("proctest: instance %s had already exited (%s)", i.Name, i.exitStatus())
	}
	_ = i.cmd.Process.Signal(syscall.SIGTERM)
	st := i.Wait(exitTimeout)
	switch {
	case st == nil:
		i.t.Fatalf("proctest: instance %s still running %v after SIGTERM", i.Name, exitTimeout)
	case st.ExitCode() != 0:
		i.t.Fatalf("proctest: instance %s exited %s after SIGTERM, want 0", i.Name, i.exitStatus())
	}
}

// Signaled reports whether the process ended by signal sig.
func (i *Instance) Signaled(sig syscall.Signal) bool {
	if !i.Exited() || i.state == nil {
		return false
	}
	ws, ok := i.state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// Output is what the process wrote so far (stdout lines "out| ", stderr
// lines "err| "), its last 512 KiB.
func (i *Instance) Output() string { return i.out.String() }

func (i *Instance) exitStatus() string {
	if !i.Exited() {
		return "running"
	}
	if i.state == nil {
		return fmt.Sprintf("wait failed: %v", i.waitErr)
	}
	return i.state.String()
}

// lineWriter copies a process's output into dst line by line with a
// prefix, and shows each line to first until it returns (the listening
// line is the first of stdout, but a race build may print earlier).
type lineWriter struct {
	dst     *logBuffer
	prefix  string
	first   func(string)
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		n := bytes.IndexByte(w.partial, '\n')
		if n < 0 {
			break
		}
		line := string(w.partial[:n])
		w.partial = w.partial[n+1:]
		w.dst.Write([]byte(w.prefix + line + "\n"))
		if w.first != nil && listening.MatchString(line) {
			w.first(line)
			w.first = nil
		}
	}
	return len(p), nil
}

// logBuffer keeps the last limit bytes written to it; safe for concurrent
// use (stdout and stderr are copied by separate goroutines).
type logBuffer struct {
	mu      sync.Mutex
	buf     []byte
	limit   int
	dropped int
}

func (b *logBuffer) Write(p []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.dropped += over
	}
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("[%d bytes dropped]\n%s", b.dropped, b.buf)
	}
	return string(b.buf)
}
