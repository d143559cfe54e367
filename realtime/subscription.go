package realtime

import (
	"slices"
	"sync/atomic"
)

// SubscribeOptions says what one subscription listens to.
type SubscribeOptions struct {
	UserID string
	// Rooms listened to from the start. A Follow subscription is given all
	// of them here: the user's own room and the membership rooms read from
	// the store at position After.
	Rooms []string
	// After anchors the subscription in the event log: it ignores every
	// event with Seq <= After — such an event is neither delivered to it nor
	// are its Join, Leave or CloseRoom applied to it — and takes every event
	// after it. Set it to the log position the subscription's state (its
	// membership check, its Rooms) was read at, in one snapshot
	// (store.Store.Read): the state then reflects exactly the events <=
	// After and the hub applies exactly the events > After, so a change
	// committed but not yet dispatched neither ends nor leaks into a
	// subscription made after it. The hub may already have dispatched some
	// events after After: Resumer.Subscribe catches the subscription up
	// with them, Subscribe does not. Zero takes every event dispatched
	// after Subscribe returns. Events with no Seq (ephemeral, not in the
	// log) reach every subscription.
	After uint64
	// Follow makes the rooms follow UserID's Join and Leave controls and
	// CloseRoom.
	Follow bool
	// EndOnLeave ends the subscription with errs.Forbidden when UserID
	// leaves one of its rooms, and completes it when one of its rooms is
	// closed. Check membership in the snapshot After is read from, so that
	// no Leave can fall between the check and the subscription's start.
	EndOnLeave bool
	// Privileged marks a subscription that UserID's admin rights allowed,
	// not a membership (an admin watching a project they are not in): a
	// Demote of UserID ends it with errs.Forbidden.
	Privileged bool
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

// Subscription is one registered subscription.
type Subscription struct {
	hub        *Hub
	userID     string
	after      uint64 // SubscribeOptions.After; events at or before it are ignored
	follow     bool
	endOnLeave bool
	privileged bool
	accept     func(*Event) bool
	sink       Sink
	enc        *encState
	state      atomic.Uint32
	// stop, if set, is called by Unsubscribe: it cancels a resumed
	// subscription's catching up (Resumer). Set before s is published.
	stop func()

	// Guarded by Hub.mu.
	rooms map[string]int // room → index of this subscription in it

	// Dispatch goroutine only.
	mark uint64 // tick of the last event this was collected for
}

// Subscribe registers a subscription. It receives the events numbered after
// opts.After whose dispatch starts after it returns (with After read as
// documented there, that is every event after After). Sink and Encoder are
// required (a nil one is a programming error and panics). After Close,
// Subscribe returns an inert subscription that receives nothing.
func (h *Hub) Subscribe(opts SubscribeOptions) *Subscription {
	s := newSubscription(h, opts)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.state.Store(subEnded)
		return s
	}
	h.registerLocked(s, opts.Encoder, opts.Rooms)
	return s
}

// newSubscription builds s from opts, not yet registered.
func newSubscription(h *Hub, opts SubscribeOptions) *Subscription {
	if opts.Sink == nil || opts.Encoder == nil {
		panic("realtime: Subscribe needs a Sink and an Encoder")
	}
	return &Subscription{
		hub:        h,
		userID:     opts.UserID,
		after:      opts.After,
		follow:     opts.Follow,
		endOnLeave: opts.EndOnLeave,
		privileged: opts.Privileged,
		accept:     opts.Accept,
		sink:       opts.Sink,
		rooms:      make(map[string]int, len(opts.Rooms)),
	}
}

// registerLocked indexes s: its encoder, rooms and user.
func (h *Hub) registerLocked(s *Subscription, enc Encoder, rooms []string) {
	s.enc = h.encoderLocked(enc)
	for _, r := range rooms {
		if r != "" {
			h.listenLocked(s, r)
		}
	}
	if s.byUser() {
		h.users[s.userID] = append(h.users[s.userID], s)
	}
	h.subs.Add(1)
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
	if s.stop != nil {
		s.stop()
	}
	h := s.hub
	h.mu.Lock()
	if !h.closed {
		h.removeLocked(s)
	}
	h.mu.Unlock()
}

// byUser reports whether s is indexed by its user (Hub.users): the
// subscriptions a user's controls apply to.
func (s *Subscription) byUser() bool { return s.follow || s.endOnLeave || s.privileged }

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

// endLocked ends s on the hub's behalf, unless Unsubscribe got there first;
// End is called by callEnds once the lock is released.
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
	if s.byUser() {
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
	h.releaseEncoderLocked(s.enc)
	h.subs.Add(-1)
}
