package feed

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/store"
)

// appendScript appends log entries to the stream (KEYS[1]) in order, only
// those above the stream's top, without leaving a hole; so relays of many
// instances racing with the same or overlapping entries add each once.
//
// ARGV: MAXLEN (approximate), allow-empty (1: the caller started from the
// stream being empty), allow-hole (1: the database no longer has the
// entries before the first one), idle expiry in ms, then seq, payload
// pairs in ascending, contiguous order. Returns {top, added}: the stream's
// top after the call and how many entries were added. It adds nothing
// when the stream is empty but the caller did not expect that (Redis
// restarted meanwhile: the caller restarts the stream from the right
// place) or when the first new entry would leave a hole after the top
// (the caller's view of the top was stale: it reads from the real top).
var appendScript = redis.NewScript(`
local top = 0
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then top = tonumber(string.sub(last[1][1], 3)) end
if top == 0 and ARGV[2] ~= '1' then return {0, 0} end
local added = 0
for i = 5, #ARGV, 2 do
	local seq = tonumber(ARGV[i])
	if seq > top then
		if top > 0 and seq > top + 1 and ARGV[3] ~= '1' then break end
		redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '0-' .. ARGV[i], 'e', ARGV[i + 1])
		top = seq
		added = added + 1
	end
end
if added > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return {top, added}
`)

// relayBatch is how many entries one script call appends: a script blocks
// Redis while it runs, so batches stay short.
const relayBatch = 256

// streamIdleTTL expires a stream nothing is appended to for that long
// (the log of a database no longer served): the next relay restarts it.
const streamIdleTTL = 7 * 24 * time.Hour

// relay moves the database log into the stream on every nudge and every
// Poll, backing off while Redis is unreachable.
func (f *Feed) relay(ctx context.Context) {
	tick := time.NewTicker(f.opts.Poll)
	defer tick.Stop()
	var bo backoff
	top := int64(-1) // the stream's top as last seen; -1: unknown
	dbFailing := false
	for {
		if _, wait := bo.waiting(); !wait {
			var err error
			top, err = f.relayOnce(ctx, top)
			var re redisError
			switch {
			case ctx.Err() != nil:
				return
			case errors.As(err, &re):
				f.errors.Add(1)
				f.redisFailed(re.err)
				bo.failed()
				top = -1
			case err != nil:
				f.fail(&dbFailing, "feed: relay: reading the database log failed; retrying", err)
			default:
				f.recovered(&dbFailing, "feed: relay: reading the database log again")
				bo.reset()
			}
		}
		var retry <-chan time.Time
		if d, wait := bo.waiting(); wait {
			retry = time.After(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-f.relayNudge:
		case <-tick.C:
		case <-retry:
		}
	}
}

// redisError marks an error of Redis (back off), as opposed to one of the
// database (retry at the next tick).
type redisError struct{ err error }

func (e redisError) Error() string { return e.err.Error() }
func (e redisError) Unwrap() error { return e.err }

// relayOnce appends every database entry above the stream's top and
// returns the top. top is the caller's last view of it (-1: unknown); a
// stale view costs a longer read, never a wrong append (the script
// decides from the real top).
func (f *Feed) relayOnce(ctx context.Context, top int64) (int64, error) {
	if top < 0 {
		last, err := f.rdb.XRevRangeN(ctx, f.streamKey, "+", "-", 1).Result()
		if err != nil {
			return -1, redisError{err}
		}
		top = 0
		if len(last) > 0 {
			if top, _ = parseID(last[0].ID); top == 0 {
				return -1, redisError{fmt.Errorf("stream %s has a foreign entry id %q", f.streamKey, last[0].ID)}
			}
		}
	}
	after, empty := top, top == 0
	if empty {
		// A new or emptied stream starts with the last StreamMax entries:
		// instances further behind fill from the database.
		head, err := f.opts.Log.LogHead(ctx)
		if err != nil {
			return -1, err
		}
		after = max(0, head-int64(f.opts.StreamMax))
	}
	for {
		entries, err := f.opts.Log.ReadLog(ctx, after, relayBatch)
		if err != nil {
			return top, err
		}
		if len(entries) == 0 {
			return top, nil
		}
		f.seen(uint64(entries[len(entries)-1].Seq))
		hole := entries[0].Seq > after+1 // trimmed from the database: unavoidable
		newTop, added, err := f.appendEntries(ctx, entries, empty, hole)
		if err != nil {
			return -1, redisError{err}
		}
		f.relayed.Add(uint64(added))
		if newTop == 0 && !empty {
			// The stream was emptied since we looked (Redis restarted):
			// start it afresh.
			return f.relayOnce(ctx, 0)
		}
		top, after, empty = newTop, newTop, false
	}
}

// appendEntries runs appendScript on entries.
func (f *Feed) appendEntries(ctx context.Context, entries []store.LogEntry, allowEmpty, allowHole bool) (top int64, added int64, err error) {
	args := make([]any, 0, 4+2*len(entries))
	args = append(args, f.opts.StreamMax, flag(allowEmpty), flag(allowHole), streamIdleTTL.Milliseconds())
	for _, e := range entries {
		args = append(args, strconv.FormatInt(e.Seq, 10), encodeEntry(e))
	}
	res, err := appendScript.Run(ctx, f.rdb, []string{f.streamKey}, args...).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("append script returned %v", res)
	}
	f.redisOK()
	return res[0], res[1], nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
