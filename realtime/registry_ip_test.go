package realtime

import (
	"testing"
	"time"
)

func TestDisconnectIP(t *testing.T) {
	r := NewRegistry()
	t0 := time.Now()
	conns := map[string]*fakeConn{}
	for _, c := range []struct{ id, user, ip string }{
		{"a1", "alice", "192.0.2.1"}, {"b1", "bob", "192.0.2.1"},
		{"a2", "alice", "192.0.2.10"}, {"c1", "carol", "2001:db8::1"},
	} {
		fc := newConn(r, c.id, c.user, t0)
		fc.info.IP = c.ip
		conns[c.id] = fc
		r.Add(fc)
	}
	if n := r.DisconnectIP("192.0.2.1", 1008, "blocked"); n != 2 {
		t.Fatalf("DisconnectIP closed %d, want 2", n)
	}
	for id, c := range conns {
		n, code, reason, _ := c.closed()
		want := id == "a1" || id == "b1"
		if (n == 1) != want || want && (code != 1008 || reason != "blocked") {
			t.Errorf("%s: closed %d times, code %d %q; want closed %v", id, n, code, reason, want)
		}
	}
	if r.Len() != 2 || !r.Online("alice") {
		t.Fatalf("Len %d, alice online %v: want the other address's connections kept", r.Len(), r.Online("alice"))
	}
	if n := r.DisconnectIP("198.51.100.1", 1008, "blocked"); n != 0 {
		t.Fatalf("DisconnectIP of an unknown address closed %d", n)
	}
}
