package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// presenceWorld is users alice, bob, carol (team Core, alice's), dave (in
// nothing) and the admin ops.
func presenceWorld(t *testing.T, extra map[string]string) (*env, string) {
	e := start(t, presenceConfig(extra))
	e.users("ops!", "alice", "bob", "carol", "dave")
	team := e.createTeam("alice", "Core", "bob", "carol")
	return e, team
}

// TestPresenceAcrossTabsAndGrace: one USER_ONLINE for a user's first
// connection whatever the tabs and transports, nothing while any stays
// open, USER_OFFLINE only PRESENCE_OFFLINE_GRACE after the last closed,
// and nothing at all for a reconnect within the grace.
func TestPresenceAcrossTabsAndGrace(t *testing.T) {
	const grace = 600 * time.Millisecond
	e, _ := presenceWorld(t, nil)
	bob := e.watchActivity("bob", "alice")

	tab1 := e.tab("alice", "")
	online := bob.wantActivity("USER_ONLINE", "alice", "ONLINE")
	if d := time.Since(online.Presence.LastSeen); d < 0 || d > 5*time.Second {
		t.Errorf("lastSeen %v is not the connection's opening", online.Presence.LastSeen)
	}
	tab2 := e.tab("alice", wsclient.ProtocolGraphQLWS)
	sse := e.openSSE(e.token("alice"), `subscription { notifications { type } }`)
	bob.silentFor(quiet)

	// As an admin sees them: three connections, each transport.
	var conns struct {
		Connections []struct {
			ID, UserID, Transport     string
			IP, UserAgent             *string
			ConnectedAt, LastActivity time.Time
		}
	}
	eventually(t, "three connections", func() bool {
		e.do("ops", `query($u: ID!) { connections(userId: $u) { id userId transport ip userAgent connectedAt lastActivity } }`, map[string]any{"u": "alice"}, &conns)
		return len(conns.Connections) == 3
	})
	var transports []string
	for _, c := range conns.Connections {
		transports = append(transports, c.Transport)
		if c.UserID != "alice" || c.IP == nil || *c.IP != "127.0.0.1" || c.UserAgent == nil || *c.UserAgent == "" || c.ConnectedAt.IsZero() || c.LastActivity.Before(c.ConnectedAt) {
			t.Errorf("connection %+v", c)
		}
	}
	slices.Sort(transports)
	if want := []string{"graphql-transport-ws", "graphql-ws", "sse"}; !slices.Equal(transports, want) {
		t.Errorf("transports %q, want %q", transports, want)
	}

	tab1.Close()
	tab2.Close()
	bob.silentFor(grace + 200*time.Millisecond) // the SSE stream is still open
	var u struct{ User struct{ Online bool } }
	e.do("bob", `{ user(id: "alice") { online } }`, nil, &u)
	if !u.User.Online {
		t.Error("alice not online with an SSE stream open")
	}
	closed := time.Now()
	sse.res.Body.Close()
	bob.silentFor(grace / 2)
	bob.wantActivity("USER_OFFLINE", "alice", "OFFLINE")
	if d := time.Since(closed); d < grace {
		t.Errorf("USER_OFFLINE %v after the last close, want at least the grace %v", d, grace)
	}
	e.do("bob", `{ user(id: "alice") { online } }`, nil, &u)
	if u.User.Online {
		t.Error("alice online after USER_OFFLINE")
	}

	// A reload: closed and reopened within the grace makes no event.
	tab := e.tab("alice", "")
	bob.wantActivity("USER_ONLINE", "alice", "ONLINE")
	for range 3 {
		tab.Close()
		time.Sleep(grace / 3)
		tab = e.tab("alice", "")
	}
	bob.silentFor(grace + 300*time.Millisecond)
}

// TestPresenceVisibility asserts by absence, over real sockets, that a
// user who shares no team or project with alice never sees her presence:
// no events on any of his subscriptions, no fields, the same answer as
// for an id nobody has; and that a member who leaves the last team she
// shared with alice stops receiving it at once, and gets it again when
// she shares one again.
func TestPresenceVisibility(t *testing.T) {
	e, team := presenceWorld(t, nil)
	proj := e.createProject("alice", "Launch")

	// dave: every subscription he may open, on one socket.
	dc := e.tab("dave", "")
	e.settle()
	daveSubs := []*live{
		e.on("dave", dc, "tasks", taskUpdatesQuery, nil),
		e.on("dave", dc, "notes", `subscription { notifications { type } }`, nil),
		e.on("dave", dc, "system", `subscription { systemUpdates { type } }`, nil),
		e.on("dave", dc, "self", userActivityQuery, map[string]any{"u": "dave"}),
	}
	stranger := e.on("dave", dc, "alice", userActivityQuery, map[string]any{"u": "alice"}).opError()
	nobody := e.on("dave", dc, "nobody", userActivityQuery, map[string]any{"u": "nobody"}).opError()
	if stranger.Code() != "NOT_FOUND" || stranger.Message != nobody.Message || nobody.Code() != "NOT_FOUND" {
		t.Errorf("userActivity of a stranger %+v, of an unknown id %+v: want the same NOT_FOUND", stranger, nobody)
	}
	if got := e.on("dave", dc, "team", teamUpdatesQuery, map[string]any{"t": team}).opError(); got.Code() != "FORBIDDEN" {
		t.Errorf("teamUpdates of another team: %+v", got)
	}

	bob := e.watchActivity("bob", "alice")
	carol := e.watchActivity("carol", "alice")

	ac := e.tab("alice", "")
	bob.wantActivity("USER_ONLINE", "alice", "ONLINE")
	carol.wantActivity("USER_ONLINE", "alice", "ONLINE")
	if code := updatePresence(t, ac, map[string]any{"currentPage": "/a", "activeProject": proj}); code != "" {
		t.Fatalf("updatePresence: %s", code)
	}
	if ev := bob.wantActivity("USER_ACTIVITY", "alice", "ONLINE"); ev.Presence.page() != "/a" || ev.Presence.ActiveProject == nil || *ev.Presence.ActiveProject != proj {
		t.Errorf("bob sees %+v", ev.Presence)
	}
	carol.wantActivity("USER_ACTIVITY", "alice", "ONLINE")

	// Fields: dave gets what an unknown id gets.
	for _, q := range []struct{ query, code string }{
		{`{ user(id: "alice") { online presence { status currentPage } } }`, "NOT_FOUND"},
		{`{ teamPresence(teamId: "` + team + `") { userId status } }`, "FORBIDDEN"},
		{`{ projectPresence(projectId: "` + proj + `") { userId status } }`, "FORBIDDEN"},
	} {
		e.fails("dave", q.query, nil, q.code)
	}
	var seen struct {
		User struct {
			Online   bool
			Presence *presenceView
		}
	}
	e.do("carol", `{ user(id: "alice") { online presence { userId status currentPage activeProject lastSeen } } }`, nil, &seen)
	if !seen.User.Online || seen.User.Presence == nil || seen.User.Presence.page() != "/a" {
		t.Errorf("carol sees alice as %+v", seen.User)
	}

	// carol leaves the only team she shares with alice: at once, nothing more.
	e.do("carol", `mutation($t: ID!) { removeTeamMember(teamId: $t, userId: "carol") { id } }`, map[string]any{"t": team}, nil)
	updatePresence(t, ac, map[string]any{"currentPage": "/b"})
	if ev := bob.wantActivity("USER_ACTIVITY", "alice", "ONLINE"); ev.Presence.page() != "/b" {
		t.Errorf("bob sees page %q", ev.Presence.page())
	}
	carol.silentFor(quiet)
	e.fails("carol", `{ user(id: "alice") { presence { status } } }`, nil, "NOT_FOUND")
	e.fails("carol", `{ teamPresence(teamId: "`+team+`") { status } }`, nil, "FORBIDDEN")

	// An admin adds her back: her open subscription follows.
	e.do("ops", `mutation($t: ID!) { addTeamMember(teamId: $t, userId: "carol") { id } }`, map[string]any{"t": team}, nil)
	time.Sleep(200 * time.Millisecond) // past the coalescing interval: the next change goes out at once
	updatePresence(t, ac, map[string]any{"currentPage": "/c"})
	if ev := carol.wantActivity("USER_ACTIVITY", "alice", "ONLINE"); ev.Presence.page() != "/c" {
		t.Errorf("carol, back in the team, sees page %q", ev.Presence.page())
	}
	bob.wantActivity("USER_ACTIVITY", "alice", "ONLINE")

	ac.Close()
	bob.wantActivity("USER_OFFLINE", "alice", "OFFLINE")
	for _, l := range daveSubs {
		l.silentFor(50 * time.Millisecond)
	}
}

// TestPresenceAwayAndBack: idle for PRESENCE_AWAY_AFTER → AWAY; any
// operation (here a query over HTTP) → ONLINE; a chosen AWAY stays.
func TestPresenceAwayAndBack(t *testing.T) {
	const away = 500 * time.Millisecond
	e, team := presenceWorld(t, map[string]string{"PRESENCE_AWAY_AFTER": away.String()})
	bob := e.watchActivity("bob", "alice")
	connected := time.Now()
	ac := e.tab("alice", "")
	bob.wantActivity("USER_ONLINE", "alice", "ONLINE")
	bob.wantActivity("USER_ACTIVITY", "alice", "AWAY")
	if d := time.Since(connected); d < away {
		t.Errorf("AWAY after %v idle, want at least %v", d, away)
	}
	var tp struct{ TeamPresence []presenceView }
	e.do("bob", `query($t: ID!) { teamPresence(teamId: $t) { userId status lastSeen } }`, map[string]any{"t": team}, &tp)
	statuses := map[string]string{}
	for _, p := range tp.TeamPresence {
		statuses[p.UserID] = p.Status
	}
	if statuses["alice"] != "AWAY" || statuses["carol"] != "OFFLINE" || len(statuses) != 3 {
		t.Errorf("teamPresence %v", statuses)
	}
	e.do("alice", `{ me { id } }`, nil, nil) // an operation over HTTP is activity too
	bob.wantActivity("USER_ACTIVITY", "alice", "ONLINE")

	// A chosen AWAY sticks through activity, until ONLINE is chosen.
	if code := updatePresence(t, ac, map[string]any{"status": "AWAY"}); code != "" {
		t.Fatal(code)
	}
	bob.wantActivity("USER_ACTIVITY", "alice", "AWAY")
	e.do("alice", `{ me { id } }`, nil, nil)
	bob.silentFor(quiet)
	time.Sleep(200 * time.Millisecond)
	updatePresence(t, ac, map[string]any{"status": "ONLINE"})
	bob.wantActivity("USER_ACTIVITY", "alice", "ONLINE")
	if code := updatePresence(t, ac, map[string]any{"status": "OFFLINE"}); code != "BAD_USER_INPUT" {
		t.Errorf("status OFFLINE: %q, want BAD_USER_INPUT", code)
	}
	// Without a connection there is no presence to update.
	e.fails("dave", `mutation { updatePresence(input: {currentPage: "/x"}) { status } }`, nil, "BAD_USER_INPUT")
}

// TestPresenceCoalescing: a burst of 100 page changes reaches a watcher as
// a few events, the last of which carries the last page; the mutation
// answers every time with the state it made.
func TestPresenceCoalescing(t *testing.T) {
	const interval = 150 * time.Millisecond
	e, _ := presenceWorld(t, nil)
	bob := e.watchActivity("bob", "alice")
	ac := e.tab("alice", "")
	bob.wantActivity("USER_ONLINE", "alice", "ONLINE")
	time.Sleep(interval)

	began := time.Now()
	for i := range 100 {
		data, code := over(t, ac, `mutation($p: String!) { updatePresence(input: {currentPage: $p}) { currentPage } }`, map[string]any{"p": fmt.Sprint("/page/", i)})
		if code != "" {
			t.Fatalf("update %d: %s", i, code)
		}
		var d struct{ UpdatePresence struct{ CurrentPage string } }
		_ = json.Unmarshal(data, &d)
		if d.UpdatePresence.CurrentPage != fmt.Sprint("/page/", i) {
			t.Fatalf("update %d answered %s", i, data)
		}
	}
	took := time.Since(began)
	var pages []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*interval)
		r, err := bob.sub.Next(ctx)
		cancel()
		if err != nil {
			break
		}
		var d struct{ UserActivity activityEvent }
		if err := json.Unmarshal(r.Data, &d); err != nil || d.UserActivity.Type != "USER_ACTIVITY" {
			t.Fatalf("bob got %s", r.Data)
		}
		pages = append(pages, d.UserActivity.Presence.page())
	}
	// At most one per interval, plus the leading one.
	if max := int(took/interval) + 2; len(pages) == 0 || len(pages) > max {
		t.Fatalf("100 changes in %v reached bob as %d events %q, want 1 to %d", took, len(pages), pages, max)
	}
	if last := pages[len(pages)-1]; last != "/page/99" {
		t.Errorf("last event carries %q, want /page/99", last)
	}
	t.Logf("100 presence updates in %v → %d USER_ACTIVITY events: %q", took, len(pages), pages)
}

// TestTeamUpdates: a team's subscription carries its membership changes
// (with the member and their presence) and its members' presence, and
// nothing of a member once they left; the leaver's own stream ends
// FORBIDDEN.
func TestTeamUpdates(t *testing.T) {
	e, team := presenceWorld(t, nil)
	e.users("erin")
	bc := e.tab("bob", "")
	e.settle()
	bob := e.on("bob", bc, "team", teamUpdatesQuery, map[string]any{"t": team})

	e.invite("alice", team, "erin")
	bob.silentFor(quiet) // an invitation is not a membership
	e.accept("erin", team)
	ev := bob.nextTeam()
	if ev.Type != "TEAM_MEMBER_ADDED" || ev.Member == nil || ev.Member.ID != "erin" || ev.Team.ID != team || len(ev.Team.Members) != 4 ||
		ev.Presence == nil || ev.Presence.UserID != "erin" || ev.Presence.Status != "OFFLINE" {
		t.Fatalf("added: %+v", ev)
	}
	// Resuming from the event just received misses nothing: no replay,
	// then live like the first stream.
	resumed := e.on("bob", bc, "resume", teamUpdatesResumeQuery, map[string]any{"t": team, "a": ev.Cursor})

	ec := e.tab("erin", "")
	for _, l := range []*live{bob, resumed} {
		ev = l.nextTeam()
		if ev.Type != "USER_ONLINE" || ev.Presence == nil || ev.Presence.UserID != "erin" || ev.Presence.Status != "ONLINE" || ev.Team.ID != team || ev.Member != nil {
			t.Fatalf("%s: erin online: %+v", l.user, ev)
		}
	}
	e.settle()
	erin := e.on("erin", ec, "team", teamUpdatesQuery, map[string]any{"t": team})
	time.Sleep(200 * time.Millisecond)
	updatePresence(t, ec, map[string]any{"currentPage": "/board"})
	for _, l := range []*live{bob, erin} {
		if ev := l.nextTeam(); ev.Type != "USER_ACTIVITY" || ev.Presence.page() != "/board" {
			t.Fatalf("%s: activity %+v", l.user, ev)
		}
	}

	e.do("erin", `mutation($t: ID!) { removeTeamMember(teamId: $t, userId: "erin") { id } }`, map[string]any{"t": team}, nil)
	for _, l := range []*live{bob, erin} {
		if ev := l.nextTeam(); ev.Type != "TEAM_MEMBER_REMOVED" || ev.Member == nil || ev.Member.ID != "erin" || len(ev.Team.Members) != 3 {
			t.Fatalf("%s: removed %+v", l.user, ev)
		}
	}
	if err := erin.opError(); err.Code() != "FORBIDDEN" {
		t.Errorf("erin's stream after leaving: %+v", err)
	}
	time.Sleep(200 * time.Millisecond)
	updatePresence(t, ec, map[string]any{"currentPage": "/elsewhere"})
	ec.Close()
	bob.silentFor(quiet + 600*time.Millisecond) // past the grace: no USER_OFFLINE of erin either
}

// TestDisconnectUserEverywhere: disconnectUser closes every connection of
// the user — graphql-transport-ws and graphql-ws tabs and an SSE stream —
// with 4403 (the stream ends), says how many, and only an admin may.
func TestDisconnectUserEverywhere(t *testing.T) {
	e, _ := presenceWorld(t, nil)
	tabs := []*wsclient.Client{e.tab("alice", ""), e.tab("alice", ""), e.tab("alice", wsclient.ProtocolGraphQLWS)}
	sse := e.openSSE(e.token("alice"), `subscription { notifications { type } }`)
	bobTab := e.tab("bob", "")
	eventually(t, "four connections", func() bool { return len(e.m.registry.ByUser("alice")) == 4 })

	e.fails("bob", `mutation { disconnectUser(userId: "alice") }`, nil, "FORBIDDEN")
	var out struct{ DisconnectUser int }
	e.do("ops", `mutation { disconnectUser(userId: "alice") }`, nil, &out)
	if out.DisconnectUser != 4 {
		t.Errorf("disconnectUser = %d, want 4", out.DisconnectUser)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, c := range tabs {
		ce, err := c.WaitClose(ctx)
		if err != nil || ce.Code != 4403 {
			t.Errorf("tab %d: close %+v %v, want 4403", i, ce, err)
		}
	}
	ended := make(chan bool, 1)
	go func() {
		for {
			if _, ok := sse.next(); !ok {
				ended <- true
				return
			}
		}
	}()
	select {
	case <-ended:
	case <-ctx.Done():
		t.Error("the SSE stream did not end")
	}
	eventually(t, "no connection left", func() bool { return len(e.m.registry.ByUser("alice")) == 0 })
	e.do("ops", `mutation { disconnectUser(userId: "alice") }`, nil, &out)
	if out.DisconnectUser != 0 {
		t.Errorf("second disconnectUser = %d, want 0", out.DisconnectUser)
	}
	select {
	case <-bobTab.Done():
		t.Error("bob's connection closed too")
	default:
	}
}
