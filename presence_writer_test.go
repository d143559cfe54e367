package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
)

// takeAll drains a shard without its worker: what it would apply, in order.
func takeAll(sh *writerShard) []string {
	quit := make(chan struct{})
	close(quit)
	var out []string
	for {
		op, ok := sh.next(quit)
		if !ok {
			return out
		}
		switch op.kind {
		case opOpen:
			out = append(out, "open "+op.info.ID)
		case opClose:
			out = append(out, "close "+op.info.ID)
		case opTouch:
			out = append(out, "touch "+op.userID)
		}
	}
}

func newShard() *writerShard {
	return &writerShard{pending: make(map[string]writeOp), wake: make(chan struct{}, 1)}
}

// A shard applies changes in arrival order, one per key: a connection
// closed before its opening was written is never written, a user's
// touches wait as one, and touches beyond the bound are dropped.
func TestWriterShardCoalesces(t *testing.T) {
	sh := newShard()
	conn := func(id string) realtime.ConnInfo { return realtime.ConnInfo{ID: id, UserID: "ann"} }
	sh.put("c:1", writeOp{kind: opOpen, info: conn("1")})
	sh.put("t:ann", writeOp{kind: opTouch, userID: "ann"})
	sh.put("c:2", writeOp{kind: opOpen, info: conn("2")})
	sh.put("t:ann", writeOp{kind: opTouch, userID: "ann"})
	sh.put("c:1", writeOp{kind: opClose, info: conn("1")}) // before its open was written
	if got, want := takeAll(sh), []string{"touch ann", "open 2"}; !slices.Equal(got, want) {
		t.Fatalf("applied %q, want %q", got, want)
	}
	// Once written, a close is written too, after anything before it.
	sh.put("t:bob", writeOp{kind: opTouch, userID: "bob"})
	sh.put("c:2", writeOp{kind: opClose, info: conn("2")})
	sh.put("c:3", writeOp{kind: opOpen, info: conn("3")})
	if got, want := takeAll(sh), []string{"touch bob", "close 2", "open 3"}; !slices.Equal(got, want) {
		t.Fatalf("applied %q, want %q", got, want)
	}
	for i := range maxPendingTouches + 10 {
		sh.put(fmt.Sprint("t:u", i), writeOp{kind: opTouch, userID: fmt.Sprint("u", i)})
	}
	if n := len(takeAll(sh)); n != maxPendingTouches {
		t.Fatalf("%d touches pending, want the bound %d", n, maxPendingTouches)
	}
	if sh.touches != 0 || len(sh.pending) != 0 || len(sh.order) != 0 {
		t.Fatalf("drained shard keeps touches=%d pending=%d order=%d", sh.touches, len(sh.pending), len(sh.order))
	}
}

// fakeConn is a registry connection that never closes by itself.
type fakeConn struct{ info realtime.ConnInfo }

func (c *fakeConn) Info() realtime.ConnInfo { return c.info }
func (c *fakeConn) CloseWith(int, string)   {}
func (c *fakeConn) String() string          { return c.info.ID }
func connIDs(cs []presence.Conn) (ids []string) {
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// Connections opened while Redis is down reach it once it is back (the
// writer retries); a Redis that comes back empty gets them again from the
// next full activity report; the registry's callers never wait meanwhile.
func TestWriterSurvivesRedisOutages(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := srv.Client(t)
	p := presence.NewRedis(rdb, presence.Options{}, presence.RedisOptions{Prefix: "tp:", InstanceID: "A"})
	t.Cleanup(func() { _ = p.Close() })
	reg := realtime.NewRegistry()
	w := newPresenceWriter(p, p, reg, testLogger(t))
	t.Cleanup(w.Close)
	reg.Observe(w)
	ctx := context.Background()
	conns := func() []string {
		cs, err := p.Conns(ctx, "ann")
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		return connIDs(cs)
	}

	srv.Kill()
	began := time.Now()
	for i := range 3 {
		reg.Add(&fakeConn{info: realtime.ConnInfo{ID: fmt.Sprint("c", i), UserID: "ann", ConnectedAt: time.Now(), Transport: "sse"}})
	}
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Fatalf("three connections took %v to register with Redis down", took)
	}
	time.Sleep(300 * time.Millisecond) // a few failed tries
	srv.Start()
	eventually(t, "the connections written once Redis is back", func() bool {
		return slices.Equal(conns(), []string{"c0", "c1", "c2"})
	})

	srv.Kill()
	srv.Start() // back, empty
	if got := conns(); len(got) != 0 {
		t.Fatalf("a restarted Redis lists %v", got)
	}
	w.reportActivity(true) // the full report of every minute
	eventually(t, "the connections written again after Redis lost them", func() bool {
		return slices.Equal(conns(), []string{"c0", "c1", "c2"})
	})
}
