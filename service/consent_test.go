package service_test

import (
	"encoding/json"
	"testing"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
)

// teamOf makes a team created by creator that members joined by accepting
// its creator's invitations, and drops the events that published.
func (f *fixture) teamOf(creator string, members ...string) store.Team {
	f.t.Helper()
	team, err := f.svc.CreateTeam(as(creator), "team of "+creator)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, m := range members {
		if _, err := f.svc.AddTeamMember(as(creator), team.ID, m); err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.svc.AcceptInvitation(as(m), team.ID); err != nil {
			f.t.Fatal(err)
		}
	}
	f.take()
	f.feed.takeLive()
	return team
}

// TestConsentEvents: an invitation is a NOTIFICATION_SENT to the invitee
// alone (no membership change); accepting is TEAM_MEMBER_ADDED with Join;
// leaving is TEAM_MEMBER_REMOVED with Leave, both to the team's room.
func TestConsentEvents(t *testing.T) {
	f := newFixture(t)
	team, err := f.svc.CreateTeam(as("alice"), "Core")
	if err != nil {
		t.Fatal(err)
	}
	f.take() // the creator's TEAM_MEMBER_ADDED (presence_test.go)
	if _, err := f.svc.AddTeamMember(as("alice"), team.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	evs := f.take()
	if len(evs) != 1 || evs[0].Type != service.NotificationSent || evs[0].Control != nil ||
		len(evs[0].Rooms) != 1 || evs[0].Rooms[0] != realtime.RoomUser("bob") {
		t.Fatalf("invitation published %+v", evs)
	}
	var d service.EventData
	if err := json.Unmarshal(evs[0].Data, &d); err != nil || d.Notification.UserID != "bob" || d.Notification.SenderID != "alice" {
		t.Fatalf("invitation notice %s: %v", evs[0].Data, err)
	}

	if _, err := f.svc.AcceptInvitation(as("bob"), team.ID); err != nil {
		t.Fatal(err)
	}
	join := realtime.Control{Op: realtime.Join, UserID: "bob", Room: realtime.RoomTeam(team.ID)}
	if evs := f.take(); len(evs) != 1 || evs[0].Type != service.TeamMemberAdded || *evs[0].Control != join ||
		len(evs[0].Rooms) != 1 || evs[0].Rooms[0] != realtime.RoomTeam(team.ID) {
		t.Fatalf("accept published %+v", evs)
	}

	if _, _, err := f.svc.RemoveTeamMember(as("bob"), team.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	leave := realtime.Control{Op: realtime.Leave, UserID: "bob", Room: realtime.RoomTeam(team.ID)}
	if evs := f.take(); len(evs) != 1 || evs[0].Type != service.TeamMemberRemoved || *evs[0].Control != leave {
		t.Fatalf("leave published %+v", evs)
	}
}

// TestConsentNoOpsPublishNothing: what changes nothing tells nobody.
func TestConsentNoOpsPublishNothing(t *testing.T) {
	f := newFixture(t)
	team := f.teamOf("alice", "bob")
	if _, err := f.svc.AddTeamMember(as("alice"), team.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	f.take()
	cases := []struct {
		name string
		run  func() error
		code errs.Code // "" = succeeds
	}{
		{"invite again", func() error { _, err := f.svc.AddTeamMember(as("alice"), team.ID, "carol"); return err }, ""},
		{"invite a member", func() error { _, err := f.svc.AddTeamMember(as("alice"), team.ID, "bob"); return err }, ""},
		{"invite an unknown id", func() error { _, err := f.svc.AddTeamMember(as("alice"), team.ID, "ghost"); return err }, ""},
		{"accept as a member", func() error { _, err := f.svc.AcceptInvitation(as("bob"), team.ID); return err }, ""},
		{"remove a non-member", func() error { _, _, err := f.svc.RemoveTeamMember(as("alice"), team.ID, "ghost"); return err }, ""},
		{"decline", func() error { _, err := f.svc.DeclineInvitation(as("carol"), team.ID); return err }, ""},
		{"accept after declining", func() error { _, err := f.svc.AcceptInvitation(as("carol"), team.ID); return err }, errs.Forbidden},
		{"a member invites", func() error { _, err := f.svc.AddTeamMember(as("bob"), team.ID, "carol"); return err }, errs.Forbidden},
		{"the creator leaves first", func() error { _, _, err := f.svc.RemoveTeamMember(as("alice"), team.ID, "alice"); return err }, errs.BadUserInput},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.run(); errs.CodeOf(err) != c.code && !(c.code == "" && err == nil) {
				t.Fatalf("got %v, want %q", err, c.code)
			}
			if evs := f.take(); len(evs) != 0 {
				t.Fatalf("published %+v", evs)
			}
		})
	}
}
