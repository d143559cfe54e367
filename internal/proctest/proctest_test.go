package proctest

import (
	"context"
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

// A persistent server keeps its data across a crash; another comes back empty.
func TestRedisServerRestart(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprint("persist=", persist), func(t *testing.T) {
			r := StartRedis(t, RedisOptions{Persist: persist})
			rdb := r.Client()
			ctx := context.Background()
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			r.Kill()
			if rdb.Ping(ctx).Err() == nil {
				t.Fatal("killed server answers")
			}
			r.Restart()
			n, err := rdb.Exists(ctx, "k").Result()
			if err != nil || (n == 1) != persist {
				t.Fatalf("after restart: exists=%d err=%v, want kept=%v", n, err, persist)
			}
		})
	}
}

// The cluster serves keys of every slot, spread over its masters.
func TestRedisClusterForms(t *testing.T) {
	rc := StartRedisCluster(t, 3)
	rdb := rc.Client(t)
	ctx := context.Background()
	for i := range 30 {
		if err := rdb.Set(ctx, fmt.Sprint("key", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range rc.Nodes {
		if size, err := n.Client().DBSize(ctx).Result(); err != nil || size == 0 {
			t.Fatalf("node :%d holds %d keys (%v): the slots are not spread", n.Port, size, err)
		}
	}
	if !strings.HasPrefix(rc.URL(), "redis://127.0.0.1:") || strings.Count(rc.URL(), "addr=") != 2 {
		t.Fatalf("URL %s", rc.URL())
	}
}
