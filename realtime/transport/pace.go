package transport

import (
	"context"
	"errors"
	"time"

	"github.com/taskpulse/taskpulse/realtime"
)

var _ realtime.PacedSink = (*subscription)(nil)

// Why DeliverWait gave up.
var (
	errSubscriptionGone = errors.New("transport: the subscription ended")
	errConnectionGone   = errors.New("transport: the connection is closing")
	errSlowConsumer     = errors.New("transport: the client took nothing within the write timeout")
)

// DeliverWait implements realtime.PacedSink: it queues the payload once
// the connection's queue is under half its limits (frames and bytes), so a
// replay paced by the client never fills the queue and the live events of
// the connection's other subscriptions, which never wait, still fit. A
// client that takes nothing for WriteTimeout is a slow consumer: its
// connection closes with 4010, as an overflow would.
func (sub *subscription) DeliverWait(ctx context.Context, p *realtime.Payload) error {
	s := sub.s
	f := frame{kind: frameNext, sub: sub, payload: p}
	frames, bytes := max(s.t.opts.SendQueue/2, 1), max(s.t.opts.SendQueueBytes/2, 1)
	var timeout <-chan time.Time
	for {
		if sub.state.Load() != subLive {
			return errSubscriptionGone
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return errConnectionGone
		}
		if s.fitsLocked(f, frames, bytes) {
			s.pushLocked(f)
			s.mu.Unlock()
			return nil
		}
		if s.room == nil {
			s.room = make(chan struct{})
		}
		room := s.room
		s.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(s.t.opts.WriteTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			s.mu.Lock()
			if !s.closing {
				s.overflowLocked()
			}
			s.mu.Unlock()
			return errSlowConsumer
		}
	}
}

// wakeRoomLocked wakes the DeliverWait calls waiting for room.
func (s *session) wakeRoomLocked() {
	if s.room != nil {
		close(s.room)
		s.room = nil
	}
}
