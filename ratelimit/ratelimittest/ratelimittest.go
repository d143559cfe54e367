// Package ratelimittest is the contract every ratelimit.Limiter passes: the
// in-process one now, the Redis one (redis_rate) later, unchanged. Run it
// from a test of the implementation:
//
//	ratelimittest.Run(t, func(t *testing.T, l ratelimit.Limit) ratelimittest.Subject { … })
//
// The suite is written in the limit's own units (its Interval), with small
// periods, so a backend on a real clock runs it in a few seconds; one on an
// injected clock runs it instantly and is held to the nanosecond.
package ratelimittest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/ratelimit"
)

// Subject is one limiter under test and its clock.
type Subject struct {
	// Limiter applies the limit New was given, to keys no other Subject
	// sees (a Redis backend prefixes its keys per Subject).
	Limiter ratelimit.Limiter
	// Advance moves the limiter's clock forward by d: a fake clock's step,
	// or time.Sleep for a backend on a real one.
	Advance func(d time.Duration)
	// Slack is how far a real clock may run on while the suite works
	// between two Advances (a round trip or two to the store); 0 for an
	// injected clock, whose figures are then checked exactly.
	Slack time.Duration
}

// New makes a Subject applying l.
type New func(t *testing.T, l ratelimit.Limit) Subject

// The suite's limits: burst unlike rate (so a backend that confuses them
// fails), an interval of 200 ms (a real clock's jitter is well inside it).
var (
	small = ratelimit.Limit{Rate: 10, Burst: 4, Period: 2 * time.Second}
	// frozen refills nothing during a test, for counts under concurrency.
	frozen = ratelimit.Limit{Rate: 10, Burst: 50, Period: time.Hour}
)

// Run runs the contract against limiters made by newSubject.
func Run(t *testing.T, newSubject New) {
	t.Run("Burst", func(t *testing.T) { testBurst(t, newSubject) })
	t.Run("SteadyRate", func(t *testing.T) { testSteadyRate(t, newSubject) })
	t.Run("RetryAfter", func(t *testing.T) { testRetryAfter(t, newSubject) })
	t.Run("AllowN", func(t *testing.T) { testAllowN(t, newSubject) })
	t.Run("RefusalsTakeNothing", func(t *testing.T) { testRefusalsTakeNothing(t, newSubject) })
	t.Run("KeysAreIsolated", func(t *testing.T) { testIsolation(t, newSubject) })
	t.Run("IdleKeyIsNew", func(t *testing.T) { testIdle(t, newSubject) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newSubject) })
}

func allow(t *testing.T, l ratelimit.Limiter, key string, n int) ratelimit.Result {
	t.Helper()
	r, err := l.AllowN(context.Background(), key, n)
	if err != nil {
		t.Fatalf("AllowN(%q, %d): %v", key, n, err)
	}
	if r.Allowed && r.RetryAfter != 0 {
		t.Fatalf("AllowN(%q, %d): allowed with RetryAfter %v", key, n, r.RetryAfter)
	}
	if !r.Allowed && (r.RetryAfter <= 0 || r.Remaining != 0) {
		t.Fatalf("AllowN(%q, %d): refused with RetryAfter %v, Remaining %d; want RetryAfter > 0, Remaining 0", key, n, r.RetryAfter, r.Remaining)
	}
	return r
}

// spend takes the whole burst of key, checking Remaining counts down.
func spend(t *testing.T, s Subject, l ratelimit.Limit, key string) {
	t.Helper()
	for i := 1; i <= l.Burst; i++ {
		r := allow(t, s.Limiter, key, 1)
		if !r.Allowed {
			t.Fatalf("operation %d of a burst of %d refused (retry after %v)", i, l.Burst, r.RetryAfter)
		}
		if want := l.Burst - i; r.Remaining != want && s.Slack == 0 {
			t.Fatalf("operation %d: Remaining %d, want %d", i, r.Remaining, want)
		}
	}
}

// near checks got is want within slack (exactly, with an injected clock).
func near(t *testing.T, what string, got, want, slack time.Duration) {
	t.Helper()
	if got < want-slack || got > want+slack {
		t.Fatalf("%s = %v, want %v (± %v)", what, got, want, slack)
	}
}

func testBurst(t *testing.T, newSubject New) {
	s := newSubject(t, small)
	spend(t, s, small, "k")
	r := allow(t, s.Limiter, "k", 1)
	if r.Allowed {
		t.Fatalf("operation %d allowed: the burst is %d", small.Burst+1, small.Burst)
	}
	near(t, "RetryAfter after the burst", r.RetryAfter, small.Interval(), s.Slack)
}

func testSteadyRate(t *testing.T, newSubject New) {
	s := newSubject(t, small)
	spend(t, s, small, "k")
	// Then one operation per interval, no more.
	for i := range 5 {
		s.Advance(small.Interval() + s.Slack)
		if r := allow(t, s.Limiter, "k", 1); !r.Allowed {
			t.Fatalf("interval %d: refused (retry after %v)", i, r.RetryAfter)
		}
		if r := allow(t, s.Limiter, "k", 1); r.Allowed {
			t.Fatalf("interval %d: a second operation allowed within one interval", i)
		}
	}
}

func testRetryAfter(t *testing.T, newSubject New) {
	s := newSubject(t, small)
	spend(t, s, small, "k")
	r := allow(t, s.Limiter, "k", 1)
	if r.Allowed {
		t.Fatal("allowed past the burst")
	}
	if s.Slack == 0 {
		// To the microsecond: just before, refused and told the rest;
		// after the rest, allowed.
		s.Advance(r.RetryAfter - time.Microsecond)
		early := allow(t, s.Limiter, "k", 1)
		if early.Allowed || early.RetryAfter > time.Microsecond {
			t.Fatalf("1µs before RetryAfter %v: allowed %v, RetryAfter %v; want refused, at most 1µs", r.RetryAfter, early.Allowed, early.RetryAfter)
		}
		s.Advance(early.RetryAfter)
	} else {
		// Half-way: still refused, and told at most the rest (a real
		// clock's sleep only overshoots).
		s.Advance(r.RetryAfter / 2)
		half := allow(t, s.Limiter, "k", 1)
		if half.Allowed {
			t.Fatalf("allowed half-way through RetryAfter %v", r.RetryAfter)
		}
		if half.RetryAfter > r.RetryAfter/2+s.Slack {
			t.Fatalf("half-way through RetryAfter %v: RetryAfter %v, want at most %v", r.RetryAfter, half.RetryAfter, r.RetryAfter/2+s.Slack)
		}
		s.Advance(half.RetryAfter + s.Slack)
	}
	if ok := allow(t, s.Limiter, "k", 1); !ok.Allowed {
		t.Fatalf("refused after waiting RetryAfter (now retry after %v)", ok.RetryAfter)
	}
}

func testAllowN(t *testing.T, newSubject New) {
	s := newSubject(t, small)
	r := allow(t, s.Limiter, "k", 3)
	if !r.Allowed || r.Remaining != small.Burst-3 {
		t.Fatalf("AllowN(3) on a full bucket of %d: %+v; want allowed, Remaining %d", small.Burst, r, small.Burst-3)
	}
	r = allow(t, s.Limiter, "k", 3)
	if r.Allowed {
		t.Fatalf("AllowN(3) with %d tokens left allowed", small.Burst-3)
	}
	// Two more tokens are needed: two intervals.
	near(t, "RetryAfter for 3 with 1 left", r.RetryAfter, 2*small.Interval(), s.Slack)
	s.Advance(r.RetryAfter + s.Slack)
	if r := allow(t, s.Limiter, "k", 3); !r.Allowed {
		t.Fatalf("AllowN(3) refused after its RetryAfter (retry after %v)", r.RetryAfter)
	}
}

func testRefusalsTakeNothing(t *testing.T, newSubject New) {
	s := newSubject(t, small)
	spend(t, s, small, "k")
	for range 50 {
		if allow(t, s.Limiter, "k", 1).Allowed {
			t.Fatal("allowed past the burst")
		}
	}
	s.Advance(small.Interval() + s.Slack)
	if r := allow(t, s.Limiter, "k", 1); !r.Allowed {
		t.Fatalf("refused one interval after 50 refusals: refusals took tokens (retry after %v)", r.RetryAfter)
	}
}

func testIsolation(t *testing.T, newSubject New) {
	s := newSubject(t, small)
	spend(t, s, small, "user:alice")
	if allow(t, s.Limiter, "user:alice", 1).Allowed {
		t.Fatal("alice allowed past her burst")
	}
	// Other keys, including ones that share a prefix or differ in case,
	// have their whole burst.
	for _, k := range []string{"user:bob", "user:alice2", "User:alice", "user:alic", "ip:user:alice", "ü:☃", ""} {
		spend(t, s, small, k)
	}
}

func testIdle(t *testing.T, newSubject New) {
	s := newSubject(t, small)
	spend(t, s, small, "k")
	// A key unused for a whole refill has its whole burst, like a new one.
	s.Advance(small.Refill() + s.Slack)
	spend(t, s, small, "k")
	if allow(t, s.Limiter, "k", 1).Allowed {
		t.Fatal("allowed more than a burst after an idle refill")
	}
}

func testConcurrent(t *testing.T, newSubject New) {
	s := newSubject(t, frozen)
	const workers, each = 20, 10 // 200 attempts on 50 tokens
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r, err := s.Limiter.AllowN(context.Background(), "shared", 1)
				if err != nil {
					errc <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
				if r.Allowed {
					allowed.Add(1)
				} else {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if allowed.Load() != int64(frozen.Burst) || refused.Load() != workers*each-int64(frozen.Burst) {
		t.Fatalf("%d concurrent attempts on a burst of %d: %d allowed, %d refused", workers*each, frozen.Burst, allowed.Load(), refused.Load())
	}
}
