package abuse

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/ratelimit"
)

// RedisOptions configures a Redis tracker.
type RedisOptions struct {
	// Prefix starts every key; instances sharing blocks share it. Strikes
	// are counted under Prefix+"strike:" (by ratelimit.Redis, which puts
	// "rate:" ahead), blocks kept under Prefix+"block:".
	Prefix string
	// Now is the clock blocks' Until is read from (default time.Now).
	// Instances' clocks should agree (NTP): a block's end is the starting
	// instance's time plus the cooldown, and its key expires then too.
	Now func() time.Time
}

// Redis is the Tracker shared by every instance on one Redis and prefix:
// strikes are counted by the Redis limiter, and a block is one key,
// created only if absent with the cooldown as its lifetime, so exactly one
// Strike across all instances starts each block.
type Redis struct {
	policy  Policy
	rdb     redis.UniversalClient
	strikes *ratelimit.Redis
	prefix  string
	now     func() time.Time
}

var _ Tracker = (*Redis)(nil)

// NewRedis returns a tracker applying p on rdb; it panics if p is invalid
// (Validate), a programming error.
func NewRedis(rdb redis.UniversalClient, p Policy, opts RedisOptions) *Redis {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Redis{
		policy:  p,
		rdb:     rdb,
		strikes: ratelimit.NewRedis(rdb, p.strikeLimit(), ratelimit.RedisOptions{Prefix: opts.Prefix + "strike:"}),
		prefix:  opts.Prefix + "block:",
		now:     opts.Now,
	}
}

// startBlock sets the block key to ARGV[1] (its end, Unix µs) for ARGV[2]
// ms unless a block is already there, and says which: {1, until} when this
// call started it, {0, until of the one there} otherwise. One script, so
// the check and the set are one step for every instance.
var startBlock = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return {0, v} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, ARGV[1]}
`)

// Strike implements Tracker: a block check, the strike (one EVALSHA),
// and at the threshold the block script — one to three round trips.
func (r *Redis) Strike(ctx context.Context, key string) (Status, error) {
	now := r.now()
	st, err := r.check(ctx, key, now)
	if err != nil || st.Blocked {
		return st, err
	}
	res, err := r.strikes.AllowN(ctx, key, 1)
	if err != nil {
		return Status{}, err
	}
	if res.Allowed && res.Remaining > 0 {
		return Status{}, nil
	}
	until := now.Add(r.policy.Cooldown)
	v, err := startBlock.Run(ctx, r.rdb, []string{r.prefix + key},
		until.UnixMicro(), r.policy.Cooldown.Milliseconds()).Slice()
	if err != nil {
		return Status{}, err
	}
	if len(v) != 2 {
		return Status{}, errors.New("abuse: unexpected reply from the block script")
	}
	started, _ := v[0].(int64)
	at, err := parseMicros(v[1])
	if err != nil {
		return Status{}, err
	}
	return Status{Blocked: true, Until: at, Started: started == 1}, nil
}

// Check implements Tracker: one GET.
func (r *Redis) Check(ctx context.Context, key string) (Status, error) {
	return r.check(ctx, key, r.now())
}

func (r *Redis) check(ctx context.Context, key string, now time.Time) (Status, error) {
	v, err := r.rdb.Get(ctx, r.prefix+key).Result()
	if errors.Is(err, redis.Nil) {
		return Status{}, nil
	}
	if err != nil {
		return Status{}, err
	}
	until, err := parseMicros(v)
	if err != nil {
		return Status{}, err
	}
	// The key expires at until by Redis's clock; ours decides in between.
	if !now.Before(until) {
		return Status{}, nil
	}
	return Status{Blocked: true, Until: until}, nil
}

func parseMicros(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, errors.New("abuse: block value is not a string")
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("abuse: block value is not a time: " + s)
	}
	return time.UnixMicro(us), nil
}
