package realtime

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// Defaults of ResumerOptions.
const (
	DefaultMaxReplays = 8
	DefaultMaxHeld    = 2048
	// DefaultPageSize keeps a replay's page small: an event may carry tens
	// of kilobytes (a task's description, a large project's members), and
	// every running replay holds one page.
	DefaultPageSize = 128
)

// ResumerOptions bounds what catching up costs.
type ResumerOptions struct {
	// MaxReplays bounds the replays from the durable log that run at once
	// on the hub; more wait their turn (their live events held meanwhile).
	// 0: DefaultMaxReplays.
	MaxReplays int
	// MaxHeld bounds the live payloads held for one subscription while it
	// catches up; one more ends it with CURSOR_EXPIRED (fell behind).
	// 0: DefaultMaxHeld.
	MaxHeld int
	// PageSize is how many log entries a replay reads at a time (at most
	// store.MaxLogRead); 0: DefaultPageSize. What replays hold at once is
	// about MaxReplays × PageSize entries.
	PageSize int
}

// Resumer subscribes at a log position read from the database together
// with the state the subscription is built on (its rooms, its membership
// check), and replays what a resumed subscription missed before it.
//
// Anchoring without a lock: the hub may be behind the anchor (the events
// up to it are still on their way: it ignores them, as SubscribeOptions.After
// says) or ahead of it (it dispatched events after the anchor before the
// subscription registered). Ahead, the subscription catches up from the
// hub's memory of its last events (Hub.anchor), or, if the hub has run
// further ahead than it remembers, the caller is told to read again
// (ErrAnchorPassed).
//
// Resuming (a Replay): the subscription is registered at once, so nothing
// live is missed, but what the hub delivers to it is held (bounded by
// MaxHeld) while the entries in (Replay.From, After] are read from the log
// page by page (PageSize at a time, MaxReplays replays at once) and delivered at the client's pace (PacedSink); then the held
// payloads follow and the subscription goes live: each event once, in log
// order, however the hub and the replay interleave.
//
// The replay applies the ACL live delivery would have applied, by today's
// memberships: an entry is replayed if it is addressed to one of the
// subscription's rooms (read at After) and is not older than the user's
// last Join control of that room in the range (nothing of a project from
// before the user joined it); then Accept filters it as it filters live
// events.
type Resumer struct {
	hub      *Hub
	slots    chan struct{}
	maxHeld  int
	pageSize uint64
	running  sync.WaitGroup
}

// NewResumer returns the Resumer of h; make one per hub.
func NewResumer(h *Hub, opts ResumerOptions) *Resumer {
	if opts.MaxReplays <= 0 {
		opts.MaxReplays = DefaultMaxReplays
	}
	if opts.MaxHeld <= 0 {
		opts.MaxHeld = DefaultMaxHeld
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	return &Resumer{hub: h, slots: make(chan struct{}, opts.MaxReplays), maxHeld: opts.MaxHeld,
		pageSize: uint64(min(opts.PageSize, store.MaxLogRead))}
}

// LogReader reads the durable log: the events numbered after after,
// ascending, at most limit; entries trimmed away are absent.
type LogReader func(ctx context.Context, after uint64, limit int) ([]*Event, error)

// Replay is what a resumed subscription missed: the log's events numbered
// in (From, SubscribeOptions.After].
type Replay struct {
	From uint64
	Read LogReader
}

// Subscribe registers a subscription anchored at opts.After (see
// Resumer) and, with replay, resumes it from replay.From. It returns once
// the subscription is registered; catching up, if any, goes on in the
// background and stops when the subscription is unsubscribed.
//
// Errors: ErrAnchorPassed (read the anchor again); a replay from after the
// anchor is CURSOR_EXPIRED; a subscription that a control after the anchor
// already ended, with nothing to deliver before, gets that control's error
// (FORBIDDEN, say) here. A replay that finds the log trimmed ends the
// subscription with CURSOR_EXPIRED, after what it delivered.
func (r *Resumer) Subscribe(ctx context.Context, opts SubscribeOptions, replay *Replay) (*Subscription, error) {
	if replay != nil {
		if replay.From > opts.After {
			return nil, errs.E(errs.CursorExpired, "this cursor is not a position of this server's history; refetch, then subscribe without after")
		}
		if replay.From == opts.After {
			replay = nil // nothing missed
		}
	}
	var g *gate
	a, err := r.hub.anchor(opts, func(catchUp []*Event, ended bool) Sink {
		if replay == nil && len(catchUp) == 0 && !ended {
			return opts.Sink
		}
		g = newGate(opts.Sink, r.maxHeld, r.hub.done)
		return g
	})
	if err != nil {
		return nil, err
	}
	s := a.s
	if g == nil || a.closed {
		return s, nil // live at once, or the hub is closed
	}
	if a.ended {
		if replay == nil && len(a.catchUp) == 0 && a.end != nil {
			return nil, a.end
		}
		g.ended, g.endErr = true, a.end
	}
	ctx, cancel := context.WithCancel(ctx)
	s.stop = cancel
	r.running.Add(1)
	go r.catchUp(ctx, cancel, s, g, opts, replay, a.catchUp)
	return s, nil
}

// Wait returns once every catching up begun so far has finished.
func (r *Resumer) Wait() { r.running.Wait() }

// catchUp delivers the replay, then the events caught up from the hub,
// then the held ones, and lets the subscription go live; on failure it
// drops the subscription and tells its client why (unless it is gone).
func (r *Resumer) catchUp(ctx context.Context, cancel context.CancelFunc, s *Subscription, g *gate, opts SubscribeOptions, replay *Replay, missed []*Event) {
	defer r.running.Done()
	defer cancel()
	err := r.deliverMissed(ctx, g, opts, replay, missed)
	if err == nil {
		return
	}
	endable := g.fail()
	s.Unsubscribe()
	if endable && !errors.Is(err, errStopped) {
		g.out.End(err)
	}
}

// deliverMissed is catchUp's work; a panic (a sink's, a reader's) costs
// this subscription only, as on the dispatch goroutine.
func (r *Resumer) deliverMissed(ctx context.Context, g *gate, opts SubscribeOptions, replay *Replay, missed []*Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.hub.log.Error("realtime: catching up a subscription panicked; subscription dropped",
				"user", opts.UserID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = errs.E(errs.Internal, "the subscription failed; subscribe again")
		}
	}()
	if err := r.replay(ctx, g, opts, replay); err != nil {
		return err
	}
	for _, ev := range missed {
		if err := g.send(ctx, NewPayload(ev, opts.Encoder)); err != nil {
			return err
		}
	}
	return g.goLive(ctx)
}

// replay delivers the log's entries in (replay.From, opts.After] that the
// subscription may see, holding one of the hub's replay slots meanwhile.
func (r *Resumer) replay(ctx context.Context, g *gate, opts SubscribeOptions, replay *Replay) error {
	if replay == nil {
		return nil
	}
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
		return errStopped
	case <-r.hub.done:
		return errStopped
	}
	rooms := make(map[string]bool, len(opts.Rooms))
	for _, rm := range opts.Rooms {
		rooms[rm] = true
	}
	// First pass: the user's last Join of each room in the range. A range
	// that fits in one read is kept for the second pass rather than read
	// again.
	joined := make(map[string]uint64)
	var kept []*Event
	whole := opts.After-replay.From <= r.pageSize
	err := r.scan(ctx, replay, opts.After, func(page []*Event) error {
		for _, ev := range page {
			if c := ev.Control; c != nil && c.Op == Join && c.UserID == opts.UserID && rooms[c.Room] {
				joined[c.Room] = ev.Seq
			}
		}
		if whole {
			kept = page
		}
		return nil
	})
	if err != nil {
		return err
	}
	deliver := func(page []*Event) error {
		for _, ev := range page {
			if !visible(ev, rooms, joined) {
				continue
			}
			in, err := safeAccept(opts.Accept, ev)
			if err != nil {
				r.hub.log.Error("realtime: subscription filter panicked while replaying", "user", opts.UserID, "err", err)
				return errs.E(errs.Internal, "the subscription failed; subscribe again")
			}
			if !in {
				continue
			}
			if err := g.send(ctx, NewPayload(ev, opts.Encoder)); err != nil {
				return err
			}
		}
		return nil
	}
	if whole {
		return deliver(kept)
	}
	return r.scan(ctx, replay, opts.After, deliver)
}

// errHistoryLost is a replay's end when the log no longer holds the
// entries it needs (trimmed by retention meanwhile).
var errHistoryLost = errs.E(errs.CursorExpired, "the events after this cursor are no longer kept; refetch, then subscribe without after")

// scan reads the log's entries in (replay.From, to] page by page and
// passes each page to fn, checking that no entry is missing.
func (r *Resumer) scan(ctx context.Context, replay *Replay, to uint64, fn func([]*Event) error) error {
	for at := replay.From; at < to; {
		limit := int(min(to-at, r.pageSize))
		page, err := replay.Read(ctx, at, limit)
		switch {
		case ctx.Err() != nil:
			return errStopped
		case err != nil:
			if errs.CodeOf(err) == errs.CursorExpired {
				return err
			}
			r.hub.log.Error("realtime: reading the log to resume a subscription failed", "after", at, "err", err)
			return errs.E(errs.Internal, "resuming the subscription failed; subscribe again")
		}
		page = page[:min(len(page), limit)]
		if len(page) == 0 {
			return errHistoryLost
		}
		for i, ev := range page {
			if ev.Seq != at+1+uint64(i) {
				return errHistoryLost
			}
		}
		at = page[len(page)-1].Seq
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

// visible reports whether ev reaches a subscription listening to rooms
// whose user last joined them at joined: addressed to one of them, and not
// from before that join.
func visible(ev *Event, rooms map[string]bool, joined map[string]uint64) bool {
	for _, rm := range ev.Rooms {
		if rooms[rm] && ev.Seq >= joined[rm] {
			return true
		}
	}
	return false
}
