package presence

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The directory in Redis: one hash per user, beside their record (same
// hash tag, same slot), field <connID> → the connection's description
// (JSON), field "a:"<connID> → its last reported activity (Unix µs). A
// connection's fields are written in the transaction that opens it and
// deleted in the one that closes it (apply), so the directory holds
// exactly the connections the record holds.

var _ Directory = (*Redis)(nil)

const fActivityPfx = "a:"

func (r *Redis) descKey(userID string) string { return r.base + "d:" + userID }

// descFields are a connection's fields in its user's directory hash.
func descFields(connID string) []string { return []string{connID, fActivityPfx + connID} }

// Open implements Directory: Connect, and the description written in the
// same transaction.
func (r *Redis) Open(ctx context.Context, c Conn) error {
	c.Instance = r.instance
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = r.apply(ctx, c.UserID, false, func(t *txn) error {
		if err := t.m.Connect(ctx, c.UserID, c.ID); err != nil {
			return err
		}
		if owner, ok := t.rec.owners[c.ID]; ok && owner != r.instance {
			return fmt.Errorf("presence: connection %s is held by instance %s", c.ID, owner)
		}
		t.extra = func(p redis.Pipeliner) { p.HSet(ctx, r.descKey(c.UserID), c.ID, b) }
		return nil
	})
	return err
}

// activeScript records one connection's activity if its user's record
// holds it open (reply 1), later times only; 0: not open.
var activeScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'c:' .. ARGV[1]) == 0 then return 0 end
local f = 'a:' .. ARGV[1]
local cur = redis.call('HGET', KEYS[2], f)
if not cur or tonumber(cur) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[2], f, ARGV[2]) end
return 1
`)

// Active implements Directory: one pipelined round trip (two when Redis
// has not the script yet).
func (r *Redis) Active(ctx context.Context, acts []Activity) ([]Activity, error) {
	if len(acts) == 0 {
		return nil, nil
	}
	run := func(eval func(p redis.Pipeliner, keys []string, args ...any) *redis.Cmd) ([]*redis.Cmd, error) {
		cmds := make([]*redis.Cmd, len(acts))
		_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, a := range acts {
				cmds[i] = eval(p, []string{r.userKey(a.UserID), r.descKey(a.UserID)}, a.ConnID, a.At.UnixMicro())
			}
			return nil
		})
		return cmds, err
	}
	cmds, err := run(func(p redis.Pipeliner, keys []string, args ...any) *redis.Cmd {
		return activeScript.EvalSha(ctx, p, keys, args...)
	})
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmds, err = run(func(p redis.Pipeliner, keys []string, args ...any) *redis.Cmd {
			return activeScript.Eval(ctx, p, keys, args...)
		})
	}
	if err != nil {
		return nil, err
	}
	var missing []Activity
	for i, c := range cmds {
		if n, _ := c.Int(); n == 0 {
			missing = append(missing, acts[i])
		}
	}
	return missing, nil
}

// Conns implements Directory: the user's record says which connections
// are open and where, the directory hash what they are.
func (r *Redis) Conns(ctx context.Context, userID string) ([]Conn, error) {
	var rec, desc *redis.MapStringStringCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HGetAll(ctx, r.userKey(userID))
		desc = p.HGetAll(ctx, r.descKey(userID))
		return nil
	})
	if err != nil {
		return nil, err
	}
	owners := decode(userID, rec.Val()).owners
	d := desc.Val()
	out := make([]Conn, 0, len(owners))
	for id, inst := range owners {
		c := Conn{ID: id, UserID: userID}
		if raw, ok := d[id]; ok {
			if err := json.Unmarshal([]byte(raw), &c); err != nil {
				return nil, fmt.Errorf("presence: connection %s of %s: %w", id, userID, err)
			}
		}
		c.ID, c.UserID, c.Instance = id, userID, inst
		if us, err := strconv.ParseInt(d[fActivityPfx+id], 10, 64); err == nil {
			if at := time.UnixMicro(us); at.After(c.LastActivity) {
				c.LastActivity = at
			}
		}
		out = append(out, c)
	}
	sortConns(out)
	return out, nil
}
