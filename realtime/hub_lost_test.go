package realtime

import (
	"testing"

	"github.com/taskpulse/taskpulse/errs"
)

// A gap in the log this instance follows ends the subscriptions that should
// have received it with CURSOR_EXPIRED, once each, after the events before
// the gap; a subscription anchored after the gap carries on.
func TestLostEndsSubscriptionsBeforeTheGap(t *testing.T) {
	h := NewHub(HubOptions{})
	t.Cleanup(h.Close)
	sub := func(after uint64, rooms ...string) *recSink {
		s := &recSink{}
		h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: rooms, After: after, Follow: true, Encoder: &countEnc{}, Sink: s})
		return s
	}
	twoRooms := sub(0, p1, u1) // listed in two rooms and by user: ended once
	oneRoom := sub(0, p2)
	later := sub(20, p1)

	h.Enqueue(&Event{Type: "BEFORE", Rooms: []string{p1, p2}, Seq: 5})
	h.Lost(5, 10)
	h.Enqueue(&Event{Type: "AFTER", Rooms: []string{p1, p2}, Seq: 21})
	flush(t, h)

	for name, s := range map[string]*recSink{"two rooms": twoRooms, "one room": oneRoom} {
		n, err, late := s.ended()
		if n != 1 || errs.CodeOf(err) != errs.CursorExpired || late != 0 {
			t.Errorf("%s: ended %d times with %v (%d late deliveries), want once with CURSOR_EXPIRED", name, n, err, late)
		}
		if got := s.types(); len(got) != 1 || got[0] != "BEFORE" {
			t.Errorf("%s: saw %v, want [BEFORE]", name, got)
		}
	}
	if n, _, _ := later.ended(); n != 0 {
		t.Errorf("subscription anchored after the gap ended")
	}
	if got := later.types(); len(got) != 1 || got[0] != "AFTER" {
		t.Errorf("subscription anchored after the gap saw %v, want [AFTER]", got)
	}
	if got := h.Stats().Subscriptions; got != 1 {
		t.Errorf("%d subscriptions left, want 1", got)
	}
}
