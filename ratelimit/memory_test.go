package ratelimit_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/ratelimit"
	"github.com/taskpulse/taskpulse/ratelimit/ratelimittest"
)

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestMemoryContract(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T, l ratelimit.Limit) ratelimittest.Subject {
		c := newClock()
		return ratelimittest.Subject{
			Limiter: ratelimit.NewMemory(l, ratelimit.MemoryOptions{Now: c.Now}),
			Advance: c.Advance,
		}
	})
}

// The contract on the real clock too: what a Redis backend will face.
func TestMemoryContractRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps")
	}
	ratelimittest.Run(t, func(t *testing.T, l ratelimit.Limit) ratelimittest.Subject {
		return ratelimittest.Subject{
			Limiter: ratelimit.NewMemory(l, ratelimit.MemoryOptions{}),
			Advance: time.Sleep,
			Slack:   20 * time.Millisecond,
		}
	})
}

// Keys idle for a whole refill are forgotten as other keys are used.
func TestMemoryEvictsIdleKeys(t *testing.T) {
	c := newClock()
	l := ratelimit.PerMinute(60)
	m := ratelimit.NewMemory(l, ratelimit.MemoryOptions{Now: c.Now})
	ctx := context.Background()
	for i := range 1000 {
		if _, err := m.AllowN(ctx, "k"+strconv.Itoa(i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if m.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", m.Len())
	}
	c.Advance(l.Refill() - time.Nanosecond)
	m.AllowN(ctx, "other", 1)
	if m.Len() != 1001 {
		t.Fatalf("keys forgotten before their refill: Len = %d, want 1001", m.Len())
	}
	c.Advance(time.Nanosecond)
	m.AllowN(ctx, "other", 1)
	if m.Len() != 1 {
		t.Fatalf("after a refill of idleness: Len = %d, want 1 (the key just used)", m.Len())
	}
}

// A million distinct keys in one instant (so none is idle) keep at most
// MaxKeys, and the heap stays within MaxKeys' worth.
func TestMemoryBoundedByMaxKeys(t *testing.T) {
	n := 1_000_000
	if raceEnabled {
		n = 200_000
	}
	const maxKeys = 10_000
	c := newClock()
	m := ratelimit.NewMemory(ratelimit.PerMinute(60), ratelimit.MemoryOptions{Now: c.Now, MaxKeys: maxKeys})
	ctx := context.Background()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for i := range maxKeys {
		m.AllowN(ctx, "warm"+strconv.Itoa(i), 1)
	}
	before := heap()
	for i := range n {
		m.AllowN(ctx, "key"+strconv.Itoa(i), 1)
	}
	after := heap()
	if m.Len() != maxKeys {
		t.Fatalf("Len = %d after %d keys, want %d", m.Len(), n, maxKeys)
	}
	grown := int64(after) - int64(before)
	t.Logf("%d distinct keys, MaxKeys %d: heap %d → %d bytes (%+d)", n, maxKeys, before, after, grown)
	if grown > 2<<20 {
		t.Fatalf("heap grew %d bytes over %d keys with MaxKeys %d: memory is not bounded", grown, n, maxKeys)
	}
	// The most recent key is kept, with its state.
	last := "key" + strconv.Itoa(n-1)
	r, _ := m.AllowN(ctx, last, 59)
	if !r.Allowed || r.Remaining != 0 {
		t.Fatalf("the newest key lost its state: %+v", r)
	}
}

func TestMemoryPanicsOnBadLimit(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewMemory accepted a zero limit")
		}
	}()
	ratelimit.NewMemory(ratelimit.Limit{}, ratelimit.MemoryOptions{})
}

// BenchmarkMemoryAllow is the limiter's cost per operation on the hot path:
// a known key (the common case: a user's next operation), then a new key
// each time (the worst: an entry made and, at MaxKeys, one evicted).
func BenchmarkMemoryAllow(b *testing.B) {
	ctx := context.Background()
	b.Run("SameKey", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.Limit{Rate: 1 << 30, Burst: 1 << 30, Period: time.Hour}, ratelimit.MemoryOptions{})
		b.ReportAllocs()
		for b.Loop() {
			m.AllowN(ctx, "user-1234", 1)
		}
	})
	b.Run("1000Users", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.PerMinute(60), ratelimit.MemoryOptions{})
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = "user-" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.AllowN(ctx, keys[i%len(keys)], 1)
			i++
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.PerMinute(60), ratelimit.MemoryOptions{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m.AllowN(ctx, "user-"+strconv.Itoa(i%64), 1)
				i++
			}
		})
	})
	b.Run("NewKeyEachTime", func(b *testing.B) {
		m := ratelimit.NewMemory(ratelimit.PerMinute(60), ratelimit.MemoryOptions{MaxKeys: 10_000})
		keys := make([]string, 1<<16)
		for i := range keys {
			keys[i] = "user-" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m.AllowN(ctx, keys[i%len(keys)], 1)
			i++
		}
	})
}
