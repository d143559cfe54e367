package redistest_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/internal/redistest"
)

// A test's keys are gone when it ends; other keys are not touched.
func TestPrefixCleanup(t *testing.T) {
	rdb := redistest.Client(t)
	ctx := context.Background()
	other := redistest.Prefix(t, rdb) // the outer test's: must survive the subtest
	if err := rdb.Set(ctx, other+"keep", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var inner string
	t.Run("writes", func(t *testing.T) {
		inner = redistest.Prefix(t, rdb)
		if !strings.HasPrefix(inner, "tptest:{") || !strings.HasSuffix(inner, "}:") || inner == other {
			t.Fatalf("prefix %q", inner)
		}
		for i := range 1200 { // more than one SCAN page
			rdb.Set(ctx, inner+"k"+string(rune('a'+i%26))+strings.Repeat("x", i/26), "v", 0)
		}
	})
	left, err := redistest.Keys(ctx, rdb, inner)
	if err != nil || len(left) != 0 {
		t.Fatalf("after the subtest: %d keys left under %s (%v)", len(left), inner, err)
	}
	if n, _ := rdb.Exists(ctx, other+"keep").Result(); n != 1 {
		t.Fatal("another prefix's key was deleted")
	}
}

// An unreachable server skips the test, with the variable to set.
func TestUnreachableSkips(t *testing.T) {
	t.Setenv(redistest.EnvVar, "redis://127.0.0.1:1/0")
	t.Setenv("CI", "")
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		t.Cleanup(func() { skipped = t.Skipped() })
		redistest.Client(t)
		t.Error("Client returned with no server")
	})
	if !skipped {
		t.Fatal("not skipped")
	}
}

// An own server can be stopped (clients then fail) and comes back empty.
func TestServerStopStart(t *testing.T) {
	s := redistest.StartServer(t)
	rdb := s.Client(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded on a stopped server")
	}
	s.Start()
	if n, err := rdb.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("after a restart: exists %d, %v; want an empty server", n, err)
	}
}

// A started Cluster serves keys of every slot from the right master.
func TestCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	rdb := c.Client(t)
	ctx := context.Background()
	for i := range 30 {
		k := fmt.Sprint("key", i)
		if err := rdb.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	var masters atomic.Int32 // ForEachMaster runs on every master at once
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		n, err := node.DBSize(ctx).Result()
		if err == nil && n > 0 {
			masters.Add(1)
		}
		return err
	})
	if err != nil || masters.Load() != 3 {
		t.Fatalf("keys spread over %d masters (%v), want 3", masters.Load(), err)
	}
}
