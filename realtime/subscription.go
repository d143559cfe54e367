package realtime

import (
	"slices"
	"sync/atomic"

	"github.com/taskpulse/taskpulse/errs"
)

// SubscribeOptions says what one subscription listens to.
type SubscribeOptions struct {
	UserID string
	// Rooms listened to. With Follow they are the rooms besides those given
	// to Ready (e.g. the user's own room).
	Rooms []string
	// Follow makes the rooms follow UserID's Join/Leave controls (and
	// CloseRoom). A following subscription is pending until Ready.
	Follow bool
	// EndOnLeave ends the subscription with errs.Forbidden when UserID
	// leaves one of its rooms, and completes it when one of its rooms is
	// closed. To close the race with a concurrent Leave, subscribe first and
	// check membership after (or both under the publisher's ordering lock).
	EndOnLeave bool
	// Accept filters events; nil accepts every event of its rooms. It runs
	// on the dispatch goroutine and must be fast and must not block.
	Accept  func(ev *Event) bool
	Encoder Encoder
	Sink    Sink
}

// Subscription states; a subscription leaves subActive once, by CAS, so
// exactly one of Unsubscribe and the hub decides how it ends.
const (
	subActive uint32 = iota
	subEnded         // ended by the hub (End called or about to be) or the hub closed
	subUnsubscribed
)

// maxPendingChanges bounds the membership changes a pending Follow
// subscription records before Ready. Ready normally follows Subscribe by
// one store read; a subscription that never calls it is ended rather than
// allowed to grow without bound.
const maxPendingChanges = 4096

// Subscription is one registered subscription.
type Subscription struct {
	hub        *Hub
	userID     string
	follow     bool
	endOnLeave bool
	accept     func(*Event) bool
	sink       Sink
	enc        *encState
	state      atomic.Uint32

	// Guarded by Hub.mu.
	rooms        map[string]int // room → index of this subscription in it
	base         []string       // SubscribeOptions.Rooms, kept for Ready
	pendingReady bool
	changes      map[string]bool // while pending: room → last change (true = joined)

	// Dispatch goroutine only.
	mark uint64 // tick of the last event this was collected for
}

// Subscribe registers a subscription. It receives the events whose
// dispatch starts after it returns. Sink and Encoder are required (a nil
// one is a programming error and panics). After Close, Subscribe returns an
// inert subscription that receives nothing.
func (h *Hub) Subscribe(opts SubscribeOptions) *Subscription {
	if opts.Sink == nil || opts.Encoder == nil {
		panic("realtime: Subscribe needs a Sink and an Encoder")
	}
	s := &Subscription{
		hub:        h,
		userID:     opts.UserID,
		follow:     opts.Follow,
		endOnLeave: opts.EndOnLeave,
		accept:     opts.Accept,
		sink:       opts.Sink,
		rooms:      make(map[string]int, len(opts.Rooms)),
	}
	if opts.Follow {
		s.base = slices.Clone(opts.Rooms)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.state.Store(subEnded)
		return s
	}
	s.enc = h.encoderLocked(opts.Encoder)
	for _, r := range opts.Rooms {
		if r != "" {
			h.listenLocked(s, r)
		}
	}
	if s.follow || s.endOnLeave {
		h.users[s.userID] = append(h.users[s.userID], s)
	}
	if s.follow {
		s.pendingReady = true
		h.pending[s] = struct{}{}
	}
	h.subs.Add(1)
	return s
}

// Ready gives a following subscription its membership rooms, read from the
// store after Subscribe returned. The subscription then listens to its
// SubscribeOptions.Rooms and rooms, with the Join/Leave/CloseRoom controls
// for its rooms seen since Subscribe applied on top in log order, so a
// membership change that raced with the store read is never lost. (Those
// controls also took effect when they were dispatched, so a room joined
// while pending is delivered from its Join on.) Ready on a subscription
// that is not following, already ready, or unsubscribed is a no-op.
func (s *Subscription) Ready(rooms []string) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || !s.pendingReady || s.state.Load() != subActive {
		return
	}
	want := make(map[string]bool, len(s.base)+len(rooms))
	for _, r := range s.base {
		want[r] = true
	}
	for _, r := range rooms {
		want[r] = true
	}
	// The net effect of an ordered series of joins and leaves on a room is
	// its last one, which is what changes holds.
	for r, joined := range s.changes {
		if joined {
			want[r] = true
		} else {
			delete(want, r)
		}
	}
	for r := range s.rooms {
		if !want[r] {
			h.unlistenLocked(s, r)
		}
	}
	for r := range want {
		if r != "" {
			h.listenLocked(s, r)
		}
	}
	s.pendingReady, s.changes = false, nil
	delete(h.pending, s)
}

// Unsubscribe removes the subscription; it is idempotent, safe from any
// goroutine and from inside the subscription's own Sink, and never waits
// for dispatch. If it returns before the hub decided to end the
// subscription, End is never called; a Deliver already begun may still
// reach the sink, which must ignore it.
func (s *Subscription) Unsubscribe() {
	if !s.state.CompareAndSwap(subActive, subUnsubscribed) {
		return
	}
	h := s.hub
	h.mu.Lock()
	if !h.closed {
		h.removeLocked(s)
	}
	h.mu.Unlock()
}

// listening returns the rooms s listens to, sorted (for tests and
// debugging).
func (s *Subscription) listening() []string {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	out := make([]string, 0, len(s.rooms))
	for r := range s.rooms {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

func (s *Subscription) listensLocked(room string) bool {
	_, ok := s.rooms[room]
	return ok
}

// listenLocked adds s to room (no-op if already there).
func (h *Hub) listenLocked(s *Subscription, name string) {
	if _, ok := s.rooms[name]; ok {
		return
	}
	rm := h.rooms[name]
	if rm == nil {
		rm = &room{}
		h.rooms[name] = rm
	}
	s.rooms[name] = len(rm.subs)
	rm.subs = append(rm.subs, s)
}

// unlistenLocked removes s from room (no-op if not there) by moving the
// room's last subscription into its slot.
func (h *Hub) unlistenLocked(s *Subscription, name string) {
	i, ok := s.rooms[name]
	if !ok {
		return
	}
	delete(s.rooms, name)
	rm := h.rooms[name]
	last := len(rm.subs) - 1
	if i != last {
		moved := rm.subs[last]
		rm.subs[i] = moved
		moved.rooms[name] = i
	}
	rm.subs[last] = nil
	rm.subs = rm.subs[:last]
	switch {
	case last == 0:
		delete(h.rooms, name)
	case cap(rm.subs) >= 64 && 4*len(rm.subs) < cap(rm.subs):
		rm.subs = slices.Clip(slices.Clone(rm.subs)) // give back a shrunk room's memory
	}
}

// recordLocked notes a membership change of a pending subscription for
// Ready, ending the subscription if it has waited too long.
func (h *Hub) recordLocked(s *Subscription, room string, joined bool) {
	if s.changes == nil {
		s.changes = make(map[string]bool)
	}
	s.changes[room] = joined
	if len(s.changes) > maxPendingChanges {
		h.endLocked(s, errs.E(errs.Internal, "the subscription was not set up in time; subscribe again"))
	}
}

// endLocked ends s on the hub's behalf, unless Unsubscribe got there first;
// End is called by endPending once the lock is released.
func (h *Hub) endLocked(s *Subscription, err error) {
	if !s.state.CompareAndSwap(subActive, subEnded) {
		return
	}
	h.removeLocked(s)
	h.ending = append(h.ending, ending{s: s, err: err})
}

// removeLocked takes s out of every index.
func (h *Hub) removeLocked(s *Subscription) {
	for r := range s.rooms {
		h.unlistenLocked(s, r)
	}
	if s.follow || s.endOnLeave {
		subs := h.users[s.userID]
		if i := slices.Index(subs, s); i >= 0 {
			last := len(subs) - 1
			subs[i] = subs[last]
			subs[last] = nil
			subs = subs[:last]
			if last == 0 {
				delete(h.users, s.userID)
			} else {
				h.users[s.userID] = subs
			}
		}
	}
	if s.pendingReady {
		s.pendingReady, s.changes = false, nil
		delete(h.pending, s)
	}
	h.releaseEncoderLocked(s.enc)
	h.subs.Add(-1)
}
