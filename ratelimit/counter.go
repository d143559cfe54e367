package ratelimit

import (
	"sync"
	"sync/atomic"
)

// Counter bounds concurrent holders per key (open connections per client
// IP). A key is kept only while it has holders, so its memory is bounded by
// what is held. It counts this process's holders: connections belong to one
// instance.
type Counter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// NewCounter returns a Counter allowing max holders per key (max ≥ 1).
func NewCounter(max int) *Counter {
	return &Counter{max: max, n: make(map[string]int)}
}

// Acquire takes one of key's slots. ok is false when key has max holders
// already; otherwise release gives the slot back (calling it again does
// nothing).
func (c *Counter) Acquire(key string) (release func(), ok bool) {
	c.mu.Lock()
	if c.n[key] >= c.max {
		c.mu.Unlock()
		return nil, false
	}
	c.n[key]++
	c.mu.Unlock()
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		c.mu.Lock()
		if c.n[key]--; c.n[key] <= 0 {
			delete(c.n, key)
		}
		c.mu.Unlock()
	}, true
}

// Max is the most holders a key may have.
func (c *Counter) Max() int { return c.max }

// Count is how many holders key has.
func (c *Counter) Count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// Keys is how many keys have holders.
func (c *Counter) Keys() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.n)
}
