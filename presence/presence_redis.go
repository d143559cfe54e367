package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures where a Redis presence keeps its state and
// which instance it is.
type RedisOptions struct {
	// Prefix starts every key; instances sharing presence share it. The
	// keys are Prefix+"{presence}:…": the hash tag keeps them in one
	// Cluster slot, as the scripts and transactions need (a hash tag in
	// Prefix itself comes first and wins).
	Prefix string
	// InstanceID names this instance (default: random). Its connections
	// are recorded under it.
	InstanceID string
	// InstanceTTL is how long an instance may go without a heartbeat (each
	// Sweep is one) before another instance's Sweep closes its
	// connections, as of its last heartbeat: its users go OFFLINE at the
	// later of that heartbeat plus OfflineGrace and the moment it is found
	// dead. Default DefaultInstanceTTL; it must exceed SweepEvery.
	InstanceTTL time.Duration
}

// DefaultInstanceTTL is RedisOptions.InstanceTTL's default: with the
// default 30 s grace, a dead instance's users are OFFLINE 30 s after its
// last heartbeat (plus a sweep period), within issue 7's 60 s.
const DefaultInstanceTTL = 15 * time.Second

// Tuning of the sweeper.
const (
	// claimLease is how long a claimed due entry is hidden from other
	// sweepers; the claimer sets its real next time well before.
	claimLease = 10 * time.Second
	claimBatch = 100
	// maxAttempts bounds a transaction's retries under contention.
	maxAttempts = 100
	stripes     = 64
)

// Redis is the Presence shared by instances on one Redis and prefix.
//
// Each user is one hash (presence_redis_codec.go). Every change of a user
// is an optimistic transaction on their hash (WATCH, read, MULTI/EXEC),
// deciding with Memory's own logic; only the instance whose transaction
// commits reports the change, so each transition is reported once
// cluster-wide. Within an instance a user's transactions run one at a
// time (striped locks), which keeps their changes in order. Touch is one
// script (set LastSeen) unless the user comes back from AWAY.
//
// Timers are one sorted set, user → due time (from Options.Clock, not the
// server's: tests drive it with a fake clock), armed like Memory's heap:
// a user's entry only moves earlier outside the sweep. A Sweep claims due
// users with a script (their entries moved a lease ahead, so sweepers on
// other instances skip them), evaluates each in a transaction, and sets
// its next due time.
//
// Instances heartbeat into a sorted set on every Sweep; one missing for
// InstanceTTL is dead, and whichever instance sweeps first closes its
// connections (recorded in a set per instance).
type Redis struct {
	opts     Options
	rdb      redis.UniversalClient
	instance string
	ttl      time.Duration

	base, dueKey, instKey string

	locks [stripes]sync.Mutex
	seed  maphash.Seed

	mu     sync.Mutex
	closed bool
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

var (
	_ Presence = (*Redis)(nil)
	_ Sweeper  = (*Redis)(nil)
)

// ErrContention: a user's transaction lost to other writers maxAttempts
// times in a row.
var ErrContention = errors.New("presence: too much contention on a user's record")

// NewRedis returns a Presence on rdb; Close stops its sweeper (without
// closing its connections: other instances do that after InstanceTTL).
// It panics if InstanceTTL is not above twice SweepEvery (the instance
// would be found dead between its own heartbeats), a programming error.
func NewRedis(rdb redis.UniversalClient, opts Options, ropts RedisOptions) *Redis {
	opts = opts.WithDefaults()
	if ropts.InstanceID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		ropts.InstanceID = hex.EncodeToString(b)
	}
	if ropts.InstanceTTL <= 0 {
		ropts.InstanceTTL = DefaultInstanceTTL
	}
	if ropts.InstanceTTL <= 2*opts.SweepEvery {
		panic(fmt.Sprintf("presence: InstanceTTL %v must exceed twice SweepEvery %v", ropts.InstanceTTL, opts.SweepEvery))
	}
	base := ropts.Prefix + "{presence}:"
	r := &Redis{
		opts: opts, rdb: rdb, instance: ropts.InstanceID, ttl: ropts.InstanceTTL,
		base: base, dueKey: base + "due", instKey: base + "inst",
		seed: maphash.MakeSeed(),
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	if opts.SweepEvery > 0 {
		go r.run(opts.SweepEvery)
	} else {
		close(r.done)
	}
	return r
}

// InstanceID is the instance this Presence records connections under.
func (r *Redis) InstanceID() string { return r.instance }

func (r *Redis) run(every time.Duration) {
	defer close(r.done)
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-tk.C:
			_ = r.Sweep(context.Background()) // a failed sweep is retried at the next tick
		}
	}
}

// Close stops the sweeper and the heartbeat. Idempotent.
func (r *Redis) Close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		close(r.quit)
	})
	<-r.done
	return nil
}

func (r *Redis) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// now is the clock at the record's resolution (microseconds).
func (r *Redis) now() time.Time { return time.UnixMicro(r.opts.Clock.Now().UnixMicro()) }

func (r *Redis) userKey(id string) string    { return r.base + "u:" + id }
func (r *Redis) connsKey(inst string) string { return r.base + "ic:" + inst }

func (r *Redis) lock(userID string) *sync.Mutex {
	return &r.locks[maphash.String(r.seed, userID)%stripes]
}

// txn is one transaction's work on a user: it runs Memory's logic on the
// decoded user (m), and may ask for more writes (pipe).
type txn struct {
	m   *Memory
	rec record
	now time.Time
	// sweep: this is the sweeper's evaluation, which sets the due entry
	// exactly (later too) and always writes.
	sweep bool
	extra func(pipe redis.Pipeliner)
}

// apply runs op on userID's record in an optimistic transaction, retried
// while other writers win, then reports its changes. op returning an
// error aborts with nothing written.
func (r *Redis) apply(ctx context.Context, userID string, sweep bool, op func(*txn) error) (*user, error) {
	mu := r.lock(userID)
	mu.Lock()
	defer mu.Unlock()
	key := r.userKey(userID)
	for range maxAttempts {
		var changes []Change
		var out *user
		err := r.rdb.Watch(ctx, func(tx *redis.Tx) error {
			h, err := tx.HGetAll(ctx, key).Result()
			if err != nil {
				return err
			}
			t := &txn{rec: decode(userID, h), now: r.now(), sweep: sweep}
			t.m = r.logic(t.rec.u, t.now, &changes)
			if err := op(t); err != nil {
				return err
			}
			out = t.rec.u
			before, after := encode(decode(userID, h), r.instance), encode(t.rec, r.instance)
			if sameHash(before, after) && !sweep && t.extra == nil {
				return nil
			}
			next := t.m.nextDue(t.rec.u)
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Del(ctx, key)
				p.HSet(ctx, key, after)
				opened, closed := connDiff(before, after)
				for c, inst := range closed {
					p.SRem(ctx, r.connsKey(inst), userID+"\x00"+c)
					p.HDel(ctx, r.descKey(userID), descFields(c)...) // directory_redis.go
				}
				for c, inst := range opened {
					p.SAdd(ctx, r.connsKey(inst), userID+"\x00"+c)
				}
				if len(opened) > 0 {
					// Connections need a live heartbeat; one that never
					// swept is found dead too.
					p.ZAddGT(ctx, r.instKey, redis.Z{Score: micros(t.now), Member: r.instance})
				}
				switch {
				case sweep && next.IsZero():
					p.ZRem(ctx, r.dueKey, userID)
				case sweep:
					p.ZAdd(ctx, r.dueKey, redis.Z{Score: micros(next), Member: userID})
				case !next.IsZero():
					p.ZAddLT(ctx, r.dueKey, redis.Z{Score: micros(next), Member: userID})
				}
				if t.extra != nil {
					t.extra(p)
				}
				return nil
			})
			return err
		}, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // another writer changed the record: decide again
		}
		if err != nil {
			return nil, err
		}
		for _, ch := range changes {
			r.opts.OnChange(ch)
		}
		return out, nil
	}
	return nil, ErrContention
}

// Connect implements Presence.
func (r *Redis) Connect(ctx context.Context, userID, connID string) error {
	_, err := r.apply(ctx, userID, false, func(t *txn) error { return t.m.Connect(ctx, userID, connID) })
	return err
}

// Disconnect implements Presence.
func (r *Redis) Disconnect(ctx context.Context, userID, connID string) error {
	_, err := r.apply(ctx, userID, false, func(t *txn) error { return t.m.Disconnect(ctx, userID, connID) })
	return err
}

// touchScript is Touch's common case in one step: LastSeen moves (a
// record is made for a user never seen), unless the user is connected and
// idle-AWAY, when coming back is a transition (reply 1: take the slow
// path).
var touchScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'idle') == '1' and redis.call('HGET', KEYS[1], 'off') == '0' then
  return 1
end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'off') == 0 then
  redis.call('HSET', KEYS[1], 'off', '1')
end
return 0
`)

// Touch implements Presence: one round trip (EVALSHA) unless the user
// comes back from AWAY.
func (r *Redis) Touch(ctx context.Context, userID string) error {
	slow, err := touchScript.Run(ctx, r.rdb, []string{r.userKey(userID)}, r.now().UnixMicro()).Int()
	if err != nil || slow == 0 {
		return err
	}
	_, err = r.apply(ctx, userID, false, func(t *txn) error { return t.m.Touch(ctx, userID) })
	return err
}

// Update implements Presence.
func (r *Redis) Update(ctx context.Context, userID string, up Update) (State, error) {
	if up.Status != nil && *up.Status != Online && *up.Status != Away {
		return State{}, ErrStatus
	}
	u, err := r.apply(ctx, userID, false, func(t *txn) error {
		_, err := t.m.Update(ctx, userID, up)
		return err
	})
	if err != nil {
		return State{}, err
	}
	return u.state(), nil
}

// Get implements Presence: one pipelined round trip.
func (r *Redis) Get(ctx context.Context, userIDs ...string) ([]State, error) {
	if len(userIDs) == 0 {
		return []State{}, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(userIDs))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range userIDs {
			cmds[i] = p.HGetAll(ctx, r.userKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]State, len(userIDs))
	for i, id := range userIDs {
		out[i] = decode(id, cmds[i].Val()).u.state()
	}
	return out, nil
}

// claimScript takes up to ARGV[3] users due at ARGV[1] (in due order)
// and moves their entries to ARGV[2], so other sweepers skip them while
// this one evaluates them.
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
`)

// Sweep implements Sweeper: the heartbeat, then dead instances'
// connections, then every user due now. A closed Redis does nothing (it
// is dead to the others).
func (r *Redis) Sweep(ctx context.Context) error {
	if r.isClosed() {
		return nil
	}
	now := r.now()
	if err := r.rdb.ZAdd(ctx, r.instKey, redis.Z{Score: micros(now), Member: r.instance}).Err(); err != nil {
		return err
	}
	if err := r.reapDead(ctx, now); err != nil {
		return err
	}
	for {
		ids, err := claimScript.Run(ctx, r.rdb, []string{r.dueKey},
			micros(now), micros(now.Add(claimLease)), claimBatch).StringSlice()
		if err != nil {
			return err
		}
		for _, id := range ids {
			_, err := r.apply(ctx, id, true, func(t *txn) error {
				t.m.evaluateLocked(t.rec.u, t.now)
				return nil
			})
			if err != nil {
				return fmt.Errorf("presence: sweep %s: %w", id, err)
			}
		}
		if len(ids) < claimBatch {
			return nil
		}
	}
}

// forgetScript drops a dead instance from the heartbeats once its
// connections are all closed, unless it beat again meanwhile.
var forgetScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) and redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
`)

// reapDead closes the connections of every instance without a heartbeat
// for InstanceTTL, as if closed at its last heartbeat. Several sweepers
// may reap one instance at once: each close is a transaction, so each
// connection closes once.
func (r *Redis) reapDead(ctx context.Context, now time.Time) error {
	limit := micros(now.Add(-r.ttl))
	dead, err := r.rdb.ZRangeByScoreWithScores(ctx, r.instKey, &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(int64(limit))}).Result()
	if err != nil {
		return err
	}
	for _, z := range dead {
		inst, _ := z.Member.(string)
		if inst == r.instance {
			continue
		}
		last := time.UnixMicro(int64(z.Score))
		members, err := r.rdb.SMembers(ctx, r.connsKey(inst)).Result()
		if err != nil {
			return err
		}
		for _, mem := range members {
			userID, connID, _ := strings.Cut(mem, "\x00")
			_, err := r.apply(ctx, userID, false, func(t *txn) error {
				if t.rec.owners[connID] != inst {
					t.extra = func(p redis.Pipeliner) { p.SRem(ctx, r.connsKey(inst), mem) }
					return nil
				}
				// Closed at its last heartbeat: the grace counts from
				// then, but cannot end before now.
				t.m.clock = fixedClock(maxTime(last, t.now.Add(-r.opts.OfflineGrace)))
				return t.m.Disconnect(ctx, userID, connID)
			})
			if err != nil {
				return err
			}
		}
		if err := forgetScript.Run(ctx, r.rdb, []string{r.instKey, r.connsKey(inst)}, inst, int64(limit)).Err(); err != nil {
			return err
		}
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
