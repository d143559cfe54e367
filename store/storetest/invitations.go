package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// consentTests are the cases of the consent methods (invitations, leaving a
// team, SharesTeam); Run runs them with the others.
var consentTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"Invitations", testInvitations},
	{"AcceptInvitation", testAcceptInvitation},
	{"RemoveTeamMember", testRemoveTeamMember},
	{"SharesTeam", testSharesTeam},
	{"ConcurrentAccepts", testConcurrentAccepts},
	{"CreatorLeavesWhileInviteeAccepts", testCreatorLeavesWhileInviteeAccepts},
}

// mkTeam creates a team created by creator with the given members (added
// directly, as an admin would).
func mkTeam(t *testing.T, s store.Store, id, creator string, members ...string) store.Team {
	t.Helper()
	team, err := s.CreateTeam(t.Context(), store.Team{ID: id, Name: "Team " + id, CreatedBy: creator})
	noErr(t, err, "CreateTeam "+id)
	for _, m := range members {
		_, err := s.AddTeamMember(t.Context(), id, m)
		noErr(t, err, "AddTeamMember "+m)
	}
	return team
}

// invite creates an invitation at time at(i) and reports whether it was
// created.
func invite(t *testing.T, s store.Store, team, user, by string, i int) bool {
	t.Helper()
	_, created, err := s.CreateInvitation(t.Context(),
		store.Invitation{TeamID: team, UserID: user, InvitedBy: by, CreatedAt: at(i)},
		store.Notification{Message: by + " invites " + user})
	noErr(t, err, "CreateInvitation "+team+" "+user)
	return created
}

// wantInvitations fails t unless user's pending invitations are to exactly
// these teams, in this order.
func wantInvitations(t *testing.T, s store.Store, user string, teams ...string) {
	t.Helper()
	got, err := s.UserInvitations(t.Context(), user)
	noErr(t, err, "UserInvitations "+user)
	if teams == nil {
		teams = []string{}
	}
	sameList(t, "invitations of "+user, ids(got, func(i store.Invitation) string { return i.TeamID }), teams)
}

func testInvitations(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "carol", "dave", "erin")
	mkTeam(t, s, "team_b", "dave")
	mkTeam(t, s, "team_a", "dave", "erin")

	t.Run("create stores the invitation and its notice together", func(t *testing.T) {
		before := time.Now()
		n, created, err := s.CreateInvitation(ctx, store.Invitation{TeamID: "team_b", UserID: "carol", InvitedBy: "dave"},
			store.Notification{Message: "Dave invited you"})
		noErr(t, err, "CreateInvitation")
		same(t, "created", created, true)
		wantPrefix(t, "notice", n.ID, "ntf")
		wantStamp(t, "notice CreatedAt", n.CreatedAt, before, time.Now())
		same(t, "notice", n, store.Notification{ID: n.ID, UserID: "carol", SenderID: "dave", Message: "Dave invited you", CreatedAt: n.CreatedAt})
		stored, err := s.Notification(ctx, n.ID)
		noErr(t, err, "Notification")
		same(t, "notice read back", stored, n)
		got, err := s.UserInvitations(ctx, "carol")
		noErr(t, err, "UserInvitations")
		sameList(t, "invitations", got, []store.Invitation{
			{TeamID: "team_b", TeamName: "Team team_b", UserID: "carol", InvitedBy: "dave", CreatedAt: got[0].CreatedAt}})
		wantStamp(t, "invitation CreatedAt", got[0].CreatedAt, before, time.Now())
		wantMembers(t, "IsTeamMember", s.IsTeamMember, member{"team_b", "carol", false})
	})

	t.Run("nothing is stored for a second invitation, a member or a missing user", func(t *testing.T) {
		notices := func() int {
			ns, err := s.UserNotifications(ctx, "carol", false, wholePage())
			noErr(t, err, "UserNotifications")
			return len(ns)
		}
		was := notices()
		same(t, "invite again", invite(t, s, "team_b", "carol", "dave", 9), false)
		same(t, "invite a member", invite(t, s, "team_a", "erin", "dave", 9), false)
		same(t, "invite the creator", invite(t, s, "team_a", "dave", "dave", 9), false)
		same(t, "invite a missing user", invite(t, s, "team_a", "nobody", "dave", 9), false)
		same(t, "notices after refused invitations", notices(), was)
		wantInvitations(t, s, "erin")
		wantInvitations(t, s, "dave")
	})

	t.Run("listing is oldest first, then by team id", func(t *testing.T) {
		mkUser(t, s, "fred")
		mkTeam(t, s, "team_c", "dave")
		same(t, "invite to c", invite(t, s, "team_c", "fred", "dave", 2), true)
		same(t, "invite to b", invite(t, s, "team_b", "fred", "dave", 1), true)
		same(t, "invite to a", invite(t, s, "team_a", "fred", "dave", 2), true)
		wantInvitations(t, s, "fred", "team_b", "team_a", "team_c")
		got, err := s.UserInvitations(ctx, "fred")
		noErr(t, err, "UserInvitations")
		same(t, "explicit CreatedAt kept", got[0].CreatedAt, at(1))
	})

	t.Run("decline", func(t *testing.T) {
		deleted, err := s.DeleteInvitation(ctx, "team_c", "fred")
		noErr(t, err, "DeleteInvitation")
		same(t, "deleted", deleted, true)
		deleted, err = s.DeleteInvitation(ctx, "team_c", "fred")
		noErr(t, err, "DeleteInvitation again")
		same(t, "deleted again", deleted, false)
		wantInvitations(t, s, "fred", "team_b", "team_a")
		wantMembers(t, "IsTeamMember", s.IsTeamMember, member{"team_c", "fred", false})
		same(t, "invite again after declining", invite(t, s, "team_c", "fred", "dave", 3), true)
	})

	t.Run("an admin's add supersedes the invitation", func(t *testing.T) {
		added, err := s.AddTeamMember(ctx, "team_a", "fred")
		noErr(t, err, "AddTeamMember")
		same(t, "added", added, true)
		wantInvitations(t, s, "fred", "team_b", "team_c")
	})

	t.Run("errors", func(t *testing.T) {
		_, _, err := s.CreateInvitation(ctx, store.Invitation{TeamID: "team_missing", UserID: "carol", InvitedBy: "dave"}, store.Notification{Message: "x"})
		wantNotFound(t, err, "team_missing", "CreateInvitation to a missing team")
		_, _, err = s.CreateInvitation(ctx, store.Invitation{TeamID: "team_a", UserID: "carol", InvitedBy: "ghost"}, store.Notification{Message: "x"})
		wantNotFound(t, err, "ghost", "CreateInvitation by a missing user")
		_, err = s.UserInvitations(ctx, "nobody")
		wantNotFound(t, err, "nobody", "UserInvitations")
		_, err = s.DeleteInvitation(ctx, "team_missing", "carol")
		wantNotFound(t, err, "team_missing", "DeleteInvitation")
		wantInvitations(t, s, "carol", "team_b")
	})
}

func testAcceptInvitation(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "carol", "dave", "erin")
	mkTeam(t, s, "team_t", "dave")
	invite(t, s, "team_t", "carol", "dave", 0)

	accepted, err := s.AcceptInvitation(ctx, "team_t", "erin")
	noErr(t, err, "AcceptInvitation without an invitation")
	same(t, "accepted without an invitation", accepted, false)
	wantMembers(t, "IsTeamMember", s.IsTeamMember, member{"team_t", "erin", false})

	accepted, err = s.AcceptInvitation(ctx, "team_t", "carol")
	noErr(t, err, "AcceptInvitation")
	same(t, "accepted", accepted, true)
	wantMembers(t, "IsTeamMember", s.IsTeamMember, member{"team_t", "carol", true})
	wantInvitations(t, s, "carol")
	wantListings(t, "TeamMembers", s.TeamMembers, s.User, userIDs, listing{"team_t", []string{"carol", "dave"}})

	accepted, err = s.AcceptInvitation(ctx, "team_t", "carol")
	noErr(t, err, "AcceptInvitation again")
	same(t, "accepted twice", accepted, false)

	_, err = s.AcceptInvitation(ctx, "team_missing", "carol")
	wantNotFound(t, err, "team_missing", "AcceptInvitation of a missing team")
}

func testRemoveTeamMember(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "carol", "dave", "erin", "fred")
	mkTeam(t, s, "team_t", "dave", "carol", "erin")
	invite(t, s, "team_t", "fred", "dave", 0)

	remove := func(user string) (bool, error) { return s.RemoveTeamMember(ctx, "team_t", user) }

	removed, err := remove("erin")
	noErr(t, err, "RemoveTeamMember erin")
	same(t, "removed erin", removed, true)
	removed, err = remove("erin")
	noErr(t, err, "RemoveTeamMember erin again")
	same(t, "removed erin twice", removed, false)
	removed, err = remove("nobody")
	noErr(t, err, "RemoveTeamMember of a missing user")
	same(t, "removed a missing user", removed, false)
	wantListings(t, "TeamMembers", s.TeamMembers, s.User, userIDs, listing{"team_t", []string{"carol", "dave"}})
	wantListings(t, "UserTeams", whole(s.UserTeams), s.Team, teamIDs, listing{"erin", []string{}})

	t.Run("withdraws an invitation", func(t *testing.T) {
		invite(t, s, "team_t", "erin", "dave", 1)
		removed, err := remove("erin")
		noErr(t, err, "RemoveTeamMember of an invitee")
		same(t, "removed an invitee", removed, false)
		wantInvitations(t, s, "erin")
	})

	t.Run("the creator leaves last, with the team's invitations", func(t *testing.T) {
		_, err := remove("dave")
		wantCode(t, err, errs.BadUserInput, "the creator leaving while carol remains")
		wantMembers(t, "IsTeamMember", s.IsTeamMember, member{"team_t", "dave", true})
		wantInvitations(t, s, "fred", "team_t")

		removed, err := remove("carol")
		noErr(t, err, "RemoveTeamMember carol")
		same(t, "removed carol", removed, true)
		removed, err = remove("dave")
		noErr(t, err, "the creator leaving last")
		same(t, "removed the creator", removed, true)
		wantListings(t, "TeamMembers", s.TeamMembers, s.User, userIDs, listing{"team_t", []string{}})
		wantInvitations(t, s, "fred")
		// The team stays (projects may name it); it has no members.
		_, err = s.Team(ctx, "team_t")
		noErr(t, err, "Team after its creator left")
	})

	_, err = s.RemoveTeamMember(ctx, "team_missing", "carol")
	wantNotFound(t, err, "team_missing", "RemoveTeamMember of a missing team")
}

func testSharesTeam(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkUsers(t, s, "ann", "ben", "cat", "dan")
	mkTeam(t, s, "team_t", "ann", "ben")
	mkProject(t, s, "prj_p", "ann", "cat")
	mkTeam(t, s, "team_i", "dan")
	invite(t, s, "team_i", "ann", "dan", 0)
	tests := []struct {
		a, b string
		want bool
		why  string
	}{
		{"ann", "ben", true, "team"},
		{"ben", "ann", true, "team, other way"},
		{"ann", "cat", false, "a project is not a team"},
		{"dan", "ann", false, "an invitation is not a membership"},
		{"ann", "ann", true, "self"},
		{"ann", "nobody", false, "missing user"},
	}
	for _, tc := range tests {
		ok, err := s.SharesTeam(ctx, tc.a, tc.b)
		noErr(t, err, "SharesTeam")
		same(t, fmt.Sprintf("SharesTeam(%s, %s) [%s]", tc.a, tc.b, tc.why), ok, tc.want)
	}
}

// testConcurrentAccepts: many accepts of one invitation (a double-clicked
// button, two tabs) consume it once.
func testConcurrentAccepts(t *testing.T, s store.Store) {
	mkUsers(t, s, "carol", "dave")
	mkTeam(t, s, "team_t", "dave")
	invite(t, s, "team_t", "carol", "dave", 0)
	var wins atomic.Int32
	race(8, func(int) {
		ok, err := s.AcceptInvitation(t.Context(), "team_t", "carol")
		if err != nil {
			t.Errorf("AcceptInvitation: %v", err)
		}
		if ok {
			wins.Add(1)
		}
	})
	same(t, "accepts that consumed the invitation", wins.Load(), int32(1))
	wantMembers(t, "IsTeamMember", s.IsTeamMember, member{"team_t", "carol", true})
	wantInvitations(t, s, "carol")
}

// testCreatorLeavesWhileInviteeAccepts: whichever commits first, the team
// never ends up with members but without its creator, and an invitation
// never survives the creator's leaving.
func testCreatorLeavesWhileInviteeAccepts(t *testing.T, s store.Store) {
	mkUsers(t, s, "carol", "dave")
	for i := range 10 {
		team := fmt.Sprintf("team_%d", i)
		mkTeam(t, s, team, "dave")
		invite(t, s, team, "carol", "dave", i)
		var left, joined bool
		var leaveErr, joinErr error
		race(2, func(j int) {
			if j == 0 {
				left, leaveErr = s.RemoveTeamMember(t.Context(), team, "dave")
			} else {
				joined, joinErr = s.AcceptInvitation(t.Context(), team, "carol")
			}
		})
		noErr(t, joinErr, "AcceptInvitation")
		members, err := s.TeamMembers(t.Context(), team)
		noErr(t, err, "TeamMembers")
		switch {
		case left && !joined && leaveErr == nil:
			sameList(t, team+": creator left first", userIDs(members), []string{})
		case joined && !left && errs.CodeOf(leaveErr) == errs.BadUserInput:
			sameList(t, team+": invitee joined first", userIDs(members), []string{"carol", "dave"})
		default:
			t.Fatalf("%s: left=%v (%v) joined=%v: members %v", team, left, leaveErr, joined, userIDs(members))
		}
	}
	wantInvitations(t, s, "carol")
}
