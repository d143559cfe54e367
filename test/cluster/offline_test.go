package cluster

import (
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/proctest"
)

// offlineBound is the promise: when an instance dies, its users'
// connections leave the online state within this, with no operator action.
const offlineBound = 60 * time.Second

// TestKilledInstanceUsersGoOffline: B is killed (-9) while alice is
// connected to it only. With the default configuration, bob on A sees
// alice go offline within offlineBound, and A no longer lists her
// connections nor shows her online.
func TestKilledInstanceUsersGoOffline(t *testing.T) {
	t.Parallel()
	_, a, b := cluster2(t, nil, "alice", "bob", "ops!")
	createTeam(a, "alice", "T", "bob")
	activity := a.Subscribe("bob", activQ, map[string]any{"u": "alice"})
	b.Connect("alice")
	b.Connect("alice") // a second tab
	want(t, activity, "USER_ONLINE", "alice")
	var conns struct{ Connections []struct{ ID string } }
	a.Do("ops", `query { connections(userId: "alice") { id } }`, nil, &conns)
	if len(conns.Connections) != 2 {
		t.Fatalf("alice's connections as listed on A: %d, want her 2 on B", len(conns.Connections))
	}

	b.Kill()
	killed := time.Now()
	r, err := activity.Wait(offlineBound + 15*time.Second) // a late event is measured, then failed
	took := time.Since(killed)
	if err != nil {
		t.Fatalf("bob on A: no USER_OFFLINE of alice %v after her instance was killed: %v", took.Round(time.Second), err)
	}
	t.Logf("USER_OFFLINE %v after kill -9 of her instance", took.Round(100*time.Millisecond))
	if took > offlineBound {
		t.Errorf("USER_OFFLINE took %v, want at most %v", took, offlineBound)
	}
	if ev := decode(t, activity.Who(), r); ev.Type != "USER_OFFLINE" || ev.Presence == nil || ev.Presence.UserID != "alice" {
		t.Fatalf("bob on A got %s, want USER_OFFLINE of alice", ev)
	}
	var u struct{ User struct{ Online bool } }
	a.Do("bob", `{ user(id: "alice") { online } }`, nil, &u)
	if u.User.Online {
		t.Error("alice still online as read on A after USER_OFFLINE")
	}
	a.Do("ops", `query { connections(userId: "alice") { id } }`, nil, &conns)
	if len(conns.Connections) != 0 {
		t.Errorf("A still lists %d connections of alice on the dead instance", len(conns.Connections))
	}
	activity.Nothing(proctest.Quiet)
}
