package abuse_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/abuse"
	"github.com/taskpulse/taskpulse/abuse/abusetest"
)

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
	abusetest.Run(t, func(t *testing.T, p abuse.Policy) abusetest.Subject {
		c := newClock()
		return abusetest.Subject{Tracker: abuse.NewMemory(p, abuse.MemoryOptions{Now: c.Now}), Now: c.Now, Advance: c.Advance}
	})
}

func TestMemoryContractRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps")
	}
	abusetest.Run(t, func(t *testing.T, p abuse.Policy) abusetest.Subject {
		return abusetest.Subject{Tracker: abuse.NewMemory(p, abuse.MemoryOptions{}), Now: time.Now, Advance: time.Sleep, Slack: 30 * time.Millisecond}
	})
}

// Blocks are bounded: ended ones are dropped as calls come, and past
// MaxBlocks the one ending first goes.
func TestMemoryBlocksBounded(t *testing.T) {
	c := newClock()
	p := abuse.Policy{Threshold: 1, Window: time.Minute, Cooldown: 5 * time.Minute}
	m := abuse.NewMemory(p, abuse.MemoryOptions{Now: c.Now, MaxBlocks: 100})
	ctx := context.Background()
	for i := range 1000 {
		if st, _ := m.Strike(ctx, "k"+strconv.Itoa(i)); !st.Started {
			t.Fatalf("k%d: threshold 1 did not block: %+v", i, st)
		}
	}
	if m.Len() != 100 {
		t.Fatalf("Len = %d, want MaxBlocks 100", m.Len())
	}
	if st, _ := m.Check(ctx, "k999"); !st.Blocked {
		t.Fatal("the newest block was dropped")
	}
	if st, _ := m.Check(ctx, "k0"); st.Blocked {
		t.Fatal("the oldest block kept past MaxBlocks")
	}
	c.Advance(p.Cooldown)
	m.Check(ctx, "anything")
	if m.Len() != 0 {
		t.Fatalf("Len = %d after every cooldown ended, want 0", m.Len())
	}
}

func BenchmarkMemoryCheck(b *testing.B) {
	m := abuse.NewMemory(abuse.Policy{Threshold: 20, Window: time.Minute, Cooldown: 5 * time.Minute}, abuse.MemoryOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m.Check(ctx, "user-1234")
	}
}
