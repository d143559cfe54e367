package realtime

import (
	"testing"
	"time"
)

// TestDisconnectControl: a Disconnect control closes every connection of
// its user on the hub's registry, in log order, and no one else's.
func TestDisconnectControl(t *testing.T) {
	r := NewRegistry()
	e := newEnv(t, HubOptions{Registry: r})
	now := time.Now()
	a1, a2, b1 := newConn(r, "a1", "alice", now), newConn(r, "a2", "alice", now), newConn(r, "b1", "bob", now)
	for _, c := range []*fakeConn{a1, a2, b1} {
		r.Add(c)
	}
	sub, sink := e.sub(SubscribeOptions{UserID: "alice", Rooms: []string{RoomUser("alice")}})
	defer sub.Unsubscribe()
	e.publish(ev("BEFORE", RoomUser("alice")))
	e.publish(ctl("USER_DISABLED", Control{Op: Disconnect, UserID: "alice", Code: 4403, Reason: "Forbidden: user disabled"}))
	flush(t, e.h)
	for _, c := range []*fakeConn{a1, a2} {
		if n, code, reason, _ := c.closed(); n != 1 || code != 4403 || reason != "Forbidden: user disabled" {
			t.Errorf("%s: closed %d times with %d %q, want once with 4403", c.info.ID, n, code, reason)
		}
	}
	if n, _, _, _ := b1.closed(); n != 0 {
		t.Errorf("bob's connection was closed")
	}
	if r.Online("alice") || !r.Online("bob") {
		t.Errorf("online after: alice %v bob %v", r.Online("alice"), r.Online("bob"))
	}
	if got := sink.types(); len(got) != 1 || got[0] != "BEFORE" {
		t.Errorf("alice's subscription got %v, want the event before the control", got)
	}

	// Without a registry the control is ignored.
	e2 := newEnv(t, HubOptions{})
	e2.publish(ctl("USER_DISABLED", Control{Op: Disconnect, UserID: "bob", Code: 4403}))
	flush(t, e2.h)
	if n, _, _, _ := b1.closed(); n != 0 {
		t.Errorf("a hub without registry closed a connection")
	}
}

func TestConnInContext(t *testing.T) {
	if _, ok := ConnFrom(t.Context()); ok {
		t.Fatal("a connection in an empty context")
	}
	c := newConn(NewRegistry(), "c1", "alice", time.Now())
	got, ok := ConnFrom(WithConn(t.Context(), c))
	if !ok || got != Conn(c) {
		t.Fatalf("ConnFrom = %v %v", got, ok)
	}
}
