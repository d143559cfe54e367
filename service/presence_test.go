package service_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/presence/presencetest"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/sqlite"
)

// withPresence gives the fixture's service an in-process presence on a
// fake clock; changes are kept, not published.
func (f *fixture) withPresence() (*presence.Memory, *[]presence.Change) {
	var changes []presence.Change
	p := presence.NewMemory(presence.Options{SweepEvery: -1, Clock: presencetest.NewClock(),
		OnChange: func(ch presence.Change) { changes = append(changes, ch) }})
	f.t.Cleanup(func() { _ = p.Close() })
	f.svc.UsePresence(p)
	return p, &changes
}

func asAdmin(id string) *auth.Viewer { return &auth.Viewer{UserID: id, Admin: true} }

func s(v string) *string { return &v }

// TestCreateTeamJoinsCreator: the creator is the first member, and their
// open subscriptions follow the team's room from then on.
func TestCreateTeamJoinsCreator(t *testing.T) {
	f := newFixture(t)
	team, err := f.svc.CreateTeam(as("alice"), "Core")
	if err != nil {
		t.Fatal(err)
	}
	evs := f.take()
	join := realtime.Control{Op: realtime.Join, UserID: "alice", Room: realtime.RoomTeam(team.ID)}
	if len(evs) != 1 || evs[0].Type != service.TeamMemberAdded || evs[0].Control == nil || *evs[0].Control != join {
		t.Fatalf("createTeam published %+v", evs)
	}
}

// TestPublishPresence: a presence change is one event to the user's room
// and the rooms of every team and project they are in, plus one per team
// carrying that team (for teamUpdates); all ephemeral, with the state as
// at the change and nothing of anyone else.
func TestPublishPresence(t *testing.T) {
	f := newFixture(t)
	p, changes := f.withPresence()
	team := f.teamOf("alice", "bob")
	other := f.teamOf("carol", "alice")
	proj, err := f.svc.CreateProject(as("alice"), "Launch", "")
	if err != nil {
		t.Fatal(err)
	}
	f.take()
	_ = p.Connect(t.Context(), "alice", "c1")
	if len(*changes) != 1 {
		t.Fatalf("changes %+v", *changes)
	}
	if err := f.svc.PublishPresence(t.Context(), (*changes)[0]); err != nil {
		t.Fatal(err)
	}
	if evs := f.take(); len(evs) != 0 {
		t.Fatalf("presence entered the log: %+v", evs)
	}
	evs := f.feed.takeLive()
	if len(evs) != 3 {
		t.Fatalf("published %d events, want 3: %+v", len(evs), evs)
	}
	wantRooms := []string{realtime.RoomProject(proj.ID), realtime.RoomTeam(team.ID), realtime.RoomTeam(other.ID), realtime.RoomUser("alice")}
	slices.Sort(wantRooms)
	if got := rooms(evs[0]); !slices.Equal(got, wantRooms) {
		t.Errorf("rooms %q, want %q", got, wantRooms)
	}
	teams := map[string]bool{}
	for i, ev := range evs {
		if ev.Type != service.UserOnline || !ev.Ephemeral || ev.Control != nil {
			t.Errorf("event %d: %+v", i, ev)
		}
		var d service.EventData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Presence == nil || d.Presence.UserID != "alice" || d.Presence.Status != presence.Online {
			t.Errorf("event %d presence %+v", i, d.Presence)
		}
		if i == 0 {
			if d.Team != nil || d.Snapshot != nil {
				t.Errorf("userActivity's event carries more than presence: %s", ev.Data)
			}
			continue
		}
		if d.Team == nil || len(ev.Rooms) != 1 || ev.Rooms[0] != realtime.RoomTeam(d.Team.ID) || d.Snapshot == nil || len(d.Snapshot.TeamMembers) != 2 {
			t.Errorf("team event %d: rooms %q data %s", i, ev.Rooms, ev.Data)
			continue
		}
		teams[d.Team.ID] = true
	}
	if !teams[team.ID] || !teams[other.ID] {
		t.Errorf("per-team events for %v, want both teams", teams)
	}
	// A user in nothing: their own room only.
	if _, err := f.svc.CreateUser(t.Context(), store.User{ID: "dave", Name: "Dave"}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.PublishPresence(t.Context(), presence.Change{Kind: presence.KindOffline, State: presence.State{UserID: "dave", Status: presence.Offline}}); err != nil {
		t.Fatal(err)
	}
	if evs := f.feed.takeLive(); len(evs) != 1 || !slices.Equal(evs[0].Rooms, []string{realtime.RoomUser("dave")}) || evs[0].Type != service.UserOffline {
		t.Errorf("lone user: %+v", evs)
	}
}

// TestUpdatePresenceRules: what updatePresence accepts and refuses.
func TestUpdatePresenceRules(t *testing.T) {
	f := newFixture(t)
	p, _ := f.withPresence()
	f.teamOf("alice", "bob")
	bobs, err := f.svc.CreateProject(as("bob"), "Bob's", "")
	if err != nil {
		t.Fatal(err)
	}
	alices, err := f.svc.CreateProject(as("alice"), "Alice's", "")
	if err != nil {
		t.Fatal(err)
	}
	task, err := f.svc.CreateTask(as("bob"), service.TaskInput{Title: "secret", ProjectID: bobs.ID})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.svc.UpdatePresence(as("alice"), service.PresenceChange{CurrentPage: s("/x")}); !errs.Is(err, errs.BadUserInput) || !strings.Contains(err.Error(), "no open connection") {
		t.Errorf("while offline: %v", err)
	}
	_ = p.Connect(t.Context(), "alice", "c1")
	for _, tc := range []struct {
		name string
		in   service.PresenceChange
		code errs.Code
	}{
		{"offline status", service.PresenceChange{Status: s("OFFLINE")}, errs.BadUserInput},
		{"page too long", service.PresenceChange{CurrentPage: s(strings.Repeat("p", service.MaxPageLen+1))}, errs.BadUserInput},
		{"bad utf-8", service.PresenceChange{CurrentPage: s("\xff")}, errs.BadUserInput},
		{"another's task", service.PresenceChange{ActiveTask: s(task.ID)}, errs.Forbidden},
		{"no such task", service.PresenceChange{ActiveTask: s("task_nope")}, errs.NotFound},
		{"another's project", service.PresenceChange{ActiveProject: s(bobs.ID)}, errs.Forbidden},
		{"no such project", service.PresenceChange{ActiveProject: s("prj_nope")}, errs.NotFound},
		{"long id", service.PresenceChange{ActiveProject: s(strings.Repeat("x", 200))}, errs.BadUserInput},
	} {
		if _, err := f.svc.UpdatePresence(as("alice"), tc.in); !errs.Is(err, tc.code) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	st, err := f.svc.UpdatePresence(as("alice"), service.PresenceChange{Status: s("AWAY"), CurrentPage: s("  /board  "), ActiveProject: s(alices.ID)})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != presence.Away || st.CurrentPage != "/board" || st.ActiveProject != alices.ID || st.ActiveTask != "" {
		t.Errorf("state %+v", st)
	}
	if _, err := f.svc.UpdatePresence(as("alice"), service.PresenceChange{ActiveProject: s("")}); err != nil {
		t.Errorf("clearing: %v", err)
	}
}

// TestPresenceVisibility: who sees whose presence (following it is
// TestSubscribeAccess's and TestUserActivityRoutes').
func TestPresenceVisibility(t *testing.T) {
	f := newFixture(t)
	p, _ := f.withPresence()
	team := f.teamOf("alice", "bob")
	_ = p.Connect(t.Context(), "alice", "c1")

	if st, _ := f.svc.UserPresence(as("bob"), "alice"); st == nil || st.Status != presence.Online {
		t.Errorf("bob sees alice's presence %+v", st)
	}
	if st, err := f.svc.UserPresence(as("carol"), "alice"); st != nil || err != nil {
		t.Errorf("carol sees alice's presence %+v %v", st, err)
	}
	if on, _ := f.svc.Online(as("carol"), "alice"); on {
		t.Error("carol sees alice online")
	}
	if on, _ := f.svc.Online(as("bob"), "alice"); !on {
		t.Error("bob does not see alice online")
	}

	sts, err := f.svc.TeamPresence(as("bob"), team.ID)
	if err != nil || len(sts) != 2 || sts[0].UserID != "alice" || sts[0].Status != presence.Online || sts[1].UserID != "bob" || sts[1].Status != presence.Offline {
		t.Errorf("teamPresence %+v %v", sts, err)
	}
	if _, err := f.svc.TeamPresence(as("carol"), team.ID); !errs.Is(err, errs.Forbidden) {
		t.Errorf("teamPresence by a non-member: %v", err)
	}
	if _, err := f.svc.TeamPresence(as("carol"), "team_nope"); !errs.Is(err, errs.NotFound) {
		t.Errorf("teamPresence of no team: %v", err)
	}
	proj, err := f.svc.CreateProject(as("alice"), "Launch", "")
	if err != nil {
		t.Fatal(err)
	}
	if sts, err := f.svc.ProjectPresence(as("alice"), proj.ID); err != nil || len(sts) != 1 || sts[0].Status != presence.Online {
		t.Errorf("projectPresence %+v %v", sts, err)
	}
	if _, err := f.svc.ProjectPresence(as("bob"), proj.ID); !errs.Is(err, errs.Forbidden) {
		t.Errorf("projectPresence by a non-member: %v", err)
	}
}

// BenchmarkPublishPresence is the cost of one presence change leaving the
// server: the user's memberships read, one event
// for their rooms and one per team (two teams, one project here),
// snapshots and encoding. It runs on the relay, never on a request.
func BenchmarkPublishPresence(b *testing.B) {
	st, err := sqlite.Open(b.Context(), b.TempDir()+"/svc.db")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	feed := &feedRecorder{}
	svc := service.New(st, feed, nil)
	var changes []presence.Change
	p := presence.NewMemory(presence.Options{SweepEvery: -1, OnChange: func(ch presence.Change) { changes = append(changes, ch) }})
	defer p.Close()
	svc.UsePresence(p)
	for _, id := range []string{"alice", "bob", "carol"} {
		if _, err := svc.CreateUser(b.Context(), store.User{ID: id, Name: id}); err != nil {
			b.Fatal(err)
		}
	}
	for _, creator := range []string{"alice", "bob"} {
		t, err := svc.CreateTeam(as(creator), "team")
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range []string{"alice", "bob", "carol"} {
			if m != creator {
				_, _ = svc.AddTeamMember(auth.WithViewer(b.Context(), *asAdmin("ops")), t.ID, m)
			}
		}
	}
	if _, err := svc.CreateProject(as("alice"), "Launch", ""); err != nil {
		b.Fatal(err)
	}
	_ = p.Connect(b.Context(), "alice", "c1")
	ch := changes[0]
	b.ReportAllocs()
	for b.Loop() {
		if err := svc.PublishPresence(b.Context(), ch); err != nil {
			b.Fatal(err)
		}
		feed.takeLive()
	}
}

// TestEventShowsMembersOnlineAtCommit: with a presence source, the members
// an event lists carry their online state as at the commit (read for the
// whole list at once): connected users online, the others not.
func TestEventShowsMembersOnlineAtCommit(t *testing.T) {
	f := newFixture(t)
	p, _ := f.withPresence()
	f.teamOf("alice", "bob", "carol")
	proj, err := f.svc.CreateProject(as("alice"), "Launch", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"bob", "carol"} {
		if _, err := f.svc.AddProjectMember(as("alice"), proj.ID, u); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	if err := p.Connect(ctx, "alice", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := p.Connect(ctx, "carol", "c2"); err != nil {
		t.Fatal(err)
	}
	f.take()
	if _, err := f.svc.CreateTask(as("bob"), service.TaskInput{Title: "t", ProjectID: proj.ID}); err != nil {
		t.Fatal(err)
	}
	evs := f.take()
	if len(evs) != 1 {
		t.Fatalf("createTask published %d events", len(evs))
	}
	var d service.EventData
	if err := json.Unmarshal(evs[0].Data, &d); err != nil || d.Snapshot == nil {
		t.Fatalf("event data %s: %v", evs[0].Data, err)
	}
	got := map[string]bool{}
	for _, m := range d.Snapshot.ProjectMembers {
		got[m.ID] = m.Online
	}
	if want := map[string]bool{"alice": true, "bob": false, "carol": true}; !maps.Equal(got, want) {
		t.Fatalf("members online in the event: %v, want %v", got, want)
	}
}
