package proctest

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// An instance is a real process: it serves what a client asks, its
// output is kept, kill -9 ends it by SIGKILL and SIGTERM drains it to exit 0.
func TestInstanceLifecycle(t *testing.T) {
	c := New(t, Options{NoRedis: true})
	c.Users("alice", "ops!")
	a := c.Start("A", nil)
	var me struct{ Me struct{ ID string } }
	a.Do("alice", `{ me { id } }`, nil, &me)
	if me.Me.ID != "alice" {
		t.Fatalf("me = %+v", me)
	}
	a.Fails("", `{ me { id } }`, nil, "UNAUTHENTICATED")

	s := a.Subscribe("alice", `subscription { systemUpdates { message } }`, nil)
	a.Do("ops", `mutation { publishSystemUpdate(message: "hi") }`, nil, nil)
	var ev struct{ SystemUpdates struct{ Message string } }
	s.NextData(&ev)
	if ev.SystemUpdates.Message != "hi" {
		t.Fatalf("event %+v", ev)
	}
	s.Nothing(100 * time.Millisecond)

	if !strings.Contains(a.Output(), "out| taskpulse listening on "+a.URL) {
		t.Fatalf("output kept:\n%s", a.Output())
	}
	a.Kill()
	if !a.Exited() || !a.Signaled(syscall.SIGKILL) {
		t.Fatal("killed instance not ended by SIGKILL")
	}
	b := c.Start("B", nil)
	b.Stop()
	if st := b.Wait(0); st == nil || st.ExitCode() != 0 {
		t.Fatalf("stopped instance: %v", st)
	}
}
