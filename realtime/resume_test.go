package realtime

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
)

// memLog is a durable log in memory: the LogReader a Replay reads, with
// retention (trim) and a hook on every read.
type memLog struct {
	mu     sync.Mutex
	events []*Event // events[i].Seq == i+1
	oldest uint64   // entries below it are trimmed
	reads  int
	limits []int
	onRead func(n int, after uint64) // n counts reads from 1
}

func (l *memLog) add(e *Event) *Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Seq = uint64(len(l.events) + 1)
	e.Epoch = "test"
	e.Cursor = Position{Epoch: "test", Seq: e.Seq}.Cursor()
	l.events = append(l.events, e)
	return e
}

func (l *memLog) trim(oldest uint64) {
	l.mu.Lock()
	l.oldest = oldest
	l.mu.Unlock()
}

func (l *memLog) read(ctx context.Context, after uint64, limit int) ([]*Event, error) {
	l.mu.Lock()
	l.reads++
	n, hook := l.reads, l.onRead
	l.limits = append(l.limits, limit)
	l.mu.Unlock()
	if hook != nil {
		hook(n, after)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*Event
	for _, e := range l.events {
		if e.Seq > after && e.Seq >= l.oldest && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *memLog) readCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads
}

// fill adds n events of type E<seq> addressed to rooms.
func (l *memLog) fill(n int, rooms ...string) {
	for range n {
		l.mu.Lock()
		seq := len(l.events) + 1
		l.mu.Unlock()
		l.add(ev(fmt.Sprintf("E%d", seq), rooms...))
	}
}

func (l *memLog) get(seq uint64) *Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events[seq-1]
}

// feed enqueues the log's events (from, to] on h, as a feed does.
func (l *memLog) feed(h *Hub, from, to uint64) {
	for seq := from + 1; seq <= to; seq++ {
		h.Enqueue(l.get(seq))
	}
}

// publish adds n events to p1 and has h dispatch them, as a change and the
// feed do.
func (l *memLog) publish(t *testing.T, h *Hub, n int) {
	t.Helper()
	l.mu.Lock()
	from := uint64(len(l.events))
	l.mu.Unlock()
	l.fill(n, p1)
	l.feed(h, from, from+uint64(n))
	flush(t, h)
}

// pacedSink is a client that takes the history at its pace: DeliverWait
// waits for gate (when set) before each payload.
type pacedSink struct {
	recSink
	gate  chan struct{}
	waits atomic.Int64
}

func (s *pacedSink) DeliverWait(ctx context.Context, p *Payload) error {
	s.waits.Add(1)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.Deliver(p)
	return nil
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// mustSubscribe subscribes with r — u1 to p1, encoded by a countEnc, unless
// o says otherwise — and fails the test if r refuses.
func mustSubscribe(t *testing.T, r *Resumer, o SubscribeOptions, replay *Replay) *Subscription {
	t.Helper()
	if o.UserID == "" {
		o.UserID = "u1"
	}
	if o.Rooms == nil {
		o.Rooms = []string{p1}
	}
	if o.Encoder == nil {
		o.Encoder = &countEnc{}
	}
	s, err := r.Subscribe(context.Background(), o, replay)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newResumer(t *testing.T, opts ResumerOptions) (*Hub, *Resumer) {
	t.Helper()
	h := NewHub(HubOptions{})
	r := NewResumer(h, opts)
	t.Cleanup(func() {
		h.Close()
		r.Wait()
	})
	return h, r
}

// A resumed subscription gets what it missed from the log, then what the
// hub dispatched while it replayed, then live events: every event after
// the cursor once, in log order, although the hub runs on during the
// replay.
func TestResumeReplaysThenGoesLiveWithoutGapOrDuplicate(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	log.publish(t, h, 30)

	sink := &pacedSink{gate: make(chan struct{})}
	mustSubscribe(t, r, SubscribeOptions{After: 30, Sink: sink}, &Replay{From: 10, Read: log.read})
	// The replay waits for the client; meanwhile the hub dispatches 31..50.
	log.publish(t, h, 20)
	if got := sink.seqs(); len(got) != 0 {
		t.Fatalf("the client got %v before its replay", got)
	}
	close(sink.gate)
	waitFor(t, "events 11..50", func() bool { return len(sink.seqs()) >= 40 })
	log.publish(t, h, 1)
	if got, want := sink.seqs(), seqRange(11, 51); !slices.Equal(got, want) {
		t.Fatalf("the client got %v, want %v", got, want)
	}
	if n, _, _ := sink.ended(); n != 0 {
		t.Fatal("the subscription ended")
	}
	if sink.waits.Load() < 20 {
		t.Errorf("only %d payloads went through DeliverWait, want the replay's 20 at least", sink.waits.Load())
	}
}

// The replay shows what live delivery would have shown by today's
// memberships: only the subscription's rooms, and of each room nothing
// from before the user's last join of it.
func TestReplayAppliesTodaysMemberships(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	log.add(ev("BEFORE_JOIN", p1))               // 1
	log.add(ev("OTHER_ROOM", p2))                // 2: not a room of the subscription
	log.add(join("u1", p1, p1))                  // 3
	log.add(ev("FIRST_STAY", p1))                // 4: before the last join
	log.add(leave("u1", p1, p1))                 // 5
	log.add(ev("WHILE_AWAY", p1))                // 6
	log.add(join("u2", p1, p1))                  // 7: someone else's join
	log.add(named("REJOIN", join("u1", p1, p1))) // 8
	log.add(ev("AFTER_REJOIN", p1))              // 9
	log.add(ev("MINE", u1))                      // 10
	log.add(ev("MINE_AND_P2", p2, u1))           // 11
	log.add(ev("SKIPPED", p1))                   // 12: Accept refuses it
	log.feed(h, 0, 12)
	flush(t, h)

	sink := &pacedSink{}
	mustSubscribe(t, r, SubscribeOptions{Rooms: []string{u1, p1}, After: 12, Follow: true, Sink: sink,
		Accept: func(e *Event) bool { return e.Type != "SKIPPED" }}, &Replay{From: 0, Read: log.read})
	r.Wait()
	if got, want := sink.types(), []string{"REJOIN", "AFTER_REJOIN", "MINE", "MINE_AND_P2"}; !slices.Equal(got, want) {
		t.Errorf("replayed %v, want %v", got, want)
	}
}

// A replay reads the log a page (store.MaxLogRead) at a time; a client
// whose sink cannot wait gets Deliver.
func TestReplayReadsPages(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{PageSize: 1000})
	log := &memLog{}
	log.fill(2500, p1)
	sink := &recSink{}
	mustSubscribe(t, r, SubscribeOptions{After: 2500, Sink: sink}, &Replay{From: 0, Read: log.read})
	r.Wait()
	if got := sink.seqs(); !slices.Equal(got, seqRange(1, 2500)) {
		t.Errorf("got %d events, want 1..2500 in order", len(got))
	}
	for _, l := range log.limits {
		if l > 1000 || l < 1 {
			t.Errorf("read with limit %d, want 1 to PageSize", l)
		}
	}
	if n := log.readCount(); n != 6 {
		t.Errorf("%d reads, want 6 (two passes of three pages)", n)
	}
	_ = h
}

// Retention may trim the log while a replay reads it: the client gets what
// was read, then CURSOR_EXPIRED, never a silent gap.
func TestReplayTrimmedMeanwhileExpires(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{PageSize: 1000})
	log := &memLog{}
	log.fill(2500, p1)
	log.onRead = func(n int, after uint64) {
		if n == 5 { // the second page of the delivering pass
			log.trim(1500)
		}
	}
	sink := &recSink{}
	mustSubscribe(t, r, SubscribeOptions{After: 2500, Sink: sink}, &Replay{From: 0, Read: log.read})
	r.Wait()
	if got := sink.seqs(); !slices.Equal(got, seqRange(1, 1000)) {
		t.Errorf("got %d events, want the first page (1..1000)", len(got))
	}
	if n, err, late := sink.ended(); n != 1 || errs.CodeOf(err) != errs.CursorExpired || late != 0 {
		t.Errorf("ended %d times with %v (%d late), want once CURSOR_EXPIRED", n, err, late)
	}
	if got := h.Stats().Subscriptions; got != 0 {
		t.Errorf("%d subscriptions left on the hub", got)
	}
}

// Live events held for a subscription still replaying are bounded: one
// too many ends it with CURSOR_EXPIRED, and the hub forgets it.
func TestReplayFallingBehindExpires(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{MaxHeld: 3})
	log := &memLog{}
	log.publish(t, h, 10)
	sink := &pacedSink{gate: make(chan struct{})}
	mustSubscribe(t, r, SubscribeOptions{After: 10, Sink: sink}, &Replay{From: 5, Read: log.read})
	log.publish(t, h, 4)
	close(sink.gate)
	r.Wait()
	if n, err, late := sink.ended(); n != 1 || errs.CodeOf(err) != errs.CursorExpired || late != 0 {
		t.Errorf("ended %d times with %v (%d late), want once CURSOR_EXPIRED", n, err, late)
	}
	if got := sink.seqs(); len(got) > 5 || len(got) > 0 && got[0] != 6 {
		t.Errorf("got %v, want at most the replay's [6..10]", got)
	}
	if got := h.Stats().Subscriptions; got != 0 {
		t.Errorf("%d subscriptions left on the hub", got)
	}
}

// The hub ending a subscription while it replays (its user left the
// project) takes effect in log order: after the replay and the held
// events.
func TestHubEndWhileReplayingComesLast(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	log.publish(t, h, 5)
	sink := &pacedSink{gate: make(chan struct{})}
	mustSubscribe(t, r, SubscribeOptions{After: 5, EndOnLeave: true, Sink: sink}, &Replay{From: 2, Read: log.read})
	log.fill(1, p1)
	log.add(leave("u1", p1, p1)) // 7
	log.fill(1, p1)
	log.feed(h, 5, 8)
	flush(t, h)
	close(sink.gate)
	r.Wait()
	if got := sink.seqs(); !slices.Equal(got, []uint64{3, 4, 5, 6, 7}) {
		t.Errorf("got %v, want [3 4 5 6 7]", got)
	}
	if n, err, late := sink.ended(); n != 1 || errs.CodeOf(err) != errs.Forbidden || late != 0 {
		t.Errorf("ended %d times with %v (%d late), want once FORBIDDEN after the leave", n, err, late)
	}
}

// Unsubscribing stops a replay at once; the client hears nothing more.
func TestUnsubscribeStopsReplay(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	log.publish(t, h, 10)
	sink := &pacedSink{gate: make(chan struct{})}
	s := mustSubscribe(t, r, SubscribeOptions{After: 10, Sink: sink}, &Replay{From: 0, Read: log.read})
	waitFor(t, "the replay to wait for the client", func() bool { return sink.waits.Load() == 1 })
	s.Unsubscribe()
	r.Wait() // returns: the waiting DeliverWait saw its context end
	if got := sink.seqs(); len(got) != 0 {
		t.Errorf("got %v after unsubscribing", got)
	}
	if n, _, _ := sink.ended(); n != 0 {
		t.Error("End called after Unsubscribe")
	}
	if got := h.Stats().Subscriptions; got != 0 {
		t.Errorf("%d subscriptions left on the hub", got)
	}
}

// A hub's replays run MaxReplays at a time; the others wait their turn.
func TestReplaysAreBoundedPerHub(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{MaxReplays: 1})
	first, second := &memLog{}, &memLog{}
	first.fill(3, p1)
	second.fill(3, p1)
	release := make(chan struct{})
	first.onRead = func(int, uint64) { <-release }
	second.onRead = first.onRead
	a, b := &recSink{}, &recSink{}
	for _, c := range []struct {
		log  *memLog
		sink *recSink
	}{{first, a}, {second, b}} {
		mustSubscribe(t, r, SubscribeOptions{After: 3, Sink: c.sink}, &Replay{From: 0, Read: c.log.read})
	}
	reads := func() int { return first.readCount() + second.readCount() }
	waitFor(t, "a replay to read", func() bool { return reads() == 1 })
	time.Sleep(20 * time.Millisecond)
	if n := reads(); n != 1 {
		t.Errorf("the replays read %d times while the first held the only slot, want 1", n)
	}
	close(release)
	r.Wait()
	if len(a.seqs()) != 3 || len(b.seqs()) != 3 {
		t.Errorf("replayed %v and %v, want 3 events each", a.seqs(), b.seqs())
	}
	_ = h
}

// A panicking filter ends the replayed subscription with INTERNAL, not the
// process.
func TestReplayFilterPanicEndsSubscription(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	log.fill(3, p1)
	sink := &recSink{}
	mustSubscribe(t, r, SubscribeOptions{After: 3, Sink: sink, Accept: func(*Event) bool { panic("boom") }},
		&Replay{From: 0, Read: log.read})
	r.Wait()
	if n, err, _ := sink.ended(); n != 1 || errs.CodeOf(err) != errs.Internal {
		t.Errorf("ended %d times with %v, want once INTERNAL", n, err)
	}
	_ = h
}

// A panicking log reader, too.
func TestReplayReaderPanicEndsSubscription(t *testing.T) {
	_, r := newResumer(t, ResumerOptions{})
	sink := &recSink{}
	mustSubscribe(t, r, SubscribeOptions{After: 3, Sink: sink},
		&Replay{From: 0, Read: func(context.Context, uint64, int) ([]*Event, error) { panic("boom") }})
	r.Wait()
	if n, err, _ := sink.ended(); n != 1 || errs.CodeOf(err) != errs.Internal {
		t.Errorf("ended %d times with %v, want once INTERNAL", n, err)
	}
}

// A cursor after the anchor is not a position of this history.
func TestReplayFromAfterTheAnchorIsRefused(t *testing.T) {
	_, r := newResumer(t, ResumerOptions{})
	_, err := r.Subscribe(context.Background(), SubscribeOptions{
		UserID: "u1", Rooms: []string{p1}, After: 3, Encoder: &countEnc{}, Sink: &recSink{},
	}, &Replay{From: 4, Read: (&memLog{}).read})
	if errs.CodeOf(err) != errs.CursorExpired {
		t.Errorf("got %v, want CURSOR_EXPIRED", err)
	}
}

// Closing the hub stops replays without ending their subscriptions (the
// transports close their connections).
func TestHubCloseStopsReplay(t *testing.T) {
	h := NewHub(HubOptions{})
	r := NewResumer(h, ResumerOptions{})
	log := &memLog{}
	log.fill(3, p1)
	sink := &pacedSink{gate: make(chan struct{})}
	mustSubscribe(t, r, SubscribeOptions{After: 3, Sink: sink}, &Replay{From: 0, Read: log.read})
	waitFor(t, "the replay to wait for the client", func() bool { return sink.waits.Load() == 1 })
	h.Close()
	close(sink.gate)
	r.Wait()
	if n, _, _ := sink.ended(); n != 0 {
		t.Error("End called after the hub closed")
	}
}
