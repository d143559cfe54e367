package feed

import (
	"context"
	"fmt"
	"time"
)

// Ready returns nil when the feed delivers, or why not: not started,
// closed, Redis unreachable (live events are then local only and the log
// is read from the database), or a follower stalled behind the head.
func (f *Feed) Ready(ctx context.Context) error {
	if err := f.running(); err != nil {
		return err
	}
	if f.rdb != nil {
		if err := f.rdb.Ping(ctx).Err(); err != nil {
			if ctx.Err() == nil {
				f.redisFailed(err)
			}
			return fmt.Errorf("feed: Redis unreachable: %w", err)
		}
	}
	f.smu.Lock()
	since := f.behindSince
	f.smu.Unlock()
	pos := f.pos1.Load()
	if !since.IsZero() && time.Since(since) > f.opts.StallAfter {
		return fmt.Errorf("feed: follower stalled at seq %d for %s (head %d)",
			pos, time.Since(since).Round(10*time.Millisecond), f.head.Load())
	}
	return nil
}

// Stats returns the feed's counters.
func (f *Feed) Stats() Stats {
	pos, head := f.pos1.Load(), f.head.Load()
	s := Stats{
		Position: pos, Head: max(head, pos),
		Redis: f.rdb != nil, RedisUp: f.rdb != nil && f.redisUp.Load(),
		Delivered: f.delivered.Load(), FromStream: f.fromStream.Load(), FromDB: f.fromDB.Load(),
		Relayed: f.relayed.Load(), GapFills: f.gapFills.Load(), Lost: f.lost.Load(),
		Malformed: f.malformed.Load(), LiveSent: f.liveSent.Load(), LiveReceived: f.liveReceived.Load(),
		Errors: f.errors.Load(),
	}
	s.Lag = s.Head - s.Position
	return s
}

// fail counts a failed operation and logs it when it starts a run of
// failures of its kind (state says whether one was already reported).
func (f *Feed) fail(state *bool, msg string, err error) {
	f.errors.Add(1)
	if !*state {
		*state = true
		f.log.Error(msg, "err", err)
	}
}

// recovered logs the end of a run of failures.
func (f *Feed) recovered(state *bool, msg string) {
	if *state {
		*state = false
		f.log.Info(msg)
	}
}

// redisFailed marks Redis down (for Stats and Ready) and logs the
// transition once.
func (f *Feed) redisFailed(err error) {
	if f.redisUp.Swap(false) {
		f.log.Error("feed: Redis unreachable; delivering from the database until it is back", "err", err)
	}
}

// redisOK marks Redis up and logs the transition once.
func (f *Feed) redisOK() {
	if !f.redisUp.Swap(true) {
		f.log.Info("feed: Redis reachable again")
	}
}

// running is nil between Start and Close, else ErrNotStarted or ErrClosed.
func (f *Feed) running() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return ErrClosed
	case !f.started:
		return ErrNotStarted
	}
	return nil
}
