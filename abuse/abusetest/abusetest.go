// Package abusetest is the contract every abuse.Tracker passes: the
// in-process one now, a Redis one later, unchanged. Its policy has periods
// of a second or two, so a backend on a real clock runs it in seconds; one
// on an injected clock runs it at once and is held to the nanosecond.
package abusetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/abuse"
)

// Subject is one tracker under test and its clock.
type Subject struct {
	// Tracker applies the policy New was given, to keys no other Subject
	// sees.
	Tracker abuse.Tracker
	// Now is the tracker's clock; Advance moves it forward (a fake
	// clock's step, or time.Sleep).
	Now     func() time.Time
	Advance func(time.Duration)
	// Slack is how far a real clock may run on between the suite's
	// reading and the tracker's; 0 for an injected clock.
	Slack time.Duration
}

// New makes a Subject applying p.
type New func(t *testing.T, p abuse.Policy) Subject

// policy: 3 strikes in a burst block for 2 s; strikes drain one per 400 ms.
var policy = abuse.Policy{Threshold: 3, Window: 1200 * time.Millisecond, Cooldown: 2 * time.Second}

// Run runs the contract against trackers made by newSubject.
func Run(t *testing.T, newSubject New) {
	t.Run("BelowThreshold", func(t *testing.T) { testBelow(t, newSubject) })
	t.Run("Threshold", func(t *testing.T) { testThreshold(t, newSubject) })
	t.Run("Cooldown", func(t *testing.T) { testCooldown(t, newSubject) })
	t.Run("StrikesDrain", func(t *testing.T) { testDrain(t, newSubject) })
	t.Run("KeysAreIsolated", func(t *testing.T) { testIsolation(t, newSubject) })
	t.Run("OneStartPerBlock", func(t *testing.T) { testConcurrent(t, newSubject) })
}

func strike(t *testing.T, tr abuse.Tracker, key string) abuse.Status {
	t.Helper()
	st, err := tr.Strike(context.Background(), key)
	if err != nil {
		t.Fatalf("Strike(%q): %v", key, err)
	}
	if st.Started && !st.Blocked {
		t.Fatalf("Strike(%q): started a block that is not blocked: %+v", key, st)
	}
	return st
}

func check(t *testing.T, tr abuse.Tracker, key string) abuse.Status {
	t.Helper()
	st, err := tr.Check(context.Background(), key)
	if err != nil {
		t.Fatalf("Check(%q): %v", key, err)
	}
	if st.Started {
		t.Fatalf("Check(%q) started a block", key)
	}
	return st
}

// block strikes key to its threshold and returns the block.
func block(t *testing.T, s Subject, key string) abuse.Status {
	t.Helper()
	for i := 1; i < policy.Threshold; i++ {
		if st := strike(t, s.Tracker, key); st.Blocked {
			t.Fatalf("blocked after %d strikes; threshold %d", i, policy.Threshold)
		}
	}
	before := s.Now()
	st := strike(t, s.Tracker, key)
	if !st.Blocked || !st.Started {
		t.Fatalf("strike %d (the threshold): %+v, want a block started", policy.Threshold, st)
	}
	if want := before.Add(policy.Cooldown); st.Until.Before(want.Add(-s.Slack)) || st.Until.After(want.Add(s.Slack)) {
		t.Fatalf("block until %v, want %v (± %v)", st.Until, want, s.Slack)
	}
	return st
}

func testBelow(t *testing.T, newSubject New) {
	s := newSubject(t, policy)
	for i := 1; i < policy.Threshold; i++ {
		if st := strike(t, s.Tracker, "k"); st.Blocked {
			t.Fatalf("blocked after %d strikes; threshold %d", i, policy.Threshold)
		}
	}
	if st := check(t, s.Tracker, "k"); st.Blocked {
		t.Fatal("Check: blocked below the threshold")
	}
	if st := check(t, s.Tracker, "never-seen"); st.Blocked {
		t.Fatal("Check: an unknown key is blocked")
	}
}

func testThreshold(t *testing.T, newSubject New) {
	s := newSubject(t, policy)
	b := block(t, s, "k")
	for range 5 {
		st := strike(t, s.Tracker, "k")
		if !st.Blocked || st.Started || !st.Until.Equal(b.Until) {
			t.Fatalf("strike during the block: %+v, want blocked until %v, not started again", st, b.Until)
		}
	}
	if st := check(t, s.Tracker, "k"); !st.Blocked || !st.Until.Equal(b.Until) {
		t.Fatalf("Check during the block: %+v, want blocked until %v", st, b.Until)
	}
}

func testCooldown(t *testing.T, newSubject New) {
	s := newSubject(t, policy)
	b := block(t, s, "k")
	s.Advance(b.Until.Sub(s.Now()) - max(s.Slack, time.Nanosecond))
	if st := check(t, s.Tracker, "k"); !st.Blocked {
		t.Fatal("unblocked before the cooldown ended")
	}
	s.Advance(max(s.Slack, time.Nanosecond) + s.Slack)
	if st := check(t, s.Tracker, "k"); st.Blocked {
		t.Fatalf("still blocked after the cooldown: %+v", st)
	}
	// The cooldown outlasts the window: strikes count afresh.
	block(t, s, "k")
}

func testDrain(t *testing.T, newSubject New) {
	s := newSubject(t, policy)
	// One strike per drain interval, for longer than a window: never
	// blocked.
	every := policy.Window / time.Duration(policy.Threshold)
	for i := range 3 * policy.Threshold {
		if st := strike(t, s.Tracker, "k"); st.Blocked {
			t.Fatalf("strike %d, one per %v, blocked: strikes do not drain", i+1, every)
		}
		s.Advance(every + s.Slack)
	}
}

func testIsolation(t *testing.T, newSubject New) {
	s := newSubject(t, policy)
	block(t, s, "user-a")
	for _, k := range []string{"user-b", "user-a2", "User-a", "user-", ""} {
		if st := check(t, s.Tracker, k); st.Blocked {
			t.Fatalf("%q blocked by user-a's block", k)
		}
		if st := strike(t, s.Tracker, k); st.Blocked {
			t.Fatalf("%q blocked at its first strike", k)
		}
	}
}

func testConcurrent(t *testing.T, newSubject New) {
	s := newSubject(t, policy)
	const n = 40
	var started, blocked atomic.Int32
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready // all at once, so strikes race past the threshold together
			st, err := s.Tracker.Strike(context.Background(), "k")
			if err != nil {
				t.Error(err)
				return
			}
			if st.Started {
				started.Add(1)
			}
			if st.Blocked {
				blocked.Add(1)
			}
		}()
	}
	close(ready)
	wg.Wait()
	if started.Load() != 1 {
		t.Fatalf("%d racing strikes started %d blocks, want 1", n, started.Load())
	}
	if blocked.Load() < n-int32(policy.Threshold)+1 {
		t.Fatalf("%d racing strikes: %d saw the block, want at least %d", n, blocked.Load(), n-policy.Threshold+1)
	}
}
