package ratelimit

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is how many keys a Memory keeps by default.
const DefaultMaxKeys = 100_000

// MemoryOptions configures a Memory limiter.
type MemoryOptions struct {
	// MaxKeys bounds the keys kept (default DefaultMaxKeys). Keys idle for
	// the limit's Refill are forgotten without changing any answer; past
	// MaxKeys the least recently used key is forgotten early, which gives
	// it a full bucket again. About 200 bytes a key.
	MaxKeys int
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

// Memory is the in-process Limiter: one golang.org/x/time/rate token bucket
// per key (rate Rate/Period, burst Burst), the keys in least-recently-used
// order so idle ones are dropped as others are used — no goroutine, and
// memory bounded by MaxKeys however many distinct keys arrive.
type Memory struct {
	limit   Limit
	r       rate.Limit
	idle    time.Duration // Refill: an entry idle this long is a full bucket
	maxKeys int
	now     func() time.Time

	mu   sync.Mutex
	keys map[string]*entry
	// lru is a ring through a sentinel: lru.next is the most recently
	// used entry, lru.prev the least.
	lru entry
}

// entry is one key's bucket in the LRU ring.
type entry struct {
	key        string
	b          *rate.Limiter
	used       time.Time
	prev, next *entry
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an in-process limiter for l; it panics if l is
// invalid (Validate), a programming error.
func NewMemory(l Limit, opts MemoryOptions) *Memory {
	if err := l.Validate(); err != nil {
		panic(err)
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Memory{
		limit:   l,
		r:       rate.Limit(float64(l.Rate) / l.Period.Seconds()),
		idle:    l.Refill(),
		maxKeys: opts.MaxKeys,
		now:     opts.Now,
		keys:    make(map[string]*entry),
	}
	m.lru.prev, m.lru.next = &m.lru, &m.lru
	return m
}

// Limit returns the limit m applies.
func (m *Memory) Limit() Limit { return m.limit }

// Len is the number of keys kept.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// AllowN implements Limiter. It never fails.
func (m *Memory) AllowN(_ context.Context, key string, n int) (Result, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.keys[key]
	if e == nil {
		e = &entry{key: key, b: rate.NewLimiter(m.r, m.limit.Burst)}
		m.keys[key] = e
	} else {
		e.unlink()
	}
	e.used = now
	e.linkAfter(&m.lru)
	m.evictLocked(now)

	if e.b.AllowN(now, n) {
		return Result{Allowed: true, Remaining: int(e.b.TokensAt(now))}, nil
	}
	return Result{RetryAfter: m.retryAfter(e.b, now, n)}, nil
}

// retryAfter is how long until b holds n tokens, to the nanosecond of
// b's own arithmetic: x/time/rate allows once the wait it computes from the
// missing tokens truncates to 0, and this is that wait.
func (m *Memory) retryAfter(b *rate.Limiter, now time.Time, n int) time.Duration {
	missing := float64(n) - b.TokensAt(now)
	return max(time.Duration(missing/float64(m.r)*float64(time.Second)), 1)
}

// evictLocked forgets, from the least recently used end, keys idle for a
// whole refill (their buckets are full: forgetting them changes nothing)
// and keys beyond maxKeys. Each call removes what it finds, so the work
// is paid by the calls that made the entries.
func (m *Memory) evictLocked(now time.Time) {
	for e := m.lru.prev; e != &m.lru; e = m.lru.prev {
		if len(m.keys) <= m.maxKeys && now.Sub(e.used) < m.idle {
			return
		}
		e.unlink()
		delete(m.keys, e.key)
	}
}

func (e *entry) unlink() {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (e *entry) linkAfter(at *entry) {
	e.prev, e.next = at, at.next
	at.next.prev = e
	at.next = e
}
