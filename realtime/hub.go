package realtime

import (
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/taskpulse/taskpulse/errs"
)

// HubOptions configures a Hub.
type HubOptions struct {
	// Logger receives sink panics; nil means slog.Default().
	Logger *slog.Logger
	// Registry is where Disconnect controls close connections; nil
	// ignores them.
	Registry *Registry
}

// HubStats are a hub's counters, for /metrics.
type HubStats struct {
	Subscriptions int    // registered subscriptions
	Dispatched    uint64 // events fully processed
	Delivered     uint64 // Sink.Deliver calls
	InboxLen      int    // events enqueued and not yet processed
}

// Hub fans events out to this instance's subscriptions.
//
// One dispatch goroutine applies events strictly in Enqueue order (the log
// order). For each event it collects the recipients under the index lock
// into a reused slice, releases the lock, and then calls Deliver on each
// recipient's Sink with the one *Payload of that event and the recipient's
// Encoder. Sinks only queue, so the cost of an event is bounded by its
// recipients, never by the slowest client, and Subscribe/Unsubscribe of
// other connections only wait for the collection step.
//
// Sinks are called from the dispatch goroutine only and never with the
// hub's lock held, so a sink may call Unsubscribe or Subscribe (but not
// Close) from Deliver or End.
//
// Log anchoring: a subscription made with SubscribeOptions.After ignores
// the events numbered at or before it — their delivery and their controls —
// however late they are dispatched, so its starting state (the rooms and
// the membership check it was made from) is never overridden by older
// events still in the inbox.
//
// Ending rule: every subscription ends once, by whichever comes first —
// Unsubscribe, or the hub ending it (Leave, CloseRoom, a panicking sink).
// If Unsubscribe comes first, End is never called, not even concurrently;
// if the hub came first, Unsubscribe is a no-op that returns at once (End
// may be running on the dispatch goroutine at that moment). A Deliver that
// had already begun when Unsubscribe returned may still reach the sink,
// which must ignore it; Deliver is never called after End.
type Hub struct {
	log      *slog.Logger
	registry *Registry

	// Inbox: Enqueue appends, the loop swaps the slice out.
	inMu     sync.Mutex
	inbox    []*Event
	inClosed bool
	wake     chan struct{} // capacity 1: "the inbox is not empty"
	done     chan struct{} // closed by Close
	stopped  chan struct{} // closed when the loop has returned
	close1   sync.Once

	// Index, guarded by mu.
	mu       sync.Mutex
	closed   bool
	rooms    map[string]*room
	users    map[string][]*Subscription // Follow or EndOnLeave subscriptions by UserID
	encoders map[Encoder]*encState
	recent   recentEvents // the last numbered events collected (resume_anchor.go)

	// Dispatch goroutine only (the collection step also holds mu).
	tick    uint64          // number of the event being dispatched; dedupe stamp
	targets []*Subscription // recipients of the current event, reused
	scratch []*Subscription // subscriptions a control applies to, reused
	ending  []ending        // subscriptions to End after the lock is released

	subs       atomic.Int64
	queued     atomic.Int64
	dispatched atomic.Uint64
	delivered  atomic.Uint64
}

// room is the set of subscriptions listening to one room. A slice, not a
// map, so collecting 10k recipients is one copy; each subscription knows
// its index in every room it listens to, so removal is a swap with the last.
type room struct {
	subs []*Subscription
}

// encState is what the hub keeps per distinct Encoder: the Payload of the
// event being dispatched, created for the first recipient and shared by the
// others. tick and p are touched only by the dispatch goroutine.
type encState struct {
	enc    Encoder
	shared bool // in Hub.encoders (its Encoder is comparable)
	refs   int  // subscriptions using it; guarded by Hub.mu
	tick   uint64
	p      *Payload
}

type ending struct {
	s   *Subscription
	err error
}

// NewHub starts a hub's dispatch loop; Close stops it.
func NewHub(opts HubOptions) *Hub {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &Hub{
		log:      log,
		registry: opts.Registry,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		stopped:  make(chan struct{}),
		rooms:    make(map[string]*room),
		users:    make(map[string][]*Subscription),
		encoders: make(map[Encoder]*encState),
	}
	go h.run()
	return h
}

// Enqueue hands the hub the next event in log order. It never blocks: the
// inbox is unbounded (dispatch never waits for a client, so it keeps up
// with anything the store can commit). Events enqueued after Close are
// dropped.
func (h *Hub) Enqueue(ev *Event) {
	if ev == nil {
		return
	}
	h.inMu.Lock()
	if h.inClosed {
		h.inMu.Unlock()
		return
	}
	h.inbox = append(h.inbox, ev)
	h.queued.Add(1)
	h.inMu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Close stops dispatch and ends every subscription (End is not called:
// transports close their connections themselves). Events still queued are
// dropped. Later Subscribe calls return an inert subscription. Close is
// idempotent; it must not be called from a Sink.
func (h *Hub) Close() {
	h.close1.Do(func() {
		h.inMu.Lock()
		h.inClosed = true
		h.queued.Add(-int64(len(h.inbox)))
		h.inbox = nil
		h.inMu.Unlock()
		close(h.done)
		<-h.stopped

		h.mu.Lock()
		h.closed = true
		h.rooms, h.users, h.encoders = nil, nil, nil
		h.recent = recentEvents{}
		h.subs.Store(0)
		h.mu.Unlock()
	})
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	return HubStats{
		Subscriptions: int(h.subs.Load()),
		Dispatched:    h.dispatched.Load(),
		Delivered:     h.delivered.Load(),
		InboxLen:      int(h.queued.Load()),
	}
}

// maxIdleBatch is the capacity above which the loop lets a drained batch
// slice go rather than keep a burst's worth of memory for ever.
const maxIdleBatch = 1 << 14

func (h *Hub) run() {
	defer close(h.stopped)
	var batch []*Event
	for {
		select {
		case <-h.done:
			return
		case <-h.wake:
		}
		h.inMu.Lock()
		batch, h.inbox = h.inbox, batch
		h.inMu.Unlock()
		for i, ev := range batch {
			select {
			case <-h.done:
				h.queued.Add(-int64(len(batch) - i))
				return
			default:
			}
			h.dispatch(ev)
			batch[i] = nil // let the event go
		}
		batch = reuseBatch(batch)
	}
}

// reuseBatch returns the drained batch slice to swap in as the next inbox:
// emptied, or nil if a burst grew it beyond maxIdleBatch.
func reuseBatch(batch []*Event) []*Event {
	if cap(batch) > maxIdleBatch {
		return nil
	}
	return batch[:0]
}

// logPos is the position ev is compared with SubscribeOptions.After at: its
// Seq, or, for an event not numbered by a broker, past every anchor.
func logPos(ev *Event) uint64 {
	if ev.Seq == 0 {
		return math.MaxUint64
	}
	return ev.Seq
}

// dispatch applies one event: Join, delivery, then Leave or CloseRoom.
// Each step skips the subscriptions anchored at or after the event.
func (h *Hub) dispatch(ev *Event) {
	h.tick++
	tick := h.tick
	pos := logPos(ev)
	ctl := ev.Control

	h.mu.Lock()
	if ctl != nil && ctl.Op == Join {
		h.joinLocked(ctl, pos)
	}
	targets := h.collectLocked(ev.Rooms, tick)
	h.recent.note(ev)
	h.mu.Unlock()

	n := h.deliverAll(ev, pos, targets, tick)
	clear(targets)
	h.targets = targets[:0]

	if ctl != nil && ctl.Op != Join {
		h.applyAfter(ctl, pos)
	}
	h.callEnds()

	h.delivered.Add(n)
	h.dispatched.Add(1)
	h.queued.Add(-1)
}

// collectLocked returns every subscription listening to one of rooms, each
// once. With one room that is a copy of its slice; with several, a
// subscription's mark (the tick of the last event it was collected for)
// drops repeats without a per-event set.
func (h *Hub) collectLocked(rooms []string, tick uint64) []*Subscription {
	targets := h.targets[:0]
	if len(rooms) == 1 {
		if rm := h.rooms[rooms[0]]; rm != nil {
			targets = append(targets, rm.subs...)
		}
		return targets
	}
	for _, name := range rooms {
		rm := h.rooms[name]
		if rm == nil {
			continue
		}
		for _, s := range rm.subs {
			if s.mark != tick {
				s.mark = tick
				targets = append(targets, s)
			}
		}
	}
	return targets
}

// deliverAll delivers ev (at log position pos) to targets and returns how
// many Deliver calls it made. A panicking sink (or Accept) costs its own
// subscription only.
func (h *Hub) deliverAll(ev *Event, pos uint64, targets []*Subscription, tick uint64) uint64 {
	var n uint64
	for i := 0; i < len(targets); {
		i = h.deliverFrom(ev, pos, targets, i, tick, &n)
	}
	return n
}

// deliverFrom delivers to targets[i:] and returns len(targets), or the index
// after a subscription whose sink panicked. One deferred recover per event
// (not per recipient) keeps the common path cheap.
func (h *Hub) deliverFrom(ev *Event, pos uint64, targets []*Subscription, i int, tick uint64, n *uint64) (next int) {
	defer func() {
		if r := recover(); r != nil {
			h.sinkPanicked(targets[i], "Deliver or Accept", r)
			next = i + 1
		}
	}()
	for ; i < len(targets); i++ {
		s := targets[i]
		if s.state.Load() != subActive || pos <= s.after {
			continue // unsubscribed or ended after collection, or anchored after ev
		}
		if s.accept != nil && !s.accept(ev) {
			continue
		}
		es := s.enc
		if es.tick != tick {
			es.tick, es.p = tick, NewPayload(ev, es.enc)
		}
		s.sink.Deliver(es.p)
		*n++
	}
	return i
}

// sinkPanicked drops s after its sink (or Accept filter) panicked, and ends
// it with INTERNAL so the client learns the subscription is gone.
func (h *Hub) sinkPanicked(s *Subscription, where string, r any) {
	h.log.Error("realtime: subscription sink panicked; subscription dropped",
		"call", where, "user", s.userID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	h.mu.Lock()
	h.endLocked(s, errs.E(errs.Internal, "the subscription failed; subscribe again"))
	h.mu.Unlock()
	h.callEnds()
}

// callEnds calls End for the subscriptions ended under the lock, now that
// it is released: End may re-enter the hub.
func (h *Hub) callEnds() {
	for i := 0; i < len(h.ending); i++ {
		e := h.ending[i]
		h.ending[i] = ending{}
		h.callEnd(e.s, e.err)
	}
	h.ending = h.ending[:0]
}

func (h *Hub) callEnd(s *Subscription, err error) {
	defer func() {
		if r := recover(); r != nil {
			// Already removed; End is called at most once, so nothing to redo.
			h.log.Error("realtime: subscription sink panicked",
				"call", "End", "user", s.userID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	s.sink.End(err)
}

// applyAfter applies the controls that take effect after delivery.
func (h *Hub) applyAfter(ctl *Control, pos uint64) {
	if ctl.Op == Disconnect {
		// The registry calls connections, which never call the hub back
		// while closing; its own lock is not the hub's.
		if h.registry != nil {
			h.registry.Disconnect(ctl.UserID, ctl.Code, ctl.Reason)
		}
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ctl.Op {
	case Leave:
		h.leaveLocked(ctl, pos)
	case CloseRoom:
		h.closeRoomLocked(ctl, pos)
	case Demote:
		h.demoteLocked(ctl, pos)
	case lostOp:
		h.lostLocked(pos)
	}
}

// demoteLocked applies Demote after delivery: the user's privileged
// subscriptions end with FORBIDDEN.
func (h *Hub) demoteLocked(c *Control, pos uint64) {
	subs := append(h.scratch[:0], h.users[c.UserID]...)
	for _, s := range subs {
		if s.privileged && pos > s.after {
			h.endLocked(s, errs.E(errs.Forbidden, "your admin rights were revoked"))
		}
	}
	clear(subs)
	h.scratch = subs[:0]
}

// joinLocked starts every Follow subscription of the user listening to the
// room (before the event is delivered, so the new member receives it).
func (h *Hub) joinLocked(c *Control, pos uint64) {
	subs := append(h.scratch[:0], h.users[c.UserID]...)
	for _, s := range subs {
		if s.follow && pos > s.after {
			h.listenLocked(s, c.Room)
		}
	}
	clear(subs)
	h.scratch = subs[:0]
}

// leaveLocked applies Leave after delivery: the user's EndOnLeave
// subscriptions on the room end with FORBIDDEN, its Follow subscriptions
// stop listening to the room.
func (h *Hub) leaveLocked(c *Control, pos uint64) {
	subs := append(h.scratch[:0], h.users[c.UserID]...)
	for _, s := range subs {
		switch {
		case pos <= s.after:
		case s.endOnLeave && s.listensLocked(c.Room):
			h.endLocked(s, revoked(c.Room))
		case s.follow:
			h.unlistenLocked(s, c.Room)
		}
	}
	clear(subs)
	h.scratch = subs[:0]
}

// closeRoomLocked applies CloseRoom after delivery: EndOnLeave subscriptions
// on the room complete, Follow subscriptions stop listening to it.
func (h *Hub) closeRoomLocked(c *Control, pos uint64) {
	rm := h.rooms[c.Room]
	if rm == nil {
		return
	}
	subs := append(h.scratch[:0], rm.subs...)
	for _, s := range subs {
		switch {
		case pos <= s.after:
		case s.endOnLeave:
			h.endLocked(s, nil)
		case s.follow:
			h.unlistenLocked(s, c.Room)
		}
	}
	clear(subs)
	h.scratch = subs[:0]
}

// revoked is the error of an EndOnLeave subscription whose user left room.
func revoked(room string) error {
	if kind, id, ok := strings.Cut(room, ":"); ok && kind != "" && id != "" && kind != "user" {
		return errs.E(errs.Forbidden, "you are no longer a member of %s %s", kind, id)
	}
	return errs.E(errs.Forbidden, "your access was revoked")
}

// encoderLocked returns the shared state of enc, creating it on first use.
// An encoder that is not comparable cannot be a map key; it gets a private
// state (correct, just not shared). The value is asked, not its type: a
// struct with an interface field is comparable by type, yet hashing it
// panics when the field holds a func, map or slice.
func (h *Hub) encoderLocked(enc Encoder) *encState {
	if !reflect.ValueOf(enc).Comparable() {
		return &encState{enc: enc, refs: 1}
	}
	es := h.encoders[enc]
	if es == nil {
		es = &encState{enc: enc, shared: true}
		h.encoders[enc] = es
	}
	es.refs++
	return es
}

func (h *Hub) releaseEncoderLocked(es *encState) {
	es.refs--
	if es.refs == 0 && es.shared {
		delete(h.encoders, es.enc)
	}
}
