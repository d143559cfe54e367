// Package abuse owns the block list: refusals ("strikes") counted per key
// — a user, a client IP — and keys that collect too many blocked for a
// cooldown. Tracker is the interface; Memory, the in-process one, counts
// strikes with a ratelimit.Limiter, so a Redis Tracker can count them with
// the Redis Limiter and share blocks between instances.
//
// Deciding what counts as a strike, and what a block does (closing
// sockets, refusing requests, the audit record), is the caller's job.
package abuse

import (
	"context"
	"fmt"
	"time"

	"github.com/taskpulse/taskpulse/ratelimit"
)

// Policy is when a key is blocked, and for how long.
type Policy struct {
	// Threshold strikes in a burst block a key. Strikes drain at Threshold
	// per Window, so a sustained rate above that blocks too, later; a rate
	// below it never does.
	Threshold int
	Window    time.Duration
	// Cooldown is how long a block lasts.
	Cooldown time.Duration
}

// Validate reports a policy no Tracker can apply.
func (p Policy) Validate() error {
	if p.Threshold <= 0 || p.Window <= 0 || p.Cooldown <= 0 {
		return fmt.Errorf("abuse: Threshold, Window and Cooldown must be positive: %+v", p)
	}
	return p.strikeLimit().Validate()
}

// strikeLimit is the bucket strikes are taken from: a key whose bucket a
// strike empties (or finds empty) is blocked.
func (p Policy) strikeLimit() ratelimit.Limit {
	return ratelimit.Limit{Rate: p.Threshold, Burst: p.Threshold, Period: p.Window}
}

// Status is a key's standing.
type Status struct {
	// Blocked until Until.
	Blocked bool
	Until   time.Time
	// Started: this Strike started the block. Exactly one Strike per block
	// sees it, however many race (across instances, for a shared Tracker):
	// its caller acts on the block once (closes the key's connections,
	// writes the audit record).
	Started bool
}

// RetryAfter is how long from now until the block ends (0 if none).
func (s Status) RetryAfter(now time.Time) time.Duration {
	if !s.Blocked {
		return 0
	}
	return max(s.Until.Sub(now), 0)
}

// Tracker counts strikes and blocks keys. Safe for concurrent use.
type Tracker interface {
	// Strike records one refusal of key, and returns its standing after
	// it. A strike on a blocked key is not counted.
	Strike(ctx context.Context, key string) (Status, error)
	// Check returns key's standing.
	Check(ctx context.Context, key string) (Status, error)
}
