package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/audit"
)

// auditLog reads the server's AUDIT_LOG file.
func (e *env) auditLog() []audit.Record {
	e.t.Helper()
	b, err := os.ReadFile(e.m.cfg.AuditLog)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			e.t.Fatalf("audit line is not a record: %q", sc.Text())
		}
		out = append(out, r)
	}
	return out
}

// waitRecord waits for a record matching want's non-zero fields (Time
// aside) and returns it.
func (e *env) waitRecord(want audit.Record) audit.Record {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := e.auditLog()
		for _, r := range recs {
			if matches(r, want) {
				return r
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, r := range recs {
				j, _ := json.Marshal(r)
				b.Write(j)
				b.WriteByte('\n')
			}
			e.t.Fatalf("no audit record like %+v in:\n%s", want, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func matches(r, w audit.Record) bool {
	eq := func(got, want string) bool { return want == "" || got == want }
	return r.Kind == w.Kind && eq(r.UserID, w.UserID) && eq(r.IP, w.IP) && eq(r.ConnID, w.ConnID) &&
		eq(r.Transport, w.Transport) && eq(r.Operation, w.Operation) && eq(r.Object, w.Object) &&
		eq(r.Code, w.Code) && eq(r.Reason, w.Reason) && eq(r.By, w.By) && eq(r.UserAgent, w.UserAgent) &&
		(w.CloseCode == 0 || r.CloseCode == w.CloseCode) && (w.Count == 0 || r.Count == w.Count)
}

// Each kind of record the server writes, with who, what, which object,
// why and where — as a session over HTTP, WebSocket and SSE produces them.
// (rate_limited, block and unblock are the limits' records.)
func TestAuditRecordsEachKind(t *testing.T) {
	e := start(t, nil)
	e.users("alice", "bob", "ops!")
	const ws, ip = "graphql-transport-ws", "127.0.0.1"

	// Refused credentials: over HTTP, and in connection_init.
	e.postAuthorization("Bearer not-a-jwt", `{"query":"{ me { id } }"}`)
	e.waitRecord(audit.Record{Kind: audit.AuthFailure, IP: ip, Transport: "http", Code: "UNAUTHENTICATED", Reason: "malformed token"})
	e.refusedInit(map[string]any{"token": "not-a-jwt"})
	refused := e.waitRecord(audit.Record{Kind: audit.AuthFailure, IP: ip, Transport: ws, Reason: "malformed token"})
	if refused.ConnID == "" || refused.UserAgent == "" {
		t.Errorf("a refused socket's record lacks its connection: %+v", refused)
	}

	// Mutations name their object: the returned id of a create, the first
	// ID argument otherwise.
	project := e.createProject("alice", "Audit")
	e.waitRecord(audit.Record{Kind: audit.Mutation, UserID: "alice", Transport: "http", IP: ip, Operation: "createProject", Object: project})
	task := e.createTask("alice", "audited task", project, "")
	e.waitRecord(audit.Record{Kind: audit.Mutation, UserID: "alice", Operation: "createTask", Object: task})

	// A connection and its subscription, with the project it is about.
	alice := e.subscribe("alice", `subscription($p: ID!) { projectUpdates(projectId: $p) { type } }`, map[string]any{"p": project})
	conn := e.waitRecord(audit.Record{Kind: audit.Connect, UserID: "alice", Transport: ws, IP: ip})
	if conn.ConnID == "" || !strings.HasPrefix(conn.UserAgent, "Go-http-client") {
		t.Errorf("connect record: %+v", conn)
	}
	e.waitRecord(audit.Record{Kind: audit.Subscribe, UserID: "alice", ConnID: conn.ConnID, Operation: "projectUpdates", Object: project})

	// Denials: a subscribe and a mutation on someone else's project.
	bob := e.subscribe("bob", `subscription($p: ID!) { projectUpdates(projectId: $p) { type } }`, map[string]any{"p": project})
	if _, err := bob.next(); err == nil {
		t.Fatal("bob subscribed to alice's project")
	}
	e.waitRecord(audit.Record{Kind: audit.Deny, UserID: "bob", Transport: ws, Operation: "projectUpdates", Object: project, Code: "FORBIDDEN"})
	e.fails("bob", `mutation($id: ID!) { updateTask(id: $id, input: {title: "mine now"}) { id } }`, map[string]any{"id": task}, "FORBIDDEN")
	deny := e.waitRecord(audit.Record{Kind: audit.Deny, UserID: "bob", Transport: "http", Operation: "updateTask", Object: task, Code: "FORBIDDEN"})
	if deny.Reason == "" {
		t.Errorf("a denial says why: %+v", deny)
	}

	// A refreshConnection with a bad token is an authentication failure
	// of that connection.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := alice.c.Execute(ctx, `mutation($t: String!) { refreshConnection(token: $t) }`, map[string]any{"t": "not-a-jwt"}); err == nil && len(r.Errors) == 0 {
		t.Fatal("a bad token refreshed the connection")
	}
	e.waitRecord(audit.Record{Kind: audit.AuthFailure, UserID: "alice", ConnID: conn.ConnID, Operation: "refreshConnection", Code: "UNAUTHENTICATED", Reason: "malformed token"})

	// disconnectUser: the admin, the target, how many; the socket's end.
	var n struct{ DisconnectUser int }
	e.do("ops", `mutation { disconnectUser(userId: "alice") }`, nil, &n)
	e.waitRecord(audit.Record{Kind: audit.DisconnectUser, By: "ops", UserID: "alice", Count: n.DisconnectUser})
	if n.DisconnectUser != 1 {
		t.Fatalf("disconnectUser closed %d", n.DisconnectUser)
	}
	e.waitRecord(audit.Record{Kind: audit.Disconnect, UserID: "alice", ConnID: conn.ConnID, CloseCode: 4403})

	// A client's own close, and an SSE stream's end.
	_ = bob.c.Close()
	e.waitRecord(audit.Record{Kind: audit.Disconnect, UserID: "bob", Transport: ws, CloseCode: 1000, Reason: "closed normally"})
	stream := e.openSSE(e.token("bob"), `subscription { notifications { notification { id } } }`)
	e.waitRecord(audit.Record{Kind: audit.Subscribe, UserID: "bob", Transport: "sse", Operation: "notifications"})
	stream.res.Body.Close()
	e.waitRecord(audit.Record{Kind: audit.Disconnect, UserID: "bob", Transport: "sse", CloseCode: 1006})

	for _, r := range e.auditLog() {
		if r.Time.IsZero() || time.Since(r.Time) > time.Minute {
			t.Errorf("record time %v", r.Time)
		}
	}
}

// No token, secret or message body reaches any log: a session full of
// recognisable ones — valid and forged tokens over every path, the signing
// key, task titles and descriptions, notification and system messages,
// names, forbidden and invalid inputs — then the audit log and the process
// log (at debug level) are searched for each of them.
func TestNoSecretInAnyLog(t *testing.T) {
	procLog := &syncBuffer{}
	cfg := testConfig(t, map[string]string{"LOG_LEVEL": "debug"})
	m, err := Open(context.Background(), cfg, slog.New(slog.NewTextHandler(procLog, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, m: m}
	e.users("alice", "bob", "ops!")

	var secrets []string
	keep := func(s string) string { secrets = append(secrets, s); return s }
	keep(cfg.JWTSecret)
	tok := func(user string) string { return keep(e.token(user)) }
	forged := keep("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.FORGEDSIGNATURE7f3a")

	// Over HTTP: good and forged tokens, content a client writes.
	e.createTeam("alice", keep("Team Kestrel 7f3a"), "bob")
	project := e.createProject("alice", keep("Project Nightingale 7f3a"))
	e.addMember("alice", project, "bob")
	e.postAuthorization("Bearer "+forged, `{"query":"{ me { id } }"}`)
	e.postAuthorization("Bearer "+tok("alice")+"x", `{"query":"{ me { id } }"}`) // a valid token, altered
	in := map[string]any{"title": keep("Merge the Zanzibar accounts 7f3a"), "description": keep("password is hunter2-7f3a"), "projectId": project}
	var created struct{ CreateTask struct{ ID string } }
	e.do("alice", `mutation($in: CreateTaskInput!) { createTask(input: $in) { id } }`, map[string]any{"in": in}, &created)
	e.fails("bob", `mutation($m: String!) { publishSystemUpdate(message: $m) }`, map[string]any{"m": keep("SYSTEM secret plan 7f3a")}, "FORBIDDEN")
	e.do("ops", `mutation($m: String!) { publishSystemUpdate(message: $m) }`, map[string]any{"m": keep("maintenance window 7f3a")}, nil)
	e.do("alice", `mutation($u: ID!, $m: String!) { sendNotification(userId: $u, message: $m) { id } }`,
		map[string]any{"u": "bob", "m": keep("meet me at the docks 7f3a")}, nil)
	e.fails("alice", `mutation($in: CreateTaskInput!) { createTask(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"title": keep(strings.Repeat("toolong-7f3a ", 40))}}, "BAD_USER_INPUT")

	// Over a WebSocket: a forged init, a good one, refreshConnection with
	// a forged and a good token, a subscription that receives.
	e.refusedInit(map[string]any{"token": forged})
	e.refusedInit(map[string]any{"Authorization": "Bearer " + forged})
	bob := e.subscribe("bob", taskUpdatesQuery, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = bob.c.Execute(ctx, `mutation($t: String!) { refreshConnection(token: $t) }`, map[string]any{"t": forged})
	if r, err := bob.c.Execute(ctx, `mutation($t: String!) { refreshConnection(token: $t) }`, map[string]any{"t": tok("bob")}); err != nil || len(r.Errors) > 0 {
		t.Fatalf("refresh: %v %+v", err, r.Errors)
	}
	e.do("alice", `mutation($id: ID!, $t: String!) { updateTask(id: $id, input: {title: $t}) { id } }`,
		map[string]any{"id": created.CreateTask.ID, "t": keep("Renamed to Operation Bluebird 7f3a")}, nil)
	if ev := bob.nextTask(); !strings.Contains(ev.Task.Title, "Bluebird") {
		t.Fatalf("bob got %+v", ev)
	}

	// Over SSE, with a token in the header.
	stream := e.openSSE(tok("bob"), `subscription { notifications { notification { message } } }`)
	e.do("alice", `mutation($u: ID!, $m: String!) { sendNotification(userId: $u, message: $m) { id } }`,
		map[string]any{"u": "bob", "m": keep("second note about the vault 7f3a")}, nil)
	if d, ok := stream.next(); !ok || !strings.Contains(d, "vault") {
		t.Fatalf("SSE: %q %v", d, ok)
	}
	e.do("ops", `mutation { disconnectUser(userId: "bob") }`, nil, nil)

	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	auditLog, err := os.ReadFile(cfg.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	logs := map[string]string{"audit log": string(auditLog), "process log": procLog.String()}
	if !strings.Contains(logs["audit log"], `"kind":"auth_failure"`) || !strings.Contains(logs["audit log"], `"kind":"disconnect_user"`) {
		t.Fatalf("the session was not audited:\n%s", auditLog)
	}
	for name, text := range logs {
		for _, s := range secrets {
			probe := s
			if len(probe) > 40 {
				probe = probe[len(probe)-40:] // a token's signature, a long input's tail
			}
			if strings.Contains(text, probe) {
				t.Errorf("the %s contains %q:\n%s", name, probe, text)
			}
		}
		if strings.Contains(text, "7f3a") || strings.Contains(text, "hunter2") {
			t.Errorf("the %s contains client text:\n%s", name, text)
		}
	}
}

// A query repeating a forbidden field under many aliases (queries are not
// rate limited) writes a bounded number of records: maxRefusalRecords,
// then one counting the rest.
func TestAuditRefusalsPerOperationAreBounded(t *testing.T) {
	e := start(t, nil)
	e.users("alice", "bob")
	task := e.createTask("alice", "private", "", "")
	const n = 40
	var q strings.Builder
	q.WriteString("query($t: ID!) {")
	for i := range n {
		q.WriteString(" a" + strconv.Itoa(i) + ": task(id: $t) { id }")
	}
	q.WriteString(" }")
	_, r := e.post("bob", q.String(), map[string]any{"t": task})
	if len(r.Errors) == 0 || r.Errors[0].code() != "FORBIDDEN" {
		t.Fatalf("errors %+v", r.Errors)
	}
	summary := e.waitRecord(audit.Record{Kind: audit.Deny, UserID: "bob", Count: n - maxRefusalRecords})
	if summary.Transport != "http" || summary.IP == "" {
		t.Errorf("summary record: %+v", summary)
	}
	denies := 0
	for _, rec := range e.auditLog() {
		if rec.Kind == audit.Deny && rec.UserID == "bob" {
			denies++
			if rec.Count == 0 && (rec.Operation != "task" || rec.Object != task || rec.Code != "FORBIDDEN") {
				t.Errorf("deny record: %+v", rec)
			}
		}
	}
	if denies != maxRefusalRecords+1 {
		t.Fatalf("%d deny records for %d refusals, want %d", denies, n, maxRefusalRecords+1)
	}
}
