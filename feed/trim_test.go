package feed_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/feed"
	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/store"
)

// oldest is the first seq the database log still holds (0: none).
func oldest(t testing.TB, s store.Store) int64 {
	t.Helper()
	es, err := s.ReadLog(context.Background(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		return 0
	}
	return es[0].Seq
}

// Every instance trims the database log to HistoryMax entries, every
// TrimEvery.
func TestTrimKeepsHistoryMax(t *testing.T) {
	s := openSQLite(t, sqlitePath(t))
	_, rec := start(t, feed.Options{Log: s, HistoryMax: 5, TrimEvery: 20 * time.Millisecond})
	commit(t, s, "a", 20)
	rec.waitSeq(t, 20, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for oldest(t, s) != 16 {
		if time.Now().After(deadline) {
			t.Fatalf("oldest entry kept: %d, want 16 (head 20, HistoryMax 5)", oldest(t, s))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Entries older than HistoryTTL go; HistoryMax < 0 keeps any number.
func TestTrimByAge(t *testing.T) {
	_, s := newPG(t)
	f, _ := start(t, feed.Options{Log: s, HistoryTTL: time.Hour, HistoryMax: -1, TrimEvery: -1})
	commitAt(t, s, "old", 3, store.Now().Add(-2*time.Hour))
	commit(t, s, "new", 2)
	got, err := f.Trim(context.Background())
	if err != nil || got != 4 {
		t.Fatalf("Trim = %d, %v; want the oldest kept 4", got, err)
	}
	if o := oldest(t, s); o != 4 {
		t.Fatalf("oldest entry kept: %d, want 4", o)
	}
	if _, err := f.Trim(context.Background()); err != nil || oldest(t, s) != 4 {
		t.Fatalf("a second Trim removed more (oldest %d, %v)", oldest(t, s), err)
	}
}

// An instance further behind than the retention cannot deliver what was
// trimmed: it reports the lost range to OnGap, once, in order with its
// deliveries, and goes on with the oldest entry kept.
func TestLostHistoryReportedToOnGap(t *testing.T) {
	check := func(t *testing.T, rec *recorder, f *feed.Feed) {
		t.Helper()
		rec.waitSeq(t, 21, 10*time.Second)
		if got, want := rec.seqs(), []uint64{1, 17, 18, 19, 20, 21}; !slices.Equal(got, want) {
			t.Fatalf("delivered %v, want %v", got, want)
		}
		if got := rec.gapList(); len(got) != 1 || got[0] != [2]uint64{2, 16} {
			t.Fatalf("OnGap calls %v, want one for 2..16", got)
		}
		// Deliver runs before the position moves: wait for it.
		deadline := time.Now().Add(5 * time.Second)
		st := f.Stats()
		for st.Position != 21 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			st = f.Stats()
		}
		if st.Lost != 15 || st.Position != 21 {
			t.Errorf("stats %+v: want 15 lost, position 21", st)
		}
	}
	t.Run("Direct", func(t *testing.T) {
		s := openSQLite(t, sqlitePath(t))
		f, rec := start(t, feed.Options{Log: s, TrimEvery: -1})
		blocked, release := rec.stall()
		t.Cleanup(release)
		commit(t, s, "first", 1)
		f.Committed()
		<-blocked // delivering seq 1, with nothing else read
		commit(t, s, "a", 20)
		if _, err := s.TrimLog(context.Background(), time.Time{}, 5); err != nil {
			t.Fatal(err)
		}
		release()
		check(t, rec, f)
	})
	t.Run("Redis", func(t *testing.T) {
		rdb, prefix := redistest.New(t)
		opts := redisOpts(prefix)
		opts.StreamMax, opts.TrimEvery = 5, -1
		in := newInstances(t, 2, rdb, opts)
		blocked, release := in.recs[1].stall()
		t.Cleanup(release)
		commit(t, in.stores[0], "first", 1)
		in.feeds[0].Committed()
		<-blocked
		for range 20 {
			commit(t, in.stores[0], "a", 1)
			in.feeds[0].Committed()
		}
		in.recs[0].waitSeq(t, 21, 5*time.Second)
		// Neither the database nor the stream has 2..16 any more.
		if _, err := in.stores[0].TrimLog(context.Background(), time.Time{}, 5); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Del(context.Background(), prefix+"log:"+in.feeds[0].Epoch()).Err(); err != nil {
			t.Fatal(err)
		}
		in.feeds[0].Committed() // the relay restarts the stream at 17
		release()
		check(t, in.recs[1], in.feeds[1])
	})
}
