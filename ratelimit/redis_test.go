package ratelimit_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/ratelimit"
	"github.com/taskpulse/taskpulse/ratelimit/ratelimittest"
)

// The contract on Redis: its clock is the server's, so the suite runs in
// its real-clock mode, as TestMemoryContractRealClock runs Memory.
func TestRedisContract(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps")
	}
	rdb := redistest.Client(t)
	ratelimittest.Run(t, func(t *testing.T, l ratelimit.Limit) ratelimittest.Subject {
		return ratelimittest.Subject{
			Limiter: ratelimit.NewRedis(rdb, l, ratelimit.RedisOptions{Prefix: redistest.Prefix(t, rdb) + "rl:"}),
			Advance: time.Sleep,
			Slack:   20 * time.Millisecond,
		}
	})
}

// Two limiters on one prefix (two instances) share one bucket per key.
func TestRedisSharedAcrossInstances(t *testing.T) {
	rdb, prefix := redistest.New(t)
	l := ratelimit.PerMinute(10)
	a := ratelimit.NewRedis(rdb, l, ratelimit.RedisOptions{Prefix: prefix})
	b := ratelimit.NewRedis(redistest.Client(t), l, ratelimit.RedisOptions{Prefix: prefix})
	ctx := context.Background()
	for i := range 10 {
		lim := a
		if i%2 == 1 {
			lim = b
		}
		r, err := lim.AllowN(ctx, "user:ann", 1)
		if err != nil || !r.Allowed || r.Remaining != 9-i {
			t.Fatalf("operation %d: %+v %v; want allowed, Remaining %d", i+1, r, err, 9-i)
		}
	}
	for _, lim := range []*ratelimit.Redis{a, b} {
		if r, _ := lim.AllowN(ctx, "user:ann", 1); r.Allowed {
			t.Fatal("an instance allowed past the shared burst")
		}
	}
	// The key lives under the prefix and expires with its refill.
	keys, err := redistest.Keys(ctx, rdb, redistest.RateLimitPrefix+prefix)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v %v", keys, err)
	}
	ttl, _ := rdb.TTL(ctx, keys[0]).Result()
	if ttl <= 0 || ttl > l.Refill()+time.Second {
		t.Fatalf("key TTL %v, want ≤ the refill %v", ttl, l.Refill())
	}
}

// An unreachable Redis is an error, not an answer.
func TestRedisUnreachableIsAnError(t *testing.T) {
	rdb := redistest.Client(t)
	lim := ratelimit.NewRedis(rdb, ratelimit.PerMinute(10), ratelimit.RedisOptions{Prefix: "x:"})
	_ = rdb.Close()
	if _, err := lim.AllowN(context.Background(), "k", 1); err == nil {
		t.Fatal("no error from a closed client")
	}
}

// BenchmarkRedisAllow is one AllowN round trip to the test Redis
// (compare BenchmarkMemoryAllow).
func BenchmarkRedisAllow(b *testing.B) {
	rdb, prefix := redistest.New(b)
	ctx := context.Background()
	b.Run("SameKey", func(b *testing.B) {
		m := ratelimit.NewRedis(rdb, ratelimit.Limit{Rate: 1 << 30, Burst: 1 << 30, Period: time.Hour}, ratelimit.RedisOptions{Prefix: prefix})
		b.ReportAllocs()
		for b.Loop() {
			m.AllowN(ctx, "user-1234", 1)
		}
	})
	b.Run("1000Users", func(b *testing.B) {
		m := ratelimit.NewRedis(rdb, ratelimit.PerMinute(60), ratelimit.RedisOptions{Prefix: prefix})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.AllowN(ctx, "user-"+strconv.Itoa(i%1000), 1)
			i++
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		m := ratelimit.NewRedis(rdb, ratelimit.PerMinute(60), ratelimit.RedisOptions{Prefix: prefix})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m.AllowN(ctx, "user-"+strconv.Itoa(i%64), 1)
				i++
			}
		})
	})
}
