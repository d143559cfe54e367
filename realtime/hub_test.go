package realtime

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
)

const (
	p1 = "project:1"
	p2 = "project:2"
	p3 = "project:3"
)

var u1, u2 = RoomUser("u1"), RoomUser("u2")

// subSpec is one subscription of a receipt-rule case.
type subSpec struct {
	name string
	opts SubscribeOptions
}

// step publishes an event, or (ready != "") calls Ready on a subscription.
type step struct {
	ev         *Event
	ready      string
	readyRooms []string
}

// outcome is what one subscription's client saw.
type outcome struct {
	got []string // event types, in order
	// end: "" still open, "complete" ended without error, else the errs code.
	end string
	// rooms, if non-nil, is what a still-open subscription listens to.
	rooms []string
}

func ready(name string, rooms ...string) step { return step{ready: name, readyRooms: rooms} }
func pub(e *Event) step                       { return step{ev: e} }

func TestReceiptRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		subs  []subSpec
		steps []step
		want  map[string]outcome
	}{{
		name:  "single room",
		subs:  []subSpec{{"a", SubscribeOptions{UserID: "u1", Rooms: []string{p1}}}},
		steps: []step{pub(ev("E1", p1)), pub(ev("E2", p2)), pub(ev("E3", p1))},
		want:  map[string]outcome{"a": {got: []string{"E1", "E3"}}},
	}, {
		name: "one copy for a subscription matched by three rooms",
		subs: []subSpec{
			{"a", SubscribeOptions{UserID: "u1", Rooms: []string{p1, p2, u1}}},
			{"b", SubscribeOptions{UserID: "u2", Rooms: []string{u2}}},
		},
		steps: []step{pub(ev("E1", p1, p2, u1)), pub(ev("E2", u1, p3, u1)), pub(ev("E3", p3, u2))},
		want: map[string]outcome{
			"a": {got: []string{"E1", "E2"}},
			"b": {got: []string{"E3"}},
		},
	}, {
		name: "accept filter",
		subs: []subSpec{
			{"tasks", SubscribeOptions{UserID: "u1", Rooms: []string{p1}, Accept: func(e *Event) bool { return strings.HasPrefix(e.Type, "TASK_") }}},
			{"all", SubscribeOptions{UserID: "u1", Rooms: []string{p1}}},
		},
		steps: []step{pub(ev("TASK_CREATED", p1)), pub(ev("PROJECT_UPDATED", p1)), pub(ev("TASK_DELETED", p1))},
		want: map[string]outcome{
			"tasks": {got: []string{"TASK_CREATED", "TASK_DELETED"}},
			"all":   {got: []string{"TASK_CREATED", "PROJECT_UPDATED", "TASK_DELETED"}},
		},
	}, {
		name: "join is applied before delivery",
		subs: []subSpec{
			{"follow", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}},
			{"fixed", SubscribeOptions{UserID: "u1", Rooms: []string{u1}}},
			{"other", SubscribeOptions{UserID: "u2", Rooms: []string{u2}, Follow: true}},
		},
		steps: []step{
			ready("follow"), ready("other"),
			pub(ev("BEFORE", p1)),
			pub(ctl("MEMBER_ADDED", Control{Op: Join, UserID: "u1", Room: p1}, p1)),
			pub(ev("AFTER", p1)),
			pub(ev("MINE", u1)),
		},
		want: map[string]outcome{
			"follow": {got: []string{"MEMBER_ADDED", "AFTER", "MINE"}, rooms: []string{p1, u1}},
			"fixed":  {got: []string{"MINE"}, rooms: []string{u1}},
			"other":  {got: nil, rooms: []string{u2}},
		},
	}, {
		name: "leave is applied after delivery",
		subs: []subSpec{
			{"follow", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}},
			{"project1", SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true}},
			{"project2", SubscribeOptions{UserID: "u1", Rooms: []string{p2}, EndOnLeave: true}},
			{"stayer", SubscribeOptions{UserID: "u2", Rooms: []string{p1}, EndOnLeave: true}},
		},
		steps: []step{
			ready("follow", p1, p2),
			pub(ev("E1", p1)),
			pub(ctl("MEMBER_REMOVED", Control{Op: Leave, UserID: "u1", Room: p1}, p1, u1)),
			pub(ev("E3", p1)),
			pub(ev("E4", p2)),
		},
		want: map[string]outcome{
			"follow":   {got: []string{"E1", "MEMBER_REMOVED", "E4"}, rooms: []string{p2, u1}},
			"project1": {got: []string{"E1", "MEMBER_REMOVED"}, end: string(errs.Forbidden)},
			"project2": {got: []string{"E4"}, rooms: []string{p2}},
			"stayer":   {got: []string{"E1", "MEMBER_REMOVED", "E3"}, rooms: []string{p1}},
		},
	}, {
		name: "close room completes fixed subscriptions",
		subs: []subSpec{
			{"follow", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}},
			{"fixed", SubscribeOptions{UserID: "u2", Rooms: []string{p1}, EndOnLeave: true}},
			{"plain", SubscribeOptions{UserID: "u2", Rooms: []string{p1}}},
		},
		steps: []step{
			ready("follow", p1, p2),
			pub(ctl("PROJECT_DELETED", Control{Op: CloseRoom, Room: p1}, p1)),
			pub(ev("E2", p1)),
			pub(ev("E3", p2)),
		},
		want: map[string]outcome{
			"follow": {got: []string{"PROJECT_DELETED", "E3"}, rooms: []string{p2, u1}},
			"fixed":  {got: []string{"PROJECT_DELETED"}, end: "complete"},
			// Controls act on Follow and EndOnLeave subscriptions only.
			"plain": {got: []string{"PROJECT_DELETED", "E2"}, rooms: []string{p1}},
		},
	}, {
		name: "pending: join before ready, store read missed it",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			pub(ctl("JOIN", Control{Op: Join, UserID: "u1", Room: p1}, p1)),
			ready("f"),
			pub(ev("E", p1)),
		},
		want: map[string]outcome{"f": {got: []string{"JOIN", "E"}, rooms: []string{p1, u1}}},
	}, {
		name: "pending: join before ready, store read saw it",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			pub(ctl("JOIN", Control{Op: Join, UserID: "u1", Room: p1}, p1)),
			ready("f", p1),
			pub(ev("E", p1)),
		},
		want: map[string]outcome{"f": {got: []string{"JOIN", "E"}, rooms: []string{p1, u1}}},
	}, {
		name: "pending: leave before ready, store read still saw the room",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			pub(ctl("LEAVE", Control{Op: Leave, UserID: "u1", Room: p1}, u1)),
			ready("f", p1, p2),
			pub(ev("E1", p1)),
			pub(ev("E2", p2)),
		},
		want: map[string]outcome{"f": {got: []string{"LEAVE", "E2"}, rooms: []string{p2, u1}}},
	}, {
		name: "pending: join after ready",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			ready("f"),
			pub(ctl("JOIN", Control{Op: Join, UserID: "u1", Room: p1}, p1)),
			pub(ev("E", p1)),
		},
		want: map[string]outcome{"f": {got: []string{"JOIN", "E"}, rooms: []string{p1, u1}}},
	}, {
		name: "pending: leave after ready",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			ready("f", p1),
			pub(ctl("LEAVE", Control{Op: Leave, UserID: "u1", Room: p1}, p1)),
			pub(ev("E", p1)),
		},
		want: map[string]outcome{"f": {got: []string{"LEAVE"}, rooms: []string{u1}}},
	}, {
		name: "pending: join then leave before ready",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			pub(ctl("JOIN", Control{Op: Join, UserID: "u1", Room: p1}, p1)),
			pub(ev("E1", p1)),
			pub(ctl("LEAVE", Control{Op: Leave, UserID: "u1", Room: p1}, p1)),
			ready("f", p1),
			pub(ev("E2", p1)),
		},
		want: map[string]outcome{"f": {got: []string{"JOIN", "E1", "LEAVE"}, rooms: []string{u1}}},
	}, {
		name: "pending: leave then join before ready",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			pub(ctl("LEAVE", Control{Op: Leave, UserID: "u1", Room: p1}, p1)),
			pub(ctl("JOIN", Control{Op: Join, UserID: "u1", Room: p1}, p1)),
			ready("f"),
			pub(ev("E", p1)),
		},
		want: map[string]outcome{"f": {got: []string{"JOIN", "E"}, rooms: []string{p1, u1}}},
	}, {
		name: "pending: room closed before ready",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			pub(ctl("PROJECT_DELETED", Control{Op: CloseRoom, Room: p1}, p1)),
			ready("f", p1, p2),
			pub(ev("E", p1)),
		},
		want: map[string]outcome{"f": {rooms: []string{p2, u1}}},
	}, {
		name: "pending: another user's changes are not replayed",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			pub(ctl("JOIN", Control{Op: Join, UserID: "u2", Room: p1}, p1)),
			pub(ctl("LEAVE", Control{Op: Leave, UserID: "u2", Room: p2}, p2)),
			ready("f", p2),
		},
		want: map[string]outcome{"f": {rooms: []string{p2, u1}}},
	}, {
		name: "ready is a no-op when not following or already ready",
		subs: []subSpec{
			{"fixed", SubscribeOptions{UserID: "u1", Rooms: []string{u1}}},
			{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}},
		},
		steps: []step{ready("fixed", p1), ready("f", p1), ready("f", p2), pub(ev("E1", p1)), pub(ev("E2", p2))},
		want: map[string]outcome{
			"fixed": {rooms: []string{u1}},
			"f":     {got: []string{"E1"}, rooms: []string{p1, u1}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, HubOptions{})
			subs := map[string]*Subscription{}
			sinks := map[string]*recSink{}
			for _, s := range tc.subs {
				subs[s.name], sinks[s.name] = e.sub(s.opts)
			}
			for _, st := range tc.steps {
				if st.ready != "" {
					subs[st.ready].Ready(st.readyRooms)
					continue
				}
				e.publish(st.ev)
				flush(t, e.h) // so a following Ready comes after this event
			}
			for name, want := range tc.want {
				sink := sinks[name]
				if got := sink.types(); !slices.Equal(got, want.got) {
					t.Errorf("%s received %q, want %q", name, got, want.got)
				}
				n, err, late := sink.ended()
				switch {
				case late > 0:
					t.Errorf("%s: Deliver called %d times after End", name, late)
				case n > 1:
					t.Errorf("%s: End called %d times", name, n)
				case want.end == "" && n != 0:
					t.Errorf("%s ended (%v), want it open", name, err)
				case want.end == "complete" && (n != 1 || err != nil):
					t.Errorf("%s: End called %d times with %v, want one completion", name, n, err)
				case want.end != "" && want.end != "complete" && (n != 1 || string(errs.CodeOf(err)) != want.end):
					t.Errorf("%s: End called %d times with %v, want code %s", name, n, err, want.end)
				}
				if want.rooms != nil {
					if got := subs[name].listening(); !slices.Equal(got, sorted(want.rooms)) {
						t.Errorf("%s listens to %q, want %q", name, got, sorted(want.rooms))
					}
				}
			}
		})
	}
}

func TestLeaveErrorNamesTheRoom(t *testing.T) {
	e := newEnv(t, HubOptions{})
	_, sink := e.sub(SubscribeOptions{UserID: "u1", Rooms: []string{RoomTeam("t9")}, EndOnLeave: true})
	e.publish(ctl("TEAM_MEMBER_REMOVED", Control{Op: Leave, UserID: "u1", Room: RoomTeam("t9")}, RoomTeam("t9")))
	flush(t, e.h)
	_, err, _ := sink.ended()
	if errs.CodeOf(err) != errs.Forbidden || !strings.Contains(err.Error(), "team t9") {
		t.Fatalf("End(%v), want FORBIDDEN naming team t9", err)
	}
}

// Ready racing the dispatch of membership changes (no flush in between):
// whatever the interleaving, the result is the one of applying the store
// read and then the changes in log order.
func TestReadyRacingControls(t *testing.T) {
	for i := 0; i < 200; i++ {
		func() {
			h := NewHub(HubOptions{})
			defer h.Close()
			f := h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true, Encoder: &countEnc{}, Sink: nopSink{}})
			// The store read happens before the join and the leaves: it sees p2
			// and p3. The log then joins p1 and removes p2.
			h.Enqueue(ctl("J", Control{Op: Join, UserID: "u1", Room: p1}, p1))
			h.Enqueue(ctl("L", Control{Op: Leave, UserID: "u1", Room: p2}, p2))
			f.Ready([]string{p2, p3})
			flush(t, h)
			if got, want := f.listening(), sorted([]string{u1, p1, p3}); !slices.Equal(got, want) {
				t.Fatalf("round %d: listens to %q, want %q", i, got, want)
			}
		}()
	}
}

// Ten thousand events from four publishers reach every subscriber once, in
// log order, with no gap.
func TestStrictOrder(t *testing.T) {
	e := newEnv(t, HubOptions{})
	var sinks []*recSink
	for i, rooms := range [][]string{{p1}, {p1, p2}, {p2, p1, u1}, {p1}, {p1, p3}} {
		_, s := e.sub(SubscribeOptions{UserID: "u" + string(rune('a'+i)), Rooms: rooms})
		sinks = append(sinks, s)
	}
	const publishers, each = 4, 2500
	var wg sync.WaitGroup
	for g := 0; g < publishers; g++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				rooms := []string{p1}
				if i%3 == 0 {
					rooms = []string{p2, p1, p3}
				}
				if err := e.b.Publish(context.Background(), ev("E", rooms...)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	flush(t, e.h)
	for i, s := range sinks {
		seqs := s.seqs()
		if len(seqs) != publishers*each {
			t.Errorf("subscriber %d got %d events, want %d", i, len(seqs), publishers*each)
		}
		for j, seq := range seqs {
			if seq != uint64(j+1) {
				t.Fatalf("subscriber %d: delivery %d has seq %d, want %d", i, j, seq, j+1)
			}
		}
	}
}

// One Payload per event and Encoder, however many subscriptions share it.
func TestEncodeOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		encoders int
	}{{"one shared encoder", 1}, {"two encoders", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, HubOptions{})
			encs := make([]*countEnc, tc.encoders)
			for i := range encs {
				encs[i] = &countEnc{}
			}
			var sinks []*recSink
			for i := 0; i < 1000; i++ {
				s := &recSink{encode: true}
				e.h.Subscribe(SubscribeOptions{UserID: "u", Rooms: []string{p1, p2}, Encoder: encs[i%len(encs)], Sink: s})
				sinks = append(sinks, s)
			}
			const events = 3
			for i := 0; i < events; i++ {
				e.publish(ev("E", p1, p2))
			}
			flush(t, e.h)
			for i, enc := range encs {
				if n := enc.n.Load(); n != events {
					t.Errorf("encoder %d: Encode called %d times for %d events, want %d", i, n, events, events)
				}
			}
			for i, s := range sinks {
				if len(s.payloads) != events {
					t.Fatalf("sink %d got %d payloads", i, len(s.payloads))
				}
				for k, p := range s.payloads {
					if same := sinks[i%len(encs)].payloads[k]; p != same {
						t.Fatalf("sink %d event %d: payload differs from another subscriber of its encoder", i, k)
					}
					if tc.encoders == 2 && p == sinks[(i+1)%2].payloads[k] {
						t.Fatalf("sink %d event %d: two encoders share a payload", i, k)
					}
				}
			}
		})
	}
}

// encFunc is an Encoder of a non-comparable type: it cannot be a map key.
type encFunc func(*Event) ([]byte, error)

func (f encFunc) Encode(ev *Event) ([]byte, error) { return f(ev) }

func TestNonComparableEncoder(t *testing.T) {
	e := newEnv(t, HubOptions{})
	enc := encFunc(func(ev *Event) ([]byte, error) { return []byte(ev.Type), nil })
	s := &recSink{encode: true}
	sub := e.h.Subscribe(SubscribeOptions{Rooms: []string{p1}, Encoder: enc, Sink: s})
	e.publish(ev("E", p1))
	flush(t, e.h)
	sub.Unsubscribe()
	if got := s.types(); !slices.Equal(got, []string{"E"}) {
		t.Fatalf("got %q", got)
	}
	if b, err := s.payloads[0].Bytes(); string(b) != "E" || err != nil {
		t.Fatalf("payload %q, %v", b, err)
	}
}

// Unsubscribe from another goroutine while events are dispatched: nothing
// published after it returned arrives, nothing is lost before it, End is
// never called.
func TestUnsubscribeDuringDispatch(t *testing.T) {
	e := newEnv(t, HubOptions{})
	const n = 200
	subs := make([]*Subscription, n)
	sinks := make([]*recSink, n)
	for i := range subs {
		subs[i], sinks[i] = e.sub(SubscribeOptions{UserID: "u", Rooms: []string{p1, p2}, EndOnLeave: true})
	}
	cut := make([]uint64, n)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 3000; i++ {
			if err := e.b.Publish(context.Background(), ev("E", p1, p2)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i, s := range subs {
			s.Unsubscribe()
			s.Unsubscribe() // idempotent
			cut[i] = e.b.Last().Seq
		}
	})
	wg.Wait()
	e.publish(ctl("CLOSE", Control{Op: CloseRoom, Room: p1}, p1))
	flush(t, e.h)
	for i, s := range sinks {
		seqs := s.seqs()
		for j, seq := range seqs {
			if seq != uint64(j+1) {
				t.Fatalf("sub %d: delivery %d has seq %d: a gap before unsubscribing", i, j, seq)
			}
		}
		if len(seqs) > 0 && seqs[len(seqs)-1] > cut[i] {
			t.Errorf("sub %d got seq %d, published after Unsubscribe returned (last then %d)", i, seqs[len(seqs)-1], cut[i])
		}
		if ends, err, _ := s.ended(); ends != 0 {
			t.Errorf("sub %d: End(%v) called after Unsubscribe", i, err)
		}
	}
	if st := e.h.Stats(); st.Subscriptions != 0 {
		t.Errorf("%d subscriptions left", st.Subscriptions)
	}
}

// A sink may call back into the hub from Deliver and End.
func TestSinkReentersHub(t *testing.T) {
	e := newEnv(t, HubOptions{})

	// Unsubscribe from inside Deliver: exactly the first event arrives.
	var fromDeliver *Subscription
	s1 := &recSink{}
	s1.onDeliver = func(*Payload) { fromDeliver.Unsubscribe() }
	fromDeliver = e.h.Subscribe(SubscribeOptions{Rooms: []string{p1}, Encoder: e.enc, Sink: s1})

	// Unsubscribe and Subscribe from inside End.
	var fromEnd *Subscription
	s2 := &recSink{}
	resub := &recSink{}
	s2.onEnd = func(error) {
		fromEnd.Unsubscribe()
		e.h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p1}, Encoder: e.enc, Sink: resub}).Ready(nil)
	}
	fromEnd = e.h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p2}, EndOnLeave: true, Encoder: e.enc, Sink: s2})

	e.publish(ev("E1", p1))
	e.publish(ctl("LEAVE", Control{Op: Leave, UserID: "u1", Room: p2}, p2))
	e.publish(ev("E3", p1))
	flush(t, e.h)

	if got := s1.types(); !slices.Equal(got, []string{"E1"}) {
		t.Errorf("unsubscribed in Deliver, then got %q", got)
	}
	if n, err, _ := s2.ended(); n != 1 || errs.CodeOf(err) != errs.Forbidden {
		t.Errorf("End called %d times with %v", n, err)
	}
	if got := resub.types(); !slices.Equal(got, []string{"E3"}) {
		t.Errorf("subscribed in End, then got %q", got)
	}
	if st := e.h.Stats(); st.Subscriptions != 1 {
		t.Errorf("%d subscriptions, want 1 (the one made in End)", st.Subscriptions)
	}
}

type panicSink struct {
	inDeliver, inEnd bool
	recSink
}

func (s *panicSink) Deliver(p *Payload) {
	s.recSink.Deliver(p)
	if s.inDeliver {
		panic("sink bug")
	}
}

func (s *panicSink) End(err error) {
	s.recSink.End(err)
	if s.inEnd {
		panic("sink bug in End")
	}
}

// A panicking sink or filter costs its own subscription, not dispatch.
func TestPanickingSink(t *testing.T) {
	log, logs := newTestLogger()
	e := newEnv(t, HubOptions{Logger: log})
	bad := &panicSink{inDeliver: true}
	e.h.Subscribe(SubscribeOptions{Rooms: []string{p1}, Encoder: e.enc, Sink: bad})
	badAccept := &recSink{}
	e.h.Subscribe(SubscribeOptions{Rooms: []string{p1}, Encoder: e.enc, Sink: badAccept, Accept: func(*Event) bool { panic("filter bug") }})
	badEnd := &panicSink{inEnd: true}
	e.h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p2}, EndOnLeave: true, Encoder: e.enc, Sink: badEnd})
	_, good := e.sub(SubscribeOptions{Rooms: []string{p1, p2}})

	for _, x := range []*Event{ev("E1", p1), ev("E2", p1), ctl("LEAVE", Control{Op: Leave, UserID: "u1", Room: p2}, p2), ev("E4", p1, p2)} {
		e.publish(x)
	}
	flush(t, e.h)

	if got := good.types(); !slices.Equal(got, []string{"E1", "E2", "LEAVE", "E4"}) {
		t.Errorf("healthy subscriber got %q", got)
	}
	if got := bad.types(); !slices.Equal(got, []string{"E1"}) {
		t.Errorf("panicking sink got %q, want only the first event", got)
	}
	for name, s := range map[string]*recSink{"Deliver": &bad.recSink, "Accept": badAccept} {
		if n, err, _ := s.ended(); n != 1 || errs.CodeOf(err) != errs.Internal {
			t.Errorf("panic in %s: End called %d times with %v, want INTERNAL once", name, n, err)
		}
	}
	if n, _, _ := badEnd.ended(); n != 1 {
		t.Errorf("End that panicked was called %d times", n)
	}
	if st := e.h.Stats(); st.Subscriptions != 1 {
		t.Errorf("%d subscriptions left, want the healthy one", st.Subscriptions)
	}
	for _, want := range []string{"sink bug", "filter bug", "sink bug in End"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// Publish returns at once even while dispatch is stuck in a sink; the hub
// catches up in order afterwards.
func TestPublishNeverWaitsForSubscribers(t *testing.T) {
	e := newEnv(t, HubOptions{})
	gate := make(chan struct{})
	stuck := &funcSink{deliver: func(p *Payload) {
		if p.Event.Seq == 1 {
			<-gate
		}
	}}
	e.h.Subscribe(SubscribeOptions{Rooms: []string{p1}, Encoder: e.enc, Sink: stuck})
	_, rec := e.sub(SubscribeOptions{Rooms: []string{p1}})

	const n = 1000
	published := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := e.b.Publish(context.Background(), ev("E", p1)); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	select {
	case err := <-published:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(gate)
		t.Fatal("Publish blocked while a sink was stuck")
	}
	if st := e.h.Stats(); st.InboxLen < n-1 || st.Dispatched != 0 {
		t.Errorf("while stuck: %+v, want the events queued and none dispatched", st)
	}
	close(gate)
	flush(t, e.h)
	seqs := rec.seqs()
	if len(seqs) != n || seqs[0] != 1 || seqs[n-1] != n {
		t.Fatalf("after unblocking got %d events (%v…)", len(seqs), seqs[:min(len(seqs), 3)])
	}
	// The counters move once the barrier's dispatch has finished.
	waitStats(t, e.h, func(st HubStats) bool {
		return st.InboxLen == 0 && st.Dispatched == n+1 && st.Delivered == 2*n+1
	}, "1000 events and the barrier dispatched, 2001 deliveries, empty inbox")
}

func TestHubClose(t *testing.T) {
	h := NewHub(HubOptions{})
	gate := make(chan struct{})
	var once sync.Once
	stuck := &funcSink{deliver: func(*Payload) { once.Do(func() { <-gate }) }}
	sub := h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true, Encoder: &countEnc{}, Sink: stuck})
	for i := 0; i < 100; i++ {
		h.Enqueue(ev("E", p1))
	}
	closed := make(chan struct{})
	go func() { h.Close(); close(closed) }()
	close(gate)
	<-closed
	h.Close() // idempotent

	if st := h.Stats(); st.Subscriptions != 0 || st.InboxLen != 0 {
		t.Errorf("after Close: %+v", st)
	}
	sub.Unsubscribe() // no-op, no panic

	// After Close the hub is inert: nothing is dispatched, nothing panics.
	late := &recSink{}
	s := h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p1}, Follow: true, Encoder: &countEnc{}, Sink: late})
	s.Ready([]string{p2})
	h.Enqueue(ev("E", p1))
	s.Unsubscribe()
	if got := late.types(); len(got) != 0 {
		t.Errorf("subscription made after Close got %q", got)
	}
}

// Payloads are shared, so the event a subscriber sees carries the broker's
// numbering.
func TestDeliveredEventCarriesCursor(t *testing.T) {
	e := newEnv(t, HubOptions{})
	_, s := e.sub(SubscribeOptions{Rooms: []string{p1}})
	e.publish(ev("E", p1))
	flush(t, e.h)
	got := s.events[0]
	if p, err := ParseCursor(got.Cursor); err != nil || p != (Position{Epoch: e.b.Epoch(), Seq: 1}) {
		t.Fatalf("delivered cursor %q → %+v, %v", got.Cursor, p, err)
	}
}
