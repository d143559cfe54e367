package realtime

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// step is one action of a receipt-rule case, in order.
type step struct {
	ev *Event // publish it
	// sub subscribes a subscription now; anchored sets its After to the
	// broker's last seq, as a resolver does under the ordering lock.
	sub      *subSpec
	anchored bool
	// hold makes dispatch wait (behind a sink blocked on the first event
	// published after it) until release, so the steps between them happen
	// while the events they publish are queued, not yet dispatched.
	hold, release bool
}

// outcome is what one subscription's client saw.
type outcome struct {
	got []string // event types, in order
	// end: "" still open, "complete" ended without error, else the errs code.
	end string
	// rooms, if non-nil, is what a still-open subscription listens to.
	rooms []string
}

func pub(e *Event) step { return step{ev: e} }

// subAt subscribes anchored at the current end of the log.
func subAt(name string, opts SubscribeOptions) step {
	return step{sub: &subSpec{name, opts}, anchored: true}
}

// subNow subscribes unanchored (After 0).
func subNow(name string, opts SubscribeOptions) step { return step{sub: &subSpec{name, opts}} }

var (
	hold    = step{hold: true}
	release = step{release: true}
)

func join(u, room string, rooms ...string) *Event {
	return ctl("JOIN", Control{Op: Join, UserID: u, Room: room}, rooms...)
}

func leave(u, room string, rooms ...string) *Event {
	return ctl("LEAVE", Control{Op: Leave, UserID: u, Room: room}, rooms...)
}

func named(typ string, e *Event) *Event { e.Type = typ; return e }

func TestReceiptRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		subs  []subSpec // subscribed before the steps, unanchored
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
			pub(ev("BEFORE", p1)),
			pub(join("u1", p1, p1)),
			pub(ev("AFTER", p1)),
			pub(ev("MINE", u1)),
		},
		want: map[string]outcome{
			"follow": {got: []string{"JOIN", "AFTER", "MINE"}, rooms: []string{p1, u1}},
			"fixed":  {got: []string{"MINE"}, rooms: []string{u1}},
			"other":  {got: nil, rooms: []string{u2}},
		},
	}, {
		name: "leave is applied after delivery",
		subs: []subSpec{
			{"follow", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p1, p2}, Follow: true}},
			{"project1", SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true}},
			{"project2", SubscribeOptions{UserID: "u1", Rooms: []string{p2}, EndOnLeave: true}},
			{"stayer", SubscribeOptions{UserID: "u2", Rooms: []string{p1}, EndOnLeave: true}},
		},
		steps: []step{
			pub(ev("E1", p1)),
			pub(leave("u1", p1, p1, u1)),
			pub(ev("E3", p1)),
			pub(ev("E4", p2)),
		},
		want: map[string]outcome{
			"follow":   {got: []string{"E1", "LEAVE", "E4"}, rooms: []string{p2, u1}},
			"project1": {got: []string{"E1", "LEAVE"}, end: string(errs.Forbidden)},
			"project2": {got: []string{"E4"}, rooms: []string{p2}},
			"stayer":   {got: []string{"E1", "LEAVE", "E3"}, rooms: []string{p1}},
		},
	}, {
		name: "join then leave",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}}},
		steps: []step{
			pub(join("u1", p1, p1)),
			pub(ev("E1", p1)),
			pub(leave("u1", p1, p1)),
			pub(ev("E2", p1)),
		},
		want: map[string]outcome{"f": {got: []string{"JOIN", "E1", "LEAVE"}, rooms: []string{u1}}},
	}, {
		name: "another user's controls do not move a subscription",
		subs: []subSpec{{"f", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p2}, Follow: true}}},
		steps: []step{
			pub(join("u2", p1, p1)),
			pub(leave("u2", p2, p2)),
			pub(ev("E", p2)),
		},
		want: map[string]outcome{"f": {got: []string{"LEAVE", "E"}, rooms: []string{p2, u1}}},
	}, {
		name: "close room completes fixed subscriptions",
		subs: []subSpec{
			{"follow", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p1, p2}, Follow: true}},
			{"fixed", SubscribeOptions{UserID: "u2", Rooms: []string{p1}, EndOnLeave: true}},
			{"plain", SubscribeOptions{UserID: "u2", Rooms: []string{p1}}},
		},
		steps: []step{
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
		// Review finding 1: u1 left p1 and rejoined; both are queued when u1
		// subscribes (the membership check passes). The queued leave must
		// not end the fresh subscription; a later one does.
		name: "anchored: leave and re-join queued before subscribing",
		steps: []step{
			hold,
			pub(leave("u1", p1, p1)),
			pub(join("u1", p1, p1)),
			subAt("project", SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true}),
			subAt("tasks", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p1}, Follow: true}),
			pub(ev("E1", p1)),
			release,
			pub(ev("E2", p1)),
			pub(named("LEAVE2", leave("u1", p1, p1))),
			pub(ev("E3", p1)),
		},
		want: map[string]outcome{
			"project": {got: []string{"E1", "E2", "LEAVE2"}, end: string(errs.Forbidden)},
			"tasks":   {got: []string{"E1", "E2", "LEAVE2"}, rooms: []string{u1}},
		},
	}, {
		// The same queue without an anchor: the stale leave ends the
		// subscription. This is what the anchor prevents, and shows the
		// hold really keeps the events queued.
		name: "unanchored: a queued leave ends a subscription made after it",
		steps: []step{
			hold,
			pub(leave("u1", p1, p1)),
			pub(join("u1", p1, p1)),
			subNow("project", SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true}),
			release,
			pub(ev("E1", p1)),
		},
		want: map[string]outcome{"project": {got: []string{"LEAVE"}, end: string(errs.Forbidden)}},
	}, {
		// Review finding 2: an event of p1 queued before u1 joined p1 must
		// not reach a subscription made after the join.
		name: "anchored: an event queued before the join is not delivered",
		steps: []step{
			hold,
			pub(ev("OLD", p1)),
			pub(join("u1", p1, p1)),
			subAt("tasks", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p1}, Follow: true}),
			subAt("project", SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true}),
			pub(ev("NEW1", p1)),
			release,
			pub(ev("NEW2", p1)),
		},
		want: map[string]outcome{
			"tasks":   {got: []string{"NEW1", "NEW2"}, rooms: []string{p1, u1}},
			"project": {got: []string{"NEW1", "NEW2"}, rooms: []string{p1}},
		},
	}, {
		name: "unanchored: a queued event leaks to a subscription made after it",
		steps: []step{
			hold,
			pub(ev("OLD", p1)),
			pub(join("u1", p1, p1)),
			subNow("tasks", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p1}, Follow: true}),
			release,
		},
		want: map[string]outcome{"tasks": {got: []string{"OLD", "JOIN"}, rooms: []string{p1, u1}}},
	}, {
		// The snapshot no longer has p1; the queued leave is not applied
		// (nothing to do), a join after the anchor is.
		name: "anchored: a queued leave is ignored, a later join applies",
		steps: []step{
			hold,
			pub(leave("u1", p1, p1, u1)),
			subAt("tasks", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p2}, Follow: true}),
			pub(join("u1", p1, p1)),
			pub(ev("E", p1)),
			release,
		},
		want: map[string]outcome{"tasks": {got: []string{"JOIN", "E"}, rooms: []string{p1, p2, u1}}},
	}, {
		// Controls at or before the anchor are the snapshot's business: a
		// queued join of a room the snapshot lacks is not applied.
		name: "anchored: a queued join is not applied",
		steps: []step{
			hold,
			pub(join("u1", p3, p3)),
			subAt("tasks", SubscribeOptions{UserID: "u1", Rooms: []string{u1}, Follow: true}),
			pub(ev("E", p3)),
			release,
		},
		want: map[string]outcome{"tasks": {got: nil, rooms: []string{u1}}},
	}, {
		name: "anchored: a queued close room is ignored",
		steps: []step{
			hold,
			pub(ctl("PROJECT_DELETED", Control{Op: CloseRoom, Room: p1}, p1)),
			subAt("fixed", SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true}),
			subAt("follow", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p1}, Follow: true}),
			release,
			pub(ev("E", p1)),
		},
		want: map[string]outcome{
			"fixed":  {got: []string{"E"}, rooms: []string{p1}},
			"follow": {got: []string{"E"}, rooms: []string{p1, u1}},
		},
	}, {
		name: "demote ends the user's privileged subscriptions only",
		subs: []subSpec{
			{"privileged", SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true, Privileged: true}},
			{"member", SubscribeOptions{UserID: "u1", Rooms: []string{p2}, EndOnLeave: true}},
			{"follow", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p1}, Follow: true}},
			{"other admin", SubscribeOptions{UserID: "u2", Rooms: []string{p1}, EndOnLeave: true, Privileged: true}},
		},
		steps: []step{
			pub(ev("E1", p1)),
			pub(ctl("DEMOTE", Control{Op: Demote, UserID: "u1"})),
			pub(ev("E2", p1)),
		},
		want: map[string]outcome{
			"privileged":  {got: []string{"E1"}, end: string(errs.Forbidden)},
			"member":      {got: nil, rooms: []string{p2}},
			"follow":      {got: []string{"E1", "E2"}, rooms: []string{p1, u1}},
			"other admin": {got: []string{"E1", "E2"}, rooms: []string{p1}},
		},
	}, {
		// A subscription made after the demotion was authorized without
		// the admin rights (or with new ones): the queued demote is not its.
		name: "anchored: a queued demote is ignored",
		steps: []step{
			hold,
			pub(ctl("DEMOTE", Control{Op: Demote, UserID: "u1"})),
			subAt("privileged", SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true, Privileged: true}),
			release,
			pub(ev("E", p1)),
		},
		want: map[string]outcome{"privileged": {got: []string{"E"}, rooms: []string{p1}}},
	}, {
		name: "anchored: events already dispatched change nothing",
		steps: []step{
			pub(join("u1", p1, p1)),
			pub(ev("OLD", p1)),
			subAt("tasks", SubscribeOptions{UserID: "u1", Rooms: []string{u1, p1}, Follow: true}),
			pub(ev("NEW", p1)),
		},
		want: map[string]outcome{"tasks": {got: []string{"NEW"}, rooms: []string{p1, u1}}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, HubOptions{})
			subs := map[string]*Subscription{}
			sinks := map[string]*recSink{}
			subscribe := func(s subSpec) {
				subs[s.name], sinks[s.name] = e.sub(s.opts)
			}
			for _, s := range tc.subs {
				subscribe(s)
			}
			var gate chan struct{}
			for _, st := range tc.steps {
				switch {
				case st.hold:
					gate = e.hold()
				case st.release:
					close(gate)
					gate = nil
				case st.sub != nil:
					spec := *st.sub
					if st.anchored {
						spec.opts.After = e.b.Last().Seq
					}
					subscribe(spec)
				default:
					e.publish(st.ev)
					if gate == nil {
						flush(t, e.h) // so the next step comes after this event
					}
				}
			}
			if gate != nil {
				close(gate)
			}
			flush(t, e.h)
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

// Subscribing anchored while the events before the anchor are still being
// dispatched (no hold, no flush: any interleaving): the subscription sees
// exactly the events after its anchor, and only their controls.
func TestAnchorRacingDispatch(t *testing.T) {
	for i := 0; i < 200; i++ {
		func() {
			b := NewMemoryBroker(MemoryBrokerOptions{})
			h := NewHub(HubOptions{})
			defer h.Close()
			defer b.Close()
			if err := b.Start(h.Enqueue); err != nil {
				t.Fatal(err)
			}
			publish := func(evs ...*Event) {
				for _, e := range evs {
					if err := b.Publish(context.Background(), e); err != nil {
						t.Fatal(err)
					}
				}
			}
			// u1 was a member of p1 and p2; the log then removes and re-adds
			// it to p1 and removes it from p2.
			publish(ev("E0", p1), leave("u1", p1, p1), join("u1", p1, p1), ev("E1", p1), leave("u1", p2, p2), ev("E2", p2))
			// What a resolver reads at this point: member of p1 only.
			after := b.Last().Seq
			proj, tasks := &recSink{}, &recSink{}
			h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p1}, After: after, EndOnLeave: true, Encoder: &countEnc{}, Sink: proj})
			f := h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{u1, p1}, After: after, Follow: true, Encoder: &countEnc{}, Sink: tasks})
			publish(ev("E3", p1), ev("E4", p2), join("u1", p3, p3), ev("E5", p3))
			flush(t, h)

			if got, want := proj.types(), []string{"E3"}; !slices.Equal(got, want) {
				t.Fatalf("round %d: project subscription got %q, want %q", i, got, want)
			}
			if n, err, _ := proj.ended(); n != 0 {
				t.Fatalf("round %d: project subscription ended: %v", i, err)
			}
			if got, want := tasks.types(), []string{"E3", "JOIN", "E5"}; !slices.Equal(got, want) {
				t.Fatalf("round %d: following subscription got %q, want %q", i, got, want)
			}
			if got, want := f.listening(), sorted([]string{u1, p1, p3}); !slices.Equal(got, want) {
				t.Fatalf("round %d: listens to %q, want %q", i, got, want)
			}
		}()
	}
}

// An event enqueued without a broker number has no place in the log: it
// reaches anchored subscriptions too (the hub's own barrier events rely on
// it).
func TestUnnumberedEventIgnoresAnchor(t *testing.T) {
	h := NewHub(HubOptions{})
	defer h.Close()
	s := &recSink{}
	h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p1}, After: 1 << 40, Encoder: &countEnc{}, Sink: s})
	h.Enqueue(&Event{Type: "UNNUMBERED", Rooms: []string{p1}})
	h.Enqueue(&Event{Type: "OLD", Rooms: []string{p1}, Seq: 1 << 40})
	h.Enqueue(&Event{Type: "NEW", Rooms: []string{p1}, Seq: 1<<40 + 1})
	flush(t, h)
	if got, want := s.types(), []string{"UNNUMBERED", "NEW"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
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

// ifaceEnc is comparable by type (a struct with an interface field) but
// not by value when the field holds a func: hashing it would panic.
type ifaceEnc struct{ render any }

func (e ifaceEnc) Encode(ev *Event) ([]byte, error) {
	return e.render.(func(*Event) []byte)(ev), nil
}

func TestEncoderComparableTypeUncomparableValue(t *testing.T) {
	e := newEnv(t, HubOptions{})
	enc := ifaceEnc{render: func(ev *Event) []byte { return []byte("<" + ev.Type + ">") }}
	var sinks [2]*recSink
	var subs [2]*Subscription
	for i := range sinks {
		sinks[i] = &recSink{encode: true}
		subs[i] = e.h.Subscribe(SubscribeOptions{Rooms: []string{p1}, Encoder: enc, Sink: sinks[i]})
	}
	e.publish(ev("E", p1))
	flush(t, e.h)
	for i, s := range sinks {
		subs[i].Unsubscribe()
		if len(s.payloads) != 1 {
			t.Fatalf("sink %d got %d payloads, want 1", i, len(s.payloads))
		}
		if b, err := s.payloads[0].Bytes(); string(b) != "<E>" || err != nil {
			t.Fatalf("sink %d payload %q, %v", i, b, err)
		}
	}
	if st := e.h.Stats(); st.Subscriptions != 0 {
		t.Errorf("%d subscriptions left", st.Subscriptions)
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
		e.h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p1}, Follow: true, Encoder: e.enc, Sink: resub})
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

// Close stops dispatch at the next event: the one being delivered
// finishes, the events still queued are dropped.
func TestHubClose(t *testing.T) {
	h := NewHub(HubOptions{})
	entered, gate := make(chan struct{}), make(chan struct{})
	var delivered atomic.Int64
	stuck := &funcSink{deliver: func(*Payload) {
		if delivered.Add(1) == 1 {
			close(entered)
			<-gate
		}
	}}
	sub := h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p1}, EndOnLeave: true, Encoder: &countEnc{}, Sink: stuck})
	const total = 100
	for i := 0; i < total; i++ {
		h.Enqueue(ev("E", p1))
	}
	<-entered // dispatch is inside the first event
	closed := make(chan struct{})
	go func() { h.Close(); close(closed) }()
	<-h.done // Close has begun: the loop will stop before its next event
	close(gate)
	<-closed
	h.Close() // idempotent

	st := h.Stats()
	if st.Dispatched != 1 || delivered.Load() != 1 {
		t.Errorf("after Close: %d of %d events dispatched, %d delivered; want the one in progress only", st.Dispatched, total, delivered.Load())
	}
	if st.Subscriptions != 0 || st.InboxLen != 0 {
		t.Errorf("after Close: %+v, want no subscriptions and an empty inbox", st)
	}
	sub.Unsubscribe() // no-op, no panic

	// After Close the hub is inert: nothing is dispatched, nothing panics.
	late := &recSink{}
	s := h.Subscribe(SubscribeOptions{UserID: "u1", Rooms: []string{p1}, Follow: true, Encoder: &countEnc{}, Sink: late})
	h.Enqueue(ev("E", p1))
	s.Unsubscribe()
	if got := late.types(); len(got) != 0 {
		t.Errorf("subscription made after Close got %q", got)
	}
}

// The loop keeps a drained batch's memory for the next swap unless a burst
// grew it beyond maxIdleBatch.
func TestReuseBatch(t *testing.T) {
	for _, tc := range []struct {
		cap  int
		keep bool
	}{{0, true}, {16, true}, {maxIdleBatch, true}, {maxIdleBatch + 1, false}, {4 * maxIdleBatch, false}} {
		batch := make([]*Event, tc.cap/2, tc.cap)
		got := reuseBatch(batch)
		switch {
		case len(got) != 0:
			t.Errorf("cap %d: reused batch has length %d, want 0", tc.cap, len(got))
		case tc.keep && cap(got) != tc.cap:
			t.Errorf("cap %d: reused with cap %d, want the same slice", tc.cap, cap(got))
		case !tc.keep && got != nil:
			t.Errorf("cap %d: kept (cap %d), want it let go (nil)", tc.cap, cap(got))
		}
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
