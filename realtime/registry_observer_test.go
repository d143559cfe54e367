package realtime

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// recObserver records what a registry observer is told, as "+id" and "-id".
type recObserver struct {
	mu  sync.Mutex
	log []string
}

func (o *recObserver) Opened(c ConnInfo) { o.add("+" + c.UserID + "/" + c.ID) }
func (o *recObserver) Closed(c ConnInfo) { o.add("-" + c.UserID + "/" + c.ID) }
func (o *recObserver) add(s string) {
	o.mu.Lock()
	o.log = append(o.log, s)
	o.mu.Unlock()
}

func (o *recObserver) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.log
	o.log = nil
	return out
}

// TestRegistryObserver: every connection added is reported once, every
// connection removed — by Remove, Disconnect, Drain or displacement —
// once, and nothing else is.
func TestRegistryObserver(t *testing.T) {
	r := NewRegistry()
	o := &recObserver{}
	r.Observe(o)
	t0 := time.Now()
	a1, a2, b1 := newConn(r, "a1", "alice", t0), newConn(r, "a2", "alice", t0), newConn(r, "b1", "bob", t0)
	r.Add(a1)
	r.Add(a2)
	r.Add(b1)
	r.Add(a1) // again: no-op
	if got, want := o.take(), []string{"+alice/a1", "+alice/a2", "+bob/b1"}; !slices.Equal(got, want) {
		t.Fatalf("after adds: %q, want %q", got, want)
	}
	r.Remove(a1)
	r.Remove(a1) // unknown now
	if got, want := o.take(), []string{"-alice/a1"}; !slices.Equal(got, want) {
		t.Fatalf("after remove: %q, want %q", got, want)
	}
	if n := r.Disconnect("alice", 4403, "bye"); n != 1 {
		t.Fatalf("Disconnect closed %d", n)
	}
	if got, want := o.take(), []string{"-alice/a2"}; !slices.Equal(got, want) {
		t.Fatalf("after disconnect: %q, want %q", got, want)
	}
	// A connection displaced by another with its id is reported gone
	// before the new one is reported, then its own close is ignored.
	dup := newConn(r, "b1", "carol", t0)
	r.Add(dup)
	if got, want := o.take(), []string{"-bob/b1", "+carol/b1"}; !slices.Equal(got, want) {
		t.Fatalf("after displacement: %q, want %q", got, want)
	}
	r.Drain(t.Context(), 0, 1001, "bye")
	if got, want := o.take(), []string{"-carol/b1"}; !slices.Equal(got, want) {
		t.Fatalf("after drain: %q, want %q", got, want)
	}
}
