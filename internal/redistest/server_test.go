package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/internal/redistest"
)

// A started server answers on its own port; killed, it refuses; started
// again on the same address, it is empty (a Redis restarted without its
// data, as the epoch tests need).
func TestServerKillAndRestartEmpty(t *testing.T) {
	s := redistest.StartServer(t)
	if s.Addr == "127.0.0.1:6379" {
		t.Fatal("started on the shared server's port")
	}
	rdb := s.Client(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := rdb.Get(ctx, "k").Err(); err == nil {
		t.Fatal("a killed server answered")
	}
	s.Start()
	if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("after a restart: GET k = %v, want redis.Nil (empty)", err)
	}
}

// A started cluster serves every slot, spread over its masters, and the
// package's helpers (Prefix, DeletePrefix, Keys) work on it.
func TestClusterServesEverySlot(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	rdb := c.Client(t)
	ctx := context.Background()
	holders := map[string]bool{}
	for i := range 60 {
		key := fmt.Sprint("k", i)
		if err := rdb.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		slot, err := rdb.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		holders[fmt.Sprint(slot*3/16384)] = true
	}
	if len(holders) != 3 {
		t.Fatalf("60 keys landed in the slot ranges of %d masters, want 3", len(holders))
	}
	var n atomic.Int32 // ForEachMaster calls in parallel
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		size, err := node.DBSize(ctx).Result()
		if size > 0 {
			n.Add(1)
		}
		return err
	})
	if err != nil || n.Load() != 3 {
		t.Fatalf("masters holding keys: %d (%v), want 3", n.Load(), err)
	}

	p := redistest.Prefix(t, rdb)
	for i := range 10 {
		if err := rdb.Set(ctx, fmt.Sprint(p, i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := redistest.DeletePrefix(ctx, rdb, p); err != nil {
		t.Fatal(err)
	}
	if left, err := redistest.Keys(ctx, rdb, p); err != nil || len(left) != 0 {
		t.Fatalf("after DeletePrefix: %v (%v)", left, err)
	}
	if left, err := redistest.Keys(ctx, rdb, "k"); err != nil || len(left) != 60 {
		t.Fatalf("other keys: %d left (%v), want 60", len(left), err)
	}
}
