package transport

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
	"github.com/taskpulse/taskpulse/realtime"
)

// TestRenewMovesTheExpiry: a renewed connection is not closed at its first
// token's expiry but at the new one (4403 within a sweep tick), and its
// subscriptions deliver throughout.
func TestRenewMovesTheExpiry(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t, wsclient.DialOptions{})
	ctx := testCtx(t)
	if err := c.Init(ctx, map[string]any{"token": "ok:alice:300ms"}); err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, c, "s", `subscription { systemUpdates { message } }`, nil)
	conn := h.connOf("alice")
	if conn == nil {
		t.Fatal("connection not registered")
	}
	start := time.Now()
	renewed := start.Add(1200 * time.Millisecond)
	if !conn.Renew(renewed) {
		t.Fatal("Renew refused on a live connection")
	}
	// Past the first expiry (and a sweep tick), events still flow.
	for i := range 4 {
		time.Sleep(200 * time.Millisecond)
		h.system(t, "tick")
		r, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("event %d, %v after start: %v", i, time.Since(start), err)
		}
		var d struct{ SystemUpdates struct{ Message string } }
		if json.Unmarshal(r.Data, &d) != nil || d.SystemUpdates.Message != "tick" {
			t.Fatalf("event %d: %s", i, r.Data)
		}
	}
	ce, err := c.WaitClose(ctx)
	if err != nil || ce.Code != CloseForbidden {
		t.Fatalf("want 4403 at the renewed expiry, got %v %v", ce, err)
	}
	if at := time.Since(start); at < renewed.Sub(start) || at > renewed.Sub(start)+maxSweepTick+200*time.Millisecond {
		t.Fatalf("closed %v after start, want at %v plus at most a sweep tick", at, renewed.Sub(start))
	}
	if conn.Renew(time.Now().Add(time.Hour)) {
		t.Fatal("Renew accepted on a closed connection")
	}
}

// TestOperationsSeeTheirConnection: an operation's context names the
// connection it runs on (what refreshConnection renews).
func TestOperationsSeeTheirConnection(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t, "alice")
	_ = c
	conn := h.connOf("alice")
	got, ok := realtime.ConnFrom(conn.ctx)
	if !ok || got != realtime.Conn(conn) {
		t.Fatalf("ConnFrom(operation base) = %v %v, want the connection", got, ok)
	}
}
