package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/taskpulse/taskpulse/abuse"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/ratelimit"
)

// The Redis calls on a request's path — the rate limit, the abuse checks,
// presence reads and updatePresence — go through a redisGuard: each is
// bounded by redisCallTimeout, and while Redis is known to be away they
// fail at once instead of each paying a dial's retries, so a request
// during an outage costs what it costs without Redis. Their callers
// already degrade: the limits let the operation through, presence reads
// as offline.

// Tuning of the guard.
const (
	// redisCallTimeout bounds one call; Redis answers in well under a
	// millisecond when it is up.
	redisCallTimeout = 500 * time.Millisecond
	// redisBackoff is how long calls fail at once after one found Redis
	// away; then the next call tries again.
	redisBackoff = time.Second
)

// errRedisAway is what a guarded call returns while Redis is known away.
var errRedisAway = errors.New("redis unavailable (recent calls failed); not tried")

// redisGuard is shared by every guarded call of one Main.
type redisGuard struct {
	awayUntil atomic.Int64 // UnixNano; 0: not known away
}

// do runs fn with a bounded context, unless Redis is known away.
func (g *redisGuard) do(ctx context.Context, fn func(context.Context) error) error {
	if until := g.awayUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return errRedisAway
	}
	ctx, cancel := context.WithTimeout(ctx, redisCallTimeout)
	defer cancel()
	err := fn(ctx)
	switch {
	case err == nil:
		g.awayUntil.Store(0)
	case transient(err) && !errors.Is(err, context.Canceled):
		g.awayUntil.Store(time.Now().Add(redisBackoff).UnixNano())
	}
	return err
}

// guardedLimiter is a Limiter behind the guard.
type guardedLimiter struct {
	g *redisGuard
	l ratelimit.Limiter
}

func (b guardedLimiter) AllowN(ctx context.Context, key string, n int) (res ratelimit.Result, err error) {
	err = b.g.do(ctx, func(ctx context.Context) error { res, err = b.l.AllowN(ctx, key, n); return err })
	return res, err
}

// guardedTracker is a Tracker behind the guard.
type guardedTracker struct {
	g *redisGuard
	t abuse.Tracker
}

func (b guardedTracker) Strike(ctx context.Context, key string) (st abuse.Status, err error) {
	err = b.g.do(ctx, func(ctx context.Context) error { st, err = b.t.Strike(ctx, key); return err })
	return st, err
}

func (b guardedTracker) Check(ctx context.Context, key string) (st abuse.Status, err error) {
	err = b.g.do(ctx, func(ctx context.Context) error { st, err = b.t.Check(ctx, key); return err })
	return st, err
}

// guardedPresence is the presence the service reads and updates (Get,
// Update) behind the guard; the rest passes through (the writer and the
// sweeper bound and retry their own calls).
type guardedPresence struct {
	presence.Presence
	g *redisGuard
}

func (p guardedPresence) Get(ctx context.Context, userIDs ...string) (sts []presence.State, err error) {
	err = p.g.do(ctx, func(ctx context.Context) error { sts, err = p.Presence.Get(ctx, userIDs...); return err })
	return sts, err
}

func (p guardedPresence) Update(ctx context.Context, userID string, u presence.Update) (st presence.State, err error) {
	err = p.g.do(ctx, func(ctx context.Context) error { st, err = p.Presence.Update(ctx, userID, u); return err })
	return st, err
}

// redisLogger sends go-redis's own log lines (a pool failing to dial, …)
// to the process log at debug level: the server logs what matters of an
// outage itself (readiness, presence writes), once per episode, where
// go-redis would log every failed dial.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
