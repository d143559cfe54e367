package realtime

import (
	"context"
	"slices"
	"testing"

	"github.com/taskpulse/taskpulse/errs"
)

// The hub may have dispatched events after the anchor before the
// subscription registers (the anchor was read from the database just
// before): the subscription catches up from the hub's memory as dispatch
// would have applied them, then goes live.
func TestAnchorBehindTheHubCatchesUp(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	log.fill(15, p1)            // 1..15
	log.add(join("u1", p2, p2)) // 16: u1 joins p2
	log.add(ev("IN_P2", p2))    // 17
	log.add(ev("IN_P3", p3))    // 18: not u1's
	log.add(leave("u1", p1, p1))
	log.add(ev("AFTER_LEAVE", p1)) // 20
	log.feed(h, 0, 20)
	flush(t, h)

	follow := &recSink{}
	s := mustSubscribe(t, r, SubscribeOptions{Rooms: []string{u1, p1}, After: 15, Follow: true, Sink: follow}, nil)
	log.add(ev("LIVE_P2", p2))
	log.add(ev("LIVE_P1", p1))
	log.feed(h, 20, 22)
	flush(t, h)
	waitFor(t, "the live event", func() bool { return len(follow.types()) >= 4 })
	r.Wait()
	if got, want := follow.types(), []string{"JOIN", "IN_P2", "LEAVE", "LIVE_P2"}; !slices.Equal(got, want) {
		t.Errorf("follow got %v, want %v", got, want)
	}
	if got, want := s.listening(), []string{p2, u1}; !slices.Equal(got, want) {
		t.Errorf("follow listens to %v, want %v", got, want)
	}
}

// A control the hub dispatched after the anchor, before the registration,
// still ends the subscription it applies to: after what came before it,
// or at once (as the subscribe's error) when nothing did.
func TestAnchorBehindTheHubAppliesMissedEnds(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	log.fill(5, p1)
	log.add(leave("u1", p1, p1)) // 6
	log.feed(h, 0, 6)
	flush(t, h)
	base := h.Stats().Subscriptions

	// Its client sees event 5, then the leave, then FORBIDDEN.
	project := &recSink{}
	mustSubscribe(t, r, SubscribeOptions{After: 4, EndOnLeave: true, Sink: project}, nil)
	r.Wait()
	if got := project.seqs(); !slices.Equal(got, []uint64{5, 6}) {
		t.Errorf("got %v, want [5 6]", got)
	}
	if n, err, late := project.ended(); n != 1 || errs.CodeOf(err) != errs.Forbidden || late != 0 {
		t.Errorf("ended %d times with %v (%d late), want once FORBIDDEN", n, err, late)
	}

	// Nothing to deliver first: the subscribe itself is refused.
	quiet := &recSink{}
	_, err := r.Subscribe(context.Background(), SubscribeOptions{
		UserID: "u1", Rooms: []string{p1}, After: 4, EndOnLeave: true, Encoder: &countEnc{}, Sink: quiet,
		Accept: func(*Event) bool { return false },
	}, nil)
	if errs.CodeOf(err) != errs.Forbidden {
		t.Errorf("subscribe: %v, want FORBIDDEN", err)
	}
	if n, _, _ := quiet.ended(); n != 0 {
		t.Error("a refused subscription's sink was ended")
	}

	// A gap the hub reported after the anchor expires it.
	h.Lost(6, 9)
	flush(t, h)
	lost := &recSink{}
	if _, err := r.Subscribe(context.Background(), SubscribeOptions{
		UserID: "u2", Rooms: []string{p2}, After: 6, Encoder: &countEnc{}, Sink: lost,
	}, nil); errs.CodeOf(err) != errs.CursorExpired {
		t.Errorf("subscribe before a gap: %v, want CURSOR_EXPIRED", err)
	}
	if got := h.Stats().Subscriptions; got != base {
		t.Errorf("%d subscriptions registered, want %d (none of these)", got, base)
	}
}

// The hub remembers its last recentWindow events; an anchor older than
// that is refused with ErrAnchorPassed (the caller reads again), one
// within it is caught up.
func TestAnchorTooFarBehindTheHub(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	n := uint64(recentWindow + 100)
	log.fill(int(n), p1)
	log.feed(h, 0, n)
	flush(t, h)
	if _, err := r.Subscribe(context.Background(), SubscribeOptions{
		UserID: "u1", Rooms: []string{p1}, After: 50, Encoder: &countEnc{}, Sink: &recSink{},
	}, nil); err != ErrAnchorPassed {
		t.Fatalf("subscribe 1124 events behind: %v, want ErrAnchorPassed", err)
	}
	sink := &recSink{}
	mustSubscribe(t, r, SubscribeOptions{After: 100, Sink: sink}, nil)
	r.Wait()
	if got := sink.seqs(); !slices.Equal(got, seqRange(101, n)) {
		t.Errorf("got %d events from %v, want 101..%d", len(got), got[:min(len(got), 3)], n)
	}
}

// The hub may also be behind the anchor: the events up to it, dispatched
// after the registration, are not delivered (the state the subscription
// was built from already reflects them).
func TestAnchorAheadOfTheHubSkipsWhatItReflects(t *testing.T) {
	h, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	log.fill(8, p1)
	sink := &recSink{}
	mustSubscribe(t, r, SubscribeOptions{After: 5, Sink: sink}, nil)
	log.feed(h, 0, 8)
	flush(t, h)
	if got := sink.seqs(); !slices.Equal(got, []uint64{6, 7, 8}) {
		t.Errorf("got %v, want [6 7 8]", got)
	}
}

// The hub remembers its last events in a ring: what it returns after a
// position is exactly the events after it, in order, across the wrap.
func TestRecentEventsWrap(t *testing.T) {
	var r recentEvents
	for seq := uint64(1); seq <= recentWindow+10; seq++ {
		r.note(&Event{Seq: seq})
		r.note(&Event{}) // unnumbered: not remembered
	}
	for _, pos := range []uint64{10, 11, 500, recentWindow + 9, recentWindow + 10} {
		evs, ok := r.after(pos)
		if !ok {
			t.Errorf("after(%d): forgotten", pos)
			continue
		}
		var got []uint64
		for _, ev := range evs {
			got = append(got, ev.Seq)
		}
		if want := seqRange(pos+1, recentWindow+10); !slices.Equal(got, want) {
			t.Errorf("after(%d) = %d events from %v, want %d from %d", pos, len(got), got[:min(len(got), 2)], len(want), pos+1)
		}
	}
	if _, ok := r.after(9); ok {
		t.Error("after(9): event 10 was forgotten, yet ok")
	}
}
