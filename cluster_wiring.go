package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/config"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
)

// Cluster wiring: what REDIS_URL adds to a server so that N instances
// behave as one — a Redis client every Redis-backed part shares (presence
// and its connection directory, the rate limit and abuse blocks, and the
// feed that carries the log), the key prefix, and this instance's name.
// Without REDIS_URL all of it is zero and every part is in process, as a
// single instance always was.

// clusterParts is embedded in Main.
type clusterParts struct {
	// redis is the client of REDIS_URL's deployment; nil without it.
	redis redis.UniversalClient
	// redisPrefix starts every key: REDIS_PREFIX + ":".
	redisPrefix string
	// instance names this process among the instances (presence records
	// its connections under it; CLIENT LIST shows it).
	instance string
	// dir lists connections across instances (nil without Redis: the
	// registry knows them all); writer feeds the Redis presence off the
	// callers' goroutines (presence_writer.go).
	dir    presence.Directory
	writer *presenceWriter
	// guard bounds the Redis calls on requests' paths (redis_guard.go).
	guard redisGuard
}

// openRedis makes the client REDIS_URL names and pings it. A refusal that
// waiting will not cure (bad credentials, a database the server lacks)
// stops the start; an unreachable Redis does not: the instance serves —
// mutations commit to the database, whose log the feed delivers once Redis
// is back — while /readyz says it is not ready, so a load balancer sends
// it nothing meanwhile. That way instances restarted during a Redis outage
// come back by themselves, without an orchestrator restart loop.
func (m *Main) openRedis(ctx context.Context) error {
	if m.cfg.RedisURL == "" {
		return nil
	}
	m.instance = newInstanceID()
	rdb, err := newRedisClient(m.cfg, m.instance)
	if err != nil {
		return err
	}
	m.redis, m.redisPrefix = rdb, m.cfg.RedisPrefix+":"
	where := config.Redact(m.cfg.RedisURL)
	switch err, permanent := pingRedis(ctx, rdb); {
	case err == nil:
		m.log.Info("redis: connected", "url", where, "mode", m.cfg.RedisMode, "prefix", m.redisPrefix, "instance", m.instance)
	case permanent:
		return fmt.Errorf("REDIS_URL %s: %w", where, err)
	default:
		m.log.Warn("redis: unreachable at start; serving, not ready (/readyz 503) until it answers",
			"url", where, "mode", m.cfg.RedisMode, "instance", m.instance, "err", err)
	}
	return nil
}

// closeRedis closes the client, after everything that uses it.
func (m *Main) closeRedis() error {
	if m.redis == nil {
		return nil
	}
	err := m.redis.Close()
	m.redis = nil
	return err
}

// brokerReady is nil while the broker that carries the log to this
// instance works: /readyz reports the instance not ready otherwise.
// That is the feed following the log (feed.Feed.Ready: Redis reachable,
// the follower not stalled behind the database's head) and Redis answering
// a PING through the guard, so a failed probe also spares requests their
// wait on Redis.
func (m *Main) brokerReady(ctx context.Context) error {
	if m.feed != nil {
		if err := m.feed.Ready(ctx); err != nil {
			return err
		}
	}
	if m.redis == nil {
		return nil
	}
	return m.guard.do(ctx, func(ctx context.Context) error { return m.redis.Ping(ctx).Err() })
}

// connections answers connections(userId) across instances: this
// instance's connections from its registry (exact), the others' from the
// presence directory, with their activity as of their instance's last
// report (at most connActivityEvery old). Oldest first, as the registry
// orders them.
func (m *Main) connections(ctx context.Context, userID string) ([]realtime.ConnInfo, error) {
	local := m.registry.ByUser(userID)
	if m.dir == nil {
		return local, nil
	}
	all, err := m.dir.Conns(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := local
	for _, c := range all {
		// Ours are in the registry, or closed and not yet out of Redis.
		if c.Instance == m.instance {
			continue
		}
		out = append(out, realtime.ConnInfo{
			ID: c.ID, UserID: c.UserID, ConnectedAt: c.ConnectedAt, LastActivity: c.LastActivity,
			UserAgent: c.UserAgent, IP: c.IP, Transport: c.Transport,
		})
	}
	slices.SortFunc(out, func(a, b realtime.ConnInfo) int {
		if c := a.ConnectedAt.Compare(b.ConnectedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}
