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
	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/postgres"
	"github.com/taskpulse/taskpulse/store/sqlite"
)

// feedRecorder is the service's Feed in these tests: it counts the nudges
// and keeps the ephemeral events, or refuses them on demand. The events of
// changes are read where they land, the store's log (fixture.take).
type feedRecorder struct {
	mu        sync.Mutex
	committed int
	live      []*realtime.Event
	fail      bool
}

func (r *feedRecorder) Committed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.committed++
}

func (r *feedRecorder) PublishLive(_ context.Context, ev *realtime.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("feed down")
	}
	r.live = append(r.live, ev)
	return nil
}

func (r *feedRecorder) nudges() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.committed
}

// takeLive returns the ephemeral events published since the last call.
func (r *feedRecorder) takeLive() []*realtime.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.live
	r.live = nil
	return out
}

type fixture struct {
	t    *testing.T
	svc  *service.Service
	st   store.Store
	feed *feedRecorder
	// seen is the log position take has read up to.
	seen int64
}

// newFixture is a service over a fresh SQLite store with users alice, bob
// and carol.
func newFixture(t *testing.T) *fixture {
	return newFixtureOn(t, openSQLite(t))
}

// newFixtureOn is newFixture over st.
func newFixtureOn(t *testing.T, st store.Store) *fixture {
	t.Helper()
	feed := &feedRecorder{}
	svc := service.New(st, feed, nil)
	for _, id := range []string{"alice", "bob", "carol"} {
		if _, err := svc.CreateUser(context.Background(), store.User{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	return &fixture{t: t, svc: svc, st: st, feed: feed}
}

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/svc.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openPostgres(t *testing.T) store.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// onBothStores runs test on a fixture over SQLite and one over PostgreSQL.
func onBothStores(t *testing.T, test func(t *testing.T, f *fixture)) {
	for _, b := range []struct {
		name string
		open func(*testing.T) store.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(b.name, func(t *testing.T) { test(t, newFixtureOn(t, b.open(t))) })
	}
}

// take returns the events the log gained since the last call, in log
// order, as every instance reads them back.
func (f *fixture) take() []*realtime.Event {
	f.t.Helper()
	evs := readLog(f.t, f.st, f.seen)
	if len(evs) > 0 {
		f.seen = int64(evs[len(evs)-1].Seq)
	}
	return evs
}

// readLog reads the whole log after seq and decodes its events.
func readLog(t *testing.T, st store.Store, after int64) []*realtime.Event {
	t.Helper()
	ctx := context.Background()
	epoch, err := st.LogEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*realtime.Event
	for {
		entries, err := st.ReadLog(ctx, after, store.MaxLogRead)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			ev, err := realtime.FromLogEntry(e, epoch)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
			after = e.Seq
		}
		if len(entries) < store.MaxLogRead {
			return out
		}
	}
}

func as(id string) context.Context {
	return auth.WithViewer(context.Background(), auth.Viewer{UserID: id})
}

func rooms(ev *realtime.Event) []string {
	r := slices.Clone(ev.Rooms)
	slices.Sort(r)
	return r
}

// TestEventsAreAddressedByTheContractRules checks each change appends to
// the log, in commit order, one event of the right type to exactly the rooms
// CONTRACT names, with the membership control the hubs apply, and nudges
// the feed once; a change that changes nothing appends nothing.
func TestEventsAreAddressedByTheContractRules(t *testing.T) {
	onBothStores(t, testEventsAreAddressedByTheContractRules)
}

func testEventsAreAddressedByTheContractRules(t *testing.T, f *fixture) {
	ctx := as("alice")
	// alice may add bob to a project once they share a team.
	f.teamOf("alice", "bob")
	nudges := f.feed.nudges()
	nudged := func(what string, n int) {
		t.Helper()
		if got := f.feed.nudges() - nudges; got != n {
			t.Fatalf("%s nudged the feed %d times, want %d", what, got, n)
		}
		nudges += n
	}
	p, err := f.svc.CreateProject(ctx, "P", "")
	if err != nil {
		t.Fatal(err)
	}
	evs := f.take()
	if len(evs) != 1 || evs[0].Type != service.ProjectCreated ||
		!slices.Equal(evs[0].Rooms, []string{realtime.RoomProject(p.ID)}) ||
		*evs[0].Control != (realtime.Control{Op: realtime.Join, UserID: "alice", Room: realtime.RoomProject(p.ID)}) {
		t.Fatalf("createProject appended %+v", evs)
	}
	nudged("createProject", 1)
	last := evs[0].Seq

	if _, err := f.svc.AddProjectMember(ctx, p.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if evs := f.take(); len(evs) != 1 || evs[0].Type != service.ProjectMemberAdded || evs[0].Seq != last+1 ||
		*evs[0].Control != (realtime.Control{Op: realtime.Join, UserID: "bob", Room: realtime.RoomProject(p.ID)}) {
		t.Fatalf("addProjectMember appended %+v", evs)
	}
	nudged("addProjectMember", 1)
	// Adding again changes nothing and appends nothing.
	if _, err := f.svc.AddProjectMember(ctx, p.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if evs := f.take(); len(evs) != 0 {
		t.Fatalf("idempotent add appended %d events", len(evs))
	}
	nudged("an idempotent add", 0)

	task, err := f.svc.CreateTask(as("bob"), service.TaskInput{Title: "T", ProjectID: p.ID, AssignedTo: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	evs = f.take()
	want := []string{realtime.RoomProject(p.ID), realtime.RoomUser("alice"), realtime.RoomUser("bob")}
	if len(evs) != 1 || evs[0].Type != service.TaskCreated || !slices.Equal(rooms(evs[0]), want) || evs[0].Control != nil {
		t.Fatalf("createTask appended %+v, want rooms %v", evs, want)
	}
	var d service.EventData
	if err := json.Unmarshal(evs[0].Data, &d); err != nil || d.Task.ID != task.ID || d.Project.ID != p.ID ||
		d.Snapshot == nil || len(d.Snapshot.ProjectMembers) != 2 {
		t.Fatalf("event data %s: %v", evs[0].Data, err)
	}

	// Reassigning tells the previous assignee too.
	if _, err := f.svc.AssignTask(as("bob"), task.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	evs = f.take()
	if len(evs) != 1 || evs[0].Type != service.TaskAssigned || !slices.Equal(rooms(evs[0]), want) {
		t.Fatalf("assignTask appended %+v, want rooms %v (alice, the previous assignee, included)", evs, want)
	}

	if _, _, err := f.svc.RemoveProjectMember(ctx, p.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	evs = f.take()
	if len(evs) != 1 || evs[0].Type != service.ProjectMemberRemoved ||
		*evs[0].Control != (realtime.Control{Op: realtime.Leave, UserID: "bob", Room: realtime.RoomProject(p.ID)}) {
		t.Fatalf("removeProjectMember appended %+v", evs)
	}

	// Deleting the project appends each task's deletion, then the
	// project's, which closes the room: one unit, consecutive entries.
	if _, err := f.svc.DeleteProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	evs = f.take()
	if len(evs) != 2 || evs[0].Type != service.TaskDeleted || evs[1].Type != service.ProjectDeleted ||
		evs[1].Seq != evs[0].Seq+1 || evs[1].Control.Op != realtime.CloseRoom {
		t.Fatalf("deleteProject appended %+v", evs)
	}
	nudged("the last four changes", 4)
}

// TestNothingIsPublishedForARefusedChange: authorization and validation
// failures commit nothing and publish nothing.
func TestNothingIsPublishedForARefusedChange(t *testing.T) {
	f := newFixture(t)
	p, _ := f.svc.CreateProject(as("alice"), "P", "")
	f.take()
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
			if evs := f.take(); len(evs) != 0 {
				t.Fatalf("published %d events", len(evs))
			}
		})
	}
}

// faultyStore fails the unit of work's ProjectMembers read: the reads
// seal makes after the change. The store under it is real.
type faultyStore struct{ store.Store }

func (s faultyStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(faultyTx{tx}) })
}

type faultyTx struct{ store.Tx }

func (faultyTx) ProjectMembers(context.Context, string) ([]store.User, error) {
	return nil, errors.New("connection lost")
}

// TestAFailedChangeAppendsNothing: a change whose unit of work fails after
// its write (here the snapshot of its event) commits nothing: not the
// change, not its event, and the feed is not nudged. The caller gets
// INTERNAL and may retry.
func TestAFailedChangeAppendsNothing(t *testing.T) {
	onBothStores(t, func(t *testing.T, f *fixture) {
		p, err := f.svc.CreateProject(as("alice"), "P", "")
		if err != nil {
			t.Fatal(err)
		}
		f.take()
		nudges := f.feed.nudges()
		svc := service.New(faultyStore{f.st}, f.feed, nil)
		if _, err := svc.CreateTask(as("alice"), service.TaskInput{Title: "lost", ProjectID: p.ID}); errs.CodeOf(err) != errs.Internal {
			t.Fatalf("got %v, want INTERNAL", err)
		}
		if tasks, err := f.st.ProjectTasks(context.Background(), p.ID, store.Page{Limit: 10}); err != nil || len(tasks) != 0 {
			t.Fatalf("tasks after a failed change: %+v %v", tasks, err)
		}
		if evs := f.take(); len(evs) != 0 {
			t.Fatalf("a failed change appended %+v", evs)
		}
		if f.feed.nudges() != nudges {
			t.Fatal("a failed change nudged the feed")
		}
	})
}

// TestPresenceIsLiveNotLogged: presence events go to the feed's live path,
// ephemeral, never to the log; a feed that refuses them is the caller's
// error.
func TestPresenceIsLiveNotLogged(t *testing.T) {
	f := newFixture(t)
	ch := presence.Change{Kind: presence.KindOnline, State: presence.State{UserID: "alice", Status: presence.Online}}
	if err := f.svc.PublishPresence(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	if evs := f.feed.takeLive(); len(evs) != 1 || !evs[0].Ephemeral || evs[0].Type != service.UserOnline {
		t.Fatalf("live events %+v", evs)
	}
	if evs := f.take(); len(evs) != 0 {
		t.Fatalf("presence in the log: %+v", evs)
	}
	f.feed.fail = true
	if err := f.svc.PublishPresence(context.Background(), ch); err == nil {
		t.Fatal("a refused live publish was not reported")
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
