// Package redistest owns the Redis side of taskpulse's tests: a client to
// the server named by TASKPULSE_TEST_REDIS and, per test, a key prefix of
// its own whose keys are deleted when the test ends, so tests run in
// parallel against one shared server and leave nothing behind. It never
// flushes a database: the server may be shared.
//
// For what must not happen to a shared server — an outage, a restart that
// loses everything, a Redis Cluster — StartServer and StartCluster run
// redis-server processes of the test's own on loopback ports.
//
// Without a reachable server the test is skipped, with the reason; under
// CI=true it fails instead, because CI must run these tests.
package redistest

import (
	"context"
	"github.com/taskpulse/taskpulse/internal/testsvc"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvVar names the server: a redis:// (or rediss://) URL.
const EnvVar = "TASKPULSE_TEST_REDIS"

// DefaultURL is the server when EnvVar is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

// timeout bounds each administrative step (ping, cleanup).
const timeout = 10 * time.Second

// URL returns the server's URL.
func URL() string {
	if u := os.Getenv(EnvVar); u != "" {
		return u
	}
	return DefaultURL
}

// Client returns a client to the test server, closed when t ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("redistest: %s: %v", EnvVar, err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		testsvc.Unreachable(t, "redistest", "Redis", URL(), "set "+EnvVar+" to a redis:// URL of a server the tests may write to", err)
		return nil
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Prefix returns a key prefix no other test uses, "tptest:{<random>}:":
// the braces are a hash tag, so on a Redis Cluster all of one test's keys
// live in one slot (multi-key scripts work). Every key under it is deleted
// when t ends (before rdb is closed: register Client first), and so is
// every key under RateLimitPrefix+prefix.
func Prefix(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	p := "tptest:{" + testsvc.RandomHex(8) + "}:"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		for _, q := range []string{p, RateLimitPrefix + p} {
			if err := DeletePrefix(ctx, rdb, q); err != nil {
				t.Errorf("redistest: delete keys %s*: %v", q, err)
			}
		}
	})
	return p
}

// RateLimitPrefix is what go-redis/redis_rate puts ahead of every key it
// is given (not configurable): a limiter given prefix p writes keys under
// RateLimitPrefix+p.
const RateLimitPrefix = "rate:"

// New is Client and Prefix together: the common case.
func New(t testing.TB) (*redis.Client, string) {
	t.Helper()
	rdb := Client(t)
	return rdb, Prefix(t, rdb)
}

// DeletePrefix deletes every key starting with prefix (SCAN + DEL, never
// FLUSHDB), on every master of a Cluster. prefix must not contain glob
// characters other than the hash tag's braces, which MATCH takes
// literally.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	return eachNode(ctx, rdb, func(ctx context.Context, node redis.Cmdable) error {
		keys, err := scan(ctx, node, prefix)
		if err != nil {
			return err
		}
		// One DEL per key: on a Cluster keys of different slots may not
		// share one DEL (a test's keys share a slot; the caller's may not).
		for _, k := range keys {
			if err := node.Del(ctx, k).Err(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Keys lists the keys under prefix (for tests asserting what is left).
func Keys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	var mu sync.Mutex
	var out []string
	err := eachNode(ctx, rdb, func(ctx context.Context, node redis.Cmdable) error {
		keys, err := scan(ctx, node, prefix)
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return err
	})
	return out, err
}

// eachNode runs fn on rdb, or on each master of a Cluster (SCAN walks one
// node's keys).
func eachNode(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, redis.Cmdable) error) error {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return fn(ctx, node) })
	}
	return fn(ctx, rdb)
}

func scan(ctx context.Context, node redis.Cmdable, prefix string) ([]string, error) {
	var out []string
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, prefix+"*", 500).Result()
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}
