package feed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/realtime"
)

// liveIdle is how long the live subscription may stay silent before it is
// pinged: a connection that died without a word is found and redialled.
const liveIdle = 30 * time.Second

// PublishLive delivers an ephemeral event (presence) to every instance's
// Deliver: at once on this one, through Redis PUB/SUB on the others. It
// sets ev's Ephemeral, Epoch and Cursor (the last log entry delivered
// before it on the instance; Seq 0) and never enters the log. ev must have
// a type and rooms and no control (membership changes belong to the log),
// and must not have been published; it is immutable afterwards.
//
// Live events are news, not history: with Redis unreachable the event
// reaches this instance only, the failure is counted (and logged once per
// outage) and PublishLive returns nil; while Redis is known to be down it
// is not even tried, so a caller never waits on dial attempts.
func (f *Feed) PublishLive(ctx context.Context, ev *realtime.Event) error {
	if err := checkLive(ev); err != nil {
		return err
	}
	if err := f.running(); err != nil {
		return err
	}
	ev.Ephemeral = true
	f.liveSent.Add(1)
	f.dmu.Lock()
	f.deliverLiveLocked(ev)
	f.dmu.Unlock()
	if f.rdb == nil {
		return nil
	}
	if !f.redisUp.Load() {
		// Known down (the relay, follower and live loops retry it): do not
		// make presence wait on dial attempts; other instances could not
		// hear it anyway.
		f.errors.Add(1)
		return nil
	}
	msg := encodeWire(ev.Type, ev.Rooms, ev.Data, nil, ev.Time, f.instance)
	if err := f.rdb.Publish(ctx, f.liveC, msg).Err(); err != nil {
		f.errors.Add(1)
		if ctx.Err() == nil {
			f.redisFailed(err)
		}
	}
	return nil
}

// checkLive refuses what PublishLive cannot carry.
func checkLive(ev *realtime.Event) error {
	switch {
	case ev == nil:
		return errors.New("feed: publish live: nil event")
	case ev.Type == "":
		return errors.New("feed: publish live: event has no type")
	case len(ev.Rooms) == 0:
		return fmt.Errorf("feed: publish live %s: event has no room", ev.Type)
	case ev.Control != nil:
		return fmt.Errorf("feed: publish live %s: a control changes membership and belongs to the log", ev.Type)
	case ev.Seq != 0 || ev.Epoch != "" || ev.Cursor != "":
		return fmt.Errorf("feed: publish live %s: event already published", ev.Type)
	}
	for _, r := range ev.Rooms {
		if r == "" {
			return fmt.Errorf("feed: publish live %s: empty room name", ev.Type)
		}
	}
	return nil
}

// deliverLiveLocked stamps ev with the last log position delivered and
// delivers it.
func (f *Feed) deliverLiveLocked(ev *realtime.Event) {
	ev.Seq, ev.Epoch = 0, f.epoch
	ev.Cursor = realtime.Position{Epoch: f.epoch, Seq: f.pos}.Cursor()
	f.opts.Deliver(ev)
}

// live delivers the live events of other instances, as they arrive on the
// subscription; the client redials and resubscribes after a failure.
func (f *Feed) live(ctx context.Context) {
	var bo backoff
	for {
		msg, err := f.ps.ReceiveTimeout(ctx, liveIdle)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = f.ps.Ping(ctx) // a dead connection fails here and is redialled
				continue
			}
			f.errors.Add(1)
			f.redisFailed(err)
			d := bo.failed()
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			continue
		}
		bo.reset()
		if m, ok := msg.(*redis.Message); ok {
			f.onLive(m.Payload)
		}
	}
}

// onLive delivers one live message of another instance.
func (f *Feed) onLive(payload string) {
	w, err := decodeWire([]byte(payload))
	if err != nil || len(w.Rooms) == 0 {
		f.malformed.Add(1)
		f.log.Warn("feed: malformed live message dropped", "err", err)
		return
	}
	if w.Instance == f.instance {
		return // delivered when published
	}
	ev := &realtime.Event{Type: w.Type, Rooms: w.Rooms, Data: w.Data, Time: w.time(), Ephemeral: true}
	f.dmu.Lock()
	f.deliverLiveLocked(ev)
	f.dmu.Unlock()
	f.liveReceived.Add(1)
}
