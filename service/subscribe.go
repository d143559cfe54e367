package service

import (
	"context"
	"errors"
	"log/slog"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// Subscriptions are the subscription use cases: for each field, who may
// subscribe, which rooms it listens to and which event types it carries
// (subscribe_fields.go), and where in the log it starts.
//
// Anchoring takes no lock. One read snapshot of the database
// (store.Store.Read) gives the log head P and every read the decision and
// the rooms are built on, so they reflect exactly the entries up to P; the
// hub subscription then takes the entries after P (realtime.Resumer, which
// also covers a hub that has already dispatched some of them). A writer
// never waits for a subscribe, nor a subscribe for a writer.
//
// Resuming (`after`): the cursor must name a position of this database's
// log (its epoch, at most P) whose next entry is still kept; the entries in
// (cursor, P] are then replayed from the log, as live delivery would have
// delivered them by today's memberships, before the subscription goes live.
type Subscriptions struct {
	store   store.Store
	hub     *realtime.Hub
	resumer *realtime.Resumer
	rights  Rights
	charge  func(ctx context.Context, userID string, entries uint64) error
	log     *slog.Logger
}

// Rights recomputes a viewer's rights from the stored user, as
// auth.Authenticator.Current does.
type Rights func(ctx context.Context, v auth.Viewer) (auth.Viewer, error)

// SubscriptionOptions configures Subscriptions.
type SubscriptionOptions struct {
	// Rights checks again, after the snapshot, the admin rights a
	// subscription allowed by them alone rests on (see stillAdmin); nil
	// trusts the rights the operation began with (tests).
	Rights Rights
	// Resume bounds catching up (replays at once, live events held).
	Resume realtime.ResumerOptions
	// ChargeReplay takes from userID's rate limit what a resume scanning
	// entries log entries costs, or returns the error that refuses it; nil
	// charges nothing (tests).
	ChargeReplay func(ctx context.Context, userID string, entries uint64) error
	// Logger receives failures that are the server's; nil discards them.
	Logger *slog.Logger
}

// NewSubscriptions returns the subscription use cases over st, registering
// with hub (one Subscriptions per hub: it bounds the hub's replays).
func NewSubscriptions(st store.Store, hub *realtime.Hub, opts SubscriptionOptions) *Subscriptions {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Subscriptions{store: st, hub: hub, resumer: realtime.NewResumer(hub, opts.Resume), rights: opts.Rights,
		charge: opts.ChargeReplay, log: log}
}

// Wait returns once every replay begun so far has finished (shutdown,
// tests).
func (s *Subscriptions) Wait() { s.resumer.Wait() }

// decide reads, in the snapshot tx, whether v may subscribe, and returns
// the subscription's Rooms, Follow, EndOnLeave, Privileged and Accept
// (open fills in the rest).
type decide func(ctx context.Context, tx store.ReadTx, v auth.Viewer) (realtime.SubscribeOptions, error)

// maxAnchorAttempts bounds the snapshots one subscribe reads when the hub
// has run further ahead of each than it remembers (realtime.ErrAnchorPassed:
// practically never twice).
const maxAnchorAttempts = 4

// Cursor errors (CURSOR_EXPIRED: refetch, then subscribe without after).
var (
	errOtherHistory = errs.E(errs.CursorExpired, "this cursor is from a history this server no longer has; refetch, then subscribe without after")
	errNotInHistory = errs.E(errs.CursorExpired, "this cursor is not a position of this server's history; refetch, then subscribe without after")
	errTrimmed      = errs.E(errs.CursorExpired, "the events after this cursor are no longer kept; refetch, then subscribe without after")
)

// open subscribes to with what decide allows, anchored at the log head of
// decide's snapshot, resuming after the cursor after if given.
func (s *Subscriptions) open(ctx context.Context, after *string, to *realtime.Target, decide decide) (*realtime.Subscription, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	if to == nil || to.Sink == nil || to.Encoder == nil {
		return nil, errs.E(errs.BadUserInput, "subscriptions are served over WebSocket (graphql-transport-ws, graphql-ws) or SSE (graphql-sse)")
	}
	var from *realtime.Position
	if after != nil {
		pos, err := realtime.ParseCursor(*after)
		if err != nil {
			return nil, err
		}
		from = &pos
	}
	for attempt := 1; ; attempt++ {
		var o realtime.SubscribeOptions
		var head int64
		err := s.store.Read(ctx, func(tx store.ReadTx) error {
			var err error
			if head, err = tx.LogHead(ctx); err != nil {
				return err
			}
			o, err = decide(ctx, tx, v)
			return err
		})
		if err != nil {
			return nil, err
		}
		if o.Privileged {
			if err := s.stillAdmin(ctx, v); err != nil {
				return nil, err
			}
		}
		replay, err := s.replayFrom(ctx, from, uint64(head))
		if err != nil {
			return nil, err
		}
		if replay != nil && attempt == 1 && s.charge != nil {
			if err := s.charge(ctx, v.UserID, uint64(head)-replay.From); err != nil {
				return nil, err
			}
		}
		o.UserID, o.After, o.Encoder, o.Sink = v.UserID, uint64(head), to.Encoder, to.Sink
		sub, err := s.resumer.Subscribe(ctx, o, replay)
		if errors.Is(err, realtime.ErrAnchorPassed) && attempt < maxAnchorAttempts {
			continue
		}
		return sub, err
	}
}

// stillAdmin checks that v's admin rights hold at the subscription's log
// position: v was computed when the operation began, and a demotion
// committed since then and at or before the position sends no Demote the
// subscription would see. Read after the snapshot, the stored rights
// reflect every demotion up to the position; a later one is the hub's.
func (s *Subscriptions) stillAdmin(ctx context.Context, v auth.Viewer) error {
	if s.rights == nil {
		return nil
	}
	cur, err := s.rights(ctx, v)
	if err != nil {
		return err
	}
	if !cur.Admin {
		return errs.E(errs.Forbidden, "your admin rights were revoked")
	}
	return nil
}

// replayFrom checks a resume cursor against the log at head and returns
// what to replay (nil: nothing missed). It runs after the authorization:
// whether a cursor is still good is nothing to tell a caller who may not
// subscribe.
func (s *Subscriptions) replayFrom(ctx context.Context, from *realtime.Position, head uint64) (*realtime.Replay, error) {
	if from == nil {
		return nil, nil
	}
	epoch, err := s.store.LogEpoch(ctx) // cached by the store
	if err != nil {
		return nil, err
	}
	switch {
	case from.Epoch != epoch:
		return nil, errOtherHistory
	case from.Seq > head:
		return nil, errNotInHistory
	case from.Seq == head:
		return nil, nil
	}
	// Retention trims the oldest entries: if the one after the cursor is
	// kept, so is everything up to head (a replay finding otherwise later,
	// trimmed meanwhile, ends the subscription with the same error).
	next, err := s.store.ReadLog(ctx, int64(from.Seq), 1)
	if err != nil {
		return nil, err
	}
	if len(next) == 0 || next[0].Seq != int64(from.Seq)+1 {
		return nil, errTrimmed
	}
	return &realtime.Replay{From: from.Seq, Read: func(ctx context.Context, after uint64, limit int) ([]*realtime.Event, error) {
		entries, err := s.store.ReadLog(ctx, int64(after), limit)
		if err != nil {
			return nil, err
		}
		evs := make([]*realtime.Event, len(entries))
		for i, e := range entries {
			if evs[i], err = realtime.FromLogEntry(e, epoch); err != nil {
				return nil, err
			}
		}
		return evs, nil
	}}, nil
}
