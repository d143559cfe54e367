package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// Helpers of the presence tests (e2e_presence_test.go).

// presenceConfig is the server configuration of the presence tests: short
// grace and coalescing so real time can be used, and away only when a test
// asks for it.
func presenceConfig(extra map[string]string) map[string]string {
	vars := map[string]string{
		"PRESENCE_OFFLINE_GRACE":     "600ms",
		"PRESENCE_AWAY_AFTER":        "1h",
		"PRESENCE_ACTIVITY_INTERVAL": "150ms",
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

// tab opens one connection of user over the given subprotocol ("" =
// graphql-transport-ws), authenticated: one browser tab.
func (e *env) tab(user, proto string) *wsclient.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(e.m.URL(), "http")+"/graphql", wsclient.DialOptions{Subprotocol: proto})
	if err != nil {
		e.t.Fatalf("dial as %s: %v", user, err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Init(ctx, map[string]any{"token": e.token(user)}); err != nil {
		e.t.Fatalf("init as %s: %v", user, err)
	}
	return c
}

// settle waits until every presence change so far is published and
// dispatched: a subscription made afterwards sees none of them.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.m.relay.Len() > 0 || e.m.hub.Stats().InboxLen > 0 {
		if time.Now().After(deadline) {
			e.t.Fatal("presence changes not published within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// on subscribes on an open connection and waits until the server has
// registered the subscription (see env.subscribe).
func (e *env) on(user string, c *wsclient.Client, id, query string, vars map[string]any) *live {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, id, query, vars)
	if err != nil {
		e.t.Fatalf("subscribe as %s: %v", user, err)
	}
	if c.Subprotocol() != wsclient.ProtocolGraphQLWS {
		if err := c.Ping(ctx); err != nil {
			e.t.Fatalf("ping after subscribe as %s: %v", user, err)
		}
	}
	return &live{t: e.t, user: user, c: c, sub: sub}
}

const userActivityQuery = `subscription($u: ID!) { userActivity(userId: $u) { type cursor timestamp presence { userId status lastSeen currentPage activeTask activeProject } } }`

const teamUpdatesQuery = `subscription($t: ID!) { teamUpdates(teamId: $t) { type cursor team { id members { id } } member { id } presence { userId status currentPage } } }`

// teamUpdatesResumeQuery is teamUpdatesQuery resuming after $a.
const teamUpdatesResumeQuery = `subscription($t: ID!, $a: String) { teamUpdates(teamId: $t, after: $a) { type cursor team { id members { id } } member { id } presence { userId status currentPage } } }`

// presenceView is a Presence as the tests read it.
type presenceView struct {
	UserID        string
	Status        string
	LastSeen      time.Time
	CurrentPage   *string
	ActiveTask    *string
	ActiveProject *string
}

func (p presenceView) page() string {
	if p.CurrentPage == nil {
		return ""
	}
	return *p.CurrentPage
}

type activityEvent struct {
	Type     string
	Cursor   string
	Presence presenceView
}

// watchActivity opens a connection of observer and follows target's
// presence on it, after observer's own connection has settled.
func (e *env) watchActivity(observer, target string) *live {
	e.t.Helper()
	c := e.tab(observer, "")
	e.settle()
	return e.on(observer, c, "activity", userActivityQuery, map[string]any{"u": target})
}

// nextActivity waits for a userActivity event.
func (l *live) nextActivity() activityEvent {
	l.t.Helper()
	var d struct{ UserActivity activityEvent }
	l.nextData("an activity event", &d)
	return d.UserActivity
}

// wantActivity waits for a userActivity event of that type and status.
func (l *live) wantActivity(typ, user, status string) activityEvent {
	l.t.Helper()
	ev := l.nextActivity()
	if ev.Type != typ || ev.Presence.UserID != user || ev.Presence.Status != status {
		l.t.Fatalf("%s: got %s %s %s, want %s %s %s", l.user, ev.Type, ev.Presence.UserID, ev.Presence.Status, typ, user, status)
	}
	if ev.Cursor == "" {
		l.t.Errorf("%s: event without a cursor", l.user)
	}
	return ev
}

// silentFor asserts nothing arrives on the subscription for d.
func (l *live) silentFor(d time.Duration) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r, err := l.sub.Next(ctx)
	if err == nil {
		l.t.Fatalf("%s received %s, want nothing", l.user, r.Data)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		l.t.Fatalf("%s: want silence, got %v", l.user, err)
	}
}

// opError waits for the subscription to fail and returns its error.
func (l *live) opError() wsclient.GQLError {
	l.t.Helper()
	_, err := l.next()
	var oe *wsclient.OperationError
	if !errors.As(err, &oe) || len(oe.Errors) == 0 {
		l.t.Fatalf("%s: want an error message, got %v", l.user, err)
	}
	return oe.Errors[0]
}

type teamEvent struct {
	Type   string
	Cursor string
	Team   struct {
		ID      string
		Members []struct{ ID string }
	}
	Member   *struct{ ID string }
	Presence *presenceView
}

func (l *live) nextTeam() teamEvent {
	l.t.Helper()
	var d struct{ TeamUpdates teamEvent }
	l.nextData("a team event", &d)
	return d.TeamUpdates
}

// eventually polls cond until it holds, for at most 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// updatePresence runs updatePresence over a connection and returns the
// error code ("" on success).
func updatePresence(t *testing.T, c *wsclient.Client, in map[string]any) string {
	t.Helper()
	_, code := over(t, c, `mutation($in: PresenceInput!) { updatePresence(input: $in) { userId status currentPage } }`, map[string]any{"in": in})
	return code
}
