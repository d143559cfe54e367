package feed_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/feed"
	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// instances is n instances of the server on one PostgreSQL database and
// one Redis: each its own store (pool) and Feed.
type instances struct {
	url    string
	stores []store.Store
	feeds  []*feed.Feed
	recs   []*recorder
}

func newInstances(t testing.TB, n int, rdb redis.UniversalClient, opts feed.Options) *instances {
	t.Helper()
	url, _ := newPG(t)
	in := &instances{url: url}
	for range n {
		s := openPG(t, url)
		o := opts
		o.Log, o.Redis = s, rdb
		f, rec := start(t, o)
		in.stores, in.feeds, in.recs = append(in.stores, s), append(in.feeds, f), append(in.recs, rec)
	}
	return in
}

// writers commits from workers goroutines per instance, rounds units each,
// nudging the committing instance's feed as the service does.
func (in *instances) writers(t testing.TB, workers, rounds int) {
	var wg sync.WaitGroup
	for i := range in.stores {
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					commit(t, in.stores[i], fmt.Sprintf("i%dw%d", i, w), 1+r%3)
					in.feeds[i].Committed()
				}
			})
		}
	}
	wg.Wait()
}

// agree waits until every instance delivered the database's head and
// checks they all delivered exactly the database log after from.
func (in *instances) agree(t testing.TB, from uint64, within time.Duration) uint64 {
	t.Helper()
	h := head(t, in.stores[0])
	recs := map[string]*recorder{}
	for i, r := range in.recs {
		r.waitSeq(t, h, within)
		recs[fmt.Sprint("instance ", i)] = r
	}
	want := dbLog(t, in.stores[0], from)
	if uint64(len(want)) != h-from {
		t.Fatalf("the database log has %d entries after %d, head %d: trimmed?", len(want), from, h)
	}
	sameLogs(t, want, recs)
	return h
}

func redisOpts(prefix string) feed.Options {
	return feed.Options{Prefix: prefix, Poll: 200 * time.Millisecond, Block: 200 * time.Millisecond}
}

// Two instances, writers on both at once: both deliver the same gapless
// log, the database's, carried by the stream.
func TestRedisTwoInstancesDeliverOneLog(t *testing.T) {
	rdb, prefix := redistest.New(t)
	in := newInstances(t, 2, rdb, redisOpts(prefix))
	in.writers(t, 4, 25)
	h := in.agree(t, 0, 10*time.Second)
	for i, f := range in.feeds {
		st := f.Stats()
		t.Logf("instance %d: %+v", i, st)
		if st.Position != h || st.Delivered != h || st.FromStream == 0 || !st.RedisUp {
			t.Errorf("instance %d: stats %+v: want all %d delivered, some from the stream, Redis up", i, st, h)
		}
		if err := f.Ready(context.Background()); err != nil {
			t.Errorf("instance %d: Ready: %v", i, err)
		}
	}
	// Each entry entered the stream once, whichever relay put it there.
	if r := in.feeds[0].Stats().Relayed + in.feeds[1].Stats().Relayed; r != h {
		t.Errorf("the relays appended %d entries together, want %d", r, h)
	}
}

// A process that commits and dies before relaying (here: a third store
// with no feed at all) loses nothing: the instances' relays find the entry
// within a Poll and carry it.
func TestRedisCommitWithoutRelayIsDelivered(t *testing.T) {
	rdb, prefix := redistest.New(t)
	opts := redisOpts(prefix)
	opts.Block = 5 * time.Second // so the follower's idle database check cannot be what delivers
	in := newInstances(t, 2, rdb, opts)
	dead := openPG(t, in.url)
	commit(t, dead, "dead", 3)
	began := time.Now()
	for _, r := range in.recs {
		r.waitSeq(t, 3, 5*time.Second)
	}
	took := time.Since(began)
	t.Logf("an un-nudged commit reached both instances in %v (Poll %v)", took, opts.Poll)
	if took > opts.Poll+time.Second {
		t.Errorf("delivered after %v, want within about one Poll (%v)", took, opts.Poll)
	}
	for i, f := range in.feeds {
		if st := f.Stats(); st.FromStream != 3 {
			t.Errorf("instance %d: %d entries from the stream, want 3 (relayed, not polled)", i, st.FromStream)
		}
	}
	in.agree(t, 0, 5*time.Second)
}

// Redis restarted empty while writers commit: no entry lost, none twice;
// the stream restarts from the database.
func TestRedisRestartedEmpty(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := srv.Client(t)
	in := newInstances(t, 2, rdb, redisOpts("tp"))
	in.writers(t, 2, 10)
	in.agree(t, 0, 10*time.Second)

	var wg sync.WaitGroup
	wg.Go(func() { in.writers(t, 2, 30) })
	time.Sleep(50 * time.Millisecond)
	srv.Kill()
	srv.Start() // empty: nothing is persisted
	wg.Wait()
	in.writers(t, 1, 5) // after the restart, through the new stream
	h := in.agree(t, 0, 15*time.Second)
	n, err := rdb.XLen(context.Background(), "{tp}:log:"+in.feeds[0].Epoch()).Result()
	if err != nil || n == 0 {
		t.Fatalf("stream after the restart: %d entries, %v", n, err)
	}
	t.Logf("head %d; the restarted stream holds %d entries; stats A %+v", h, n, in.feeds[0].Stats())
}

// A Redis outage while writers commit: mutations go on, every entry is
// delivered once, in order (from the database meanwhile), Ready reports
// Redis down during the outage and up after, and no goroutine is left
// behind.
func TestRedisOutage(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := srv.Client(t)
	opts := redisOpts("tp")
	// A follower also reads the database after each Block without news; at
	// production's Block the relay wins that race even on a loaded machine,
	// so entries after the outage are seen to come through the stream.
	opts.Block = feed.DefaultBlock
	in := newInstances(t, 2, rdb, opts)
	in.writers(t, 2, 5)
	in.agree(t, 0, 10*time.Second)
	before := runtime.NumGoroutine()

	srv.Kill()
	ctx := context.Background()
	for i, f := range in.feeds {
		if err := f.Ready(ctx); err == nil {
			t.Errorf("instance %d: Ready during the outage: nil, want Redis down", i)
		} else {
			t.Logf("instance %d: Ready during the outage: %v", i, err)
		}
	}
	in.writers(t, 2, 10) // commits never wait for Redis
	h := in.agree(t, 0, 10*time.Second)
	for i, f := range in.feeds {
		if st := f.Stats(); st.RedisUp {
			t.Errorf("instance %d: stats say Redis up during the outage", i)
		}
	}
	// Delivered during the outage; a live event reaches its own instance.
	live := &realtime.Event{Type: "USER_ONLINE", Rooms: []string{"team:t"}, Data: []byte(`{}`)}
	if err := in.feeds[0].PublishLive(ctx, live); err != nil {
		t.Errorf("PublishLive during the outage: %v", err)
	}
	if got := in.recs[0].live(); len(got) != 1 || got[0] != live {
		t.Errorf("live event during the outage: delivered %v locally", got)
	}

	srv.Start()
	in.writers(t, 2, 10)
	in.agree(t, 0, 15*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for i, f := range in.feeds {
		for f.Ready(ctx) != nil || !f.Stats().RedisUp || f.Stats().FromStream == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("instance %d: not back on Redis: Ready %v, stats %+v", i, f.Ready(ctx), f.Stats())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Back on the stream: new entries come from it. A follower may also
	// find an entry in the database first (its poll, a nudge), so a few
	// rounds are given for one to come through the stream.
	fromStream := in.feeds[1].Stats().FromStream
	for round := 0; ; round++ {
		in.writers(t, 1, 5)
		in.agree(t, 0, 10*time.Second)
		if st := in.feeds[1].Stats(); st.FromStream > fromStream {
			break
		} else if round == 4 {
			t.Errorf("after the outage, 5 rounds of writes and nothing came from the stream: %+v", st)
			break
		}
	}
	for {
		after := runtime.NumGoroutine()
		if after <= before+2 {
			t.Logf("goroutines: %d before the outage, %d after (head %d)", before, after, h)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before the outage, %d after", before, after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A follower whose next entries are missing from the stream (deleted here,
// then restarted by a relay from the last StreamMax entries) fills them
// from the database, once, in order.
func TestRedisStreamHoleFilledFromDatabase(t *testing.T) {
	rdb, prefix := redistest.New(t)
	opts := redisOpts(prefix)
	opts.StreamMax = 5
	in := newInstances(t, 2, rdb, opts)
	slow := in.recs[1]
	blocked, release := slow.stall()
	t.Cleanup(release)
	commit(t, in.stores[0], "first", 1)
	in.feeds[0].Committed()
	<-blocked // B is delivering seq 1
	for range 20 {
		commit(t, in.stores[0], "a", 1)
		in.feeds[0].Committed()
	}
	in.recs[0].waitSeq(t, 21, 5*time.Second)
	key := prefix + "log:" + in.feeds[0].Epoch()
	if err := rdb.Del(context.Background(), key).Err(); err != nil {
		t.Fatal(err)
	}
	commit(t, in.stores[0], "b", 2)
	in.feeds[0].Committed()
	in.recs[0].waitSeq(t, 23, 5*time.Second)
	if first, err := rdb.XRangeN(context.Background(), key, "-", "+", 1).Result(); err != nil || len(first) != 1 || first[0].ID != "0-19" {
		t.Fatalf("the restarted stream starts at %v (%v), want 0-19 (head 23 - StreamMax 5 + 1)", first, err)
	}
	release()
	in.agree(t, 0, 10*time.Second)
	if st := in.feeds[1].Stats(); st.GapFills == 0 || st.Lost != 0 {
		t.Errorf("B's stats %+v: want a gap filled, nothing lost", st)
	}
}

// Live events reach every instance once: the publisher's own event at
// once, the others' as decoded copies stamped with their own position.
func TestRedisPublishLiveReachesEveryInstance(t *testing.T) {
	rdb, prefix := redistest.New(t)
	in := newInstances(t, 2, rdb, redisOpts(prefix))
	commit(t, in.stores[0], "a", 2)
	in.feeds[0].Committed()
	in.agree(t, 0, 5*time.Second)
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	for i, f := range in.feeds {
		ev := &realtime.Event{Type: "USER_ACTIVITY", Rooms: []string{"team:t", "user:u"},
			Data: []byte(fmt.Sprintf(`{"from": %d}`, i)), Time: at}
		if err := f.PublishLive(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for i, r := range in.recs {
		for len(r.live()) < 2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		got := map[string]int{}
		for _, ev := range r.live() {
			got[render(ev)]++
		}
		cursor := realtime.Position{Epoch: in.feeds[i].Epoch(), Seq: 2}.Cursor()
		for from := range 2 {
			want := fmt.Sprintf("0 %s %s USER_ACTIVITY [team:t,user:u] {\"from\": %d} ctl= eph=true at=2030-01-02T03:04:05.000000006Z",
				in.feeds[i].Epoch(), cursor, from)
			if got[want] != 1 {
				t.Errorf("instance %d: live events %v, want once %s", i, got, want)
			}
		}
		if len(r.live()) != 2 {
			t.Errorf("instance %d: %d live events, want 2", i, len(r.live()))
		}
	}
	if st := in.feeds[1].Stats(); st.LiveSent != 1 || st.LiveReceived != 1 {
		t.Errorf("B's live stats: %+v", st)
	}
}

// A 3-master Redis Cluster: the stream, the script and PUB/SUB work on it,
// and two instances deliver identically.
func TestRedisClusterTwoInstances(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	rdb := c.Client(t)
	in := newInstances(t, 2, rdb, redisOpts("taskpulse"))
	in.writers(t, 3, 15)
	h := in.agree(t, 0, 10*time.Second)
	for i, f := range in.feeds {
		if st := f.Stats(); st.FromStream == 0 || !st.RedisUp {
			t.Errorf("instance %d on the Cluster: %+v", i, st)
		}
	}
	ev := &realtime.Event{Type: "USER_ONLINE", Rooms: []string{"team:t"}, Data: []byte(`{}`)}
	if err := in.feeds[0].PublishLive(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(in.recs[1].live()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a live event did not cross the Cluster")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("Cluster: head %d delivered identically by both instances", h)
}
