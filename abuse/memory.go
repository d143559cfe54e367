package abuse

import (
	"context"
	"sync"
	"time"

	"github.com/taskpulse/taskpulse/ratelimit"
)

// DefaultMaxBlocks is how many blocks a Memory keeps by default.
const DefaultMaxBlocks = 100_000

// MemoryOptions configures a Memory tracker.
type MemoryOptions struct {
	// MaxKeys bounds the keys whose strikes are counted
	// (ratelimit.DefaultMaxKeys by default) and MaxBlocks the blocks kept
	// (DefaultMaxBlocks): past it the block that ends first is lifted
	// early. Memory stays bounded however many keys strike.
	MaxKeys, MaxBlocks int
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

// Memory is the in-process Tracker.
type Memory struct {
	policy    Policy
	strikes   ratelimit.Limiter
	now       func() time.Time
	maxBlocks int

	mu     sync.Mutex
	blocks map[string]time.Time // key → until
	// queue holds the blocks in the order they end (every block lasts
	// Cooldown, so that is the order they started): queue[head:] live.
	queue []block
	head  int
}

type block struct {
	key   string
	until time.Time
}

var _ Tracker = (*Memory)(nil)

// NewMemory returns an in-process tracker applying p; it panics if p is
// invalid (Validate), a programming error.
func NewMemory(p Policy, opts MemoryOptions) *Memory {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBlocks <= 0 {
		opts.MaxBlocks = DefaultMaxBlocks
	}
	return &Memory{
		policy:    p,
		strikes:   ratelimit.NewMemory(p.strikeLimit(), ratelimit.MemoryOptions{MaxKeys: opts.MaxKeys, Now: opts.Now}),
		now:       opts.Now,
		maxBlocks: opts.MaxBlocks,
		blocks:    make(map[string]time.Time),
	}
}

// Strike implements Tracker. It never fails.
func (m *Memory) Strike(ctx context.Context, key string) (Status, error) {
	now := m.now()
	if st := m.check(key, now); st.Blocked {
		return st, nil
	}
	r, err := m.strikes.AllowN(ctx, key, 1)
	if err != nil {
		return Status{}, err
	}
	if r.Allowed && r.Remaining > 0 {
		return Status{}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.blocks[key]; ok && now.Before(until) {
		return Status{Blocked: true, Until: until}, nil // a racing Strike started it
	}
	until := now.Add(m.policy.Cooldown)
	m.blocks[key] = until
	m.queue = append(m.queue, block{key: key, until: until})
	for len(m.blocks) > m.maxBlocks {
		m.popLocked()
	}
	return Status{Blocked: true, Until: until, Started: true}, nil
}

// Check implements Tracker. It never fails.
func (m *Memory) Check(_ context.Context, key string) (Status, error) {
	return m.check(key, m.now()), nil
}

func (m *Memory) check(key string, now time.Time) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expireLocked(now)
	if until, ok := m.blocks[key]; ok && now.Before(until) {
		return Status{Blocked: true, Until: until}
	}
	return Status{}
}

// Len is the number of blocks kept (ended ones are dropped as calls come).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.blocks)
}

// expireLocked drops the blocks that have ended, oldest first.
func (m *Memory) expireLocked(now time.Time) {
	for m.head < len(m.queue) && !now.Before(m.queue[m.head].until) {
		m.popLocked()
	}
}

// popLocked drops the block that ends first.
func (m *Memory) popLocked() {
	b := m.queue[m.head]
	m.queue[m.head] = block{}
	m.head++
	if until, ok := m.blocks[b.key]; ok && until.Equal(b.until) {
		delete(m.blocks, b.key)
	}
	// Reuse the front once it is half the slice, so the queue's memory
	// follows the live blocks.
	if m.head > len(m.queue)/2 {
		n := copy(m.queue, m.queue[m.head:])
		clear(m.queue[n:])
		m.queue, m.head = m.queue[:n], 0
	}
}
