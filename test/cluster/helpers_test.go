package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/proctest"
	"github.com/taskpulse/taskpulse/internal/wsclient"
	"github.com/taskpulse/taskpulse/realtime"
)

// Subscriptions as the tests open them: every field a test looks at, and
// `after` optional (omitted from vars when empty).
const (
	taskQ    = `subscription($a: String) { taskUpdates(after: $a) { type cursor task { id title projectId userId assignedTo } } }`
	projectQ = `subscription($p: ID!, $a: String) { projectUpdates(projectId: $p, after: $a) { type cursor project { id } task { id title } member { id } } }`
	notifQ   = `subscription($a: String) { notifications(after: $a) { type cursor notification { id message userId } } }`
	teamQ    = `subscription($t: ID!, $a: String) { teamUpdates(teamId: $t, after: $a) { type cursor team { id } member { id } presence { userId status } } }`
	activQ   = `subscription($u: ID!) { userActivity(userId: $u) { type cursor presence { userId status currentPage } } }`
)

// event is any event a test subscribes to, as the client decodes it.
type event struct {
	Type    string
	Cursor  string
	Task    *struct{ ID, Title string }
	Project *struct{ ID string }
	Member  *struct{ ID string }

	Notification *struct{ ID, Message, UserID string }
	Presence     *struct {
		UserID, Status string
		CurrentPage    *string
	}
}

// what an event is about, for messages and comparisons: "TASK_UPDATED
// t1 'a-3'", "PROJECT_MEMBER_REMOVED bob".
func (e event) String() string {
	s := e.Type
	switch {
	case e.Task != nil:
		s += fmt.Sprintf(" %s %q", e.Task.ID, e.Task.Title)
	case e.Member != nil:
		s += " " + e.Member.ID
	case e.Notification != nil:
		s += fmt.Sprintf(" %q", e.Notification.Message)
	case e.Presence != nil:
		s += " " + e.Presence.UserID + " " + e.Presence.Status
	}
	return s
}

func (e event) title() string {
	if e.Task == nil {
		return ""
	}
	return e.Task.Title
}

// next waits for s's next event, whatever its root field.
func next(t *testing.T, s *proctest.Sub) event {
	t.Helper()
	var root map[string]event
	s.NextData(&root)
	return only(t, s.Who(), root)
}

// decode is the event of a result taken with Sub.Wait.
func decode(t *testing.T, who string, r wsclient.Result) event {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("%s: errors %+v", who, r.Errors)
	}
	var root map[string]event
	if err := json.Unmarshal(r.Data, &root); err != nil {
		t.Fatalf("%s: decode %s: %v", who, r.Data, err)
	}
	return only(t, who, root)
}

func only(t *testing.T, who string, root map[string]event) event {
	t.Helper()
	if len(root) != 1 {
		t.Fatalf("%s: want one root field, got %v", who, root)
	}
	for _, ev := range root {
		return ev
	}
	panic("unreachable")
}

// want waits for s's next event and checks its type and title (or
// member, or message): "" matches any.
func want(t *testing.T, s *proctest.Sub, typ, about string) event {
	t.Helper()
	ev := next(t, s)
	got := ev.title()
	switch {
	case ev.Member != nil:
		got = ev.Member.ID
	case ev.Notification != nil:
		got = ev.Notification.Message
	case ev.Presence != nil:
		got = ev.Presence.UserID
	}
	if ev.Type != typ || about != "" && got != about {
		t.Fatalf("%s: got %s, want %s %s", s.Who(), ev, typ, about)
	}
	if ev.Cursor == "" {
		t.Fatalf("%s: %s without a cursor", s.Who(), ev)
	}
	return ev
}

// collect waits for n events on s.
func collect(t *testing.T, s *proctest.Sub, n int) []event {
	t.Helper()
	out := make([]event, 0, n)
	for len(out) < n {
		out = append(out, next(t, s))
	}
	return out
}

// pos is a cursor's place in the log; a malformed cursor fails the test.
func pos(t *testing.T, cursor string) realtime.Position {
	t.Helper()
	p, err := realtime.ParseCursor(cursor)
	if err != nil {
		t.Fatalf("cursor %q from the server does not parse: %v", cursor, err)
	}
	return p
}

// gapless checks that evs are consecutive positions of one epoch: every
// event of the log, once, in order (the tests' databases have no other
// writer, so the events a subscriber is owed are all of them).
func gapless(t *testing.T, who string, evs []event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		a, b := pos(t, evs[i-1].Cursor), pos(t, evs[i].Cursor)
		if a.Epoch != b.Epoch || b.Seq != a.Seq+1 {
			t.Fatalf("%s: event %d %s at %s:%d follows %s at %s:%d: want the next position of the log", who, i, evs[i], b.Epoch, b.Seq, evs[i-1], a.Epoch, a.Seq)
		}
	}
}

// increasing checks that evs come in log order, each once.
func increasing(t *testing.T, who string, evs []event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		a, b := pos(t, evs[i-1].Cursor), pos(t, evs[i].Cursor)
		if a.Epoch != b.Epoch || b.Seq <= a.Seq {
			t.Fatalf("%s: event %d %s at %d after %s at %d: not in log order", who, i, evs[i], b.Seq, evs[i-1], a.Seq)
		}
	}
}

// sameEvents checks that two subscribers saw the same events (type,
// subject, cursor) in the same order.
func sameEvents(t *testing.T, whoA string, a []event, whoB string, b []event) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s saw %d events, %s %d", whoA, len(a), whoB, len(b))
	}
	for i := range a {
		if a[i].String() != b[i].String() || a[i].Cursor != b[i].Cursor {
			t.Fatalf("event %d: %s saw %s (%s), %s saw %s (%s)", i, whoA, a[i], a[i].Cursor, whoB, b[i], b[i].Cursor)
		}
	}
}

func titles(evs []event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.title()
	}
	return out
}

// after is the variables of a subscription resuming after cursor
// (none when cursor is empty), plus extra.
func after(cursor string, extra map[string]any) map[string]any {
	vars := map[string]any{}
	for k, v := range extra {
		vars[k] = v
	}
	if cursor != "" {
		vars["a"] = cursor
	}
	return vars
}

// Data building, through any instance.

func createProject(i *proctest.Instance, owner, name string) string {
	var out struct{ CreateProject struct{ ID string } }
	i.Do(owner, `mutation($n: String!) { createProject(input: {name: $n}) { id } }`, map[string]any{"n": name}, &out)
	return out.CreateProject.ID
}

func addMember(i *proctest.Instance, by, project, user string) {
	i.Do(by, `mutation($p: ID!, $u: ID!) { addProjectMember(projectId: $p, userId: $u) { id } }`, map[string]any{"p": project, "u": user}, nil)
}

func removeMember(i *proctest.Instance, by, project, user string) {
	i.Do(by, `mutation($p: ID!, $u: ID!) { removeProjectMember(projectId: $p, userId: $u) { id } }`, map[string]any{"p": project, "u": user}, nil)
}

// createTeam creates a team whose members joined with consent: invited by
// the creator, each accepted.
func createTeam(i *proctest.Instance, creator, name string, members ...string) string {
	var out struct{ CreateTeam struct{ ID string } }
	i.Do(creator, `mutation($n: String!) { createTeam(input: {name: $n}) { id } }`, map[string]any{"n": name}, &out)
	for _, m := range members {
		i.Do(creator, `mutation($t: ID!, $u: ID!) { addTeamMember(teamId: $t, userId: $u) { id } }`, map[string]any{"t": out.CreateTeam.ID, "u": m}, nil)
		i.Do(m, `mutation($t: ID!) { acceptInvitation(teamId: $t) { id } }`, map[string]any{"t": out.CreateTeam.ID}, nil)
	}
	return out.CreateTeam.ID
}

const createTaskM = `mutation($in: CreateTaskInput!) { createTask(input: $in) { id } }`

// createTask creates a task as user; project and assignee may be "".
func createTask(i *proctest.Instance, user, title, project, assignee string) string {
	var out struct{ CreateTask struct{ ID string } }
	i.Do(user, createTaskM, taskInput(title, project, assignee), &out)
	return out.CreateTask.ID
}

// tryCreateTask is createTask for goroutines: its error, not a failure.
func tryCreateTask(i *proctest.Instance, user, title, project string) error {
	return i.Try(user, createTaskM, taskInput(title, project, ""), nil)
}

func taskInput(title, project, assignee string) map[string]any {
	in := map[string]any{"title": title}
	if project != "" {
		in["projectId"] = project
	}
	if assignee != "" {
		in["assignedTo"] = assignee
	}
	return map[string]any{"in": in}
}

const updateTaskM = `mutation($id: ID!, $t: String!) { updateTask(id: $id, input: {title: $t}) { id } }`

// retitle renames a task: the tests' TASK_UPDATED, told apart by title.
func retitle(i *proctest.Instance, user, task, title string) error {
	return i.Try(user, updateTaskM, map[string]any{"id": task, "t": title}, nil)
}

// cluster2 is a cluster of two instances, A and B, with the users given,
// on the shared PostgreSQL and Redis.
func cluster2(t *testing.T, env map[string]string, users ...string) (*proctest.Cluster, *proctest.Instance, *proctest.Instance) {
	t.Helper()
	c := proctest.New(t, proctest.Options{Env: env})
	c.Users(users...)
	return c, c.Start("A", nil), c.Start("B", nil)
}

// seqs is the log positions of evs, for messages.
func seqs(t *testing.T, evs []event) string {
	var b strings.Builder
	for i, ev := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d", pos(t, ev.Cursor).Seq)
	}
	return b.String()
}

func timeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
