package realtime

import (
	"fmt"
	"slices"

	"github.com/taskpulse/taskpulse/errs"
)

// recentWindow is how many numbered events a hub remembers after
// dispatching them: how far the hub may run ahead of a subscription's
// anchor (read from the database just before it registers) and still let it
// catch up exactly, without reading the database again. The window covers
// the commits of the instant between that read and the registration (a
// few, even at thousands of commits a second; past it the subscriber reads
// again), and it keeps its events alive: up to 256 of the largest (about
// 48 KB each) is 12 MB per hub.
const recentWindow = 256

// recentEvents is a ring of the last numbered events the hub collected,
// guarded by Hub.mu (dispatch notes each event in the critical section that
// collects its recipients, so a registration sees an event either in the
// ring or as a recipient, never both and never neither).
type recentEvents struct {
	buf  []*Event // allocated on first use
	next int      // where the next event goes
	n    int      // events held
	// evicted is the highest Seq dropped from the ring: an anchor below it
	// cannot be caught up from memory.
	evicted uint64
}

func (r *recentEvents) note(ev *Event) {
	if ev.Seq == 0 {
		return // not in the log (ephemeral, or a test's barrier)
	}
	if r.buf == nil {
		r.buf = make([]*Event, recentWindow)
	}
	if r.n == len(r.buf) {
		r.evicted = max(r.evicted, r.buf[r.next].Seq)
	} else {
		r.n++
	}
	r.buf[r.next] = ev
	r.next = (r.next + 1) % len(r.buf)
}

// after returns the remembered events numbered after pos, in dispatch
// order; ok is false when some of them have been forgotten. Events come in
// log order, so the walk starts at the newest and stops at pos: a hub not
// ahead of pos (the usual case) costs one comparison.
func (r *recentEvents) after(pos uint64) (evs []*Event, ok bool) {
	if r.evicted > pos {
		return nil, false
	}
	i, n := r.next, 0
	for ; n < r.n; n++ {
		i = (i - 1 + len(r.buf)) % len(r.buf)
		if r.buf[i].Seq <= pos {
			break
		}
	}
	if n == 0 {
		return nil, true
	}
	evs = make([]*Event, n)
	for k := range n {
		evs[n-1-k] = r.buf[(r.next-1-k+2*len(r.buf))%len(r.buf)]
	}
	return evs, true
}

// ErrAnchorPassed is Resumer.Subscribe's answer when the hub has already
// dispatched more events after SubscribeOptions.After than it remembers:
// read the anchor and the state it goes with again, and subscribe again.
var ErrAnchorPassed = errs.E(errs.Internal, "the event feed moved on while subscribing; subscribe again")

// anchored is the outcome of registering a subscription at a log position
// the hub may already have passed.
type anchored struct {
	s *Subscription
	// catchUp are the events after the anchor that the hub dispatched
	// before the registration and that the subscription would have
	// received: its client must get them before anything live.
	catchUp []*Event
	// ended: a control among those events ended the subscription (it is
	// not registered); end is the error it ended with (nil: completed).
	ended bool
	end   error
	// closed: the hub is closed; s is inert.
	closed bool
}

// anchor registers a subscription made from opts whose sink is chosen by
// sink once the catch-up is known (so a subscription that needs none gets
// its client's sink directly, with no gate in the way). The events the hub
// collected after opts.After before this registration are replayed from
// the hub's memory exactly as dispatch applied them: Join before delivery,
// delivery through the rooms and Accept, then Leave, CloseRoom, Demote and
// Lost; the subscription is registered with the rooms that leaves it.
func (h *Hub) anchor(opts SubscribeOptions, sink func(catchUp []*Event, ended bool) Sink) (a anchored, err error) {
	s := newSubscription(h, opts)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.state.Store(subEnded)
		s.sink = sink(nil, false)
		return anchored{s: s, closed: true}, nil
	}
	missed, ok := h.recent.after(opts.After)
	if !ok {
		return anchored{}, ErrAnchorPassed
	}
	rooms := make(map[string]bool, len(opts.Rooms))
	for _, r := range opts.Rooms {
		if r != "" {
			rooms[r] = true
		}
	}
	a.s = s
	for _, ev := range missed {
		if a.ended {
			break
		}
		c := ev.Control
		if c != nil && c.Op == Join && s.follow && c.UserID == s.userID {
			rooms[c.Room] = true
		}
		if reaches(ev, rooms) {
			in, err := safeAccept(s.accept, ev)
			if err != nil {
				h.log.Error("realtime: subscription filter panicked while catching up; subscription dropped", "user", s.userID, "err", err)
				a.ended, a.end = true, errs.E(errs.Internal, "the subscription failed; subscribe again")
				break
			}
			if in {
				a.catchUp = append(a.catchUp, ev)
			}
		}
		if c != nil {
			a.ended, a.end = s.applyMissed(c, rooms)
		}
	}
	s.sink = sink(a.catchUp, a.ended)
	if a.ended {
		s.state.Store(subEnded)
		return a, nil
	}
	list := make([]string, 0, len(rooms))
	for r := range rooms {
		list = append(list, r)
	}
	slices.Sort(list)
	h.registerLocked(s, opts.Encoder, list)
	return a, nil
}

// applyMissed applies to s (not registered yet, listening to rooms) the
// after-delivery effect of a control it missed, as Hub.applyAfter would
// have: ended reports that it ends s, with end.
func (s *Subscription) applyMissed(c *Control, rooms map[string]bool) (ended bool, end error) {
	switch c.Op {
	case Leave:
		switch {
		case c.UserID != s.userID:
		case s.endOnLeave && rooms[c.Room]:
			return true, revoked(c.Room)
		case s.follow:
			delete(rooms, c.Room)
		}
	case CloseRoom:
		switch {
		case s.endOnLeave && rooms[c.Room]:
			return true, nil
		case s.follow:
			delete(rooms, c.Room)
		}
	case Demote:
		if s.privileged && c.UserID == s.userID {
			return true, errs.E(errs.Forbidden, "your admin rights were revoked")
		}
	case lostOp:
		return true, errs.E(errs.CursorExpired, "this server missed events you subscribed to; refetch, then subscribe again")
	}
	return false, nil
}

// reaches reports whether ev is addressed to one of rooms.
func reaches(ev *Event, rooms map[string]bool) bool {
	for _, r := range ev.Rooms {
		if rooms[r] {
			return true
		}
	}
	return false
}

// safeAccept runs a subscription's Accept filter on ev; a panicking
// filter is an error (INTERNAL for the client), as it is on the dispatch
// goroutine.
func safeAccept(accept func(*Event) bool, ev *Event) (in bool, err error) {
	if accept == nil {
		return true, nil
	}
	defer func() {
		if r := recover(); r != nil {
			in, err = false, fmt.Errorf("realtime: Accept panicked on %s: %v", ev.Type, r)
		}
	}()
	return accept(ev), nil
}
