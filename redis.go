package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/config"
)

// redisStartTimeout bounds the ping at start; a Redis that does not answer
// in it does not stop the start (see openRedis).
const redisStartTimeout = 5 * time.Second

// newRedisClient builds the client of the deployment REDIS_URL names: one
// server, a Cluster or Sentinel (config.RedisTarget), named instance in
// CLIENT LIST. It connects lazily: nothing is sent yet.
func newRedisClient(cfg config.Config, instance string) (redis.UniversalClient, error) {
	t, err := config.ParseRedisURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err) // FromEnv has checked it: not expected
	}
	name := "taskpulse-" + instance
	switch t.Mode {
	case config.RedisSingle:
		o := t.Single
		o.ClientName = cmp.Or(o.ClientName, name)
		// Every call bounds its wait with its context (an operation must
		// not hang on a Redis that stopped answering).
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	case config.RedisCluster:
		o := t.Cluster
		o.ClientName = cmp.Or(o.ClientName, name)
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	case config.RedisSentinel:
		o := t.Sentinel
		o.ClientName = cmp.Or(o.ClientName, name)
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	}
	return nil, fmt.Errorf("REDIS_URL: topology %q unknown", t.Mode)
}

// newInstanceID names this process among the instances sharing Redis:
// hostname-pid-random, readable in logs and CLIENT LIST, unique even for
// a pid reused on one host.
func newInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	// Redis client names and keys stay plain: no spaces or braces.
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, host)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// pingRedis checks Redis answers within redisStartTimeout. A refusal that
// waiting will not cure — wrong credentials, a database the server does
// not have, a Cluster addressed as one server — is fatal (permanent); an
// unreachable or still-loading server is not: the instance starts, not
// ready, and readiness follows Redis (brokerReady).
func pingRedis(ctx context.Context, rdb redis.UniversalClient) (err error, permanent bool) {
	ctx, cancel := context.WithTimeout(ctx, redisStartTimeout)
	defer cancel()
	err = rdb.Ping(ctx).Err()
	if err == nil {
		return nil, false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR DB index", "ERR invalid DB", "ERR SELECT is not allowed in cluster mode", "ERR AUTH", "ERR invalid password", "ERR Client sent AUTH"} {
			if strings.HasPrefix(msg, p) {
				return err, true
			}
		}
	}
	return err, false
}

// useRedisLogger routes go-redis's log (process-wide, so set once by the
// serve command, not by Open) to log at debug level (redisLogger).
func useRedisLogger(cfg config.Config, log *slog.Logger) {
	if cfg.RedisURL != "" {
		redis.SetLogger(redisLogger{log})
	}
}

// brokerKind names what carries the event log to this instance, for the
// log: the database itself (the feed tails it) without Redis.
func brokerKind(cfg config.Config) string {
	if cfg.RedisURL == "" {
		return "database"
	}
	return "redis-" + cfg.RedisMode
}
