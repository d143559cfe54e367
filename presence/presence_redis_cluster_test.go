package presence_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/presence/presencetest"
)

// changeLog collects the changes every instance reports, tagged with the
// instance, in one list: "exactly once" is counted across instances.
type changeLog struct {
	mu  sync.Mutex
	chs []string
}

func (l *changeLog) on(inst string) func(presence.Change) {
	return func(ch presence.Change) {
		l.mu.Lock()
		l.chs = append(l.chs, fmt.Sprintf("%s %s %s", ch.Kind.EventType(), ch.State.UserID, ch.State.Status))
		l.mu.Unlock()
	}
}

func (l *changeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.chs
	l.chs = nil
	return out
}

// tally takes the changes, counted.
func (l *changeLog) tally() map[string]int {
	n := map[string]int{}
	for _, c := range l.take() {
		n[c]++
	}
	return n
}

// cluster is n Redis presences on one prefix, one fake clock, swept by
// the test.
type cluster struct {
	t     *testing.T
	clock *presencetest.Clock
	log   *changeLog
	inst  []*presence.Redis
}

func newCluster(t *testing.T, n int) *cluster {
	rdb, prefix := redistest.New(t)
	c := &cluster{t: t, clock: presencetest.NewClock(), log: &changeLog{}}
	for i := range n {
		id := fmt.Sprint("inst-", string(rune('A'+i)))
		p := presence.NewRedis(rdb, presence.Options{
			OfflineGrace: presencetest.Grace, AwayAfter: presencetest.AwayIdle, ActivityInterval: presencetest.Interval,
			SweepEvery: -1, Clock: c.clock, OnChange: c.log.on(id),
		}, presence.RedisOptions{Prefix: prefix, InstanceID: id})
		t.Cleanup(func() { _ = p.Close() })
		c.inst = append(c.inst, p)
	}
	return c
}

// sweep sweeps every instance at once, as their sweepers race.
func (c *cluster) sweep() {
	c.t.Helper()
	var wg sync.WaitGroup
	for _, p := range c.inst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Sweep(context.Background()); err != nil {
				c.t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// advance moves the clock by d in steps of at most a second, every live
// instance sweeping (and so heartbeating) at each, as their sweepers do.
func (c *cluster) advance(d time.Duration) {
	c.t.Helper()
	for d > 0 {
		step := min(d, time.Second)
		c.clock.Advance(step)
		c.sweep()
		d -= step
	}
}

// status is userID's status as instance i reads it.
func (c *cluster) status(i int, userID string) presence.Status {
	c.t.Helper()
	sts, err := c.inst[i].Get(context.Background(), userID)
	if err != nil {
		c.t.Fatal(err)
	}
	return sts[0].Status
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A user with tabs on two instances is online until both close, plus the
// grace; each transition is reported once across the instances, however
// their calls and sweepers race.
func TestRedisTwoInstancesAgree(t *testing.T) {
	c := newCluster(t, 2)
	ctx := context.Background()
	a, b := c.inst[0], c.inst[1]
	must(t, a.Connect(ctx, "ann", "a1"))
	must(t, b.Connect(ctx, "ann", "b1"))
	if got := c.log.take(); len(got) != 1 || got[0] != "USER_ONLINE ann ONLINE" {
		t.Fatalf("tabs on A and B: %q, want one USER_ONLINE", got)
	}
	must(t, a.Disconnect(ctx, "ann", "a1"))
	c.advance(2 * presencetest.Grace)
	for i := range c.inst {
		if st := c.status(i, "ann"); st != presence.Online {
			t.Fatalf("A's tab closed, B's open: instance %d reads %s", i, st)
		}
	}
	must(t, b.Disconnect(ctx, "ann", "b1"))
	c.advance(presencetest.Grace - time.Millisecond)
	if got := c.log.take(); len(got) != 0 {
		t.Fatalf("within the grace: %q", got)
	}
	c.advance(time.Millisecond)
	if got := c.log.take(); len(got) != 1 || got[0] != "USER_OFFLINE ann OFFLINE" {
		t.Fatalf("both closed, grace over: %q, want one USER_OFFLINE", got)
	}
	if st := c.status(0, "ann"); st != presence.Offline {
		t.Fatalf("A reads %s", st)
	}

	// Many users, each with a tab on both instances opened at once: one
	// USER_ONLINE each; closed at once and swept by both: one USER_OFFLINE.
	const users = 20
	var wg sync.WaitGroup
	for u := range users {
		for i, p := range c.inst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.Connect(ctx, fmt.Sprint("u", u), fmt.Sprint("c", i)); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	online := c.log.tally()
	for u := range users {
		if n := online[fmt.Sprint("USER_ONLINE u", u, " ONLINE")]; n != 1 {
			t.Errorf("u%d: %d USER_ONLINE from tabs opened at once on A and B, want 1", u, n)
		}
	}
	for u := range users {
		for i, p := range c.inst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.Disconnect(ctx, fmt.Sprint("u", u), fmt.Sprint("c", i)); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	c.advance(presencetest.Grace)
	got := c.log.tally()
	for u := range users {
		if n := got[fmt.Sprint("USER_OFFLINE u", u, " OFFLINE")]; n != 1 {
			t.Errorf("u%d: %d USER_OFFLINE across two sweepers, want 1", u, n)
		}
	}
}

// An instance that dies (stops, closing nothing) loses its connections:
// another instance finds its heartbeat InstanceTTL old and closes them as
// of that heartbeat, so its users go OFFLINE one grace after it — within
// issue 7's 60 s with the defaults — reported once; other users and the
// user's tabs elsewhere are untouched.
func TestRedisDeadInstanceConnectionsExpire(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	a, b, cc := c.inst[0], c.inst[1], c.inst[2]
	must(t, a.Connect(ctx, "ann", "a1"))  // only on A
	must(t, a.Connect(ctx, "bob", "a2"))  // on A and B
	must(t, b.Connect(ctx, "bob", "b1"))  //
	must(t, cc.Connect(ctx, "cyd", "c1")) // only on C
	c.sweep()
	c.log.take()
	died := c.clock.Now() // A's last heartbeat
	must(t, a.Close())

	var offline time.Duration
	for offline == 0 && c.clock.Now().Sub(died) < 2*time.Minute {
		c.advance(time.Second)
		for _, ch := range c.log.take() {
			if ch != "USER_OFFLINE ann OFFLINE" {
				t.Fatalf("change %q", ch)
			}
			if offline != 0 {
				t.Fatal("ann's USER_OFFLINE reported twice")
			}
			offline = c.clock.Now().Sub(died)
		}
	}
	t.Logf("A died; ann OFFLINE %v after its last heartbeat (grace %v, instance TTL %v)", offline, presencetest.Grace, presence.DefaultInstanceTTL)
	if offline < presencetest.Grace || offline > max(presencetest.Grace, presence.DefaultInstanceTTL)+time.Second || offline > 60*time.Second {
		t.Fatalf("ann OFFLINE %v after A died, want one grace (%v) after its last heartbeat, at most 60s", offline, presencetest.Grace)
	}
	c.advance(time.Minute)
	if got := c.log.take(); len(got) != 0 {
		t.Fatalf("later: %q", got)
	}
	for _, u := range []string{"bob", "cyd"} {
		if st := c.status(1, u); st != presence.Online {
			t.Errorf("%s, with a tab on a live instance: %s", u, st)
		}
	}
	// bob's tab on A is gone: closing the one on B takes him offline.
	must(t, b.Disconnect(ctx, "bob", "b1"))
	c.advance(presencetest.Grace)
	if got := c.log.take(); len(got) != 1 || got[0] != "USER_OFFLINE bob OFFLINE" {
		t.Fatalf("bob's last live tab closed: %q", got)
	}
}

// The same on the real clock with the instances' own sweepers: A's users
// are OFFLINE about InstanceTTL (here longer than the grace) after A
// stops, reported by B.
func TestRedisDeadInstanceRealClock(t *testing.T) {
	rdb, prefix := redistest.New(t)
	const grace, ttl = 100 * time.Millisecond, 400 * time.Millisecond
	offline := make(chan string, 4)
	mk := func(id string) *presence.Redis {
		p := presence.NewRedis(rdb, presence.Options{
			OfflineGrace: grace, AwayAfter: time.Hour, ActivityInterval: time.Millisecond,
			OnChange: func(ch presence.Change) {
				if ch.Kind == presence.KindOffline {
					offline <- id + " " + ch.State.UserID
				}
			},
		}, presence.RedisOptions{Prefix: prefix, InstanceID: id, InstanceTTL: ttl})
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	a, _ := mk("A"), mk("B")
	ctx := context.Background()
	must(t, a.Connect(ctx, "ann", "a1"))
	time.Sleep(100 * time.Millisecond) // a heartbeat or two
	must(t, a.Close())
	stopped := time.Now()
	select {
	case got := <-offline:
		took := time.Since(stopped)
		t.Logf("A stopped; %q %v later", got, took)
		if got != "B ann" {
			t.Fatalf("offline reported as %q, want by B", got)
		}
		if took < ttl-150*time.Millisecond {
			t.Fatalf("ann OFFLINE %v after A stopped: before its TTL %v", took, ttl)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ann never went OFFLINE after A stopped")
	}
}
