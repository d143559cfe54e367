package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/sqlite"
)

// recorder is the Publisher test double: it keeps what was published, or
// fails on demand.
type recorder struct {
	mu     sync.Mutex
	events []*realtime.Event
	fail   bool
}

func (r *recorder) Publish(_ context.Context, ev *realtime.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("broker down")
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) take() []*realtime.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

type fixture struct {
	t   *testing.T
	svc *service.Service
	st  store.Store
	pub *recorder
}

func newFixture(t *testing.T) *fixture {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/svc.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub := &recorder{}
	svc := service.New(st, pub, nil)
	for _, id := range []string{"alice", "bob", "carol"} {
		if _, err := svc.CreateUser(context.Background(), store.User{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{t: t, svc: svc, st: st, pub: pub}
}

func as(id string) context.Context {
	return auth.WithViewer(context.Background(), auth.Viewer{UserID: id})
}

func rooms(ev *realtime.Event) []string {
	r := slices.Clone(ev.Rooms)
	slices.Sort(r)
	return r
}

// TestEventsAreAddressedByTheContractRules checks each change publishes one
// event of the right type to exactly the rooms CONTRACT names, with the
// membership control the hubs apply.
func TestEventsAreAddressedByTheContractRules(t *testing.T) {
	f := newFixture(t)
	ctx := as("alice")
	// alice may add bob to a project once they share a team.
	f.teamOf("alice", "bob")
	p, err := f.svc.CreateProject(ctx, "P", "")
	if err != nil {
		t.Fatal(err)
	}
	evs := f.pub.take()
	if len(evs) != 1 || evs[0].Type != service.ProjectCreated ||
		*evs[0].Control != (realtime.Control{Op: realtime.Join, UserID: "alice", Room: realtime.RoomProject(p.ID)}) {
		t.Fatalf("createProject published %+v", evs)
	}

	if _, err := f.svc.AddProjectMember(ctx, p.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if evs := f.pub.take(); len(evs) != 1 || evs[0].Control.Op != realtime.Join || evs[0].Control.UserID != "bob" {
		t.Fatalf("addProjectMember published %+v", evs)
	}
	// Adding again changes nothing and publishes nothing.
	if _, err := f.svc.AddProjectMember(ctx, p.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if evs := f.pub.take(); len(evs) != 0 {
		t.Fatalf("idempotent add published %d events", len(evs))
	}

	task, err := f.svc.CreateTask(as("bob"), service.TaskInput{Title: "T", ProjectID: p.ID, AssignedTo: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	evs = f.pub.take()
	want := []string{realtime.RoomProject(p.ID), realtime.RoomUser("alice"), realtime.RoomUser("bob")}
	if len(evs) != 1 || evs[0].Type != service.TaskCreated || !slices.Equal(rooms(evs[0]), want) {
		t.Fatalf("createTask published %+v, want rooms %v", evs, want)
	}
	var d service.EventData
	if err := json.Unmarshal(evs[0].Data, &d); err != nil || d.Task.ID != task.ID || d.Project.ID != p.ID {
		t.Fatalf("event data %s: %v", evs[0].Data, err)
	}

	// Reassigning tells the previous assignee too.
	if _, err := f.svc.AssignTask(as("bob"), task.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	evs = f.pub.take()
	if len(evs) != 1 || evs[0].Type != service.TaskAssigned || !slices.Contains(evs[0].Rooms, realtime.RoomUser("alice")) {
		t.Fatalf("assignTask published %+v", evs)
	}

	if _, err := f.svc.RemoveProjectMember(ctx, p.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	evs = f.pub.take()
	if len(evs) != 1 || evs[0].Type != service.ProjectMemberRemoved ||
		*evs[0].Control != (realtime.Control{Op: realtime.Leave, UserID: "bob", Room: realtime.RoomProject(p.ID)}) {
		t.Fatalf("removeProjectMember published %+v", evs)
	}

	// Deleting the project publishes each task's deletion, then the
	// project's, which closes the room.
	if _, err := f.svc.DeleteProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	evs = f.pub.take()
	if len(evs) != 2 || evs[0].Type != service.TaskDeleted || evs[1].Type != service.ProjectDeleted || evs[1].Control.Op != realtime.CloseRoom {
		t.Fatalf("deleteProject published %+v", evs)
	}
}

// TestNothingIsPublishedForARefusedChange: authorization and validation
// failures commit nothing and publish nothing.
func TestNothingIsPublishedForARefusedChange(t *testing.T) {
	f := newFixture(t)
	p, _ := f.svc.CreateProject(as("alice"), "P", "")
	f.pub.take()
	cases := []struct {
		name string
		run  func() error
		code errs.Code
	}{
		{"non-member task", func() error {
			_, err := f.svc.CreateTask(as("carol"), service.TaskInput{Title: "x", ProjectID: p.ID})
			return err
		}, errs.Forbidden},
		{"empty title", func() error { _, err := f.svc.CreateTask(as("alice"), service.TaskInput{Title: " "}); return err }, errs.BadUserInput},
		{"anonymous", func() error {
			_, err := f.svc.CreateTask(context.Background(), service.TaskInput{Title: "x"})
			return err
		}, errs.Unauthenticated},
		{"not owner", func() error { _, err := f.svc.DeleteProject(as("bob"), p.ID); return err }, errs.Forbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.run(); errs.CodeOf(err) != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
			if evs := f.pub.take(); len(evs) != 0 {
				t.Fatalf("published %d events", len(evs))
			}
		})
	}
}

// TestPublishFailureAfterCommitIsReported: the change stays committed (a
// retry would duplicate it), and the caller learns the event was lost.
func TestPublishFailureAfterCommitIsReported(t *testing.T) {
	f := newFixture(t)
	f.pub.fail = true
	_, err := f.svc.CreateTask(as("alice"), service.TaskInput{Title: "saved anyway"})
	if errs.CodeOf(err) != errs.Internal {
		t.Fatalf("got %v, want INTERNAL", err)
	}
	tasks, err := f.st.VisibleTasks(context.Background(), "alice", store.Page{Limit: 10})
	if err != nil || len(tasks) != 1 || tasks[0].Title != "saved anyway" {
		t.Fatalf("tasks after failed publish: %+v %v", tasks, err)
	}
}

// TestUserIDs: ids end up in room names, URLs and logs, so only a safe
// alphabet is accepted.
func TestUserIDs(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		id string
		ok bool
	}{
		{"erin", true},
		{"E.r_i@n-2", true},
		{"7", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{".erin", false},
		{"-erin", false},
		{"er in", false},
		{"erin:1", false},
		{"érin", false},
		{"erin\n", false},
	}
	for _, c := range cases {
		_, err := f.svc.CreateUser(context.Background(), store.User{ID: c.id, Name: "x"})
		if c.ok && err != nil {
			t.Errorf("%q refused: %v", c.id, err)
		}
		if !c.ok && errs.CodeOf(err) != errs.BadUserInput {
			t.Errorf("%q: got %v, want BAD_USER_INPUT", c.id, err)
		}
	}
}
