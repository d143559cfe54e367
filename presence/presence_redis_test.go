package presence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/presence/presencetest"
)

// The same suite as Memory, unchanged: the due times in Redis are the
// Options' clock's, so the suite's fake clock drives them.
func TestRedis(t *testing.T) {
	rdb := redistest.Client(t)
	presencetest.Run(t, func(t *testing.T, opts presence.Options) presence.Presence {
		return presence.NewRedis(rdb, opts, presence.RedisOptions{Prefix: redistest.Prefix(t, rdb)})
	})
}

// BenchmarkRedisTouch is Touch of a connected, active user on Redis (one
// script round trip), among 1,000 users (compare BenchmarkTouch).
func BenchmarkRedisTouch(b *testing.B) {
	rdb, prefix := redistest.New(b)
	p := presence.NewRedis(rdb, presence.Options{SweepEvery: -1}, presence.RedisOptions{Prefix: prefix})
	defer p.Close()
	ctx := context.Background()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprint("user-", i)
		if err := p.Connect(ctx, ids[i], "c"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		_ = p.Touch(ctx, ids[i%len(ids)])
		i++
	}
}

func TestRedisRefusesTTLBelowSweepPeriod(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewRedis accepted an InstanceTTL shorter than two sweep periods")
		}
	}()
	presence.NewRedis(nil, presence.Options{SweepEvery: time.Second}, presence.RedisOptions{InstanceTTL: time.Second})
}

// BenchmarkRedisUpdate is one updatePresence on Redis: an optimistic
// transaction (WATCH, HGETALL, MULTI…EXEC) — compare BenchmarkUpdate.
func BenchmarkRedisUpdate(b *testing.B) {
	rdb, prefix := redistest.New(b)
	p := presence.NewRedis(rdb, presence.Options{SweepEvery: -1}, presence.RedisOptions{Prefix: prefix})
	defer p.Close()
	ctx := context.Background()
	if err := p.Connect(ctx, "ann", "c"); err != nil {
		b.Fatal(err)
	}
	pages := []string{"/a", "/b"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := p.Update(ctx, "ann", presence.Update{CurrentPage: &pages[i&1]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
