// Package proctest owns taskpulse's multi-process test harness: it builds
// the server binary once per test process (with the failpoints build tag),
// starts instances of it as real OS processes sharing a PostgreSQL
// database and a Redis (each test its own database and key prefix, so
// tests run in parallel), kills and stops them, and speaks to them as
// clients do: GraphQL over HTTP and graphql-transport-ws subscriptions
// (internal/wsclient). Redis servers and Clusters of a test's own, for
// outages and Cluster tests, come from internal/redistest.
//
// Every process it starts is ended when its test ends, and its output is
// shown in the test log when the test failed.
package proctest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// BinaryEnv names a prebuilt server binary to use instead of building one
// (it should be built with -tags failpoints, or the outbox crash test
// fails: its failpoint never fires).
const BinaryEnv = "TASKPULSE_PROCTEST_BIN"

// RaceEnv, set to 1, builds the server with the race detector too: slower
// processes, but a data race in any instance fails its test (the process
// exits 66 and its log shows the report).
const RaceEnv = "TASKPULSE_PROCTEST_RACE"

// build is the one server binary of this test process. It is process-wide
// on purpose: building takes seconds and every test shares the result;
// Main removes it.
var build struct {
	once sync.Once
	dir  string // temporary directory holding the binary ("" when prebuilt)
	path string
	err  error
}

// Main runs the tests and then removes the binary built for them; call it
// from TestMain: os.Exit(proctest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	return code
}

// Binary returns the server binary, building it on first use:
// go build -tags failpoints from the module root.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		if p := os.Getenv(BinaryEnv); p != "" {
			build.path, build.err = filepath.Abs(p)
			return
		}
		build.path, build.dir, build.err = compile()
	})
	if build.err != nil {
		t.Fatalf("proctest: %v", build.err)
	}
	return build.path
}

func compile() (path, dir string, err error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", "", fmt.Errorf("no go command to build the server: %w", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", "", fmt.Errorf("cannot find the module root (go env GOMOD = %q): %v", gomod, err)
	}
	dir, err = os.MkdirTemp("", "taskpulse-proctest-")
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "taskpulse")
	args := []string{"build", "-tags", "failpoints", "-o", path}
	if os.Getenv(RaceEnv) == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command(goBin, append(args, ".")...)
	cmd.Dir = filepath.Dir(gomod)
	if msg, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", errors.New("go " + strings.Join(args, " ") + " .: " + err.Error() + "\n" + string(msg))
	}
	return path, dir, nil
}
