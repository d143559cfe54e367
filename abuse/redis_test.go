package abuse_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/abuse"
	"github.com/taskpulse/taskpulse/abuse/abusetest"
	"github.com/taskpulse/taskpulse/internal/redistest"
)

// The contract on Redis, in the suite's real-clock mode (strikes are
// counted on the Redis server's clock).
func TestRedisContract(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps")
	}
	rdb := redistest.Client(t)
	abusetest.Run(t, func(t *testing.T, p abuse.Policy) abusetest.Subject {
		tr := abuse.NewRedis(rdb, p, abuse.RedisOptions{Prefix: redistest.Prefix(t, rdb) + "abuse:"})
		return abusetest.Subject{Tracker: tr, Now: time.Now, Advance: time.Sleep, Slack: 30 * time.Millisecond}
	})
}

// Instances share strikes and blocks: strikes on three instances reach
// the threshold together, exactly one of many racing strikes on any
// instance starts the block, and every instance sees it.
func TestRedisSharedAcrossInstances(t *testing.T) {
	rdb, prefix := redistest.New(t)
	p := abuse.Policy{Threshold: 3, Window: time.Minute, Cooldown: time.Minute}
	var inst []*abuse.Redis
	for range 3 {
		inst = append(inst, abuse.NewRedis(redistest.Client(t), p, abuse.RedisOptions{Prefix: prefix}))
	}
	ctx := context.Background()
	for i := range 2 {
		if st, err := inst[i].Strike(ctx, "ip:1"); err != nil || st.Blocked {
			t.Fatalf("strike %d on instance %d: %+v %v", i+1, i, st, err)
		}
	}
	// The third strike races on every instance, many times.
	var started, blocked atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := inst[i%3].Strike(ctx, "ip:1")
			if err != nil {
				t.Error(err)
			}
			if st.Started {
				started.Add(1)
			}
			if st.Blocked {
				blocked.Add(1)
			}
		}()
	}
	wg.Wait()
	if started.Load() != 1 || blocked.Load() != 30 {
		t.Fatalf("30 racing strikes on 3 instances: %d started a block, %d saw it; want 1 and 30", started.Load(), blocked.Load())
	}
	for i, tr := range inst {
		if st, err := tr.Check(ctx, "ip:1"); err != nil || !st.Blocked {
			t.Fatalf("instance %d does not see the block: %+v %v", i, st, err)
		}
	}
	if ttl, _ := rdb.PTTL(ctx, prefix+"block:ip:1").Result(); ttl <= 0 || ttl > p.Cooldown {
		t.Fatalf("block key TTL %v, want the cooldown %v", ttl, p.Cooldown)
	}
}

func BenchmarkRedisCheck(b *testing.B) {
	rdb, prefix := redistest.New(b)
	tr := abuse.NewRedis(rdb, abuse.Policy{Threshold: 20, Window: time.Minute, Cooldown: 5 * time.Minute}, abuse.RedisOptions{Prefix: prefix})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tr.Check(ctx, "user-1234")
	}
}
