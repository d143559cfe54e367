package main

import (
	"encoding/json"
	"errors"
	"github.com/taskpulse/taskpulse/realtime"
	"testing"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// world is the cast of the delivery tests:
//   - alice owns project P; bob is a member of P (added by the admin ops:
//     he shares no team with alice);
//   - carol shares team T with alice but is not in P;
//   - dave shares nothing with anyone.
type world struct {
	*env
	project string
	team    string // T: alice (creator) and carol
	subs    subsByUser
}

func newWorld(t *testing.T) *world {
	e := start(t, nil)
	e.users("alice", "bob", "carol", "dave", "ops!")
	p := e.createProject("alice", "P")
	e.addMember("ops", p, "bob")
	team := e.createTeam("alice", "T", "carol")
	return &world{env: e, project: p, team: team}
}

// TestTaskEventReceipt is CONTRACT's rule: a task event goes to its owner,
// its assignee and the members of its project, each once — and to nobody
// else.
func TestTaskEventReceipt(t *testing.T) {
	type change struct {
		name     string
		run      func(w *world) string // returns the task id
		typ      string
		receive  []string
		excluded []string
	}
	cases := []change{
		{
			name: "project task: owner and members",
			run:  func(w *world) string { return w.createTask("bob", "in P", w.project, "") },
			typ:  "TASK_CREATED", receive: []string{"alice", "bob"}, excluded: []string{"carol", "dave"},
		},
		{
			name: "personal task assigned to a teammate: owner and assignee",
			run:  func(w *world) string { return w.createTask("alice", "personal", "", "carol") },
			typ:  "TASK_CREATED", receive: []string{"alice", "carol"}, excluded: []string{"bob", "dave"},
		},
		{
			name: "personal unassigned task: owner only",
			run:  func(w *world) string { return w.createTask("dave", "mine", "", "") },
			typ:  "TASK_CREATED", receive: []string{"dave"}, excluded: []string{"alice", "bob", "carol"},
		},
		{
			name: "update of a project task",
			run: func(w *world) string {
				id := w.createTask("alice", "to update", w.project, "")
				w.drain()
				w.do("bob", `mutation($id: ID!) { updateTask(id: $id, input: {status: DONE}) { id } }`, map[string]any{"id": id}, nil)
				return id
			},
			typ: "TASK_UPDATED", receive: []string{"alice", "bob"}, excluded: []string{"carol", "dave"},
		},
		{
			name: "reassignment reaches the previous assignee too",
			run: func(w *world) string {
				id := w.createTask("alice", "hand over", "", "carol")
				w.drain()
				w.do("alice", `mutation($id: ID!) { assignTask(id: $id, userId: "alice") { id } }`, map[string]any{"id": id}, nil)
				return id
			},
			typ: "TASK_ASSIGNED", receive: []string{"alice", "carol"}, excluded: []string{"bob", "dave"},
		},
		{
			name: "deletion of a project task",
			run: func(w *world) string {
				id := w.createTask("bob", "to delete", w.project, "")
				w.drain()
				w.do("alice", `mutation($id: ID!) { deleteTask(id: $id) }`, map[string]any{"id": id}, nil)
				return id
			},
			typ: "TASK_DELETED", receive: []string{"alice", "bob"}, excluded: []string{"carol", "dave"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.open("alice", "bob", "carol", "dave")
			id := c.run(w)
			for _, u := range c.receive {
				ev := w.subs[u].nextTask()
				if ev.Type != c.typ || ev.Task.ID != id || ev.Cursor == "" {
					t.Fatalf("%s got %+v, want %s of %s with a cursor", u, ev, c.typ, id)
				}
			}
			for _, u := range append(c.receive, c.excluded...) {
				w.subs[u].nothing() // excluded users get nothing; receivers exactly one copy
			}
		})
	}
}

// subs of the users opened by open, by user id.
type subsByUser map[string]*live

func (w *world) open(users ...string) {
	if w.subs == nil {
		w.subs = subsByUser{}
	}
	for _, u := range users {
		w.subs[u] = w.subscribe(u, taskUpdatesQuery, nil)
	}
}

// drain discards events already delivered to every open subscription.
func (w *world) drain() {
	for _, l := range w.subs {
		for {
			if !l.tryNext() {
				break
			}
		}
	}
}

// TestOneCopyWhenMatchedThreeWays: alice owns the task, is assigned it and
// is a member of its project — three rooms, one event.
func TestOneCopyWhenMatchedThreeWays(t *testing.T) {
	w := newWorld(t)
	w.open("alice")
	id := w.createTask("alice", "all mine", w.project, "alice")
	if ev := w.subs["alice"].nextTask(); ev.Task.ID != id || ev.Type != "TASK_CREATED" {
		t.Fatalf("got %+v", ev)
	}
	w.subs["alice"].nothing()
}

// TestMembershipIsLive: an added member starts receiving on subscriptions
// already open; a removed member stops at once, and their projectUpdates
// ends with FORBIDDEN after the removal event.
func TestMembershipIsLive(t *testing.T) {
	w := newWorld(t)
	w.open("carol", "bob")

	// carol is not a member yet: she may not subscribe to the project.
	ctxSub := w.subscribe("carol", `subscription($p: ID!) { projectUpdates(projectId: $p) { type } }`, map[string]any{"p": w.project})
	if _, err := ctxSub.next(); !isOperationError(err, "FORBIDDEN") {
		t.Fatalf("non-member projectUpdates: want FORBIDDEN, got %v", err)
	}

	w.createTask("alice", "before carol joins", w.project, "")
	w.subs["bob"].nextTask()
	w.subs["carol"].nothing()

	w.addMember("alice", w.project, "carol")
	id := w.createTask("alice", "after carol joins", w.project, "")
	if ev := w.subs["carol"].nextTask(); ev.Task.ID != id {
		t.Fatalf("carol, newly added, got %+v want task %s", ev, id)
	}
	w.subs["bob"].nextTask()

	// bob watches the project, then is removed.
	pu := w.subscribe("bob", `subscription($p: ID!) { projectUpdates(projectId: $p) { type member { id } task { id } } }`, map[string]any{"p": w.project})
	w.removeMember("alice", w.project, "bob")
	r, err := pu.next()
	if err != nil {
		t.Fatalf("bob's projectUpdates: want the removal event first, got %v", err)
	}
	var d struct {
		ProjectUpdates struct {
			Type   string
			Member struct{ ID string }
		}
	}
	if err := json.Unmarshal(r.Data, &d); err != nil || d.ProjectUpdates.Type != "PROJECT_MEMBER_REMOVED" || d.ProjectUpdates.Member.ID != "bob" {
		t.Fatalf("bob's projectUpdates: want PROJECT_MEMBER_REMOVED of bob, got %s (%v)", r.Data, err)
	}
	if _, err := pu.next(); !isOperationError(err, "FORBIDDEN") {
		t.Fatalf("bob's projectUpdates after removal: want FORBIDDEN error, got %v", err)
	}

	w.createTask("alice", "after bob left", w.project, "")
	w.subs["carol"].nextTask()
	w.subs["bob"].nothing()

	// bob's taskUpdates still carries what is his by other rules, and
	// alice may no longer assign him work: they share nothing now, so to
	// her bob is as unknown as an id nobody has.
	own := w.createTask("bob", "bob's own", "", "")
	if ev := w.subs["bob"].nextTask(); ev.Task.ID != own || ev.Type != "TASK_CREATED" {
		t.Fatalf("bob: want TASK_CREATED of %s, got %+v", own, ev)
	}
	mine := w.createTask("alice", "alice's own", "", "")
	w.fails("alice", `mutation($id: ID!) { assignTask(id: $id, userId: "bob") { id } }`, map[string]any{"id": mine}, "NOT_FOUND")
}

// TestProjectDeletionCompletesProjectUpdates: members see the deletion (and
// the deletion of its tasks), then the subscription completes.
func TestProjectDeletionCompletesProjectUpdates(t *testing.T) {
	w := newWorld(t)
	task := w.createTask("bob", "doomed", w.project, "")
	w.open("bob")
	pu := w.subscribe("bob", `subscription($p: ID!) { projectUpdates(projectId: $p) { type project { id name } task { id } } }`, map[string]any{"p": w.project})
	w.do("alice", `mutation($p: ID!) { deleteProject(id: $p) }`, map[string]any{"p": w.project}, nil)

	if ev := w.subs["bob"].nextTask(); ev.Type != "TASK_DELETED" || ev.Task.ID != task {
		t.Fatalf("bob's taskUpdates: want TASK_DELETED of %s, got %+v", task, ev)
	}
	for _, want := range []string{"TASK_DELETED", "PROJECT_DELETED"} {
		r, err := pu.next()
		if err != nil {
			t.Fatalf("projectUpdates: want %s, got %v", want, err)
		}
		var d struct{ ProjectUpdates struct{ Type string } }
		_ = json.Unmarshal(r.Data, &d)
		if d.ProjectUpdates.Type != want {
			t.Fatalf("projectUpdates: want %s, got %s", want, r.Data)
		}
	}
	if _, err := pu.next(); !errors.Is(err, wsclient.ErrCompleted) {
		t.Fatalf("projectUpdates after deletion: want complete, got %v", err)
	}
}

// TestNotificationsAndSystemUpdates: a notification reaches its recipient
// only; a system update reaches everyone and only admins or services send.
func TestNotificationsAndSystemUpdates(t *testing.T) {
	w := newWorld(t)
	const nq = `subscription { notifications { type notification { message userId senderId } } }`
	carolN := w.subscribe("carol", nq, nil)
	bobN := w.subscribe("bob", nq, nil)
	w.do("alice", `mutation { sendNotification(userId: "carol", message: "hello carol") { id } }`, nil, nil)
	r, err := carolN.next()
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		Notifications struct {
			Type         string
			Notification struct{ Message, UserID, SenderID string }
		}
	}
	_ = json.Unmarshal(r.Data, &n)
	if n.Notifications.Type != "NOTIFICATION_SENT" || n.Notifications.Notification.Message != "hello carol" || n.Notifications.Notification.SenderID != "alice" {
		t.Fatalf("carol got %s", r.Data)
	}
	bobN.nothing()
	// dave shares nothing with carol: to him she is as unknown as a missing id.
	w.fails("dave", `mutation { sendNotification(userId: "carol", message: "hi") { id } }`, nil, "NOT_FOUND")

	const sq = `subscription { systemUpdates { type message cursor } }`
	all := []*live{w.subscribe("alice", sq, nil), w.subscribe("dave", sq, nil)}
	w.fails("bob", `mutation { publishSystemUpdate(message: "nope") }`, nil, "FORBIDDEN")
	w.do("ops", `mutation { publishSystemUpdate(message: "maintenance at noon") }`, nil, nil)
	for _, l := range all {
		r, err := l.next()
		if err != nil {
			t.Fatalf("%s: %v", l.user, err)
		}
		var s struct {
			SystemUpdates struct{ Type, Message string }
		}
		_ = json.Unmarshal(r.Data, &s)
		if s.SystemUpdates.Type != "SYSTEM_UPDATE" || s.SystemUpdates.Message != "maintenance at noon" {
			t.Fatalf("%s got %s", l.user, r.Data)
		}
		l.nothing()
	}
}

// TestCursorsIncreaseAndResume: cursors are opaque and grow with the log;
// resuming from one replays exactly what came after it, then goes live; a
// cursor of another history is CURSOR_EXPIRED and a malformed one
// BAD_USER_INPUT — never a silent gap.
func TestCursorsIncreaseAndResume(t *testing.T) {
	w := newWorld(t)
	w.open("alice")
	w.createTask("alice", "one", w.project, "")
	w.createTask("alice", "two", w.project, "")
	w.createTask("alice", "three", w.project, "")
	a, b, c := w.subs["alice"].nextTask(), w.subs["alice"].nextTask(), w.subs["alice"].nextTask()
	if a.Task.Title != "one" || b.Task.Title != "two" || c.Task.Title != "three" {
		t.Fatalf("order: got %q, %q, %q", a.Task.Title, b.Task.Title, c.Task.Title)
	}
	if a.Cursor == b.Cursor || b.Cursor == c.Cursor {
		t.Fatalf("events share cursors: %q %q %q", a.Cursor, b.Cursor, c.Cursor)
	}

	resumed := w.subscribe("alice", `subscription($a: String) { taskUpdates(after: $a) { type cursor task { title } } }`, map[string]any{"a": a.Cursor})
	for _, want := range []taskEvent{b, c} {
		if got := resumed.nextTask(); got.Task.Title != want.Task.Title || got.Cursor != want.Cursor {
			t.Fatalf("replay: got %q at %q, want %q at %q", got.Task.Title, got.Cursor, want.Task.Title, want.Cursor)
		}
	}
	w.createTask("alice", "four", w.project, "")
	if got := resumed.nextTask(); got.Task.Title != "four" {
		t.Fatalf("live after the replay: got %q, want four", got.Task.Title)
	}
	resumed.nothing()

	otherHistory := realtime.Position{Epoch: "epoch_of_another_database", Seq: 1}.Cursor()
	for _, c := range []struct{ after, code string }{{otherHistory, "CURSOR_EXPIRED"}, {"not-a-cursor", "BAD_USER_INPUT"}} {
		l := w.subscribe("alice", `subscription($a: String) { taskUpdates(after: $a) { type } }`, map[string]any{"a": c.after})
		if _, err := l.next(); !isOperationError(err, c.code) {
			t.Fatalf("after %q: want %s, got %v", c.after, c.code, err)
		}
	}
}

// isOperationError reports whether err is a protocol `error` message whose
// first error has the given extensions.code.
func isOperationError(err error, code string) bool {
	var oe *wsclient.OperationError
	if !errors.As(err, &oe) || len(oe.Errors) == 0 {
		return false
	}
	got, _ := oe.Errors[0].Extensions["code"].(string)
	return got == code
}
