//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// action is what a failpoint does when hit.
type action struct {
	kill  bool
	sleep time.Duration
}

// points are the failpoints of this process, read from the environment at
// the first Hit and immutable afterwards: this sync.OnceValues is the
// package's only package-level variable, and nothing changes what it
// computed (the map is never written after parse returns it).
var points = sync.OnceValues(func() (map[string]action, error) {
	return parse(os.Getenv(EnvVar))
})

// Hit runs the action configured for name, if any (see the package doc).
func Hit(name string) {
	m, err := points()
	if err != nil {
		fmt.Fprintf(os.Stderr, "failpoint: %s: %v\n", EnvVar, err)
		os.Exit(2)
	}
	a, ok := m[name]
	if !ok {
		return
	}
	if a.sleep > 0 {
		time.Sleep(a.sleep)
	}
	if a.kill {
		kill()
	}
}

// parse reads "name=action,name=action"; "" is no failpoint.
func parse(spec string) (map[string]action, error) {
	m := map[string]action{}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, act, ok := strings.Cut(item, "=")
		name, act = strings.TrimSpace(name), strings.TrimSpace(act)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not name=action", item)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("failpoint %q is set twice", name)
		}
		switch {
		case act == "kill":
			m[name] = action{kill: true}
		case strings.HasPrefix(act, "sleep:"):
			d, err := time.ParseDuration(strings.TrimPrefix(act, "sleep:"))
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("failpoint %q: %q is not sleep:<positive duration>", name, act)
			}
			m[name] = action{sleep: d}
		default:
			return nil, fmt.Errorf("failpoint %q: unknown action %q (kill, sleep:<duration>)", name, act)
		}
	}
	return m, nil
}

// kill sends SIGKILL to this process and waits for it: nothing after the
// failpoint runs, no deferred function, no flush, as with kill -9.
func kill() {
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		err = p.Kill() // SIGKILL on Unix, TerminateProcess on Windows
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "failpoint: kill: %v\n", err)
		os.Exit(2)
	}
	for {
		time.Sleep(time.Hour) // the signal is on its way
	}
}
