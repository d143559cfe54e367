package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskpulse/taskpulse/internal/pgtest"
)

// TestPostgresEndToEnd runs the real server on PostgreSQL through a
// representative flow: accounts, a team joined by invitation, a project, a
// task created and updated while a member's subscription receives both
// events and a non-member's receives nothing; then /readyz follows the
// database.
func TestPostgresEndToEnd(t *testing.T) {
	db := pgtest.NewDatabase(t)
	e := start(t, map[string]string{"DATABASE_URL": db})
	e.users("alice", "bob", "carol")

	team := e.createTeam("alice", "T", "bob") // bob invited, then accepts
	e.invite("alice", team, "carol")
	var invs struct {
		Invitations []struct{ TeamID, TeamName, InvitedBy string }
	}
	e.do("carol", `{ invitations { teamId teamName invitedBy } }`, nil, &invs)
	if len(invs.Invitations) != 1 || invs.Invitations[0].TeamID != team || invs.Invitations[0].TeamName != "T" ||
		invs.Invitations[0].InvitedBy != "alice" {
		t.Fatalf("carol's invitations: %+v", invs.Invitations)
	}
	e.accept("carol", team)
	var tm struct {
		Team struct{ Members []struct{ ID string } }
	}
	e.do("bob", `query($t: ID!) { team(id: $t) { members { id } } }`, map[string]any{"t": team}, &tm)
	if got := joinIDs(tm.Team.Members); got != "alice,bob,carol" {
		t.Fatalf("team members %s, want alice,bob,carol", got)
	}

	p := e.createProject("alice", "P")
	e.addMember("alice", p, "bob")
	member := e.subscribe("bob", taskUpdatesQuery, nil)
	outsider := e.subscribe("carol", taskUpdatesQuery, nil)

	id := e.createTask("alice", "write the adapter", p, "")
	if ev := member.nextTask(); ev.Type != "TASK_CREATED" || ev.Task.ID != id || ev.Task.Status != "TODO" {
		t.Fatalf("bob's first event: %+v", ev)
	}
	e.do("bob", `mutation($id: ID!) { updateTask(id: $id, input: {status: DONE, title: "adapter written"}) { id } }`,
		map[string]any{"id": id}, nil)
	ev := member.nextTask()
	if ev.Type != "TASK_UPDATED" || ev.Task.ID != id || ev.Task.Status != "DONE" || ev.Task.Title != "adapter written" {
		t.Fatalf("bob's second event: %+v", ev)
	}
	outsider.nothing()

	var tasks struct {
		Tasks []struct{ ID, Status, Title string }
	}
	e.do("alice", `query($p: ID!) { tasks(projectId: $p) { id status title } }`, map[string]any{"p": p}, &tasks)
	if len(tasks.Tasks) != 1 || tasks.Tasks[0].ID != id || tasks.Tasks[0].Status != "DONE" {
		t.Fatalf("tasks of P: %+v", tasks.Tasks)
	}

	if code := e.statusOfGET("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz on a reachable database: %d", code)
	}
	dropPostgresDatabase(t, db)
	if code := e.statusOfGET("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz once the database is gone: %d, want 503", code)
	}
}

func joinIDs(us []struct{ ID string }) string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return strings.Join(out, ",")
}

// statusOfGET GETs a path of the server and returns the status code.
func (e *env) statusOfGET(path string) int {
	e.t.Helper()
	res, err := http.Get(e.m.URL() + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// dropPostgresDatabase drops the database at dbURL now, closing its connections,
// as an operator's mistake or a failover would.
func dropPostgresDatabase(t *testing.T, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	name := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
}
