//go:build failpoints

package failpoint

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	m, err := parse(" after-commit=kill , before-relay=sleep:250ms,")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || !m["after-commit"].kill || m["before-relay"].sleep != 250*time.Millisecond {
		t.Fatalf("parsed %+v", m)
	}
	if m, err := parse(""); err != nil || len(m) != 0 {
		t.Fatalf("empty spec: %+v %v", m, err)
	}
	for _, bad := range []string{"after-commit", "=kill", "a=explode", "a=sleep:", "a=sleep:-1s", "a=sleep:soon", "a=kill,a=sleep:1s"} {
		if _, err := parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestKill: a process that hits a kill failpoint dies of SIGKILL there,
// running nothing after it.
func TestKill(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		Hit("other") // not configured: goes on
		Hit("here")
		os.Stdout.WriteString("survived\n")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", EnvVar+"=here=kill")
	out, err := cmd.Output()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("child: %v, output %q", err, out)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended %v, want killed by SIGKILL (output %q)", ee, out)
	}
	if len(out) != 0 {
		t.Fatalf("child ran past the failpoint: %q", out)
	}
}

// TestSleep: a sleep failpoint delays the caller by its duration.
func TestSleep(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		start := time.Now()
		Hit("nap")
		if d := time.Since(start); d < 200*time.Millisecond {
			os.Stdout.WriteString("slept only " + d.String() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSleep$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", EnvVar+"=nap=sleep:200ms")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
}

// TestMalformedStops: a malformed spec stops the process at the first Hit
// with exit code 2, not silently.
func TestMalformedStops(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		Hit("anything")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMalformedStops$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", EnvVar+"=after-commit=explode")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("child: %v %s, want exit code 2", err, out)
	}
}
