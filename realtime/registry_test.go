package realtime

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeConn is a test double of a transport connection: closing it records
// the code and removes it from the registry, as a real one does.
type fakeConn struct {
	info ConnInfo
	reg  *Registry
	// stubborn connections ignore CloseWith (a peer that never goes away).
	stubborn bool
	// onClose, if set, runs inside CloseWith (on the caller's goroutine).
	onClose func()

	mu       sync.Mutex
	closes   int
	code     int
	reason   string
	closedAt time.Time
}

func (c *fakeConn) Info() ConnInfo { return c.info }

func (c *fakeConn) CloseWith(code int, reason string) {
	c.mu.Lock()
	c.closes++
	c.code, c.reason, c.closedAt = code, reason, time.Now()
	c.mu.Unlock()
	if c.onClose != nil {
		c.onClose()
	}
	if !c.stubborn {
		c.reg.Remove(c)
	}
}

func (c *fakeConn) closed() (n, code int, reason string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closes, c.code, c.reason, c.closedAt
}

func newConn(r *Registry, id, user string, at time.Time) *fakeConn {
	return &fakeConn{reg: r, info: ConnInfo{ID: id, UserID: user, ConnectedAt: at, LastActivity: at, Transport: "ws"}}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	a2 := newConn(r, "a2", "alice", t0.Add(2*time.Second))
	a1 := newConn(r, "a1", "alice", t0.Add(time.Second))
	a3 := newConn(r, "a3", "alice", t0.Add(3*time.Second))
	b1 := newConn(r, "b1", "bob", t0)
	for _, c := range []*fakeConn{a2, a1, a3, b1} {
		r.Add(c)
	}
	if r.Len() != 4 || !r.Online("alice") || !r.Online("bob") || r.Online("carol") {
		t.Fatalf("Len %d, online alice %v bob %v carol %v", r.Len(), r.Online("alice"), r.Online("bob"), r.Online("carol"))
	}
	var ids []string
	for _, info := range r.ByUser("alice") {
		ids = append(ids, info.ID)
	}
	if !slices.Equal(ids, []string{"a1", "a2", "a3"}) {
		t.Errorf("ByUser(alice) = %q, want oldest first", ids)
	}
	if got := r.ByUser("carol"); len(got) != 0 {
		t.Errorf("ByUser(carol) = %v", got)
	}

	r.Remove(a2)
	r.Remove(a2) // unknown now: ignored
	if r.Len() != 3 || len(r.ByUser("alice")) != 2 {
		t.Errorf("after Remove: Len %d, alice has %d", r.Len(), len(r.ByUser("alice")))
	}

	if n := r.Disconnect("alice", 4403, "kicked"); n != 2 {
		t.Errorf("Disconnect(alice) = %d, want 2", n)
	}
	for _, c := range []*fakeConn{a1, a3} {
		if n, code, reason, _ := c.closed(); n != 1 || code != 4403 || reason != "kicked" {
			t.Errorf("%s closed %d times with %d %q", c.info.ID, n, code, reason)
		}
	}
	if n, _, _, _ := b1.closed(); n != 0 {
		t.Error("Disconnect(alice) closed bob's connection")
	}
	if r.Online("alice") || r.Len() != 1 {
		t.Errorf("after Disconnect: alice online %v, Len %d", r.Online("alice"), r.Len())
	}
	if n := r.Disconnect("nobody", 4403, ""); n != 0 {
		t.Errorf("Disconnect(nobody) = %d", n)
	}

	// Adding an ID again replaces the connection, also under another user,
	// and closes the one it replaced.
	b1again := newConn(r, "b1", "carol", t0)
	r.Add(b1again)
	if r.Len() != 1 || r.Online("bob") || !r.Online("carol") {
		t.Errorf("after re-Add: Len %d, bob %v, carol %v", r.Len(), r.Online("bob"), r.Online("carol"))
	}
	if n, code, _, _ := b1.closed(); n != 1 || code != closeReplaced {
		t.Errorf("replaced connection closed %d times with %d, want once with %d", n, code, closeReplaced)
	}
}

// A connection is registered as the Conn it is, not just its ID: a second
// connection with a taken ID displaces (and closes) the first, and the
// first's Remove — which a closing connection makes — leaves the second.
func TestRegistryDuplicateID(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name     string
		stubborn bool // the displaced connection does not remove itself
	}{{"displaced connection removes itself", false}, {"displaced connection stays open", true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry()
			old := newConn(r, "x", "alice", now)
			old.stubborn = tc.stubborn
			r.Add(old)
			r.Add(old) // the same connection again: a no-op
			if n, _, _, _ := old.closed(); n != 0 || r.Len() != 1 {
				t.Fatalf("re-adding the same connection: closed %d times, Len %d", n, r.Len())
			}

			cur := newConn(r, "x", "alice", now.Add(time.Second))
			r.Add(cur)
			if n, code, reason, _ := old.closed(); n != 1 || code != closeReplaced || reason != closeReplacedReason {
				t.Errorf("displaced connection closed %d times with %d %q", n, code, reason)
			}
			r.Remove(old) // again, explicitly: still not the registered one
			if got := r.ByUser("alice"); len(got) != 1 || !got[0].ConnectedAt.Equal(cur.info.ConnectedAt) {
				t.Fatalf("ByUser(alice) = %+v, want only the new connection", got)
			}
			if n, _, _, _ := cur.closed(); n != 0 {
				t.Errorf("the new connection was closed")
			}
			// The new one is reachable: Disconnect closes it.
			if n := r.Disconnect("alice", 4403, "bye"); n != 1 || r.Len() != 0 {
				t.Errorf("Disconnect = %d, Len %d after", n, r.Len())
			}
			if n, code, _, _ := cur.closed(); n != 1 || code != 4403 {
				t.Errorf("new connection closed %d times with %d", n, code)
			}
		})
	}
}

// valueConn is a Conn of a non-comparable type.
type valueConn struct {
	info ConnInfo
	tags []string
}

func (c valueConn) Info() ConnInfo        { return c.info }
func (c valueConn) CloseWith(int, string) {}

func TestRegistryRefusesUncomparableConn(t *testing.T) {
	r := NewRegistry()
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "not comparable") {
			t.Errorf("Add of a non-comparable Conn: panic %q, want one saying it is not comparable", msg)
		}
		if r.Len() != 0 {
			t.Errorf("Len %d after a refused Add", r.Len())
		}
	}()
	r.Add(valueConn{info: ConnInfo{ID: "v", UserID: "u"}})
}

func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i := 0; i < 200; i++ {
				c := newConn(r, fmt.Sprintf("%d-%d", g, i), fmt.Sprintf("u%d", i%5), time.Now())
				r.Add(c)
				r.ByUser(c.info.UserID)
				r.Online(c.info.UserID)
				if i%2 == 0 {
					r.Remove(c)
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < 50; i++ {
			r.Disconnect(fmt.Sprintf("u%d", i%5), 1000, "")
		}
	})
	wg.Wait()
	r.Drain(context.Background(), 0, 1001, "bye")
	if r.Len() != 0 {
		t.Fatalf("Len %d after Drain", r.Len())
	}
}

func TestDrainSpreadsCloses(t *testing.T) {
	r := NewRegistry()
	const n = 20
	const spread = 100 * time.Millisecond
	t0 := time.Now().Add(-time.Hour)
	conns := make([]*fakeConn, n)
	for i := range conns {
		// Added in scrambled order; Drain closes the oldest first.
		j := (i * 7) % n
		conns[j] = newConn(r, fmt.Sprint(j), "u", t0.Add(time.Duration(j)*time.Second))
	}
	for _, c := range conns {
		r.Add(c)
	}
	start := time.Now()
	r.Drain(context.Background(), spread, 1001, "server restart")
	if r.Len() != 0 {
		t.Fatalf("Len %d after Drain", r.Len())
	}
	var prev time.Time
	for i, c := range conns {
		cnt, code, reason, at := c.closed()
		if cnt != 1 || code != 1001 || reason != "server restart" {
			t.Fatalf("conn %d closed %d times with %d %q", i, cnt, code, reason)
		}
		if at.Before(prev) {
			t.Errorf("conn %d closed before an older one", i)
		}
		prev = at
		// Connection i is due at i·spread/n: it may close late, never early.
		if due := start.Add(spread * time.Duration(i) / n); at.Before(due) {
			t.Errorf("conn %d closed %v before its turn", i, due.Sub(at))
		}
	}
}

func TestDrainStopsWithContext(t *testing.T) {
	r := NewRegistry()
	stubborn := newConn(r, "s", "u", time.Now())
	stubborn.stubborn = true
	r.Add(stubborn)
	for i := 0; i < 9; i++ {
		r.Add(newConn(r, fmt.Sprint(i), "u", time.Now().Add(time.Duration(i+1)*time.Millisecond)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		// A spread far longer than the test: cancelling must close the rest at once.
		r.Drain(ctx, time.Hour, 1001, "bye")
		close(done)
	}()
	for {
		if n, _, _, _ := stubborn.closed(); n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after its context ended")
	}
	if r.Len() != 1 {
		t.Errorf("Len %d, want only the stubborn connection left", r.Len())
	}
}

// Connections added while Drain waits are closed too.
func TestDrainClosesLateConnections(t *testing.T) {
	r := NewRegistry()
	stubborn := newConn(r, "s", "u", time.Now())
	stubborn.stubborn = true // keeps Drain waiting
	r.Add(stubborn)
	done := make(chan struct{})
	go func() {
		r.Drain(context.Background(), 0, 1001, "bye")
		close(done)
	}()
	for {
		if n, _, _, _ := stubborn.closed(); n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	late := newConn(r, "late", "u", time.Now())
	r.Add(late)
	r.Remove(stubborn) // the stubborn one finally goes
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return")
	}
	if n, code, _, _ := late.closed(); n != 1 || code != 1001 {
		t.Errorf("late connection closed %d times with %d", n, code)
	}
}

// A connection added while Drain spreads its closes is closed at Drain's
// next step, not left for the end of the spread.
func TestDrainClosesConnectionsAddedDuringSpread(t *testing.T) {
	r := NewRegistry()
	t0 := time.Now().Add(-time.Minute)
	first, second := newConn(r, "a", "u", t0), newConn(r, "b", "u", t0.Add(time.Second))
	late := newConn(r, "late", "u", time.Now())
	// Added while Drain is mid-spread: from inside the first close.
	first.onClose = func() { r.Add(late) }
	r.Add(first)
	r.Add(second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		// second is due in half an hour: only cancelling ends this Drain.
		r.Drain(ctx, time.Hour, 1001, "bye")
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _, _, _ := late.closed(); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("a connection added during the spread was not closed before the spread ended")
		}
		time.Sleep(time.Millisecond)
	}
	if n, _, _, _ := second.closed(); n != 0 {
		t.Errorf("the second connection closed before its turn")
	}
	cancel()
	<-done
	for _, c := range []*fakeConn{first, second, late} {
		if n, code, _, _ := c.closed(); n != 1 || code != 1001 {
			t.Errorf("%s closed %d times with %d, want once with 1001", c.info.ID, n, code)
		}
	}
}

// When ctx ends during the spread, every connection not yet closed is
// closed at once — those still due and those added since Drain last looked.
func TestDrainContextEndClosesEveryRemainingConnection(t *testing.T) {
	r := NewRegistry()
	t0 := time.Now().Add(-time.Minute)
	first, second := newConn(r, "a", "u", t0), newConn(r, "b", "u", t0.Add(time.Second))
	r.Add(first)
	r.Add(second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Drain(ctx, time.Hour, 1001, "bye")
		close(done)
	}()
	for {
		if n, _, _, _ := first.closed(); n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Drain now waits half an hour for second's turn; late arrives meanwhile.
	late := newConn(r, "late", "u", time.Now())
	r.Add(late)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after its context ended")
	}
	for _, c := range []*fakeConn{second, late} {
		if n, code, _, _ := c.closed(); n != 1 || code != 1001 {
			t.Errorf("%s closed %d times with %d, want once with 1001", c.info.ID, n, code)
		}
	}
	if r.Len() != 0 {
		t.Errorf("Len %d after Drain", r.Len())
	}
}
