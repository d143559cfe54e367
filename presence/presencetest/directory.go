package presencetest

import (
	"slices"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/presence"
)

// directory is the implementation under test as a presence.Directory.
func (r *rig) directory() presence.Directory {
	r.t.Helper()
	d, ok := r.p.(presence.Directory)
	if !ok {
		r.t.Fatalf("%T does not implement presence.Directory", r.p)
	}
	return d
}

func (r *rig) conns(d presence.Directory, user string) []presence.Conn {
	r.t.Helper()
	cs, err := d.Conns(ctx(), user)
	if err != nil {
		r.t.Fatalf("conns %s: %v", user, err)
	}
	return cs
}

// connIDs are the ids of cs, in order.
func connIDs(cs []presence.Conn) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// The directory lists exactly the connections presence counts open, oldest
// first, with their descriptions and their latest reported activity.
func testDirectory(t *testing.T, r *rig) {
	d := r.directory()
	t0 := r.clock.Now()
	a1 := presence.Conn{ID: "a1", UserID: "ann", ConnectedAt: t0.Add(2 * time.Second), LastActivity: t0.Add(2 * time.Second),
		UserAgent: "ua-1", IP: "192.0.2.1", Transport: "websocket"}
	a2 := presence.Conn{ID: "a2", UserID: "ann", ConnectedAt: t0.Add(time.Second), LastActivity: t0.Add(time.Second),
		UserAgent: "ua-2", IP: "2001:db8::2", Transport: "sse"}
	if err := d.Open(ctx(), a1); err != nil {
		t.Fatal(err)
	}
	r.want("Open is a connection", "USER_ONLINE ann ONLINE")
	if err := d.Open(ctx(), a2); err != nil {
		t.Fatal(err)
	}
	r.connect("ann", "a3") // plain Connect: counted, not described
	r.want("more tabs")
	if st := r.get("ann"); st.Status != presence.Online {
		t.Fatalf("ann %s after Open", st.Status)
	}

	got := r.conns(d, "ann")
	if ids := connIDs(got); !slices.Equal(ids, []string{"a3", "a2", "a1"}) {
		// a3 has no ConnectedAt (zero): it sorts first.
		t.Fatalf("conns %v, want a3 a2 a1 (oldest first)", ids)
	}
	same := func(g, w presence.Conn) bool {
		return g.ID == w.ID && g.UserID == w.UserID && g.ConnectedAt.Equal(w.ConnectedAt) &&
			g.LastActivity.Equal(w.LastActivity) && g.UserAgent == w.UserAgent && g.IP == w.IP && g.Transport == w.Transport
	}
	if !same(got[1], a2) || !same(got[2], a1) {
		t.Fatalf("descriptions:\n got %+v\n     %+v\nwant %+v\n     %+v", got[1], got[2], a2, a1)
	}
	if c := got[0]; c.UserID != "ann" || !c.ConnectedAt.IsZero() || c.UserAgent != "" {
		t.Fatalf("a connection opened by Connect: %+v, want its id and user only", c)
	}

	// Activity: later times move it, earlier ones do not; connections not
	// open are reported missing.
	t5 := t0.Add(5 * time.Second)
	missing, err := d.Active(ctx(), []presence.Activity{
		{UserID: "ann", ConnID: "a1", At: t5},
		{UserID: "ann", ConnID: "gone", At: t5},
		{UserID: "bob", ConnID: "b1", At: t5},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 2 || missing[0].ConnID != "gone" || missing[1].ConnID != "b1" {
		t.Fatalf("missing %+v, want gone and b1", missing)
	}
	if _, err := d.Active(ctx(), []presence.Activity{{UserID: "ann", ConnID: "a1", At: t0.Add(3 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	if c := r.conns(d, "ann")[2]; c.ID != "a1" || !c.LastActivity.Equal(t5) {
		t.Fatalf("a1 after activity at +5s then +3s: %+v, want lastActivity +5s", c)
	}
	if missing, err := d.Active(ctx(), nil); err != nil || len(missing) != 0 {
		t.Fatalf("Active(nil) = %v, %v", missing, err)
	}

	// Opening an open connection updates its description only.
	a2.UserAgent = "ua-2b"
	if err := d.Open(ctx(), a2); err != nil {
		t.Fatal(err)
	}
	r.want("open again")
	if c := r.conns(d, "ann")[1]; c.ID != "a2" || c.UserAgent != "ua-2b" {
		t.Fatalf("a2 opened again: %+v", c)
	}

	// A closed connection leaves the directory with its activity.
	r.disconnect("ann", "a1")
	if ids := connIDs(r.conns(d, "ann")); !slices.Equal(ids, []string{"a3", "a2"}) {
		t.Fatalf("after closing a1: %v", ids)
	}
	if missing, _ := d.Active(ctx(), []presence.Activity{{UserID: "ann", ConnID: "a1", At: t5}}); len(missing) != 1 {
		t.Fatalf("activity of a closed connection: missing %v, want it", missing)
	}
	// Opened again, it has no activity left from before.
	a1.LastActivity = a1.ConnectedAt
	if err := d.Open(ctx(), a1); err != nil {
		t.Fatal(err)
	}
	if c := r.conns(d, "ann")[2]; c.ID != "a1" || !c.LastActivity.Equal(a1.ConnectedAt) {
		t.Fatalf("a1 reopened: %+v, want its activity reset", c)
	}
	for _, c := range []string{"a1", "a2", "a3"} {
		r.disconnect("ann", c)
	}
	if cs := r.conns(d, "ann"); len(cs) != 0 {
		t.Fatalf("all closed: %v", connIDs(cs))
	}
	r.advance(Grace)
	r.want("all closed, grace over", "USER_OFFLINE ann OFFLINE")
	if cs := r.conns(d, "nobody"); cs == nil || len(cs) != 0 {
		t.Fatalf("a user never seen: %#v, want an empty list", cs)
	}
}
