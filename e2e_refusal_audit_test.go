package main

import (
	"strings"
	"testing"

	"github.com/taskpulse/taskpulse/audit"
)

// Review of issue 6's integration: the seams between limits, the audit
// log, presence and the transports.

// A rate_limited record says where the refused operation came from —
// client address, transport, connection — on every transport, like every
// other record of the audit log (over HTTP and SSE an operation has no
// connection in its context: the request's info is what names it).
func TestRateLimitedRecordsNameTheClient(t *testing.T) {
	e := start(t, map[string]string{"RATE_LIMIT_PER_MIN": "1", "ABUSE_THRESHOLD": "100"})
	e.users("alice")
	alice := e.token("alice")
	ws := e.connect(alice)
	if _, r := e.httpOp(alice, limCreateTask, map[string]any{"t": "x"}); r != nil {
		t.Fatalf("first mutation: %+v", r)
	}
	if _, r := e.httpOp(alice, limCreateTask, map[string]any{"t": "x"}); r == nil {
		t.Fatal("HTTP mutation past the limit allowed")
	}
	if r := sseRefusal(t, sseEvents(e, alice, limCreateTask, map[string]any{"t": "x"})); r == nil {
		t.Fatal("SSE mutation past the limit allowed")
	}
	if r := wsOp(t, ws, limCreateTask, map[string]any{"t": "x"}); r == nil {
		t.Fatal("WebSocket mutation past the limit allowed")
	}
	recs := e.auditRecords(audit.RateLimited)
	want := []string{"http", "sse", "graphql-transport-ws"}
	if len(recs) != len(want) {
		t.Fatalf("rate_limited records %+v, want %d", recs, len(want))
	}
	for i, r := range recs {
		if r.UserID != "alice" || r.IP != "127.0.0.1" || r.Transport != want[i] || r.Operation != "createTask" {
			t.Errorf("record %d: %+v, want alice from 127.0.0.1 over %s", i, r, want[i])
		}
	}
	if recs[2].ConnID == "" {
		t.Errorf("the WebSocket refusal names no connection: %+v", recs[2])
	}
}

// A blocked user who opens a socket and sends their (valid) token in
// connection_init is closed 1008. That is the block at work, not a server
// fault: the audit record and the auth failure metric say "blocked", not
// INTERNAL/"internal" (which an operator alerts on).
func TestBlockedReconnectIsNotAnInternalFailure(t *testing.T) {
	e := start(t, map[string]string{"RATE_LIMIT_PER_MIN": "1", "ABUSE_THRESHOLD": "2", "ABUSE_WINDOW": "1m", "ABUSE_COOLDOWN": "1m"})
	e.users("alice")
	alice := e.token("alice")
	for i := range 3 { // one allowed, two refused: blocked
		e.httpOp(alice, limCreateTask, map[string]any{"t": "x"})
		_ = i
	}
	if len(e.auditRecords(audit.Block)) != 1 {
		t.Fatal("alice is not blocked")
	}
	c, err := e.dialWS(nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Init(t.Context(), map[string]any{"token": alice})
	closedWith(t, "alice's socket", c, 1008)

	var rec audit.Record
	waitFor(t, "the refused socket's record", func() bool {
		recs := e.auditRecords(audit.AuthFailure)
		if len(recs) == 0 {
			return false
		}
		rec = recs[len(recs)-1]
		return true
	})
	if rec.Code != "RATE_LIMITED" || !strings.Contains(rec.Reason, "Blocked") || rec.IP != "127.0.0.1" {
		t.Errorf("record %+v, want RATE_LIMITED, the block's reason, the address", rec)
	}
	s := e.scrape()
	const ws = `transport="graphql-transport-ws"`
	if n := s[`taskpulse_auth_failures_total{reason="internal",`+ws+`}`]; n != 0 {
		t.Errorf("a blocked reconnect counted as %v internal auth failure(s)", n)
	}
	if n := s[`taskpulse_auth_failures_total{reason="blocked",`+ws+`}`]; n != 1 {
		t.Errorf("blocked auth failures: %v, want 1", n)
	}
}

// A subscribe refused by MAX_SUBS_PER_CONN is a refused operation like
// one refused by RATE_LIMIT_PER_MIN: it gets its rate_limited record (the
// README promises one for each), with the user, the connection and the
// limit — not only a strike and a metric.
func TestMaxSubsRefusalIsAudited(t *testing.T) {
	e := start(t, map[string]string{"MAX_SUBS_PER_CONN": "1", "ABUSE_THRESHOLD": "100"})
	e.users("alice")
	c := e.connect(e.token("alice"))
	if _, r := wsSubscribe(t, c, "1", `subscription { systemUpdates { message } }`); r != nil {
		t.Fatal(r)
	}
	if _, r := wsSubscribe(t, c, "2", `subscription { taskUpdates { type } }`); r == nil || r.code != "BAD_USER_INPUT" {
		t.Fatalf("second subscription: %+v", r)
	}
	var recs []audit.Record
	waitFor(t, "the refusal's record", func() bool {
		recs = e.auditRecords(audit.RateLimited)
		return len(recs) > 0
	})
	r := recs[0]
	if len(recs) != 1 || r.UserID != "alice" || r.Reason != "MAX_SUBS_PER_CONN" || r.IP != "127.0.0.1" ||
		r.ConnID == "" || r.Transport != "graphql-transport-ws" || r.Operation != "taskUpdates" {
		t.Fatalf("rate_limited records %+v, want one for alice's taskUpdates on her connection", recs)
	}
}
