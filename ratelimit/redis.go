package ratelimit

import (
	"context"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// RedisOptions configures a Redis limiter.
type RedisOptions struct {
	// Prefix starts every key (e.g. "taskpulse:rl:"); instances sharing
	// a limit share the prefix. redis_rate puts "rate:" ahead of it (not
	// configurable): the keys are "rate:"+Prefix+key. Each AllowN touches
	// one key, so no hash tag is needed for a Cluster; a prefix may carry
	// one.
	Prefix string
}

// Redis is the Limiter shared by every instance using the same Redis and
// prefix: go-redis/redis_rate's GCRA script, one key per limited key,
// expiring once its bucket is full again. Its clock is the Redis server's.
type Redis struct {
	limit  Limit
	rl     *redis_rate.Limiter
	prefix string
}

var _ Limiter = (*Redis)(nil)

// NewRedis returns a limiter applying l on rdb; it panics if l is invalid
// (Validate), a programming error.
func NewRedis(rdb redis.UniversalClient, l Limit, opts RedisOptions) *Redis {
	if err := l.Validate(); err != nil {
		panic(err)
	}
	return &Redis{limit: l, rl: redis_rate.NewLimiter(rdb), prefix: opts.Prefix}
}

// Limit returns the limit r applies.
func (r *Redis) Limit() Limit { return r.limit }

// AllowN implements Limiter: one round trip (EVALSHA).
func (r *Redis) AllowN(ctx context.Context, key string, n int) (Result, error) {
	l := redis_rate.Limit{Rate: r.limit.Rate, Burst: r.limit.Burst, Period: r.limit.Period}
	res, err := r.rl.AllowN(ctx, r.prefix+key, l, n)
	if err != nil {
		return Result{}, err
	}
	if res.Allowed == 0 {
		return Result{RetryAfter: max(micro(res.RetryAfter), time.Microsecond)}, nil
	}
	return Result{Allowed: true, Remaining: r.remaining(res.ResetAfter)}, nil
}

// remaining is the whole tokens left, from the time the bucket takes to
// fill again. redis_rate's own Remaining is the float quotient truncated
// by Redis, and the script's seconds since 2017 carry about 1e-7 s of
// float error, so a bucket with exactly one token left can come back as
// 0.9999997 → 0. Redis's clock ticks in microseconds, so the refill time
// rounded to the microsecond is exact: the missing tokens are its ceiling
// in intervals, as Memory's floor of the tokens held.
func (r *Redis) remaining(resetAfter time.Duration) int {
	missing := int((micro(resetAfter) + r.limit.Interval() - 1) / r.limit.Interval())
	return min(max(r.limit.Burst-missing, 0), r.limit.Burst)
}

// micro rounds d to the microsecond, the resolution of Redis's TIME.
func micro(d time.Duration) time.Duration {
	return time.Duration(math.Round(float64(d)/float64(time.Microsecond))) * time.Microsecond
}
