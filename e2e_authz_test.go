package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestAuthorizationOverHTTP is CONTRACT's "who may do what", as a client
// sees it: the exact extensions.code for every refusal, FORBIDDEN (not
// NOT_FOUND, not an empty list) for what exists but is not yours.
func TestAuthorizationOverHTTP(t *testing.T) {
	w := newWorld(t)
	team := w.createTeam("carol", "Carol's team")
	task := w.createTask("bob", "in P", w.project, "")
	personal := w.createTask("alice", "alice's own", "", "")
	var n struct{ SendNotification struct{ ID string } }
	w.do("alice", `mutation { sendNotification(userId: "carol", message: "hi") { id } }`, nil, &n)
	vars := func(kv ...string) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	p, tk := w.project, task
	q := w.createProject("alice", "Q")
	cases := []struct {
		name, user, query string
		vars              map[string]any
		code              string
	}{
		{"no token", "", `{ me { id } }`, nil, "UNAUTHENTICATED"},
		{"no token mutation", "", `mutation { createTeam(input: {name: "x"}) { id } }`, nil, "UNAUTHENTICATED"},
		{"non-member reads project", "dave", `query($p: ID!) { project(id: $p) { id } }`, vars("p", p), "FORBIDDEN"},
		{"non-member lists project tasks", "dave", `query($p: ID!) { tasks(projectId: $p) { id } }`, vars("p", p), "FORBIDDEN"},
		{"non-member reads project task", "carol", `query($t: ID!) { task(id: $t) { id } }`, vars("t", tk), "FORBIDDEN"},
		{"non-member updates project task", "dave", `mutation($t: ID!) { updateTask(id: $t, input: {title: "x"}) { id } }`, vars("t", tk), "FORBIDDEN"},
		{"non-member creates task in project", "dave", `mutation($p: ID!) { createTask(input: {title: "x", projectId: $p}) { id } }`, vars("p", p), "FORBIDDEN"},
		{"member renames project (owner only)", "bob", `mutation($p: ID!) { updateProject(id: $p, input: {name: "x"}) { id } }`, vars("p", p), "FORBIDDEN"},
		{"member deletes project (owner only)", "bob", `mutation($p: ID!) { deleteProject(id: $p) }`, vars("p", p), "FORBIDDEN"},
		{"member adds member (owner only)", "bob", `mutation($p: ID!) { addProjectMember(projectId: $p, userId: "dave") { id } }`, vars("p", p), "FORBIDDEN"},
		{"assign to a teammate outside the project", "alice", `mutation($t: ID!) { assignTask(id: $t, userId: "carol") { id } }`, vars("t", tk), "FORBIDDEN"},
		{"assign to a stranger (as unknown)", "alice", `mutation($t: ID!) { assignTask(id: $t, userId: "dave") { id } }`, vars("t", tk), "NOT_FOUND"},
		{"assign personal task to a stranger (as unknown)", "alice", `mutation($t: ID!) { assignTask(id: $t, userId: "dave") { id } }`, vars("t", personal), "NOT_FOUND"},
		{"others' personal task", "bob", `query($t: ID!) { task(id: $t) { id } }`, vars("t", personal), "FORBIDDEN"},
		{"team member adds member (creator only)", "alice", `mutation($t: ID!) { addTeamMember(teamId: $t, userId: "dave") { id } }`, vars("t", team), "FORBIDDEN"},
		{"non-member reads team", "dave", `query($t: ID!) { team(id: $t) { id } }`, vars("t", team), "FORBIDDEN"},
		{"stranger's profile (as unknown)", "dave", `{ user(id: "alice") { id } }`, nil, "NOT_FOUND"},
		{"someone else's notification", "bob", `mutation($n: ID!) { markNotificationRead(id: $n) { id } }`, vars("n", n.SendNotification.ID), "FORBIDDEN"},
		{"connections is admin only", "alice", `{ connections(userId: "bob") { id } }`, nil, "FORBIDDEN"},
		{"disconnectUser is admin only", "alice", `mutation { disconnectUser(userId: "bob") }`, nil, "FORBIDDEN"},
		{"system update is admin or service only", "alice", `mutation { publishSystemUpdate(message: "x") }`, nil, "FORBIDDEN"},
		{"unknown project", "alice", `{ project(id: "prj_nope") { id } }`, nil, "NOT_FOUND"},
		{"unknown task", "alice", `mutation { updateTask(id: "tsk_nope", input: {title: "x"}) { id } }`, nil, "NOT_FOUND"},
		{"add unknown user", "alice", `mutation($p: ID!) { addProjectMember(projectId: $p, userId: "ghost") { id } }`, vars("p", p), "NOT_FOUND"},
		{"add a stranger (as unknown)", "alice", `mutation($p: ID!) { addProjectMember(projectId: $p, userId: "dave") { id } }`, vars("p", p), "NOT_FOUND"},
		{"add a user who shares no team", "alice", `mutation($p: ID!) { addProjectMember(projectId: $p, userId: "bob") { id } }`, vars("p", q), "FORBIDDEN"},
		{"non-member leaves a project", "dave", `mutation($p: ID!) { removeProjectMember(projectId: $p, userId: "dave") { id } }`, vars("p", p), "FORBIDDEN"},
		{"member removes another member", "bob", `mutation($p: ID!) { removeProjectMember(projectId: $p, userId: "alice") { id } }`, vars("p", p), "FORBIDDEN"},
		{"accept without an invitation", "dave", `mutation($t: ID!) { acceptInvitation(teamId: $t) { id } }`, vars("t", team), "FORBIDDEN"},
		{"accept an unknown team", "dave", `mutation { acceptInvitation(teamId: "team_nope") { id } }`, nil, "NOT_FOUND"},
		{"non-member leaves a team", "dave", `mutation($t: ID!) { removeTeamMember(teamId: $t, userId: "dave") { id } }`, vars("t", team), "FORBIDDEN"},
		{"member removes another team member", "carol", `mutation($t: ID!) { removeTeamMember(teamId: $t, userId: "alice") { id } }`, vars("t", w.team), "FORBIDDEN"},
		{"the team's creator leaves first", "alice", `mutation($t: ID!) { removeTeamMember(teamId: $t, userId: "alice") { id } }`, vars("t", w.team), "BAD_USER_INPUT"},
		{"empty title", "alice", `mutation { createTask(input: {title: "   "}) { id } }`, nil, "BAD_USER_INPUT"},
		{"title too long", "alice", `mutation($t: String!) { createTask(input: {title: $t}) { id } }`, vars("t", strings.Repeat("x", 201)), "BAD_USER_INPUT"},
		{"nothing to update", "alice", `mutation($t: ID!) { updateTask(id: $t, input: {}) { id } }`, vars("t", personal), "BAD_USER_INPUT"},
		{"remove the owner", "alice", `mutation($p: ID!) { removeProjectMember(projectId: $p, userId: "alice") { id } }`, vars("p", p), "BAD_USER_INPUT"},
		{"bad enum value", "alice", `mutation($t: ID!) { updateTask(id: $t, input: {status: FINISHED}) { id } }`, vars("t", personal), "BAD_USER_INPUT"},
		{"syntax error", "alice", `{ me { id `, nil, "BAD_USER_INPUT"},
		{"unknown field", "alice", `{ me { password } }`, nil, "BAD_USER_INPUT"},
		{"notification limit", "alice", `{ notifications(limit: 100000) { id } }`, nil, "BAD_USER_INPUT"},
		{"subscription over plain HTTP", "alice", `subscription { systemUpdates { message } }`, nil, "BAD_USER_INPUT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { w.fails(c.user, c.query, c.vars, c.code) })
	}

	t.Run("allowed counterparts", func(t *testing.T) {
		w.do("bob", `query($p: ID!) { project(id: $p) { id members { id } } tasks(projectId: $p) { id } }`, vars("p", p), nil)
		w.do("bob", `mutation($t: ID!) { updateTask(id: $t, input: {status: IN_PROGRESS}) { id } }`, vars("t", tk), nil)
		w.do("alice", `{ user(id: "carol") { id name } }`, nil, nil)
		w.do("ops", `{ connections(userId: "bob") { id } }`, nil, nil)
		w.do("ops", `query($p: ID!) { project(id: $p) { id } }`, vars("p", p), nil)
		var ns struct{ Notifications []struct{ Message string } }
		w.do("carol", `{ notifications(limit: null) { message } }`, nil, &ns)
		// Newest first: "hi", then the notice of her invitation to T.
		if len(ns.Notifications) != 2 || ns.Notifications[0].Message != "hi" || !strings.Contains(ns.Notifications[1].Message, "invited you") {
			t.Fatalf("carol's notifications: %+v", ns)
		}
	})
}

// TestInvalidTokenIsRefusedWith401: a present but bad token is never
// treated as anonymous, and an event stream needs a token.
func TestInvalidTokenIsRefusedWith401(t *testing.T) {
	e := start(t, nil)
	cases := []struct{ name, header, accept, query string }{
		{"malformed", "Bearer not-a-jwt", "application/json", `{ me { id } }`},
		{"oversized", "Bearer " + strings.Repeat("a", 9000), "application/json", `{ me { id } }`},
		{"not bearer", "Basic YWxpY2U6cHc=", "application/json", `{ me { id } }`},
		{"sse without token", "", "text/event-stream", `subscription { systemUpdates { message } }`},
		{"sse with bad token", "Bearer nope", "text/event-stream", `subscription { systemUpdates { message } }`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", strings.NewReader(`{"query":"`+c.query+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", c.accept)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"UNAUTHENTICATED"`) {
				t.Fatalf("status %d body %s, want 401 UNAUTHENTICATED", res.StatusCode, body)
			}
		})
	}
}
