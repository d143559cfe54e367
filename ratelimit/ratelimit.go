// Package ratelimit owns taskpulse's per-key limits: Limiter, the rate of
// client operations per key (GCRA, the semantics of go-redis/redis_rate v10,
// so the in-process implementation here and a Redis one agree), Memory, the
// in-process Limiter on golang.org/x/time/rate, and Counter, concurrent
// holders per key (connections per client IP).
//
// GCRA and a token bucket are the same limit seen from two sides: a bucket
// of Burst tokens, refilled at Rate per Period, each operation taking one
// (AllowN: n). A refused call takes nothing. A key unused for
// Burst·Period/Rate has a full bucket again, exactly as a key never seen: an
// implementation may forget it then (redis_rate's key expires at that
// moment; Memory evicts it).
package ratelimit

import (
	"context"
	"fmt"
	"time"
)

// Limit is Rate operations per Period with bursts of Burst, as
// redis_rate.Limit.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// PerMinute is n operations a minute with a burst of n: a full minute's
// allowance may be spent at once, then one every minute/n. It is
// redis_rate.PerMinute(n), so both implementations share the burst.
func PerMinute(n int) Limit { return Limit{Rate: n, Burst: n, Period: time.Minute} }

// Interval is the time one operation's token takes to come back.
func (l Limit) Interval() time.Duration { return l.Period / time.Duration(l.Rate) }

// Refill is how long an unused key takes to get its whole burst back: after
// it, the key is as new.
func (l Limit) Refill() time.Duration { return time.Duration(l.Burst) * l.Interval() }

// Validate reports a limit no implementation can apply.
func (l Limit) Validate() error {
	if l.Rate <= 0 || l.Burst <= 0 || l.Period <= 0 {
		return fmt.Errorf("ratelimit: Rate, Burst and Period must be positive: %+v", l)
	}
	if l.Interval() <= 0 {
		return fmt.Errorf("ratelimit: more than one operation per nanosecond: %+v", l)
	}
	return nil
}

// Result is a Limiter's answer.
type Result struct {
	// Allowed: the operations may run; their tokens are taken.
	Allowed bool
	// Remaining is how many more operations the key may run now (whole
	// tokens left); 0 when refused.
	Remaining int
	// RetryAfter, when refused, is how long until the same request would be
	// allowed (if nothing else takes the tokens meanwhile); always > 0
	// then. 0 when allowed.
	RetryAfter time.Duration
}

// Limiter limits operations per key. Implementations are safe for
// concurrent use; the limit is fixed when one is made.
type Limiter interface {
	// AllowN takes n tokens from key's bucket if it holds them, and says
	// so. n is at least 1 and at most the limit's Burst: a request for
	// more could never be allowed, and callers refuse it themselves. An
	// error means the limiter could not decide (its store is unreachable);
	// the Result is then meaningless.
	AllowN(ctx context.Context, key string, n int) (Result, error)
}
