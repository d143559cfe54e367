package main

import (
	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/abuse"
	"github.com/taskpulse/taskpulse/ratelimit"
)

// redisLimits is the guard's state shared by every instance on one Redis:
// RATE_LIMIT_PER_MIN per user (go-redis/redis_rate, keys
// "rate:"+prefix+"ops:"+user), strikes and blocks per user and per client
// IP (prefix+"abuse:user:…", prefix+"abuse:ip:…"). Each call touches one
// key, so a Cluster needs no hash tag. A user over the limit on one
// instance is over it on all; a block started on one is found by the
// others at the user's (or address's) next operation or connection.
//
// Every call goes through g (redis_guard.go): bounded, and skipped while
// Redis is away — the guard then lets operations through, and logs.
func redisLimits(rdb redis.UniversalClient, g *redisGuard, prefix string, lim ratelimit.Limit, policy abuse.Policy) (ratelimit.Limiter, abuse.Tracker, abuse.Tracker) {
	ops := ratelimit.NewRedis(rdb, lim, ratelimit.RedisOptions{Prefix: prefix + "ops:"})
	users := abuse.NewRedis(rdb, policy, abuse.RedisOptions{Prefix: prefix + "abuse:user:"})
	ips := abuse.NewRedis(rdb, policy, abuse.RedisOptions{Prefix: prefix + "abuse:ip:"})
	return guardedLimiter{g, ops}, guardedTracker{g, users}, guardedTracker{g, ips}
}
