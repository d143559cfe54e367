package service

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/sqlite"
)

// Resuming while writers commit: each client gets every event after its
// cursor that it may see, once, in log order — the replayed ones, those
// the hub dispatched while it replayed, then the live ones.
func TestResumeWhileWritersCommit(t *testing.T) {
	subBackends(t, func(t *testing.T, f *subFixture) {
		p := f.createProject("alice")
		f.addMember(p.ID, "bob")
		for i := range 20 {
			f.task(p.ID, "bob", fmt.Sprint("before ", i))
		}
		from := f.head() - 12 // the clients saw the log up to here
		f.notify("alice", "missed 1")
		f.notify("alice", "missed 2")
		f.startFeed()

		fields := []struct {
			name   string
			open   func(after *string, to *realtime.Target) (*realtime.Subscription, error)
			accept func(*realtime.Event) bool
			rooms  []string
		}{{
			"taskUpdates",
			func(after *string, to *realtime.Target) (*realtime.Subscription, error) {
				return f.subs.TaskUpdates(subViewer("alice", false), after, to)
			},
			isTaskEvent, []string{realtime.RoomUser("alice"), realtime.RoomProject(p.ID)},
		}, {
			"projectUpdates",
			func(after *string, to *realtime.Target) (*realtime.Subscription, error) {
				return f.subs.ProjectUpdates(subViewer("alice", false), p.ID, after, to)
			},
			isProjectEvent, []string{realtime.RoomProject(p.ID)},
		}, {
			"notifications",
			func(after *string, to *realtime.Target) (*realtime.Subscription, error) {
				return f.subs.Notifications(subViewer("alice", false), after, to)
			},
			isType(NotificationSent), []string{realtime.RoomUser("alice")},
		}}
		clients := make([]*subClient, len(fields))
		for i, fl := range fields {
			clients[i] = &subClient{gate: make(chan struct{})}
			if _, err := fl.open(f.cursor(from), clients[i].target()); err != nil {
				t.Fatalf("%s: %v", fl.name, err)
			}
		}

		// Two writers commit while the clients have not taken their replay
		// yet (the hub holds what it dispatches for them), then on while
		// they take it and after.
		var wg sync.WaitGroup
		committed := make(chan struct{}, 100)
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 15 {
					f.task(p.ID, "bob", fmt.Sprint("during ", w, i))
					if i%5 == 0 {
						f.notify("alice", fmt.Sprint("note ", w, i))
					}
					committed <- struct{}{}
				}
			}()
		}
		for range 10 {
			<-committed
		}
		f.waitFed(f.head())
		for _, c := range clients {
			close(c.gate)
		}
		wg.Wait()
		f.waitFed(f.head())

		for i, fl := range fields {
			want := f.expected(from, fl.accept, fl.rooms...)
			c := clients[i]
			subWaitUntil(t, fl.name+" to receive every event", func() bool { return len(c.seqs()) >= len(want) })
			if got := c.seqs(); !slices.Equal(got, want) {
				t.Errorf("%s got seqs %v,\nwant %v", fl.name, got, want)
			}
			if n, err, _ := c.ended(); n != 0 {
				t.Errorf("%s ended: %v", fl.name, err)
			}
			if c.waits.Load() == 0 {
				t.Errorf("%s: nothing was replayed through DeliverWait", fl.name)
			}
		}
	})
}

// A replay applies today's memberships: nothing of a project from before
// the user's last join of it, nothing of a project the user has left.
func TestReplayAppliesTodaysMemberships(t *testing.T) {
	subBackends(t, func(t *testing.T, f *subFixture) {
		p := f.createProject("bob")
		left := f.createProject("bob")
		f.addMember(left.ID, "alice")
		from := f.head() // alice's cursor
		f.task(p.ID, "bob", "before alice joined")
		f.task(left.ID, "bob", "in a project alice leaves")
		f.addMember(p.ID, "alice")
		f.task(p.ID, "bob", "first stay")
		f.removeMember(p.ID, "alice")
		f.task(p.ID, "bob", "while alice is away")
		rejoin := f.addMember(p.ID, "alice")
		after := f.task(p.ID, "bob", "after the rejoin")
		f.removeMember(left.ID, "alice")
		f.task(left.ID, "bob", "after alice left")
		f.feedAll()

		tasks, project := &subClient{}, &subClient{}
		if _, err := f.subs.TaskUpdates(subViewer("alice", false), f.cursor(from), tasks.target()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.subs.ProjectUpdates(subViewer("alice", false), p.ID, f.cursor(from), project.target()); err != nil {
			t.Fatal(err)
		}
		_, err := f.subs.ProjectUpdates(subViewer("alice", false), left.ID, f.cursor(from), (&subClient{}).target())
		if errs.CodeOf(err) != errs.Forbidden {
			t.Errorf("resuming a project left: %v, want FORBIDDEN", err)
		}
		f.subs.Wait()
		if got := tasks.seqs(); !slices.Equal(got, []uint64{after}) {
			t.Errorf("taskUpdates replayed %v %v, want only the task after the rejoin (%d)", got, tasks.types(), after)
		}
		if got := project.seqs(); !slices.Equal(got, []uint64{rejoin, after}) {
			t.Errorf("projectUpdates replayed %v %v, want the rejoin and the task after it (%d, %d)", got, project.types(), rejoin, after)
		}
	})
}

// A cursor that does not name a kept position of this log is refused:
// CURSOR_EXPIRED for another epoch, a position beyond the head or one
// whose events were trimmed; BAD_USER_INPUT for a malformed one. One at
// the head resumes with nothing to replay.
func TestResumeCursorChecks(t *testing.T) {
	subBackends(t, func(t *testing.T, f *subFixture) {
		for i := range 10 {
			f.notify("alice", fmt.Sprint("n", i))
		}
		head := f.head()
		oldest, err := f.st.TrimLog(context.Background(), time.Time{}, 4)
		if err != nil {
			t.Fatal(err)
		}
		if oldest != int64(head)-3 {
			t.Fatalf("trim kept from %d, want %d", oldest, head-3)
		}
		f.feedAll()
		other := realtime.Position{Epoch: "another-database", Seq: 2}.Cursor()
		malformed := "not a cursor"
		at := func(seq uint64) func() *string { return func() *string { return f.cursor(seq) } }
		for _, c := range []struct {
			name   string
			cursor func() *string
			want   errs.Code
			got    int // events replayed
		}{
			{"malformed", func() *string { return &malformed }, errs.BadUserInput, 0},
			{"another epoch", func() *string { return &other }, errs.CursorExpired, 0},
			{"beyond the head", func() *string { return f.cursor(f.head() + 5) }, errs.CursorExpired, 0},
			{"trimmed", at(head - 5), errs.CursorExpired, 0},
			{"the oldest kept is next", at(head - 4), "", 4},
			{"at the head", func() *string { return f.cursor(f.head()) }, "", 0},
		} {
			cl := &subClient{}
			sub, err := f.subs.Notifications(subViewer("alice", false), c.cursor(), cl.target())
			if errs.CodeOf(err) != c.want && !(c.want == "" && err == nil) {
				t.Errorf("%s: %v, want %q", c.name, err, c.want)
				continue
			}
			if err != nil {
				if sub != nil {
					t.Errorf("%s: a refused subscribe returned a subscription", c.name)
				}
				continue
			}
			f.subs.Wait()
			if got := len(cl.seqs()); got != c.got {
				t.Errorf("%s: replayed %d events, want %d", c.name, got, c.got)
			}
			live := f.notify("alice", "live")
			f.feedAll()
			subWaitUntil(t, c.name+": the live event", func() bool { return slices.Contains(cl.seqs(), live) })
			sub.Unsubscribe()
		}
	})
}

// A resume is charged, before it replays anything, for the log entries it
// scans (after the cursor, up to the anchor); a charge refused (the rate
// limit) refuses the resume and replays nothing. Subscribing without a
// cursor, or at the head, charges nothing.
func TestResumeIsChargedBeforeItReplays(t *testing.T) {
	subBackends(t, func(t *testing.T, f *subFixture) {
		from := f.notify("alice", "seen")
		for i := range 5 {
			f.notify("alice", fmt.Sprint("missed ", i))
		}
		f.feedAll()
		var charged []uint64
		refuse := errs.E(errs.RateLimited, "over the limit")
		charge := func(_ context.Context, userID string, entries uint64) error {
			if userID != "alice" {
				t.Errorf("charged %q", userID)
			}
			charged = append(charged, entries)
			if entries > 3 {
				return refuse
			}
			return nil
		}
		f.charge.Store(&charge)
		for _, c := range []struct {
			name    string
			after   *string
			err     error
			replays int
		}{
			{"no cursor", nil, nil, 0},
			{"at the head", f.cursor(f.head()), nil, 0},
			{"three back", f.cursor(f.head() - 3), nil, 3},
			{"five back, refused", f.cursor(from), refuse, 0},
		} {
			cl := &subClient{}
			sub, err := f.subs.Notifications(subViewer("alice", false), c.after, cl.target())
			if err != c.err {
				t.Fatalf("%s: %v, want %v", c.name, err, c.err)
			}
			f.subs.Wait()
			if got := len(cl.seqs()); got != c.replays {
				t.Errorf("%s: replayed %d events, want %d", c.name, got, c.replays)
			}
			if sub != nil {
				sub.Unsubscribe()
			}
		}
		if !slices.Equal(charged, []uint64{3, 5}) {
			t.Errorf("charged %v, want [3 5] (the resumes only, for the entries each scans)", charged)
		}
	})
}

// Subscribing reads a snapshot and takes no lock a writer holds: a unit of
// work blocked inside Update delays no subscribe, resumed or not; its
// change, committed later, reaches the subscriptions live.
func TestSubscribeDoesNotWaitForAWriter(t *testing.T) {
	subBackends(t, func(t *testing.T, f *subFixture) {
		p := f.createProject("alice")
		from := f.notify("alice", "seen")
		f.notify("alice", "missed")
		entered, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- f.st.Update(context.Background(), func(tx store.Tx) error {
				t, err := tx.CreateTask(context.Background(), store.Task{Title: "held", ProjectID: p.ID, UserID: "alice", Status: store.StatusTodo})
				if err != nil {
					return err
				}
				e, err := realtime.ToLogEntry(subEvent(TaskCreated, EventData{Task: &t}, nil, realtime.RoomUser("alice"), realtime.RoomProject(p.ID)))
				if err != nil {
					return err
				}
				tx.Append(e)
				close(entered)
				<-release
				return nil
			})
		}()
		<-entered
		ctx, cancel := context.WithTimeout(subViewer("alice", false), 5*time.Second)
		defer cancel()
		tasks, project, notes := &subClient{}, &subClient{}, &subClient{}
		start := time.Now()
		if _, err := f.subs.TaskUpdates(ctx, nil, tasks.target()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.subs.ProjectUpdates(ctx, p.ID, nil, project.target()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.subs.Notifications(ctx, f.cursor(from), notes.target()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("three subscribes took %v while a writer was held", d)
		}
		f.subs.Wait()
		if got := notes.types(); !slices.Equal(got, []string{NotificationSent}) {
			t.Errorf("resumed notifications got %v, want the one missed", got)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		f.feedAll()
		for name, c := range map[string]*subClient{"taskUpdates": tasks, "projectUpdates": project} {
			subWaitUntil(t, name+" to receive the held writer's task", func() bool { return slices.Equal(c.types(), []string{TaskCreated}) })
		}
	})
}

// Who may subscribe to what: the rules the resolvers applied, read in the
// snapshot.
func TestSubscribeAccess(t *testing.T) {
	f := newSubFixture(t, func(ctx context.Context) (store.Store, error) {
		return sqlite.Open(ctx, filepath.Join(t.TempDir(), "taskpulse.db"))
	})
	p := f.createProject("alice")
	team := f.teamOf("alice", "bob")
	f.feedAll()
	alice, bob, carol, root := subViewer("alice", false), subViewer("bob", false), subViewer("carol", false), subViewer("root", true)
	cases := []struct {
		name       string
		open       func(to *realtime.Target) (*realtime.Subscription, error)
		want       errs.Code
		privileged bool
	}{
		{"project: member", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.ProjectUpdates(alice, p.ID, nil, to)
		}, "", false},
		{"project: not a member", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.ProjectUpdates(carol, p.ID, nil, to)
		}, errs.Forbidden, false},
		{"project: not a member, resuming", func(to *realtime.Target) (*realtime.Subscription, error) {
			// Whether the cursor is still good is none of a non-member's business.
			stale := realtime.Position{Epoch: "another-database", Seq: 1}.Cursor()
			return f.subs.ProjectUpdates(carol, p.ID, &stale, to)
		}, errs.Forbidden, false},
		{"project: unknown", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.ProjectUpdates(alice, "prj_nope", nil, to)
		}, errs.NotFound, false},
		{"project: bad id", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.ProjectUpdates(alice, "", nil, to)
		}, errs.BadUserInput, false},
		{"project: admin by rights", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.ProjectUpdates(root, p.ID, nil, to)
		}, "", true},
		{"team: member", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.TeamUpdates(bob, team.ID, nil, to)
		}, "", false},
		{"team: not a member", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.TeamUpdates(carol, team.ID, nil, to)
		}, errs.Forbidden, false},
		{"team: unknown", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.TeamUpdates(carol, "team_nope", nil, to)
		}, errs.NotFound, false},
		{"team: admin by rights", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.TeamUpdates(root, team.ID, nil, to)
		}, "", true},
		{"activity: self", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.UserActivity(carol, "carol", to)
		}, "", false},
		{"activity: shares a team", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.UserActivity(bob, "alice", to)
		}, "", false},
		{"activity: shares nothing", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.UserActivity(carol, "alice", to)
		}, errs.NotFound, false},
		{"activity: unknown user", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.UserActivity(carol, "nobody", to)
		}, errs.NotFound, false},
		{"activity: admin by rights", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.UserActivity(root, "carol", to)
		}, "", true},
		{"activity: admin, unknown user", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.UserActivity(root, "nobody", to)
		}, errs.NotFound, false},
		{"activity: bad id", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.UserActivity(carol, "", to)
		}, errs.BadUserInput, false},
		{"system: anyone", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.SystemUpdates(carol, to)
		}, "", false},
		{"unauthenticated", func(to *realtime.Target) (*realtime.Subscription, error) {
			return f.subs.SystemUpdates(context.Background(), to)
		}, errs.Unauthenticated, false},
		{"no transport", func(*realtime.Target) (*realtime.Subscription, error) {
			return f.subs.SystemUpdates(carol, nil)
		}, errs.BadUserInput, false},
	}
	for _, c := range cases {
		sub, err := c.open((&subClient{}).target())
		if errs.CodeOf(err) != c.want && !(c.want == "" && err == nil) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
			continue
		}
		if err != nil {
			continue
		}
		sub.Unsubscribe()
		if !c.privileged {
			continue
		}
		// Demoted after the operation began: the stored rights say so.
		f.rights.Store(&auth.Viewer{UserID: "root"})
		_, err = c.open((&subClient{}).target())
		f.rights.Store(nil)
		if errs.CodeOf(err) != errs.Forbidden {
			t.Errorf("%s, demoted meanwhile: %v, want FORBIDDEN", c.name, err)
		}
	}

	// Presence must not tell whether an id exists: a stranger and an id
	// nobody has get the same bytes.
	_, errStranger := f.subs.UserActivity(carol, "alice", (&subClient{}).target())
	_, errUnknown := f.subs.UserActivity(carol, "nobody", (&subClient{}).target())
	if errStranger == nil || errUnknown == nil || errStranger.Error() != errUnknown.Error() {
		t.Errorf("a stranger %v and an unknown id %v answer differently", errStranger, errUnknown)
	}
}

// userActivity listens where the user's presence is published
// (PublishPresence: their own room and their teams' and projects' rooms):
// the user themself through their own room, a teammate through the rooms
// they share, followed live, an admin who shares nothing through the
// user's room; and each keeps only that user's presence.
func TestUserActivityRoutes(t *testing.T) {
	f := newSubFixture(t, func(ctx context.Context) (store.Store, error) {
		return sqlite.Open(ctx, filepath.Join(t.TempDir(), "taskpulse.db"))
	})
	team := f.teamOf("alice", "bob")
	f.feedAll()
	self, mate, admin := &subClient{}, &subClient{}, &subClient{}
	for _, c := range []struct {
		viewer context.Context
		client *subClient
	}{{subViewer("alice", false), self}, {subViewer("bob", false), mate}, {subViewer("root", true), admin}} {
		if _, err := f.subs.UserActivity(c.viewer, "alice", c.client.target()); err != nil {
			t.Fatal(err)
		}
	}
	presenceOf := func(typ, userID string, rooms ...string) *realtime.Event {
		ev := subEvent(typ, EventData{Presence: &presence.State{UserID: userID}}, nil, rooms...)
		ev.Ephemeral = true
		return ev
	}
	// The hub delivers in order: what the clients should not keep comes
	// first, so it would be there by the time alice's event is.
	f.hub.Enqueue(presenceOf(UserOffline, "bob", realtime.RoomUser("bob"), realtime.RoomTeam(team.ID)))
	f.hub.Enqueue(presenceOf(UserOffline, "carol", realtime.RoomUser("carol")))
	f.hub.Enqueue(presenceOf(UserOnline, "alice", realtime.RoomUser("alice"), realtime.RoomTeam(team.ID)))
	for name, c := range map[string]*subClient{"alice herself": self, "bob, her teammate": mate, "an admin": admin} {
		subWaitUntil(t, name+" to receive alice's presence", func() bool { return slices.Contains(c.types(), UserOnline) })
		if got := c.types(); !slices.Equal(got, []string{UserOnline}) {
			t.Errorf("%s got %v, want alice's %s alone", name, got, UserOnline)
		}
	}
}

// The fields carry their event types: a project's events and its tasks'
// on projectUpdates, tasks alone on taskUpdates, presence (live only) on
// userActivity and teamUpdates, by their copies.
func TestSubscriptionFieldsCarryTheirTypes(t *testing.T) {
	f := newSubFixture(t, func(ctx context.Context) (store.Store, error) {
		return sqlite.Open(ctx, filepath.Join(t.TempDir(), "taskpulse.db"))
	})
	p := f.createProject("alice")
	f.feedAll()
	tasks, project, notes, system := &subClient{}, &subClient{}, &subClient{}, &subClient{}
	alice := subViewer("alice", false)
	for _, open := range []func() error{
		func() error { _, err := f.subs.TaskUpdates(alice, nil, tasks.target()); return err },
		func() error { _, err := f.subs.ProjectUpdates(alice, p.ID, nil, project.target()); return err },
		func() error { _, err := f.subs.Notifications(alice, nil, notes.target()); return err },
		func() error { _, err := f.subs.SystemUpdates(alice, system.target()); return err },
	} {
		if err := open(); err != nil {
			t.Fatal(err)
		}
	}
	f.commit(func(ctx context.Context, tx store.Tx) ([]*realtime.Event, error) {
		return []*realtime.Event{subEvent(ProjectUpdated, EventData{Project: &p}, nil, realtime.RoomProject(p.ID))}, nil
	})
	f.task(p.ID, "alice", "t")
	f.notify("alice", "n")
	f.commit(func(ctx context.Context, tx store.Tx) ([]*realtime.Event, error) {
		return []*realtime.Event{subEvent(SystemUpdate, EventData{Message: "m"}, nil, realtime.RoomAll)}, nil
	})
	f.feedAll()
	for name, c := range map[string]struct {
		c    *subClient
		want []string
	}{
		"taskUpdates":    {tasks, []string{TaskCreated}},
		"projectUpdates": {project, []string{ProjectUpdated, TaskCreated}},
		"notifications":  {notes, []string{NotificationSent}},
		"systemUpdates":  {system, []string{SystemUpdate}},
	} {
		subWaitUntil(t, name, func() bool { return len(c.c.types()) >= len(c.want) })
		if got := c.c.types(); !slices.Equal(got, c.want) {
			t.Errorf("%s got %v, want %v", name, got, c.want)
		}
	}
}
