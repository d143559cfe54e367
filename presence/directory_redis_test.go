package presence_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/presence/presencetest"
)

// connsOf is userID's connections as instance i lists them, "conn@instance".
func (c *cluster) connsOf(i int, userID string) []string {
	c.t.Helper()
	cs, err := c.inst[i].Conns(context.Background(), userID)
	if err != nil {
		c.t.Fatal(err)
	}
	out := make([]string, len(cs))
	for j, x := range cs {
		out[j] = x.ID + "@" + x.Instance
	}
	return out
}

// Every instance lists a user's connections on every instance, each with
// the instance holding it; a dead instance's connections leave the list
// when it is found dead, as they leave presence.
func TestRedisDirectoryAcrossInstances(t *testing.T) {
	c := newCluster(t, 2)
	ctx := context.Background()
	a, b := c.inst[0], c.inst[1]
	t0 := c.clock.Now()
	must(t, a.Open(ctx, presence.Conn{ID: "a1", UserID: "ann", ConnectedAt: t0, UserAgent: "on A"}))
	c.clock.Advance(1)
	must(t, b.Open(ctx, presence.Conn{ID: "b1", UserID: "ann", ConnectedAt: c.clock.Now(), UserAgent: "on B"}))
	want := []string{"a1@inst-A", "b1@inst-B"}
	for i := range c.inst {
		if got := c.connsOf(i, "ann"); !slices.Equal(got, want) {
			t.Fatalf("instance %d lists %v, want %v", i, got, want)
		}
	}
	cs, _ := a.Conns(ctx, "ann")
	if cs[1].UserAgent != "on B" {
		t.Fatalf("B's connection as A reads it: %+v", cs[1])
	}

	// A dies: once B's sweeper finds it dead, only B's connection is left.
	c.sweep()
	must(t, a.Close())
	c.advance(presence.DefaultInstanceTTL + 2*presencetest.Interval)
	if got := c.connsOf(1, "ann"); !slices.Equal(got, []string{"b1@inst-B"}) {
		t.Fatalf("after A died, B lists %v", got)
	}
	if missing, err := b.Active(ctx, []presence.Activity{{UserID: "ann", ConnID: "b1", At: c.clock.Now()}}); err != nil || len(missing) != 0 {
		t.Fatalf("B's own live connection reported missing: %v %v", missing, err)
	}
}

// A Redis that restarts empty loses the directory: the instances' next
// activity report finds their connections missing, and opening them again
// restores presence and the list.
func TestRedisDirectoryAfterRedisLostItsData(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := srv.Client(t)
	p := presence.NewRedis(rdb, presence.Options{SweepEvery: -1}, presence.RedisOptions{Prefix: "tp:", InstanceID: "A"})
	t.Cleanup(func() { _ = p.Close() })
	ctx := context.Background()
	for i := range 3 {
		must(t, p.Open(ctx, presence.Conn{ID: fmt.Sprint("c", i), UserID: "ann"}))
	}
	srv.Kill()
	srv.Start()
	acts := []presence.Activity{{UserID: "ann", ConnID: "c0"}, {UserID: "ann", ConnID: "c1"}, {UserID: "ann", ConnID: "c2"}}
	missing, err := p.Active(ctx, acts)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 3 {
		t.Fatalf("after Redis lost its data: missing %v, want all three", missing)
	}
	for _, m := range missing {
		must(t, p.Open(ctx, presence.Conn{ID: m.ConnID, UserID: m.UserID}))
	}
	if cs, err := p.Conns(ctx, "ann"); err != nil || len(cs) != 3 {
		t.Fatalf("opened again: %v %v", cs, err)
	}
	if st, _ := p.Get(ctx, "ann"); st[0].Status != presence.Online {
		t.Fatalf("ann %s", st[0].Status)
	}
}
