package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

// Consent before sharing (issue 5): a team is joined by accepting an
// invitation, any member leaves, a project's owner adds only teammates, and
// a user you may not see is indistinguishable from an id nobody has.

// TestInvitationFlow: the creator invites; the invitee is told live, sees
// the invitation and nothing else of the team; accepting makes them a
// member (TEAM_MEMBER_ADDED on the team's room); declining, or accepting
// without an invitation, does not.
func TestInvitationFlow(t *testing.T) {
	e := start(t, nil)
	e.users("alice", "carol", "dave", "erin")
	team := e.createTeam("alice", "Core")
	t1 := map[string]any{"t": team}
	room := e.watchTeam("alice", team)
	carolN := e.subscribe("carol", notificationsQuery, nil)

	e.invite("alice", team, "carol")
	n := carolN.nextNotification()
	if n.Type != "NOTIFICATION_SENT" || n.Notification.SenderID != "alice" || !strings.Contains(n.Notification.Message, `"Core"`) {
		t.Fatalf("carol's invitation notice: %+v", n)
	}
	var inv struct {
		Invitations []struct{ TeamID, TeamName, InvitedBy, CreatedAt string }
	}
	e.do("carol", `{ invitations { teamId teamName invitedBy createdAt } }`, nil, &inv)
	if len(inv.Invitations) != 1 || inv.Invitations[0].TeamID != team || inv.Invitations[0].TeamName != "Core" ||
		inv.Invitations[0].InvitedBy != "alice" || inv.Invitations[0].CreatedAt == "" {
		t.Fatalf("carol's invitations: %+v", inv)
	}

	t.Run("an invitee sees nothing of the team, nor the team of them", func(t *testing.T) {
		e.fails("carol", teamMembersQuery, t1, "FORBIDDEN")
		wantIDs(t, "carol's teams", e.ids("carol", `{ teams { id } }`, nil, "teams"))
		e.fails("carol", `{ user(id: "alice") { id } }`, nil, "NOT_FOUND")
		e.fails("alice", `{ user(id: "carol") { id } }`, nil, "NOT_FOUND")
		wantIDs(t, "members", e.teamMembers("alice", team), "alice")
		room.nothing()
	})

	t.Run("inviting twice is one invitation and one notice", func(t *testing.T) {
		e.invite("alice", team, "carol")
		carolN.nothing()
		wantIDs(t, "carol's invitations", e.ids("carol", `{ invitations { teamId } }`, nil, "invitations"), team)
	})

	t.Run("only the invitee accepts", func(t *testing.T) {
		e.fails("dave", `mutation($t: ID!) { acceptInvitation(teamId: $t) { id } }`, t1, "FORBIDDEN")
		wantIDs(t, "members", e.teamMembers("alice", team), "alice")
	})

	t.Run("accepting joins, live", func(t *testing.T) {
		e.accept("carol", team)
		if typ, member := room.next(); typ != "TEAM_MEMBER_ADDED" || member != "carol" {
			t.Fatalf("team room got %s of %q, want TEAM_MEMBER_ADDED of carol", typ, member)
		}
		wantIDs(t, "members", e.teamMembers("carol", team), "alice", "carol")
		wantIDs(t, "carol's invitations", e.ids("carol", `{ invitations { teamId } }`, nil, "invitations"))
		e.do("alice", `{ user(id: "carol") { id email online } }`, nil, nil)
		// Accepting again, or inviting a member, changes nothing.
		e.accept("carol", team)
		e.invite("alice", team, "carol")
		room.nothing()
		carolN.nothing()
	})

	t.Run("declining", func(t *testing.T) {
		e.invite("alice", team, "erin")
		var d struct{ DeclineInvitation bool }
		e.do("erin", `mutation($t: ID!) { declineInvitation(teamId: $t) }`, t1, &d)
		if !d.DeclineInvitation {
			t.Fatal("declineInvitation: false, want true (there was one)")
		}
		e.do("erin", `mutation($t: ID!) { declineInvitation(teamId: $t) }`, t1, &d)
		if d.DeclineInvitation {
			t.Fatal("declining again: true, want false")
		}
		e.fails("erin", `mutation($t: ID!) { acceptInvitation(teamId: $t) { id } }`, t1, "FORBIDDEN")
		e.fails("erin", teamMembersQuery, t1, "FORBIDDEN")
		wantIDs(t, "members", e.teamMembers("alice", team), "alice", "carol")
		room.nothing()
	})

	t.Run("the creator withdraws an invitation", func(t *testing.T) {
		e.invite("alice", team, "dave")
		e.do("alice", `mutation($t: ID!) { removeTeamMember(teamId: $t, userId: "dave") { id } }`, t1, nil)
		wantIDs(t, "dave's invitations", e.ids("dave", `{ invitations { teamId } }`, nil, "invitations"))
		e.fails("dave", `mutation($t: ID!) { acceptInvitation(teamId: $t) { id } }`, t1, "FORBIDDEN")
	})

	t.Run("an admin adds at once", func(t *testing.T) {
		e.users("ops!")
		e.do("ops", `mutation($t: ID!) { addTeamMember(teamId: $t, userId: "erin") { id } }`, t1, nil)
		if typ, member := room.next(); typ != "TEAM_MEMBER_ADDED" || member != "erin" {
			t.Fatalf("team room got %s of %q, want TEAM_MEMBER_ADDED of erin", typ, member)
		}
		e.fails("ops", `mutation($t: ID!) { addTeamMember(teamId: $t, userId: "ghost") { id } }`, t1, "NOT_FOUND")
	})
}

// TestLeavingAProjectAndATeam: any member leaves; the leaver's
// projectUpdates ends with FORBIDDEN, their taskUpdates stop carrying the
// project, and once they share nothing with someone they are strangers.
func TestLeavingAProjectAndATeam(t *testing.T) {
	e := start(t, nil)
	e.users("alice", "bob")
	team := e.createTeam("alice", "Core", "bob")
	p := e.createProject("alice", "P")
	e.addMember("alice", p, "bob") // allowed: they share Core
	bobTasks := e.subscribe("bob", taskUpdatesQuery, nil)
	bobProject := e.subscribe("bob", `subscription($p: ID!) { projectUpdates(projectId: $p) { type member { id } } }`, map[string]any{"p": p})
	room := e.watchTeam("bob", team)

	e.createTask("alice", "before bob leaves", p, "")
	if ev := bobTasks.nextTask(); ev.Task.Title != "before bob leaves" {
		t.Fatalf("bob got %+v", ev)
	}
	if _, err := bobProject.next(); err != nil {
		t.Fatal(err)
	}

	// bob leaves the project.
	e.removeMember("bob", p, "bob")
	r, err := bobProject.next()
	if err != nil || !strings.Contains(string(r.Data), `"PROJECT_MEMBER_REMOVED","member":{"id":"bob"}`) {
		t.Fatalf("bob's projectUpdates: want his PROJECT_MEMBER_REMOVED, got %s %v", r.Data, err)
	}
	if _, err := bobProject.next(); !isOperationError(err, "FORBIDDEN") {
		t.Fatalf("bob's projectUpdates after leaving: want FORBIDDEN, got %v", err)
	}
	e.createTask("alice", "after bob left", p, "")
	bobTasks.nothing()
	e.fails("bob", `query($p: ID!) { project(id: $p) { id } }`, map[string]any{"p": p}, "FORBIDDEN")
	e.fails("bob", `mutation($p: ID!) { removeProjectMember(projectId: $p, userId: "bob") { id } }`, map[string]any{"p": p}, "FORBIDDEN")
	// Still teammates: alice may assign him work.
	mine := e.createTask("alice", "for bob", "", "bob")
	if ev := bobTasks.nextTask(); ev.Task.ID != mine {
		t.Fatalf("bob got %+v, want the task alice assigned him", ev)
	}

	// bob leaves the team.
	e.do("bob", `mutation($t: ID!) { removeTeamMember(teamId: $t, userId: "bob") { id } }`, map[string]any{"t": team}, nil)
	if typ, member := room.next(); typ != "TEAM_MEMBER_REMOVED" || member != "bob" {
		t.Fatalf("team room got %s of %q, want TEAM_MEMBER_REMOVED of bob", typ, member)
	}
	if err := room.ended(); errs.CodeOf(err) != errs.Forbidden {
		t.Fatalf("bob's team subscription ended with %v, want FORBIDDEN", err)
	}
	wantIDs(t, "members", e.teamMembers("alice", team), "alice")
	e.fails("alice", `{ user(id: "bob") { id } }`, nil, "NOT_FOUND")
	e.fails("alice", `mutation { createTask(input: {title: "x", assignedTo: "bob"}) { id } }`, nil, "NOT_FOUND")
	e.fails("alice", `mutation($p: ID!) { addProjectMember(projectId: $p, userId: "bob") { id } }`, map[string]any{"p": p}, "NOT_FOUND")
	bobTasks.nothing()

	// The creator, alone now, may leave too; the team stays, memberless.
	e.do("alice", `mutation($t: ID!) { removeTeamMember(teamId: $t, userId: "alice") { id } }`, map[string]any{"t": team}, nil)
	e.fails("alice", teamMembersQuery, map[string]any{"t": team}, "FORBIDDEN")
	e.fails("alice", `mutation($t: ID!) { addTeamMember(teamId: $t, userId: "bob") { id } }`, map[string]any{"t": team}, "FORBIDDEN")
}

// TestAStrangerCannotReachAUser is issue 5's attack row: dave, who shares
// nothing with carol, tries every way to reach her. Before consent he
// added her to his project and then read her email and online status,
// notified her, assigned her tasks and pushed them into her taskUpdates.
func TestAStrangerCannotReachAUser(t *testing.T) {
	e := start(t, nil)
	e.users("dave")
	if _, err := e.m.Service().CreateUser(context.Background(), store.User{ID: "carol", Name: "Carol", Email: "carol@private.example"}); err != nil {
		t.Fatal(err)
	}
	carolTasks := e.subscribe("carol", taskUpdatesQuery, nil) // carol is online
	carolN := e.subscribe("carol", notificationsQuery, nil)
	p := e.createProject("dave", "bait")
	pv := map[string]any{"p": p}

	e.fails("dave", `mutation($p: ID!) { addProjectMember(projectId: $p, userId: "carol") { id } }`, pv, "NOT_FOUND")
	_, r := e.post("dave", `{ user(id: "carol") { email online } }`, nil)
	if len(r.Errors) == 0 || r.Errors[0].code() != "NOT_FOUND" || strings.Contains(string(r.Data), "carol@") {
		t.Fatalf("dave reads carol: %s %+v", r.Data, r.Errors)
	}
	e.fails("dave", `mutation { sendNotification(userId: "carol", message: "buy now") { id } }`, nil, "NOT_FOUND")
	e.fails("dave", `mutation($p: ID) { createTask(input: {title: "spam", projectId: $p, assignedTo: "carol"}) { id } }`, pv, "NOT_FOUND")
	e.fails("dave", `mutation { createTask(input: {title: "spam", assignedTo: "carol"}) { id } }`, nil, "NOT_FOUND")
	own := e.createTask("dave", "dave's", "", "")
	e.fails("dave", `mutation($t: ID!) { assignTask(id: $t, userId: "carol") { id } }`, map[string]any{"t": own}, "NOT_FOUND")
	e.createTask("dave", "in bait", p, "")
	var pm struct {
		Project struct{ Members []struct{ ID string } }
	}
	e.do("dave", `query($p: ID!) { project(id: $p) { members { id } } }`, pv, &pm)
	if len(pm.Project.Members) != 1 || pm.Project.Members[0].ID != "dave" {
		t.Fatalf("bait members: %+v", pm)
	}
	carolTasks.nothing()
	carolN.nothing()

	// The consented route: an invitation, which carol sees and refuses.
	team := e.createTeam("dave", "bait team")
	e.invite("dave", team, "carol")
	if n := carolN.nextNotification(); n.Notification.SenderID != "dave" {
		t.Fatalf("carol's notice: %+v", n)
	}
	e.fails("dave", `{ user(id: "carol") { id } }`, nil, "NOT_FOUND")
	e.fails("dave", `mutation($p: ID!) { addProjectMember(projectId: $p, userId: "carol") { id } }`, pv, "NOT_FOUND")
	e.do("carol", `mutation($t: ID!) { declineInvitation(teamId: $t) }`, map[string]any{"t": team}, nil)
	e.fails("dave", `mutation { sendNotification(userId: "carol", message: "buy now") { id } }`, nil, "NOT_FOUND")
	carolTasks.nothing()
	carolN.nothing()
}

// TestUnknownAndInvisibleUsersGetTheSameAnswer: for every operation that
// names another user, carol (who exists but shares nothing with dave) and
// ghost (nobody) get byte-identical responses, and the answer is the
// expected one (not, say, two identical INTERNALs).
func TestUnknownAndInvisibleUsersGetTheSameAnswer(t *testing.T) {
	e := start(t, nil)
	e.users("dave", "carol", "alice")
	e.createTeam("alice", "Carol's circle", "carol") // carol has teammates, just not dave
	p := e.createProject("dave", "P")
	team := e.createTeam("dave", "T")
	task := e.createTask("dave", "t", "", "")
	cases := []struct {
		name, query string
		vars        map[string]any
		want        string // extensions.code, or "" for success
	}{
		{"user", `query($u: ID!) { user(id: $u) { id email online } }`, nil, "NOT_FOUND"},
		{"addProjectMember", `mutation($p: ID!, $u: ID!) { addProjectMember(projectId: $p, userId: $u) { id members { id } } }`, map[string]any{"p": p}, "NOT_FOUND"},
		{"removeProjectMember", `mutation($p: ID!, $u: ID!) { removeProjectMember(projectId: $p, userId: $u) { id members { id } } }`, map[string]any{"p": p}, ""},
		{"addTeamMember (an invitation)", `mutation($t: ID!, $u: ID!) { addTeamMember(teamId: $t, userId: $u) { id members { id } } }`, map[string]any{"t": team}, ""},
		{"removeTeamMember", `mutation($t: ID!, $u: ID!) { removeTeamMember(teamId: $t, userId: $u) { id members { id } } }`, map[string]any{"t": team}, ""},
		{"createTask assignedTo", `mutation($u: ID!) { createTask(input: {title: "x", assignedTo: $u}) { id } }`, nil, "NOT_FOUND"},
		{"createTask in a project assignedTo", `mutation($p: ID!, $u: ID!) { createTask(input: {title: "x", projectId: $p, assignedTo: $u}) { id } }`, map[string]any{"p": p}, "NOT_FOUND"},
		{"assignTask", `mutation($k: ID!, $u: ID!) { assignTask(id: $k, userId: $u) { id } }`, map[string]any{"k": task}, "NOT_FOUND"},
		{"sendNotification", `mutation($u: ID!) { sendNotification(userId: $u, message: "hi") { id } }`, nil, "NOT_FOUND"},
		{"connections (admin only)", `query($u: ID!) { connections(userId: $u) { id } }`, nil, "FORBIDDEN"},
		{"disconnectUser (admin only)", `mutation($u: ID!) { disconnectUser(userId: $u) }`, nil, "FORBIDDEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			answer := func(user string) (int, []byte) {
				vars := map[string]any{"u": user}
				for k, v := range c.vars {
					vars[k] = v
				}
				return e.postRaw(context.Background(), "dave", c.query, vars)
			}
			sCarol, carol := answer("carol")
			sGhost, ghost := answer("ghost")
			if sCarol != sGhost || !bytes.Equal(carol, ghost) {
				t.Fatalf("invisible carol: %d %s\nunknown ghost: %d %s", sCarol, carol, sGhost, ghost)
			}
			var r gqlResponse
			if err := json.Unmarshal(carol, &r); err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(r.Errors) > 0 {
				got = r.Errors[0].code()
			}
			if got != c.want {
				t.Fatalf("answer %s, want %q", carol, c.want)
			}
		})
	}
}

// TestDemoDataIsReadyForTheQuickStart: `serve --demo` seeds what README's
// quick start uses, joined with consent (bob and carol accepted alice's
// invitation; dave's is pending), and the quick start's steps work.
func TestDemoDataIsReadyForTheQuickStart(t *testing.T) {
	e := start(t, nil)
	if err := seedDemo(context.Background(), e.m, testLogger(t), io.Discard); err != nil {
		t.Fatal(err)
	}
	var teams struct {
		Teams []struct {
			ID, Name string
			Members  []struct{ ID string }
		}
	}
	e.do("alice", `{ teams { id name members { id } } }`, nil, &teams)
	if len(teams.Teams) != 1 || teams.Teams[0].Name != "Core" || len(teams.Teams[0].Members) != 3 {
		t.Fatalf("alice's teams: %+v", teams)
	}
	core := teams.Teams[0].ID
	wantIDs(t, "dave's invitations", e.ids("dave", `{ invitations { teamId } }`, nil, "invitations"), core)
	var projects struct {
		Projects []struct {
			ID, Name string
			Members  []struct{ ID string }
		}
	}
	e.do("bob", `{ projects { id name members { id } } }`, nil, &projects)
	if len(projects.Projects) != 1 || projects.Projects[0].Name != "Launch" || len(projects.Projects[0].Members) != 2 {
		t.Fatalf("bob's projects: %+v", projects)
	}
	launch := projects.Projects[0].ID

	alice := e.subscribe("alice", taskUpdatesQuery, nil)
	dave := e.subscribe("dave", taskUpdatesQuery, nil)
	// Step 4: bob creates a task assigned to alice; step 5: one in Launch.
	assigned := e.createTask("bob", "Review the launch plan", "", "alice")
	inLaunch := e.createTask("bob", "Ship it", launch, "")
	for _, want := range []string{assigned, inLaunch} {
		if ev := alice.nextTask(); ev.Type != "TASK_CREATED" || ev.Task.ID != want {
			t.Fatalf("alice got %+v, want TASK_CREATED of %s", ev, want)
		}
	}
	dave.nothing()
}
