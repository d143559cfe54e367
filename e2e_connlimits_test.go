package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/audit"
	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// TestConnsPerIPOverWebSocketAndSSE: MAX_CONNS_PER_IP counts an address's
// WebSockets and SSE streams together; one more is refused 429 with
// Retry-After before any upgrade; each way a connection ends gives its
// slot back.
func TestConnsPerIPOverWebSocketAndSSE(t *testing.T) {
	e := start(t, map[string]string{"MAX_CONNS_PER_IP": "3", "WS_PING_INTERVAL": "200ms", "WS_INIT_TIMEOUT": "300ms"})
	e.users("alice", "bob", "ops!")
	alice, bobToken := e.token("alice"), e.token("bob")
	held := func() int { return e.m.limits.conns.Count("127.0.0.1") }
	wantHeld := func(what string, n int) {
		t.Helper()
		waitFor(t, what, func() bool { return held() == n })
	}

	ws1 := e.connect(alice)
	bob := e.connect(bobToken)
	sse := e.sseLive("alice", alice, `subscription { systemUpdates { message } }`)
	wantHeld("3 open", 3)

	e.upgradeRefused("a 4th WebSocket", bearer(alice), 5, 5)
	status, h, body := e.sseRequest(alice, `subscription { systemUpdates { message } }`, nil, nil)
	want429(t, "a 4th connection over SSE", status, h, []byte(body[0]), 5, 5)
	wantHeld("refusals take no slot", 3)
	if recs := e.auditRecords(audit.RateLimited); len(recs) != 2 || recs[0].Reason != "MAX_CONNS_PER_IP" || recs[0].IP != "127.0.0.1" || recs[0].Transport != "websocket" || recs[1].Transport != "sse" {
		t.Fatalf("rate_limited records %+v, want one per refused connection", recs)
	}

	// The client closes its WebSocket: a new one fits.
	ws1.Close()
	wantHeld("after a client close", 2)
	ws3 := e.connect(alice)
	wantHeld("refilled", 3)

	// The client leaves its SSE stream.
	sse.res.Body.Close()
	wantHeld("after the SSE client left", 2)

	// A silent peer is dropped by the keepalive (2 × WS_PING_INTERVAL).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	silent, err := wsclient.Dial(ctx, "ws"+e.m.URL()[len("http"):]+"/graphql", wsclient.DialOptions{IgnorePings: true})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := silent.Init(ctx, map[string]any{"token": alice}); err != nil {
		t.Fatal(err)
	}
	wantHeld("the silent peer in", 3)
	wantHeld("the silent peer dropped", 2)

	// A socket that never sends connection_init (4408).
	idle, err := e.dialWS(nil)
	if err != nil {
		t.Fatal(err)
	}
	wantHeld("an idle socket in", 3)
	closedWith(t, "the idle socket", idle, 4408)
	wantHeld("the idle socket closed", 2)

	// The server closes them: disconnectUser (4403) on a WebSocket and an
	// SSE stream.
	sse2 := e.sseLive("alice", alice, `subscription { systemUpdates { message } }`)
	wantHeld("an SSE stream in", 3)
	e.do("ops", `mutation { disconnectUser(userId: "alice") }`, nil, nil)
	closedWith(t, "alice's socket", ws3, 4403)
	if _, ok := sse2.next(); ok {
		t.Fatal("alice's SSE stream went on after disconnectUser")
	}
	wantHeld("after disconnectUser", 1) // bob's

	// A drain (what SIGTERM does: 1001) gives back the last one, bob's.
	e.m.registry.Drain(context.Background(), 0, 1001, "server shutting down")
	closedWith(t, "bob's socket", bob, 1001)
	wantHeld("after the drain", 0)
	if n := e.m.limits.conns.Keys(); n != 0 {
		t.Fatalf("%d addresses kept after every connection closed", n)
	}
}

// TestMaxSubsPerConnOnTheServer: a subscription past MAX_SUBS_PER_CONN is
// refused with BAD_USER_INPUT naming the limit, the connection and its
// subscriptions go on; a client that keeps trying is blocked like any
// other repeated refusal.
func TestMaxSubsPerConnOnTheServer(t *testing.T) {
	e := start(t, map[string]string{"MAX_SUBS_PER_CONN": "2", "ABUSE_THRESHOLD": "2", "ABUSE_COOLDOWN": "1s"})
	e.users("alice", "ops!")
	c := e.connect(e.token("alice"))
	sys, r := wsSubscribe(t, c, "1", `subscription { systemUpdates { message } }`)
	if r != nil {
		t.Fatal(r)
	}
	if _, r := wsSubscribe(t, c, "2", `subscription { taskUpdates { type } }`); r != nil {
		t.Fatal(r)
	}
	_, r = wsSubscribe(t, c, "3", `subscription { notifications { type } }`)
	if r == nil || r.code != "BAD_USER_INPUT" || r.message != "too many subscriptions on this connection (limit 2)" {
		t.Fatalf("third subscription: %+v", r)
	}
	e.do("ops", `mutation { publishSystemUpdate(message: "still here") }`, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := sys.Next(ctx); err != nil || string(res.Data) != `{"systemUpdates":{"message":"still here"}}` {
		t.Fatalf("after the refusal: %s %v", res.Data, err)
	}
	// The second refusal reaches ABUSE_THRESHOLD 2.
	if _, err := c.Subscribe(ctx, "4", `subscription { notifications { type } }`, nil); err != nil {
		t.Fatal(err)
	}
	closedWith(t, "alice's socket", c, 1008)
	if b := e.auditRecords(audit.Block); len(b) != 1 || b[0].UserID != "alice" || b[0].Reason != "MAX_SUBS_PER_CONN" {
		t.Fatalf("block records %+v", b)
	}
}

// TestTrustedProxies: behind a proxy in TRUSTED_PROXIES the client's
// address is what it forwards (the right end of X-Forwarded-For): per-IP
// caps, blocks, the connection list and the audit log all use it, and a
// client cannot choose it by writing the header's left end. Without
// TRUSTED_PROXIES the header is ignored.
func TestTrustedProxies(t *testing.T) {
	xff := func(v string, token string) http.Header {
		h := http.Header{"X-Forwarded-For": {v}}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		return h
	}
	connectFrom := func(e *env, h http.Header, token string) error {
		c, err := e.dialWS(h)
		if err != nil {
			return err
		}
		return c.Init(t.Context(), map[string]any{"token": token})
	}
	ipsOf := func(e *env, user string) []string {
		var out struct{ Connections []struct{ IP string } }
		e.do("ops", `query($u: ID!) { connections(userId: $u) { ip } }`, map[string]any{"u": user}, &out)
		var ips []string
		for _, c := range out.Connections {
			ips = append(ips, c.IP)
		}
		return ips
	}

	t.Run("trusted", func(t *testing.T) {
		e := start(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.0/8", "MAX_CONNS_PER_IP": "1",
			"ABUSE_THRESHOLD": "2", "ABUSE_COOLDOWN": "1m"})
		e.users("alice", "bob", "ops!")
		if err := connectFrom(e, xff("198.51.100.1", ""), e.token("alice")); err != nil {
			t.Fatal(err)
		}
		if err := connectFrom(e, xff("203.0.113.50, 198.51.100.2", ""), e.token("bob")); err != nil {
			t.Fatal(err)
		}
		if got := ipsOf(e, "alice"); len(got) != 1 || got[0] != "198.51.100.1" {
			t.Fatalf("alice's connection ip %v, want the forwarded 198.51.100.1", got)
		}
		if got := ipsOf(e, "bob"); len(got) != 1 || got[0] != "198.51.100.2" {
			t.Fatalf("bob's connection ip %v, want 198.51.100.2 (the proxy's entry, not the client's own)", got)
		}
		// 198.51.100.1 is at its cap, whatever its client writes left of
		// the proxy's entry.
		e.upgradeRefused("a 2nd connection from 198.51.100.1", xff("198.51.100.99, 198.51.100.1", ""), 5, 5)
		// Refused credentials block the forwarded address, not the proxy.
		for range 2 {
			// An upgrade whose Authorization is refused (401).
			if err := connectFrom(e, xff("198.51.100.7", "not-a-token"), "not-a-token"); err == nil {
				t.Fatal("a bad token was accepted")
			}
		}
		e.postRefused("198.51.100.7 blocked", xff("198.51.100.7", e.token("alice")), 59, 60)
		if status, _ := e.postWith(e.token("alice"), `{ me { id } }`, nil); status != 200 {
			t.Fatalf("the proxy's own address: %d, want 200", status)
		}
		if b := e.auditRecords(audit.Block); len(b) != 1 || b[0].IP != "198.51.100.7" {
			t.Fatalf("block records %+v, want one for the forwarded 198.51.100.7", b)
		}
	})

	t.Run("untrusted", func(t *testing.T) {
		e := start(t, map[string]string{"MAX_CONNS_PER_IP": "1"})
		e.users("alice", "bob", "ops!")
		if err := connectFrom(e, xff("198.51.100.1", ""), e.token("alice")); err != nil {
			t.Fatal(err)
		}
		if got := ipsOf(e, "alice"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Fatalf("alice's connection ip %v, want the peer's 127.0.0.1 (the header is not trusted)", got)
		}
		e.upgradeRefused("a 2nd connection from 127.0.0.1 claiming another address", xff("198.51.100.2", e.token("bob")), 5, 5)
	})
}
