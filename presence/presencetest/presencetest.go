// Package presencetest is the contract suite every presence.Presence
// implementation passes (the in-process one now, Redis later): Run drives
// an implementation with a fake clock and asserts the changes it reports,
// as store/storetest does for stores.
package presencetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/presence"
)

// Factory returns a fresh, empty implementation configured with opts
// (Clock, OnChange and a negative SweepEvery included: the suite sweeps).
// It must implement presence.Sweeper and presence.Directory. The suite closes it.
type Factory func(t *testing.T, opts presence.Options) presence.Presence

// Durations the suite configures.
const (
	Grace    = 30 * time.Second
	AwayIdle = 5 * time.Minute
	Interval = time.Second
)

// Clock is a fake presence.Clock moved by Advance.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed instant.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

// Now implements presence.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// rig is one implementation under test with its clock and the changes it
// reported.
type rig struct {
	t     *testing.T
	p     presence.Presence
	sw    presence.Sweeper
	clock *Clock

	mu      sync.Mutex
	changes []presence.Change
}

func newRig(t *testing.T, f Factory) *rig {
	t.Helper()
	r := &rig{t: t, clock: NewClock()}
	r.p = f(t, presence.Options{
		OfflineGrace: Grace, AwayAfter: AwayIdle, ActivityInterval: Interval,
		SweepEvery: -1, Clock: r.clock,
		OnChange: func(ch presence.Change) {
			r.mu.Lock()
			r.changes = append(r.changes, ch)
			r.mu.Unlock()
		},
	})
	sw, ok := r.p.(presence.Sweeper)
	if !ok {
		t.Fatalf("%T does not implement presence.Sweeper", r.p)
	}
	r.sw = sw
	t.Cleanup(func() { _ = r.p.Close() })
	return r
}

func ctx() context.Context { return context.Background() }

// advance moves the clock and sweeps.
func (r *rig) advance(d time.Duration) {
	r.t.Helper()
	r.clock.Advance(d)
	if err := r.sw.Sweep(ctx()); err != nil {
		r.t.Fatalf("sweep: %v", err)
	}
}

func (r *rig) connect(user, conn string) {
	r.t.Helper()
	if err := r.p.Connect(ctx(), user, conn); err != nil {
		r.t.Fatalf("connect %s/%s: %v", user, conn, err)
	}
}

func (r *rig) disconnect(user, conn string) {
	r.t.Helper()
	if err := r.p.Disconnect(ctx(), user, conn); err != nil {
		r.t.Fatalf("disconnect %s/%s: %v", user, conn, err)
	}
}

func (r *rig) touch(user string) {
	r.t.Helper()
	if err := r.p.Touch(ctx(), user); err != nil {
		r.t.Fatalf("touch %s: %v", user, err)
	}
}

func (r *rig) update(user string, u presence.Update) presence.State {
	r.t.Helper()
	st, err := r.p.Update(ctx(), user, u)
	if err != nil {
		r.t.Fatalf("update %s: %v", user, err)
	}
	return st
}

func (r *rig) get(user string) presence.State {
	r.t.Helper()
	sts, err := r.p.Get(ctx(), user)
	if err != nil || len(sts) != 1 {
		r.t.Fatalf("get %s: %v %v", user, sts, err)
	}
	return sts[0]
}

// take returns the changes reported since the last take.
func (r *rig) take() []presence.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.changes
	r.changes = nil
	return out
}

// want asserts the changes since the last take, as "KIND user STATUS".
func (r *rig) want(what string, want ...string) []presence.Change {
	r.t.Helper()
	got := r.take()
	gs := make([]string, len(got))
	for i, ch := range got {
		gs[i] = describe(ch)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(gs, want) {
		r.t.Fatalf("%s: changes %q, want %q", what, gs, want)
	}
	return got
}

func describe(ch presence.Change) string {
	return fmt.Sprintf("%s %s %s", ch.Kind.EventType(), ch.State.UserID, ch.State.Status)
}

func str(s string) *string { return &s }

func status(s presence.Status) *presence.Status { return &s }

// Run runs the contract suite against implementations made by f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, r *rig)
	}{
		{"FirstConnectionIsOnline", testFirstConnection},
		{"TabsShareOneOnline", testTabs},
		{"OfflineAfterGrace", testOfflineAfterGrace},
		{"ReconnectWithinGraceIsSilent", testReconnectWithinGrace},
		{"AwayAfterIdleAndBack", testAway},
		{"ActivityPostponesAway", testActivityPostponesAway},
		{"UpdateCoalesced", testUpdateCoalesced},
		{"UpdateRefusals", testUpdateRefusals},
		{"ManualAwaySticks", testManualAway},
		{"OfflineClearsAndDropsPending", testOfflineClears},
		{"Get", testGet},
		{"IdempotentConnections", testIdempotent},
		{"UsersIndependent", testUsersIndependent},
		{"Concurrent", testConcurrent},
		{"Directory", testDirectory},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newRig(t, f)) })
	}
}
