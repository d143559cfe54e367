package main

import (
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
