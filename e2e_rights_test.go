package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// issue signs a token for user with ttl and role ("" = none).
func (e *env) issue(user string, ttl time.Duration, role string) string {
	e.t.Helper()
	tok, err := e.m.Authenticator().Issue(user, ttl, role)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// connect opens a socket authenticated with token.
func (e *env) connect(token string) *wsclient.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(e.m.URL(), "http")+"/graphql", wsclient.DialOptions{})
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Init(ctx, map[string]any{"token": token}); err != nil {
		e.t.Fatalf("init: %v", err)
	}
	return c
}

// postWith sends one GraphQL request over HTTP with token.
func (e *env) postWith(token, query string, vars map[string]any) (int, gqlResponse) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
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

// over runs an operation over the socket and returns its first error's
// code ("" when it succeeded).
func over(t *testing.T, c *wsclient.Client, query string, vars map[string]any) (json.RawMessage, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Execute(ctx, query, vars)
	if err != nil {
		t.Fatalf("%s over the socket: %v", firstLine(query), err)
	}
	if len(r.Errors) > 0 {
		return r.Data, r.Errors[0].Code()
	}
	return r.Data, ""
}

const updateUserMutation = `mutation($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { id name email } }`

func (e *env) updateUser(admin, id string, in map[string]any) {
	e.t.Helper()
	e.do(admin, updateUserMutation, map[string]any{"id": id, "in": in}, nil)
}

// sseStream is an open graphql-sse subscription. A goroutine reads its
// events' data into data (closed when the stream ends), so a read can
// time out.
type sseStream struct {
	res   *http.Response
	data  chan string
	ended chan struct{} // closed when the stream has ended
}

func (e *env) openSSE(token, query string) *sseStream {
	e.t.Helper()
	subs := e.m.hub.Stats().Subscriptions
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	e.t.Cleanup(func() {
		close(done)
		res.Body.Close()
	})
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		e.t.Fatalf("SSE: %d %s", res.StatusCode, b)
	}
	s := &sseStream{res: res, data: make(chan string, 64), ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		defer close(s.data)
		lines := bufio.NewScanner(res.Body)
		for lines.Scan() {
			if d, found := strings.CutPrefix(lines.Text(), "data: "); found {
				select {
				case s.data <- d:
				case <-done:
					return
				}
			}
		}
	}()
	// graphql-sse answers 200 before the subscription is registered (as
	// graphql-ws sends no ack of a subscribe): wait until the hub has it,
	// or the stream said something or ended (a refusal), so what the test
	// publishes next is not published before anyone listens.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if e.m.hub.Stats().Subscriptions > subs || len(s.data) > 0 {
			break
		}
		select {
		case <-s.ended:
			return s
		default:
		}
	}
	return s
}

// next returns the data of the stream's next event, or ok false when the
// stream ended.
func (s *sseStream) next() (data string, ok bool) {
	d, ok := <-s.data
	return d, ok
}

// nextWithin is next waiting at most wait; ok is false also when nothing
// came. A 200 answer does not mean the subscription is registered yet, so
// a test publishing until an event arrives must not wait for ever.
func (s *sseStream) nextWithin(wait time.Duration) (data string, ok bool) {
	select {
	case d, ok := <-s.data:
		return d, ok
	case <-time.After(wait):
		return "", false
	}
}

// TestDisableRefusesEverywhereAtOnce is the "deleted user" row: a disabled
// user's open WebSocket and SSE stream close within a second (the
// WebSocket with 4403), their token is refused over HTTP and for a new
// socket, a new token is refused, and enabling them again does not revive
// the tokens issued before.
func TestDisableRefusesEverywhereAtOnce(t *testing.T) {
	e := start(t, nil)
	e.users("ops!", "bob", "alice")
	tok := e.issue("bob", time.Hour, "")

	ws := e.connect(tok)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sysWS, err := ws.Subscribe(ctx, "sys", `subscription { systemUpdates { message } }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	sse := e.openSSE(tok, `subscription { systemUpdates { message } }`)
	// Both are live: a system update reaches both.
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.do("ops", `mutation { publishSystemUpdate(message: "before") }`, nil, nil)
		if d, ok := sse.nextWithin(250 * time.Millisecond); ok && strings.Contains(d, "before") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the SSE stream never received a system update")
		}
	}
	if r, err := sysWS.Next(ctx); err != nil || !strings.Contains(string(r.Data), "before") {
		t.Fatalf("WebSocket before disabling: %s %v", r.Data, err)
	}

	e.updateUser("ops", "bob", map[string]any{"disabled": true})
	disabled := time.Now()

	ce, err := ws.WaitClose(ctx)
	if err != nil || ce.Code != 4403 {
		t.Fatalf("bob's WebSocket: want close 4403, got %v %v", ce, err)
	}
	if d := time.Since(disabled); d > time.Second {
		t.Errorf("bob's WebSocket closed %v after the disabling, want within 1s", d)
	}
	sseEnded := make(chan time.Duration, 1)
	go func() {
		for {
			if _, ok := sse.next(); !ok {
				sseEnded <- time.Since(disabled)
				return
			}
		}
	}()
	select {
	case d := <-sseEnded:
		if d > time.Second {
			t.Errorf("bob's SSE stream ended %v after the disabling, want within 1s", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("bob's SSE stream is still open 3s after the disabling")
	}

	refused := func(what, token string) {
		t.Helper()
		status, r := e.postWith(token, `{ me { id } }`, nil)
		if status != http.StatusUnauthorized || len(r.Errors) == 0 || r.Errors[0].code() != "UNAUTHENTICATED" {
			t.Errorf("%s over HTTP: %d %+v, want 401 UNAUTHENTICATED", what, status, r.Errors)
		}
		c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(e.m.URL(), "http")+"/graphql", wsclient.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var ce *wsclient.CloseError
		if err := c.Init(ctx, map[string]any{"token": token}); !errors.As(err, &ce) || ce.Code != 4403 {
			t.Errorf("%s for a new socket: %v, want close 4403", what, err)
		}
	}
	refused("the old token", tok)
	refused("a token issued after the disabling", e.issue("bob", time.Hour, ""))

	// Enabled again: tokens issued until the disabling stay revoked, a new
	// one (issued after the disabling's second) works.
	e.updateUser("ops", "bob", map[string]any{"disabled": false})
	refused("the token issued before the disabling, once enabled", tok)
	time.Sleep(time.Until(disabled.Truncate(time.Second).Add(time.Second)))
	if status, r := e.postWith(e.issue("bob", time.Hour, ""), `{ me { id } }`, nil); status != 200 || len(r.Errors) > 0 {
		t.Errorf("a new token once enabled: %d %+v", status, r.Errors)
	}
}

// TestDemotionAppliesToOpenSockets is the "admin demoted" row: the
// demoted admin's next operation on the same socket is refused, the
// subscriptions their admin rights allowed end with FORBIDDEN, and a
// promotion works on the same socket at once.
func TestDemotionAppliesToOpenSockets(t *testing.T) {
	e := start(t, nil)
	e.users("ops!", "root!", "alice", "bob")
	p := e.createProject("alice", "P")
	ops := e.connect(e.token("ops"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	admin := []struct{ name, query string }{
		{"publishSystemUpdate", `mutation { publishSystemUpdate(message: "hi") }`},
		{"disconnectUser", `mutation { disconnectUser(userId: "bob") }`},
		{"connections", `{ connections(userId: "bob") { id } }`},
		{"updateUser", `mutation { updateUser(id: "bob", input: {name: "Bob"}) { id } }`},
	}
	for _, op := range admin {
		if _, code := over(t, ops, op.query, nil); code != "" {
			t.Fatalf("%s as admin: %s", op.name, code)
		}
	}
	// ops watches alice's project by admin rights alone, and their own
	// project as a member.
	watch := `subscription($p: ID!) { projectUpdates(projectId: $p) { type } }`
	privileged, err := ops.Subscribe(ctx, "privileged", watch, map[string]any{"p": p})
	if err != nil {
		t.Fatal(err)
	}
	own := e.createProject("ops", "Own")
	member, err := ops.Subscribe(ctx, "member", watch, map[string]any{"p": own})
	if err != nil {
		t.Fatal(err)
	}
	if err := ops.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	e.updateUser("root", "ops", map[string]any{"admin": false})
	for _, op := range admin {
		if _, code := over(t, ops, op.query, nil); code != "FORBIDDEN" {
			t.Errorf("%s on the same socket right after the demotion: %q, want FORBIDDEN", op.name, code)
		}
	}
	if _, err := privileged.Next(ctx); !isOperationError(err, "FORBIDDEN") {
		t.Errorf("projectUpdates allowed by admin rights after the demotion: %v, want FORBIDDEN", err)
	}
	e.do("ops", `mutation($p: ID!) { updateProject(id: $p, input: {name: "Own2"}) { id } }`, map[string]any{"p": own}, nil)
	if r, err := member.Next(ctx); err != nil || !strings.Contains(string(r.Data), "PROJECT_UPDATED") {
		t.Errorf("projectUpdates of a project ops is a member of: %s %v, want it to go on", r.Data, err)
	}

	e.updateUser("root", "ops", map[string]any{"admin": true})
	if _, code := over(t, ops, admin[0].query, nil); code != "" {
		t.Errorf("publishSystemUpdate on the same socket right after the promotion: %s", code)
	}

	// A role claim: bob's admin token loses its rights with a demotion.
	bob := e.connect(e.issue("bob", time.Hour, "admin"))
	if _, code := over(t, bob, admin[0].query, nil); code != "" {
		t.Fatalf("role admin token: %s", code)
	}
	e.updateUser("root", "bob", map[string]any{"admin": false})
	if _, code := over(t, bob, admin[0].query, nil); code != "FORBIDDEN" {
		t.Errorf("role admin token issued before the demotion: %q, want FORBIDDEN", code)
	}
}

// TestUpdateUser: only admins update users (a non-admin learns nothing
// about which ids exist), input is checked, and the change is returned.
func TestUpdateUser(t *testing.T) {
	e := start(t, nil)
	e.users("ops!", "bob")
	for _, id := range []string{"bob", "ops", "nobody"} {
		e.fails("bob", updateUserMutation, map[string]any{"id": id, "in": map[string]any{"admin": true}}, "FORBIDDEN")
	}
	e.fails("", updateUserMutation, map[string]any{"id": "bob", "in": map[string]any{"name": "B"}}, "UNAUTHENTICATED")
	e.fails("ops", updateUserMutation, map[string]any{"id": "nobody", "in": map[string]any{"name": "N"}}, "NOT_FOUND")
	for _, in := range []map[string]any{
		{},                                  // nothing to update
		{"name": "  "},                      // empty name
		{"name": strings.Repeat("n", 101)},  // too long
		{"email": strings.Repeat("e", 255)}, // too long
		{"admin": true, "name": ""},         // one bad field spoils the change
	} {
		e.fails("ops", updateUserMutation, map[string]any{"id": "bob", "in": in}, "BAD_USER_INPUT")
	}
	var me struct{ Me struct{ Name string } }
	e.do("bob", `{ me { name } }`, nil, &me)
	if me.Me.Name != "Bob" {
		t.Fatalf("a refused update changed bob: %+v", me)
	}
	e.fails("bob", `mutation { publishSystemUpdate(message: "x") }`, nil, "FORBIDDEN")
	var out struct {
		UpdateUser struct {
			ID, Name string
			Email    *string
		}
	}
	e.do("ops", updateUserMutation, map[string]any{"id": "bob", "in": map[string]any{"name": " Robert ", "email": "bob@example.com"}}, &out)
	if u := out.UpdateUser; u.ID != "bob" || u.Name != "Robert" || u.Email == nil || *u.Email != "bob@example.com" {
		t.Fatalf("updateUser returned %+v", u)
	}
	e.do("ops", updateUserMutation, map[string]any{"id": "bob", "in": map[string]any{"email": ""}}, &out)
	if out.UpdateUser.Email != nil {
		t.Fatalf("an empty email removes it, got %q", *out.UpdateUser.Email)
	}
}

const refreshMutation = `mutation($t: String!) { refreshConnection(token: $t) }`

// TestRefreshConnection: a socket whose short-lived token is swapped for a
// newer one of the same user stays open past the first token's expiry,
// its subscription delivering throughout, and closes (4403) at the new
// one's. Another user's token, a bad one, one with fewer rights, and the
// mutation over HTTP are refused.
func TestRefreshConnection(t *testing.T) {
	t.Parallel() // it waits for two expiries
	e := start(t, nil)
	e.users("ops!", "bob", "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first := e.issue("bob", time.Second, "")
	c := e.connect(first)
	sub, err := c.Subscribe(ctx, "sys", `subscription { systemUpdates { message } }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	firstClose := time.Now().Add(time.Second + 5*time.Second) // exp (at most 1s) + leeway

	refusals := []struct {
		name, token, code string
	}{
		{"another user's token", e.issue("carol", time.Hour, ""), "FORBIDDEN"},
		{"an invalid token", "not.a.token", "UNAUTHENTICATED"},
		{"an expired token", e.issue("bob", time.Nanosecond, ""), ""}, // refused below by its message
	}
	for _, r := range refusals[:2] {
		if _, code := over(t, c, refreshMutation, map[string]any{"t": r.token}); code != r.code {
			t.Errorf("refresh with %s: %q, want %s", r.name, code, r.code)
		}
	}
	status, hr := e.postWith(first, refreshMutation, map[string]any{"t": first})
	if status != 200 || len(hr.Errors) == 0 || hr.Errors[0].code() != "BAD_USER_INPUT" {
		t.Errorf("refreshConnection over HTTP: %d %+v, want BAD_USER_INPUT", status, hr.Errors)
	}

	second := e.issue("bob", 3*time.Second, "")
	data, code := over(t, c, refreshMutation, map[string]any{"t": second})
	if code != "" {
		t.Fatalf("refresh: %s", code)
	}
	var out struct{ RefreshConnection time.Time }
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	v, err := e.m.Authenticator().Verify(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if !out.RefreshConnection.Equal(v.ExpiresAt) {
		t.Fatalf("refreshConnection returned %v, want the new token's exp %v", out.RefreshConnection, v.ExpiresAt)
	}
	secondClose := v.ExpiresAt.Add(5 * time.Second)

	// Events flow past the first token's close time.
	n := 0
	for time.Now().Before(firstClose.Add(700 * time.Millisecond)) {
		e.do("ops", `mutation { publishSystemUpdate(message: "tick") }`, nil, nil)
		if _, err := sub.Next(ctx); err != nil {
			t.Fatalf("system update %d, %v past the first token's close time: %v", n, time.Until(firstClose), err)
		}
		n++
		time.Sleep(300 * time.Millisecond)
	}
	ce, err := c.WaitClose(ctx)
	if err != nil || ce.Code != 4403 {
		t.Fatalf("at the new token's expiry: %v %v, want 4403", ce, err)
	}
	if d := time.Since(secondClose); d < -100*time.Millisecond || d > time.Second {
		t.Errorf("closed %v after the new token's exp plus leeway, want within 1s", d)
	}

	// An admin socket refreshed with a token without the admin role.
	bob := e.connect(e.issue("bob", time.Hour, "admin"))
	if _, code := over(t, bob, refreshMutation, map[string]any{"t": e.issue("bob", time.Hour, "")}); code != "FORBIDDEN" {
		t.Errorf("refresh to fewer rights: %q, want FORBIDDEN", code)
	}
	if _, code := over(t, bob, refreshMutation, map[string]any{"t": e.issue("bob", time.Hour, "admin")}); code != "" {
		t.Errorf("refresh with the same rights: %s", code)
	}
}
