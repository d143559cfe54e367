package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// followCount is how many stream entries one XREAD returns at most.
const followCount = 1000

// followRedis is the follower with Redis: blocking reads of the stream
// after its position, holes filled from the database; while Redis is
// unreachable it delivers from the database on nudges and every Poll and
// retries Redis with backoff.
func (f *Feed) followRedis(ctx context.Context) {
	tick := time.NewTicker(f.opts.Poll)
	defer tick.Stop()
	var bo backoff
	dbFailing := false
	dbRead := func() {
		if err := f.catchUpDB(ctx); err != nil && ctx.Err() == nil {
			f.fail(&dbFailing, "feed: reading the database log failed; retrying", err)
		} else if err == nil {
			f.recovered(&dbFailing, "feed: reading the database log again")
		}
	}
	for ctx.Err() == nil {
		if d, wait := bo.waiting(); wait {
			// Redis is down: the database carries the log meanwhile.
			dbRead()
			select {
			case <-ctx.Done():
				return
			case <-f.followNudge:
			case <-tick.C:
			case <-time.After(d):
			}
			continue
		}
		streams, err := f.rdb.XRead(ctx, &redis.XReadArgs{
			Streams: []string{f.streamKey, streamID(int64(f.pos1.Load()))},
			Count:   followCount,
			Block:   f.opts.Block,
		}).Result()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, redis.Nil):
			// Nothing for Block: make sure nothing waits on a relay that
			// cannot write (a stream full of foreign ids, say).
			f.redisOK()
			bo.reset()
			dbRead()
			continue
		case err != nil:
			f.errors.Add(1)
			f.redisFailed(err)
			bo.failed()
			dbRead()
			continue
		}
		f.redisOK()
		bo.reset()
		for _, s := range streams {
			if err := f.deliverStream(ctx, s.Messages); err != nil {
				if ctx.Err() != nil {
					return
				}
				f.fail(&dbFailing, "feed: filling a hole of the stream from the database failed; retrying", err)
				// Read again from the position reached, after a pause.
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}
	}
}

// deliverStream delivers the entries of one read in order. An entry beyond
// pos+1 (or one that cannot be decoded) is a hole: everything before it
// (and it) is delivered from the database first.
func (f *Feed) deliverStream(ctx context.Context, msgs []redis.XMessage) error {
	for _, m := range msgs {
		e, err := decodeEntry(m.ID, m.Values[streamField])
		if e.Seq == 0 {
			f.malformed.Add(1)
			f.log.Warn("feed: stream entry with a foreign id ignored", "err", err)
			continue
		}
		f.seen(uint64(e.Seq))
		malformed := err != nil
		if malformed {
			f.malformed.Add(1)
			f.log.Warn("feed: malformed stream entry; reading it from the database", "err", err)
		}
		if uint64(e.Seq) > f.pos1.Load()+1 || malformed {
			f.gapFills.Add(1)
			if err := f.fillTo(ctx, e.Seq); err != nil {
				return err
			}
			if malformed {
				continue
			}
		}
		f.dmu.Lock()
		f.deliverLocked(e, fromStream)
		f.dmu.Unlock()
	}
	return nil
}

// fillTo delivers the database's entries up to at least seq-1 (and
// whatever else it has by then); entries the database no longer has are
// reported lost by deliverLocked.
func (f *Feed) fillTo(ctx context.Context, seq int64) error {
	if err := f.catchUpDB(ctx); err != nil {
		return err
	}
	if p := f.pos1.Load(); p+1 < uint64(seq) {
		// The stream holds seq but the database log ends before it: the
		// stream is of another history of this epoch (a database restored
		// from a backup). Deliver only what the database has; the relay
		// appends again once the log passes the stream's top.
		return fmt.Errorf("feed: the stream holds seq %d but the database log ends at %d", seq, p)
	}
	return nil
}
