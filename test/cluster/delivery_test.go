package cluster

import (
	"testing"

	"github.com/taskpulse/taskpulse/internal/proctest"
)

// TestReceiptRulesAcrossInstances: every change made through A reaches
// exactly the subscribers CONTRACT's rules name on B — a task event its
// owner, its assignee (the previous one too) and its project's members,
// each once; a project event its members; a notification its recipient —
// and nobody else. Membership changes made on A apply on B at once.
//
// The cast: alice owns P; bob is a member of P (added by the admin ops:
// he shares no team with alice); carol shares team T with alice, not P;
// dave shares nothing with anyone.
func TestReceiptRulesAcrossInstances(t *testing.T) {
	t.Parallel()
	_, a, b := cluster2(t, nil, "alice", "bob", "carol", "dave", "ops!")
	p := createProject(a, "alice", "P")
	addMember(a, "ops", p, "bob")
	createTeam(a, "alice", "T", "carol")

	tasks := map[string]*proctest.Sub{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		tasks[u] = b.Subscribe(u, taskQ, nil)
	}
	proj := map[string]*proctest.Sub{
		"alice": b.Subscribe("alice", projectQ, map[string]any{"p": p}),
		"bob":   b.Subscribe("bob", projectQ, map[string]any{"p": p}),
	}
	notes := map[string]*proctest.Sub{
		"bob":   b.Subscribe("bob", notifQ, nil),
		"carol": b.Subscribe("carol", notifQ, nil),
	}
	if e := b.Subscribe("carol", projectQ, map[string]any{"p": p}).Error(); e.Code() != "FORBIDDEN" {
		t.Fatalf("carol's projectUpdates of a project she is not in: %s (%s), want FORBIDDEN", e.Message, e.Code())
	}

	// Each step is made on A and checked on B in order: a subscriber that
	// got an extra event fails at its next expected one, or at the end.
	inP := createTask(a, "bob", "in P", p, "")
	for _, u := range []string{"alice", "bob"} {
		want(t, tasks[u], "TASK_CREATED", "in P")
		want(t, proj[u], "TASK_CREATED", "in P")
	}

	createTask(a, "alice", "for carol", "", "carol")
	want(t, tasks["alice"], "TASK_CREATED", "for carol")
	want(t, tasks["carol"], "TASK_CREATED", "for carol")

	createTask(a, "dave", "dave's own", "", "")
	want(t, tasks["dave"], "TASK_CREATED", "dave's own")

	if err := retitle(a, "bob", inP, "in P, renamed"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		want(t, tasks[u], "TASK_UPDATED", "in P, renamed")
		want(t, proj[u], "TASK_UPDATED", "in P, renamed")
	}

	handover := createTask(a, "alice", "hand over", "", "carol")
	want(t, tasks["alice"], "TASK_CREATED", "hand over")
	want(t, tasks["carol"], "TASK_CREATED", "hand over")
	a.Do("alice", `mutation($id: ID!) { assignTask(id: $id, userId: "alice") { id } }`, map[string]any{"id": handover}, nil)
	want(t, tasks["alice"], "TASK_ASSIGNED", "hand over")
	want(t, tasks["carol"], "TASK_ASSIGNED", "hand over") // the previous assignee

	a.Do("alice", `mutation { sendNotification(userId: "carol", message: "hello carol") { id } }`, nil, nil)
	want(t, notes["carol"], "NOTIFICATION_SENT", "hello carol")

	// carol joins P on A: her taskUpdates on B carries P's tasks at once.
	addMember(a, "alice", p, "carol")
	want(t, proj["alice"], "PROJECT_MEMBER_ADDED", "carol")
	want(t, proj["bob"], "PROJECT_MEMBER_ADDED", "carol")
	createTask(a, "alice", "after carol joined", p, "")
	for _, u := range []string{"alice", "bob", "carol"} {
		want(t, tasks[u], "TASK_CREATED", "after carol joined")
	}
	for _, u := range []string{"alice", "bob"} {
		want(t, proj[u], "TASK_CREATED", "after carol joined")
	}

	// bob leaves P (removed on A): his projectUpdates on B sees the
	// removal and ends FORBIDDEN; P's tasks no longer reach him, except
	// the one he owns.
	removeMember(a, "alice", p, "bob")
	want(t, proj["alice"], "PROJECT_MEMBER_REMOVED", "bob")
	want(t, proj["bob"], "PROJECT_MEMBER_REMOVED", "bob")
	if e := proj["bob"].Error(); e.Code() != "FORBIDDEN" {
		t.Fatalf("bob's projectUpdates after his removal: %s (%s), want FORBIDDEN", e.Message, e.Code())
	}
	createTask(a, "alice", "after bob left", p, "")
	for _, u := range []string{"alice", "carol"} {
		want(t, tasks[u], "TASK_CREATED", "after bob left")
	}
	want(t, proj["alice"], "TASK_CREATED", "after bob left")
	a.Do("alice", `mutation($id: ID!) { deleteTask(id: $id) }`, map[string]any{"id": inP}, nil)
	for _, u := range []string{"alice", "bob", "carol"} { // bob owns it
		want(t, tasks[u], "TASK_DELETED", "in P, renamed")
	}
	want(t, proj["alice"], "TASK_DELETED", "in P, renamed")

	for _, s := range []*proctest.Sub{tasks["alice"], tasks["bob"], tasks["carol"], tasks["dave"], proj["alice"], notes["bob"], notes["carol"]} {
		s.Nothing(proctest.Quiet)
	}
}

// TestPresenceAcrossInstances: presence is cluster-wide. alice's
// connection and updatePresence on A are seen by bob on B (events and
// queries); an admin on B lists alice's connection on A and disconnects
// it; her going offline reaches B.
func TestPresenceAcrossInstances(t *testing.T) {
	t.Parallel()
	_, a, b := cluster2(t, map[string]string{
		"PRESENCE_OFFLINE_GRACE":     "1s",
		"PRESENCE_ACTIVITY_INTERVAL": "100ms",
	}, "alice", "bob", "ops!")
	team := createTeam(a, "alice", "Core", "bob")

	activity := b.Subscribe("bob", activQ, map[string]any{"u": "alice"})
	tab := a.Connect("alice")
	want(t, activity, "USER_ONLINE", "alice")

	var set struct{ UpdatePresence struct{ CurrentPage *string } }
	tab.Execute(`mutation { updatePresence(input: {currentPage: "/board"}) { currentPage } }`, nil, &set)
	ev := want(t, activity, "USER_ACTIVITY", "alice")
	if ev.Presence.CurrentPage == nil || *ev.Presence.CurrentPage != "/board" {
		t.Fatalf("bob on B: USER_ACTIVITY without alice's page: %+v", ev.Presence)
	}

	var u struct {
		User struct {
			Online   bool
			Presence struct {
				Status      string
				CurrentPage *string
			}
		}
		TeamPresence []struct {
			UserID, Status string
			CurrentPage    *string
		}
	}
	b.Do("bob", `query($t: ID!) { user(id: "alice") { online presence { status currentPage } } teamPresence(teamId: $t) { userId status currentPage } }`, map[string]any{"t": team}, &u)
	if !u.User.Online || u.User.Presence.Status != "ONLINE" || u.User.Presence.CurrentPage == nil || *u.User.Presence.CurrentPage != "/board" {
		t.Fatalf("alice as bob reads her on B: %+v", u.User)
	}
	found := false
	for _, p := range u.TeamPresence {
		if p.UserID == "alice" {
			found = p.Status == "ONLINE" && p.CurrentPage != nil && *p.CurrentPage == "/board"
		}
	}
	if !found {
		t.Fatalf("teamPresence on B: %+v, want alice ONLINE on /board", u.TeamPresence)
	}

	var conns struct {
		Connections []struct{ ID, UserID, Transport string }
	}
	b.Do("ops", `query { connections(userId: "alice") { id userId transport } }`, nil, &conns)
	if len(conns.Connections) != 1 || conns.Connections[0].UserID != "alice" {
		t.Fatalf("connections of alice as seen on B: %+v, want her one socket on A", conns.Connections)
	}
	var n struct{ DisconnectUser int }
	b.Do("ops", `mutation { disconnectUser(userId: "alice") }`, nil, &n)
	if n.DisconnectUser != 1 {
		t.Fatalf("disconnectUser on B closed %d connections, want alice's one on A", n.DisconnectUser)
	}
	ctx, cancel := timeout(proctest.EventTimeout)
	defer cancel()
	if ce, err := tab.WaitClose(ctx); err != nil || ce.Code != 4403 {
		t.Fatalf("alice's socket on A after disconnectUser on B: %v %v, want close 4403", ce, err)
	}
	want(t, activity, "USER_OFFLINE", "alice")
}

// TestSharedRateLimit: RATE_LIMIT_PER_MIN is one allowance per user for
// the whole cluster, whichever instance each request reaches.
func TestSharedRateLimit(t *testing.T) {
	t.Parallel()
	_, a, b := cluster2(t, map[string]string{"RATE_LIMIT_PER_MIN": "6"}, "alice", "bob") // a burst of 6, then one per 10 s
	on := []*proctest.Instance{a, b}
	for i := range 6 {
		if err := tryCreateTask(on[i%2], "alice", "allowed", ""); err != nil {
			t.Fatalf("request %d of the burst, on %s: %v", i+1, on[i%2].Name, err)
		}
	}
	for _, i := range on {
		e := i.Fails("alice", createTaskM, taskInput("one too many", "", ""), "RATE_LIMITED")
		if ra, ok := e.Extensions["retryAfter"].(float64); !ok || ra < 1 || ra > 10 {
			t.Fatalf("on %s: retryAfter %v, want 1..10 seconds", i.Name, e.Extensions["retryAfter"])
		}
	}
	// bob has his own allowance, on either instance.
	if err := tryCreateTask(b, "bob", "bob's", ""); err != nil {
		t.Fatal(err)
	}
}
