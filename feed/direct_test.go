package feed_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/feed"
	"github.com/taskpulse/taskpulse/realtime"
)

// Without Redis, on SQLite: a commit of this process (nudged) and one of
// another process on the same file (not nudged) both reach Deliver, in
// log order, once; nothing from before Start.
func TestDirectSQLiteDeliversOtherProcessesCommits(t *testing.T) {
	path := sqlitePath(t)
	mine, other := openSQLite(t, path), openSQLite(t, path)
	commit(t, mine, "before", 3) // before Start: not delivered
	f, rec := start(t, feed.Options{Log: mine, Poll: 50 * time.Millisecond})
	if p := f.Position(); p.Seq != 3 || p.Epoch == "" || p.Epoch != f.Epoch() {
		t.Fatalf("Position after Start = %+v, want seq 3 in epoch %q", p, f.Epoch())
	}

	commit(t, mine, "a", 2)
	f.Committed()
	rec.waitSeq(t, 5, 5*time.Second)
	commit(t, other, "cli", 4) // another process: no nudge reaches this one
	rec.waitSeq(t, 9, 5*time.Second)

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			s := mine
			if w%2 == 1 {
				s = other
			}
			for range 10 {
				commit(t, s, "w", 1+w)
				if s == mine {
					f.Committed()
				}
			}
		})
	}
	wg.Wait()
	h := head(t, mine)
	rec.waitSeq(t, h, 5*time.Second)
	sameLogs(t, dbLog(t, mine, 3), map[string]*recorder{"the feed": rec})
	if st := f.Stats(); st.Position != h || st.Lag != 0 || st.Delivered != h-3 || st.FromDB != h-3 || st.Redis {
		t.Errorf("Stats = %+v", st)
	}
	if err := f.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

// A nudged commit is delivered long before the next Poll.
func TestDirectNudgeIsPrompt(t *testing.T) {
	s := openSQLite(t, sqlitePath(t))
	f, rec := start(t, feed.Options{Log: s, Poll: time.Hour})
	for i := range 5 {
		commit(t, s, "a", 1)
		f.Committed()
		rec.waitSeq(t, uint64(i+1), 2*time.Second)
	}
}

// Live events without Redis reach this instance's Deliver, stamped with the
// last log position delivered before them, and are refused when malformed.
func TestDirectPublishLive(t *testing.T) {
	s := openSQLite(t, sqlitePath(t))
	f, rec := start(t, feed.Options{Log: s})
	commit(t, s, "a", 2)
	f.Committed()
	rec.waitSeq(t, 2, 5*time.Second)
	ev := &realtime.Event{Type: "USER_ONLINE", Rooms: []string{"team:t"}, Data: []byte(`{"u":1}`), Time: time.Now()}
	if err := f.PublishLive(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	live := rec.live()
	if len(live) != 1 || live[0] != ev {
		t.Fatalf("live events delivered: %v", live)
	}
	if want := (realtime.Position{Epoch: f.Epoch(), Seq: 2}).Cursor(); ev.Cursor != want || ev.Seq != 0 || !ev.Ephemeral || ev.Epoch != f.Epoch() {
		t.Errorf("live event stamped seq %d epoch %q cursor %q ephemeral %v; want seq 0, cursor of seq 2 %q",
			ev.Seq, ev.Epoch, ev.Cursor, ev.Ephemeral, want)
	}
	for name, bad := range map[string]*realtime.Event{
		"nil":        nil,
		"no type":    {Rooms: []string{"r"}},
		"no room":    {Type: "E"},
		"empty room": {Type: "E", Rooms: []string{"r", ""}},
		"control":    {Type: "E", Rooms: []string{"r"}, Control: &realtime.Control{Op: realtime.CloseRoom, Room: "r"}},
		"published":  ev,
	} {
		if err := f.PublishLive(context.Background(), bad); err == nil {
			t.Errorf("%s: PublishLive accepted it", name)
		}
	}
	if n := len(rec.live()); n != 1 {
		t.Errorf("%d live events delivered after the refused ones, want 1", n)
	}
}

func TestLifecycle(t *testing.T) {
	s := openSQLite(t, sqlitePath(t))
	if _, err := feed.New(feed.Options{Deliver: func(*realtime.Event) {}}); err == nil {
		t.Error("New without a Log succeeded")
	}
	if _, err := feed.New(feed.Options{Log: s}); err == nil {
		t.Error("New without Deliver succeeded")
	}
	f, err := feed.New(feed.Options{Log: s, Deliver: func(*realtime.Event) {}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f.Committed() // before Start: harmless
	if err := f.Ready(ctx); !errors.Is(err, feed.ErrNotStarted) {
		t.Errorf("Ready before Start: %v", err)
	}
	if err := f.PublishLive(ctx, &realtime.Event{Type: "E", Rooms: []string{"r"}}); !errors.Is(err, feed.ErrNotStarted) {
		t.Errorf("PublishLive before Start: %v", err)
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); !errors.Is(err, feed.ErrStarted) {
		t.Errorf("second Start: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	f.Committed() // after Close: harmless
	if err := f.Start(ctx); !errors.Is(err, feed.ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	if err := f.Ready(ctx); !errors.Is(err, feed.ErrClosed) {
		t.Errorf("Ready after Close: %v", err)
	}
	if err := f.PublishLive(ctx, &realtime.Event{Type: "E", Rooms: []string{"r"}}); !errors.Is(err, feed.ErrClosed) {
		t.Errorf("PublishLive after Close: %v", err)
	}
}

// A follower that makes no progress behind the head for StallAfter makes
// Ready fail (for /readyz); progress makes it ready again.
func TestReadyReportsStalledFollower(t *testing.T) {
	s := openSQLite(t, sqlitePath(t))
	f, rec := start(t, feed.Options{Log: s, StallAfter: 200 * time.Millisecond, Poll: 20 * time.Millisecond})
	blocked, release := rec.stall()
	t.Cleanup(release)
	commit(t, s, "a", 2)
	f.Committed()
	<-blocked // delivering seq 1 of 2, for ever
	ctx := context.Background()
	if err := f.Ready(ctx); err != nil {
		t.Fatalf("Ready at once: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	err := f.Ready(ctx)
	if err == nil {
		t.Fatal("Ready: nil while the follower is stuck behind the head")
	}
	t.Logf("Ready while stuck: %v", err)
	release()
	rec.waitSeq(t, 2, 5*time.Second)
	if err := f.Ready(ctx); err != nil {
		t.Fatalf("Ready after catching up: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // caught up and idle is not stalled
	if err := f.Ready(ctx); err != nil {
		t.Fatalf("Ready when idle: %v", err)
	}
}
