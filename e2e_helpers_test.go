package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/config"
	"github.com/taskpulse/taskpulse/internal/wsclient"
	"github.com/taskpulse/taskpulse/store"
)

// quiet is how long a test waits to be sure something does NOT arrive.
const quiet = 300 * time.Millisecond

// env is one real server on 127.0.0.1:0 with a fresh SQLite file.
type env struct {
	t *testing.T
	m *Main
}

func testConfig(t *testing.T, extra map[string]string) config.Config {
	t.Helper()
	vars := map[string]string{
		"ADDR":             "127.0.0.1:0",
		"DATABASE_URL":     "sqlite:" + t.TempDir() + "/taskpulse.db",
		"JWT_SECRET":       "e2e-secret-not-for-production-0123456789",
		"DRAIN_TIMEOUT":    "200ms",
		"WS_PING_INTERVAL": "5s",
		// Tests make more calls, and refused ones, than a person: the
		// limits have their own tests (e2e_limits_test.go).
		"RATE_LIMIT_PER_MIN": "100000",
		"ABUSE_THRESHOLD":    "100000",
		"AUDIT_LOG":          t.TempDir() + "/audit.log",
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := config.FromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// testLogger sends server logs to the test log, shown only on failure.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func start(t *testing.T, extra map[string]string) *env {
	t.Helper()
	m, err := Open(context.Background(), testConfig(t, extra), testLogger(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &env{t: t, m: m}
}

// users creates accounts; ids ending in "!" are admins ("ops!" → ops).
func (e *env) users(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		admin := strings.HasSuffix(id, "!")
		id = strings.TrimSuffix(id, "!")
		if _, err := e.m.Service().CreateUser(context.Background(), store.User{ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Admin: admin}); err != nil {
			e.t.Fatalf("create user %s: %v", id, err)
		}
	}
}

func (e *env) token(user string) string {
	e.t.Helper()
	tok, err := e.m.Authenticator().Issue(user, time.Hour, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// gqlError is an error as a client sees it.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (g gqlError) code() string { s, _ := g.Extensions["code"].(string); return s }

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// post sends one GraphQL request over HTTP as user ("" = no token).
func (e *env) post(user, query string, vars map[string]any) (int, gqlResponse) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(user))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST /graphql: %v", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		e.t.Fatalf("response %d is not JSON: %s", res.StatusCode, raw)
	}
	return res.StatusCode, r
}

// do runs a query or mutation that must succeed and decodes data into out.
func (e *env) do(user, query string, vars map[string]any, out any) {
	e.t.Helper()
	_, r := e.post(user, query, vars)
	if len(r.Errors) > 0 {
		e.t.Fatalf("%s as %s: errors %+v", firstLine(query), user, r.Errors)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			e.t.Fatalf("decode %s: %v", r.Data, err)
		}
	}
}

// fails runs a request that must fail with the given extensions.code.
func (e *env) fails(user, query string, vars map[string]any, code string) {
	e.t.Helper()
	_, r := e.post(user, query, vars)
	if len(r.Errors) == 0 {
		e.t.Fatalf("%s as %q: want error %s, got data %s", firstLine(query), user, code, r.Data)
	}
	if got := r.Errors[0].code(); got != code {
		e.t.Fatalf("%s as %q: want code %s, got %s (%s)", firstLine(query), user, code, got, r.Errors[0].Message)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		return s[:i]
	}
	return s
}

// Common data-building mutations.
func (e *env) createProject(owner, name string) string {
	var out struct{ CreateProject struct{ ID string } }
	e.do(owner, `mutation($n: String!) { createProject(input: {name: $n}) { id } }`, map[string]any{"n": name}, &out)
	return out.CreateProject.ID
}

func (e *env) addMember(owner, project, user string) {
	e.do(owner, `mutation($p: ID!, $u: ID!) { addProjectMember(projectId: $p, userId: $u) { id } }`, map[string]any{"p": project, "u": user}, nil)
}

func (e *env) removeMember(owner, project, user string) {
	e.do(owner, `mutation($p: ID!, $u: ID!) { removeProjectMember(projectId: $p, userId: $u) { id } }`, map[string]any{"p": project, "u": user}, nil)
}

// createTeam creates a team whose members joined with consent: the creator
// invites each, each accepts.
func (e *env) createTeam(creator, name string, members ...string) string {
	var out struct{ CreateTeam struct{ ID string } }
	e.do(creator, `mutation($n: String!) { createTeam(input: {name: $n}) { id } }`, map[string]any{"n": name}, &out)
	for _, m := range members {
		e.invite(creator, out.CreateTeam.ID, m)
		e.accept(m, out.CreateTeam.ID)
	}
	return out.CreateTeam.ID
}

// invite is addTeamMember by the team's creator: an invitation.
func (e *env) invite(creator, team, user string) {
	e.do(creator, `mutation($t: ID!, $u: ID!) { addTeamMember(teamId: $t, userId: $u) { id } }`, map[string]any{"t": team, "u": user}, nil)
}

func (e *env) accept(user, team string) {
	e.do(user, `mutation($t: ID!) { acceptInvitation(teamId: $t) { id } }`, map[string]any{"t": team}, nil)
}

// createTask creates a task as user; project and assignee may be "".
func (e *env) createTask(user, title, project, assignee string) string {
	in := map[string]any{"title": title}
	if project != "" {
		in["projectId"] = project
	}
	if assignee != "" {
		in["assignedTo"] = assignee
	}
	var out struct{ CreateTask struct{ ID string } }
	e.do(user, `mutation($in: CreateTaskInput!) { createTask(input: $in) { id } }`, map[string]any{"in": in}, &out)
	return out.CreateTask.ID
}

// live is one open subscription of one user over a real WebSocket.
type live struct {
	t    *testing.T
	user string
	c    *wsclient.Client
	sub  *wsclient.Sub
}

const taskUpdatesQuery = `subscription { taskUpdates { type cursor timestamp task { id title status projectId userId assignedTo } } }`

// subscribe opens a socket as user, initialises it and subscribes.
func (e *env) subscribe(user, query string, vars map[string]any) *live {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(e.m.URL(), "http")+"/graphql", wsclient.DialOptions{})
	if err != nil {
		e.t.Fatalf("dial as %s: %v", user, err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Init(ctx, map[string]any{"token": e.token(user)}); err != nil {
		e.t.Fatalf("init as %s: %v", user, err)
	}
	sub, err := c.Subscribe(ctx, "1", query, vars)
	if err != nil {
		e.t.Fatalf("subscribe as %s: %v", user, err)
	}
	// The server handles a subscribe on the connection's reader before the
	// next frame, so the pong proves the subscription is registered: events
	// published after this point reach it.
	if err := c.Ping(ctx); err != nil {
		e.t.Fatalf("ping after subscribe as %s: %v", user, err)
	}
	return &live{t: e.t, user: user, c: c, sub: sub}
}

// next waits for the subscription's next result.
func (l *live) next() (wsclient.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return l.sub.Next(ctx)
}

// taskEvent is the part of a taskUpdates result the tests look at.
type taskEvent struct {
	Type   string
	Cursor string
	Task   struct {
		ID, Title, Status string
		ProjectID         *string
		AssignedTo        *string
	}
}

// nextData waits for the subscription's next result and decodes its data
// into out (a struct with the root field, e.g. struct{ TaskUpdates T });
// an error, a GraphQL error or bad data fails the test.
func (l *live) nextData(what string, out any) {
	l.t.Helper()
	r, err := l.next()
	if err != nil {
		l.t.Fatalf("%s: waiting for %s: %v", l.user, what, err)
	}
	if len(r.Errors) > 0 {
		l.t.Fatalf("%s: errors %+v", l.user, r.Errors)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		l.t.Fatalf("%s: decode %s: %v", l.user, r.Data, err)
	}
}

// nextTask waits for a taskUpdates event.
func (l *live) nextTask() taskEvent {
	l.t.Helper()
	var d struct{ TaskUpdates taskEvent }
	l.nextData("a task event", &d)
	return d.TaskUpdates
}

// nothing asserts that no message arrives on the subscription within quiet.
func (l *live) nothing() {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), quiet)
	defer cancel()
	r, err := l.sub.Next(ctx)
	if err == nil {
		l.t.Fatalf("%s received %s, want nothing", l.user, r.Data)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		l.t.Fatalf("%s: want silence, got %v", l.user, err)
	}
}

// tryNext reports whether a message was already waiting (and drops it).
func (l *live) tryNext() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := l.sub.Next(ctx)
	return err == nil
}
