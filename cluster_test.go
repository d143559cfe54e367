package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/internal/testsvc"
	"github.com/taskpulse/taskpulse/realtime"
)

// Instances sharing one PostgreSQL database and one Redis, in this process
// (the cross-process tests start the binary): what REDIS_URL shares —
// presence, the connection directory, the rate limit — is shared.

// redisPrefix is a REDIS_PREFIX of the test's own on the Redis rdb
// reaches; its keys (the feed's, "{prefix}:…", and the rate limiter's,
// under "rate:", too) are deleted
// when the test ends, after the servers (register it before them).
func redisPrefix(t *testing.T, rdb redis.UniversalClient) string {
	t.Helper()
	p := "tptest-" + testsvc.RandomHex(6)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The feed's keys carry the prefix as their hash tag: "{p}:".
		for _, q := range []string{p + ":", "{" + p + "}:", redistest.RateLimitPrefix + p + ":"} {
			if err := redistest.DeletePrefix(ctx, rdb, q); err != nil {
				t.Errorf("delete keys %s*: %v", q, err)
			}
		}
	})
	return p
}

// instances starts n servers on one fresh PostgreSQL database and the
// Redis at redisURL (a client to it: rdb) under a prefix of the test's.
func instances(t *testing.T, n int, redisURL string, rdb redis.UniversalClient, extra map[string]string) []*env {
	t.Helper()
	db := pgtest.NewDatabase(t)
	prefix := redisPrefix(t, rdb)
	out := make([]*env, n)
	for i := range out {
		vars := map[string]string{"DATABASE_URL": db, "REDIS_URL": redisURL, "REDIS_PREFIX": prefix}
		for k, v := range extra {
			vars[k] = v
		}
		out[i] = start(t, vars)
	}
	return out
}

// sharedState checks, on instances a and b, what issue 7 asks of the
// state REDIS_URL shares: presence set on A is read on B,
// connections(userId) on either lists both instances' connections, and
// one user's rate limit spans both.
func sharedState(t *testing.T, a, b *env) {
	ctx := context.Background()
	a.users("ann", "bob")
	a.createTeam("ann", "T", "bob") // bob may see ann's presence

	online := func(e *env) bool {
		var out struct{ User struct{ Online bool } }
		e.do("bob", `{ user(id: "ann") { online } }`, nil, &out)
		return out.User.Online
	}
	if online(b) {
		t.Fatal("ann online before connecting")
	}
	onA := a.tab("ann", "")
	eventually(t, "ann, connected to A, online as B reads it", func() bool { return online(b) })

	onB := b.tab("ann", "")
	var mine realtime.ConnInfo
	eventually(t, "A and B each list ann's two connections", func() bool {
		for _, e := range []*env{a, b} {
			cs, err := e.m.connections(ctx, "ann")
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 2 || cs[0].ID == cs[1].ID {
				return false
			}
		}
		return true
	})
	local := a.m.registry.ByUser("ann")
	if len(local) != 1 {
		t.Fatalf("A's registry holds %d of ann's connections, want 1", len(local))
	}
	mine = local[0]
	cs, _ := b.m.connections(ctx, "ann")
	var seen bool
	for _, c := range cs {
		if c.ID == mine.ID {
			seen = true
			if c.UserID != "ann" || !c.ConnectedAt.Equal(mine.ConnectedAt) || c.Transport != mine.Transport ||
				c.IP != mine.IP || c.UserAgent != mine.UserAgent {
				t.Fatalf("A's connection as B lists it: %+v\nas A holds it: %+v", c, mine)
			}
		}
	}
	if !seen {
		t.Fatalf("B lists %+v, without A's %s", cs, mine.ID)
	}

	// A's tab closes: B lists only its own; B's closes: ann goes offline
	// after the grace, as A reads it.
	onA.Close()
	eventually(t, "B lists ann's one connection left", func() bool {
		cs, err := b.m.connections(ctx, "ann")
		return err == nil && len(cs) == 1 && cs[0].ID != mine.ID
	})
	if !online(a) {
		t.Fatal("ann offline on A while connected to B")
	}
	onB.Close()
	eventually(t, "ann offline after her last tab closed, as A reads it", func() bool { return !online(a) })

	// RATE_LIMIT_PER_MIN=4: four of cyd's mutations, alternating
	// instances, then the fifth is refused on either.
	a.users("cyd")
	tok := a.token("cyd")
	const mutation = `mutation { createTeam(input: {name: "x"}) { id } }`
	for i := range 4 {
		e := []*env{a, b}[i%2]
		if _, ref := e.httpOp(tok, mutation, nil); ref != nil {
			t.Fatalf("mutation %d refused: %+v", i+1, *ref)
		}
	}
	for i, e := range []*env{a, b} {
		_, ref := e.httpOp(tok, mutation, nil)
		if ref == nil || ref.code != "RATE_LIMITED" {
			t.Fatalf("fifth mutation on instance %d: %+v, want RATE_LIMITED (the limit is the user's, on every instance)", i, ref)
		}
	}
}

// clusterVars is the configuration of the shared-state tests: presence on
// short timers, and a rate limit small enough to reach.
func clusterVars() map[string]string {
	return presenceConfig(map[string]string{"RATE_LIMIT_PER_MIN": "4"})
}

func TestClusterSharedStateOnOneRedis(t *testing.T) {
	rdb := redistest.Client(t)
	es := instances(t, 2, redistest.URL(), rdb, clusterVars())
	sharedState(t, es[0], es[1])
}

// The same on a 3-master Redis Cluster: presence's multi-key scripts and
// transactions work because its keys share a hash tag.
func TestClusterSharedStateOnRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	rdb := c.Client(t)
	url := "redis+cluster://" + strings.Join(c.Addrs(), ",")
	es := instances(t, 2, url, rdb, clusterVars())
	if _, ok := es[0].m.redis.(*redis.ClusterClient); !ok {
		t.Fatalf("REDIS_URL %s made a %T, want a Cluster client", url, es[0].m.redis)
	}
	sharedState(t, es[0], es[1])

	// The keys the instances wrote are spread over slots; presence's share
	// one (its hash tag).
	ctx := context.Background()
	prefix := es[0].m.redisPrefix
	slots := map[int64]bool{}
	for _, p := range []string{prefix, redistest.RateLimitPrefix + prefix} {
		keys, err := redistest.Keys(ctx, rdb, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			s, err := rdb.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[s] = true
			if strings.Contains(k, "{presence}") {
				want, _ := rdb.ClusterKeySlot(ctx, "{presence}").Result()
				if s != want {
					t.Errorf("presence key %s in slot %d, want the {presence} slot %d", k, s, want)
				}
			}
		}
	}
	if len(slots) < 2 {
		t.Fatalf("the instances' keys use %d slot(s), want them spread", len(slots))
	}
}

// The same through Sentinel: the instances ask it for the master.
func TestClusterSharedStateThroughSentinel(t *testing.T) {
	master := redistest.StartServer(t)
	sentinel := redistest.StartSentinel(t, master, "tpmaster")
	url := "redis+sentinel://" + sentinel.Addr + "/tpmaster/0"
	es := instances(t, 2, url, master.Client(t), clusterVars())
	sharedState(t, es[0], es[1])
	if n, err := master.Client(t).DBSize(context.Background()).Result(); err != nil || n == 0 {
		t.Fatalf("the master Sentinel names holds %d keys (%v): the instances wrote elsewhere", n, err)
	}
}

// An instance shut down (SIGTERM) records its connections' closes before
// it exits: the others list them gone at once, not PRESENCE_INSTANCE_TTL
// later.
func TestClusterShutdownRecordsCloses(t *testing.T) {
	rdb := redistest.Client(t)
	es := instances(t, 1, redistest.URL(), rdb, clusterVars())
	b := es[0]
	cfg := b.m.cfg
	cfg.Addr = "127.0.0.1:0"
	m, err := Open(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a := &env{t: t, m: m}
	b.users("ann")
	a.tab("ann", "")
	a.tab("ann", "graphql-ws")
	ctx := context.Background()
	eventually(t, "B lists ann's two connections on A", func() bool {
		cs, err := b.m.connections(ctx, "ann")
		return err == nil && len(cs) == 2
	})
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if cs, err := b.m.connections(ctx, "ann"); err != nil || len(cs) != 0 {
		t.Fatalf("A closed; B lists %+v (%v), want none", cs, err)
	}
}

// readyz is GET /readyz: the status and the body's first line.
func (e *env) readyz() (int, string) {
	e.t.Helper()
	res, err := http.Get(e.m.URL() + "/readyz")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

// /readyz follows Redis: 503 "broker unreachable" while it is down,
// ready again once it is back; mutations commit meanwhile.
func TestClusterReadyzFollowsRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	e := start(t, map[string]string{"REDIS_URL": srv.URL()})
	e.users("ann")
	if code, body := e.readyz(); code != http.StatusOK {
		t.Fatalf("/readyz %d %q with Redis up", code, body)
	}
	srv.Kill()
	var body string
	eventually(t, "/readyz 503 with Redis down", func() bool {
		var code int
		code, body = e.readyz()
		return code == http.StatusServiceUnavailable
	})
	if body != "broker unreachable" {
		t.Fatalf("/readyz body %q, want the reason: broker unreachable", body)
	}
	// The database still takes changes (the limiter, unanswered, lets
	// them through).
	began := time.Now()
	e.createTeam("ann", "during the outage")
	took := time.Since(began)
	t.Logf("createTeam (+ invite) with Redis down: %v", took)
	if took > 2*redisCallTimeout {
		t.Errorf("mutations took %v with Redis down, want at most one bounded Redis call's wait (%v)", took, redisCallTimeout)
	}
	srv.Start()
	eventually(t, "/readyz 200 with Redis back", func() bool { code, _ := e.readyz(); return code == http.StatusOK })
}

// An instance started while Redis is unreachable serves, not ready; one
// given credentials Redis refuses does not start, and says why without the
// password.
func TestClusterStartAgainstRedis(t *testing.T) {
	srv := redistest.StartServer(t, "--requirepass", "right-pass-123")
	srv.Kill() // unreachable
	e := start(t, map[string]string{"REDIS_URL": "redis://:right-pass-123@" + srv.Addr + "/0"})
	if code, body := e.readyz(); code != http.StatusServiceUnavailable || body != "broker unreachable" {
		t.Fatalf("/readyz %d %q with Redis unreachable since the start", code, body)
	}
	srv.Start()
	eventually(t, "ready once Redis answers", func() bool { code, _ := e.readyz(); return code == http.StatusOK })

	cfg := testConfig(t, map[string]string{"REDIS_URL": "redis://:wrong-pass-456@" + srv.Addr + "/0"})
	m, err := Open(context.Background(), cfg, testLogger(t))
	if err == nil {
		_ = m.Close(context.Background())
		t.Fatal("started with a password Redis refuses")
	}
	if msg := err.Error(); !strings.Contains(msg, "REDIS_URL") || !strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "wrong-pass") {
		t.Fatalf("start error %q: want REDIS_URL and Redis's refusal named, the password not", msg)
	}
}

// The client matches the topology REDIS_URL names.
func TestNewRedisClientTopologies(t *testing.T) {
	for _, tt := range []struct {
		url     string
		cluster bool
	}{
		{"redis://127.0.0.1:1/0", false},
		{"redis+cluster://127.0.0.1:1,127.0.0.1:2", true},
		{"redis://127.0.0.1:1?addr=127.0.0.1:2", true},
		{"redis+sentinel://127.0.0.1:1/mymaster", false}, // a failover client: a *redis.Client
	} {
		cfg := testConfig(t, map[string]string{"REDIS_URL": tt.url})
		rdb, err := newRedisClient(cfg, "test")
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		_, isCluster := rdb.(*redis.ClusterClient)
		_, isClient := rdb.(*redis.Client)
		if isCluster != tt.cluster || isClient == tt.cluster {
			t.Errorf("%s: %T", tt.url, rdb)
		}
		_ = rdb.Close()
	}
	if a, b := newInstanceID(), newInstanceID(); a == b || strings.ContainsAny(a, " {}") {
		t.Errorf("instance ids %q, %q: want unique, without spaces or braces", a, b)
	}
}
