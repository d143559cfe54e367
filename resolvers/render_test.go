package resolvers

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/graph"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/sqlite"
)

// guardStore fails the test on any read made while an event is rendered:
// rendering must resolve every field from the event.
type guardStore struct {
	store.Store
	t *testing.T
}

func (g guardStore) check(ctx context.Context, what string) {
	if _, rendering := realtime.RenderFrom(ctx); rendering {
		g.t.Errorf("store read %s while rendering an event", what)
	}
}

func (g guardStore) User(ctx context.Context, id string) (store.User, error) {
	g.check(ctx, "User")
	return g.Store.User(ctx, id)
}
func (g guardStore) Team(ctx context.Context, id string) (store.Team, error) {
	g.check(ctx, "Team")
	return g.Store.Team(ctx, id)
}
func (g guardStore) TeamMembers(ctx context.Context, id string) ([]store.User, error) {
	g.check(ctx, "TeamMembers")
	return g.Store.TeamMembers(ctx, id)
}
func (g guardStore) IsTeamMember(ctx context.Context, t, u string) (bool, error) {
	g.check(ctx, "IsTeamMember")
	return g.Store.IsTeamMember(ctx, t, u)
}
func (g guardStore) UserTeams(ctx context.Context, id string, p store.Page) ([]store.Team, error) {
	g.check(ctx, "UserTeams")
	return g.Store.UserTeams(ctx, id, p)
}
func (g guardStore) Project(ctx context.Context, id string) (store.Project, error) {
	g.check(ctx, "Project")
	return g.Store.Project(ctx, id)
}
func (g guardStore) ProjectMembers(ctx context.Context, id string) ([]store.User, error) {
	g.check(ctx, "ProjectMembers")
	return g.Store.ProjectMembers(ctx, id)
}
func (g guardStore) IsProjectMember(ctx context.Context, p, u string) (bool, error) {
	g.check(ctx, "IsProjectMember")
	return g.Store.IsProjectMember(ctx, p, u)
}
func (g guardStore) UserProjects(ctx context.Context, id string, p store.Page) ([]store.Project, error) {
	g.check(ctx, "UserProjects")
	return g.Store.UserProjects(ctx, id, p)
}
func (g guardStore) AllUserProjects(ctx context.Context, id string) ([]store.Project, error) {
	g.check(ctx, "AllUserProjects")
	return g.Store.AllUserProjects(ctx, id)
}
func (g guardStore) Task(ctx context.Context, id string) (store.Task, error) {
	g.check(ctx, "Task")
	return g.Store.Task(ctx, id)
}
func (g guardStore) ProjectTasks(ctx context.Context, id string, p store.Page) ([]store.Task, error) {
	g.check(ctx, "ProjectTasks")
	return g.Store.ProjectTasks(ctx, id, p)
}
func (g guardStore) VisibleTasks(ctx context.Context, id string, p store.Page) ([]store.Task, error) {
	g.check(ctx, "VisibleTasks")
	return g.Store.VisibleTasks(ctx, id, p)
}
func (g guardStore) Notification(ctx context.Context, id string) (store.Notification, error) {
	g.check(ctx, "Notification")
	return g.Store.Notification(ctx, id)
}
func (g guardStore) UserNotifications(ctx context.Context, id string, unread bool, p store.Page) ([]store.Notification, error) {
	g.check(ctx, "UserNotifications")
	return g.Store.UserNotifications(ctx, id, unread, p)
}
func (g guardStore) SharesTeamOrProject(ctx context.Context, a, b string) (bool, error) {
	g.check(ctx, "SharesTeamOrProject")
	return g.Store.SharesTeamOrProject(ctx, a, b)
}

// nopFeed is the service's Feed here: the events are read from the log.
type nopFeed struct{}

func (nopFeed) Committed()                                         {}
func (nopFeed) PublishLive(context.Context, *realtime.Event) error { return nil }

// logEvents reads every event of st's log, as an instance's feed delivers
// them.
func logEvents(t *testing.T, st store.Store) []*realtime.Event {
	t.Helper()
	ctx := context.Background()
	epoch, err := st.LogEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := st.ReadLog(ctx, 0, store.MaxLogRead)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*realtime.Event, len(entries))
	for i, e := range entries {
		if out[i], err = realtime.FromLogEntry(e, epoch); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

const (
	userFields    = `id name email online`
	taskFields    = `id title description status projectId userId assignedTo createdAt updatedAt`
	projectEvents = `subscription($p: ID!) { projectUpdates(projectId: $p) { type cursor timestamp
		project { id name ownerId teamId members { ` + userFields + ` } } task { ` + taskFields + ` } member { ` + userFields + ` } } }`
	taskEvents   = `subscription { taskUpdates { type cursor timestamp task { ` + taskFields + ` } } }`
	notifyEvents = `subscription { notifications { type notification { id userId message read createdAt senderId } } }`
	systemEvents = `subscription { systemUpdates { type message } }`
)

// render renders ev for query as a transport's Encoder does.
func render(t *testing.T, exec *executor.Executor, ev *realtime.Event, query string) string {
	t.Helper()
	ctx := graphql.StartOperationTrace(context.Background())
	rc, errs := exec.CreateOperationContext(ctx, &graphql.RawParams{Query: query, Variables: map[string]any{"p": "unused"}})
	if errs != nil {
		t.Fatalf("%s: %v", query, errs)
	}
	h, octx := exec.DispatchOperation(realtime.WithRender(context.Background(), ev), rc)
	resp := h(octx)
	if resp == nil || len(resp.Errors) > 0 {
		t.Fatalf("rendering %s: %+v", ev.Type, resp)
	}
	return string(resp.Data)
}

// TestRenderingReadsOnlyTheEvent: every event the service appends to the
// log renders, as every instance reads it back, with every field its
// subscriptions offer, without a single store read, long after the changes
// that followed it, and shows what was there at its commit: the project's
// members then, their online state then.
func TestRenderingReadsOnlyTheEvent(t *testing.T) {
	st, err := sqlite.Open(context.Background(), sqlite.MemoryDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := service.New(guardStore{Store: st, t: t}, nopFeed{}, nil)
	online := map[string]bool{"alice": true}
	svc.SetPresence(func(id string) bool { return online[id] })
	exec := executor.New(graph.NewExecutableSchema(graph.Config{Resolvers: &Resolver{Svc: svc, Registry: realtime.NewRegistry()}}))

	bg := context.Background()
	for _, u := range []store.User{
		{ID: "alice", Name: "Alice", Email: "alice@example.com"}, {ID: "bob", Name: "Bob"},
		{ID: "frank", Name: "Frank", Email: "frank@example.com"}, {ID: "ops", Name: "Ops", Admin: true},
	} {
		if _, err := svc.CreateUser(bg, u); err != nil {
			t.Fatal(err)
		}
	}
	as := func(id string) context.Context {
		return auth.WithViewer(bg, auth.Viewer{UserID: id, Admin: id == "ops"})
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := svc.CreateProject(as("alice"), "P", "")
	must(p, err)
	must(svc.AddProjectMember(as("ops"), p.ID, "bob"))
	task, err := svc.CreateTask(as("alice"), service.TaskInput{Title: "T", ProjectID: p.ID})
	must(task, err)
	online["bob"] = true
	must(svc.AssignTask(as("alice"), task.ID, "bob"))
	must(nil, func() error { _, _, err := svc.RemoveProjectMember(as("ops"), p.ID, "bob"); return err }())
	online["alice"] = false
	must(svc.AddProjectMember(as("ops"), p.ID, "frank"))
	name := "P2"
	must(svc.UpdateProject(as("alice"), p.ID, &name))
	must(svc.CreateTask(as("bob"), service.TaskInput{Title: "personal"}))
	must(svc.SendNotification(as("ops"), "bob", "hello"))
	must(nil, svc.PublishSystemUpdate(as("ops"), "maintenance"))
	must(svc.DeleteProject(as("alice"), p.ID))
	// Everything changes after the events: none of it may show.
	online = map[string]bool{"bob": true, "frank": true}
	must(svc.UpdateUser(as("ops"), "frank", service.UserChange{Email: ptr("new@example.com")}))

	type member struct {
		ID     string
		Email  *string
		Online bool
	}
	want := []struct {
		typ     string
		members []string // ids, and "+" marks online at commit
		member  string
	}{
		{"PROJECT_CREATED", []string{"alice+"}, ""},
		{"PROJECT_MEMBER_ADDED", []string{"alice+", "bob"}, "bob"},
		{"TASK_CREATED", []string{"alice+", "bob"}, ""},
		{"TASK_ASSIGNED", []string{"alice+", "bob+"}, ""},
		{"PROJECT_MEMBER_REMOVED", []string{"alice+"}, "bob+"},
		{"PROJECT_MEMBER_ADDED", []string{"alice", "frank"}, "frank"},
		{"PROJECT_UPDATED", []string{"alice", "frank"}, ""},
		{"TASK_CREATED", nil, ""}, // personal: taskUpdates only
		{"NOTIFICATION_SENT", nil, ""},
		{"SYSTEM_UPDATE", nil, ""},
		{"TASK_DELETED", []string{"alice", "frank"}, ""},
		{"PROJECT_DELETED", []string{"alice", "frank"}, ""},
	}
	var got []*realtime.Event
	for _, ev := range logEvents(t, st) {
		if ev.Type != service.UserRightsChanged {
			got = append(got, ev)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d events published, want %d", len(got), len(want))
	}
	ids := func(ms []member) []string {
		var out []string
		for _, m := range ms {
			id := m.ID
			if m.Online {
				id += "+"
			}
			out = append(out, id)
		}
		return out
	}
	for i, w := range want {
		ev := got[i]
		if ev.Type != w.typ {
			t.Fatalf("event %d: %s, want %s", i, ev.Type, w.typ)
		}
		queries := map[string]string{
			"NOTIFICATION_SENT": notifyEvents, "SYSTEM_UPDATE": systemEvents,
		}
		q, ok := queries[ev.Type]
		if !ok {
			q = projectEvents
			if w.members == nil {
				q = taskEvents
			}
		}
		local := render(t, exec, ev, q)
		if strings.Contains(string(ev.Data), `"admin"`) || strings.Contains(string(ev.Data), "disabled") {
			t.Errorf("event %d (%s) publishes account state: %s", i, ev.Type, ev.Data)
		}
		if q != projectEvents {
			continue
		}
		var d struct {
			ProjectUpdates struct {
				Project struct{ Members []member }
				Member  *member
			}
		}
		if err := json.Unmarshal([]byte(local), &d); err != nil {
			t.Fatal(err)
		}
		if m := ids(d.ProjectUpdates.Project.Members); !slices.Equal(m, w.members) {
			t.Errorf("event %d (%s): members %v, want %v", i, ev.Type, m, w.members)
		}
		if w.member != "" {
			if d.ProjectUpdates.Member == nil || ids([]member{*d.ProjectUpdates.Member})[0] != w.member {
				t.Errorf("event %d (%s): member %+v, want %s", i, ev.Type, d.ProjectUpdates.Member, w.member)
			}
		}
		if strings.Contains(local, "new@example.com") {
			t.Errorf("event %d (%s) shows an email set after it: %s", i, ev.Type, local)
		}
	}
}

func ptr[T any](v T) *T { return &v }
