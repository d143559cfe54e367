package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/abuse"
)

// The pending unblock records (one timer per block, for ABUSE_COOLDOWN)
// are bounded like the blocks themselves: the tracker keeps at most
// abuse.DefaultMaxBlocks per subject, lifting the oldest early, and the
// limits keep a timer only for the blocks the tracker still holds. Before,
// a flood of addresses (an IPv6 range failing authentication) left one
// timer per block for the whole cooldown: 300,000 blocks, 300,000 timers,
// +139 MB of heap, while the tracker held 100,000.
func TestPendingUnblocksAreBounded(t *testing.T) {
	l := newTestLimits(t, 60, 1, time.Hour) // every refusal blocks
	const extra = 500
	ip := func(i int) string { return fmt.Sprintf("2001:db8::%x:%x", i>>16, i&0xffff) }
	for i := range abuse.DefaultMaxBlocks + extra {
		l.strike(context.Background(), "", ip(i), limitAuth)
	}
	l.strike(context.Background(), "alice", "", limitRate) // another subject's blocks are kept apart
	l.mu.Lock()
	n := len(l.unblocks)
	_, oldest := l.unblocks["ip:"+ip(0)]
	_, newest := l.unblocks["ip:"+ip(abuse.DefaultMaxBlocks+extra-1)]
	_, alice := l.unblocks["user:alice"]
	l.mu.Unlock()
	if n != abuse.DefaultMaxBlocks+1 || oldest || !newest || !alice {
		t.Fatalf("%d pending unblocks (oldest kept %v, newest %v, alice %v), want %d: the blocks the trackers hold",
			n, oldest, newest, alice, abuse.DefaultMaxBlocks+1)
	}
	// The tracker lifted the same oldest blocks.
	if st, _ := l.ips.Check(context.Background(), ip(0)); st.Blocked {
		t.Fatal("the tracker still blocks the oldest address")
	}
}

// Blocks that end in their time leave nothing behind: no timer, no queue
// entry.
func TestPendingUnblocksDrain(t *testing.T) {
	l := newTestLimits(t, 60, 1, 50*time.Millisecond)
	for i := range 1000 {
		l.strike(context.Background(), "", fmt.Sprintf("10.0.%d.%d", i/256, i%256), limitAuth)
	}
	waitFor(t, "every block's end", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		q := l.pending[subjectIP]
		return len(l.unblocks) == 0 && len(q.q) == q.head && q.live == 0
	})
}
