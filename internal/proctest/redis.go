package proctest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/internal/testsvc"
)

// RedisServer is a redis-server of the test's own on a loopback port, for
// what the shared server must never see: restarts, outages, a Cluster.
type RedisServer struct {
	Port int
	t    testing.TB
	dir  string
	args []string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{}
}

// RedisOptions configure StartRedis.
type RedisOptions struct {
	// Persist keeps the data across Stop/Kill and Restart (an append-only
	// file fsynced at every write); without it a restart comes back empty.
	Persist bool
	// Args are more redis-server arguments (e.g. --cluster-enabled yes).
	Args []string
}

// StartRedis starts redis-server on a free loopback port and waits until
// it answers; it is killed when the test ends. Without a redis-server
// binary the test is skipped (failed under CI=true).
func StartRedis(t testing.TB, opts RedisOptions) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testsvc.Unreachable(t, "proctest", "redis-server", "redis://127.0.0.1", "install Debian's redis-server", err)
		return nil
	}
	r := &RedisServer{t: t, dir: t.TempDir(), out: &logBuffer{limit: 64 << 10}}
	r.args = []string{"--bind", "127.0.0.1", "--dir", r.dir, "--save", "", "--protected-mode", "no"}
	if opts.Persist {
		r.args = append(r.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		r.args = append(r.args, "--appendonly", "no")
	}
	r.args = append(r.args, opts.Args...)
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("--- redis-server :%d output:\n%s", r.Port, r.out.String())
		}
	})
	// A port found free may be taken before redis-server binds it: retry.
	for attempt := 0; ; attempt++ {
		r.Port = freePort(t)
		if err := r.start(bin); err == nil {
			return r
		} else if attempt == 4 {
			t.Fatalf("proctest: redis-server: %v\n%s", err, r.out.String())
		}
	}
}

func (r *RedisServer) start(bin string) error {
	r.cmd = exec.Command(bin, append([]string{"--port", strconv.Itoa(r.Port)}, r.args...)...)
	r.cmd.Dir = r.dir
	r.cmd.Stdout = &lineWriter{dst: r.out, prefix: ""}
	r.cmd.Stderr = r.cmd.Stdout
	r.cmd.SysProcAttr = sysProcAttr()
	if err := r.cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	r.done = done
	go func() { _ = r.cmd.Wait(); close(done) }()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		switch {
		case err == nil:
			return nil
		case r.exited():
			return fmt.Errorf("exited at start on port %d", r.Port)
		case time.Now().After(deadline):
			r.kill()
			return fmt.Errorf("no answer on port %d within 10s: %v", r.Port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is host:port.
func (r *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the redis:// URL of database 0.
func (r *RedisServer) URL() string { return "redis://" + r.Addr() + "/0" }

// Client returns a client to the server, closed when the test ends.
func (r *RedisServer) Client() *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	r.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func (r *RedisServer) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Kill ends the server with SIGKILL: an outage, or a crash.
func (r *RedisServer) Kill() {
	r.t.Helper()
	if !r.kill() {
		r.t.Fatalf("proctest: redis-server :%d still running after SIGKILL", r.Port)
	}
}

func (r *RedisServer) kill() bool {
	if r.cmd == nil || r.done == nil {
		return true
	}
	if !r.exited() {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-r.done:
		return true
	case <-time.After(exitTimeout):
		return false
	}
}

// Restart starts the server again on the same port (with Persist, with
// its data; without, empty).
func (r *RedisServer) Restart() {
	r.t.Helper()
	if !r.exited() {
		r.Kill()
	}
	bin, _ := exec.LookPath("redis-server")
	var err error
	// The port was ours a moment ago; a client's TIME_WAIT does not block
	// a listener, but give a racing process a few chances.
	for attempt := 0; attempt < 5; attempt++ {
		if err = r.start(bin); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.t.Fatalf("proctest: restart redis-server on :%d: %v\n%s", r.Port, err, r.out.String())
}

// freePort is a loopback TCP port nobody listened on a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proctest: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// RedisCluster is a Redis Cluster of masters only, each a RedisServer of
// the test's own on a loopback port.
type RedisCluster struct {
	Nodes []*RedisServer
}

// StartRedisCluster starts n (at least 3) cluster-enabled servers, gives
// each an even share of the 16384 slots, joins them and waits until every
// node reports the cluster ok.
func StartRedisCluster(t testing.TB, n int) *RedisCluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("proctest: a Redis Cluster needs at least 3 masters, not %d", n)
	}
	rc := &RedisCluster{}
	for range n {
		rc.Nodes = append(rc.Nodes, StartRedis(t, RedisOptions{Args: []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
		}}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const slots = 16384
	clients := make([]*redis.Client, n)
	for i, node := range rc.Nodes {
		clients[i] = node.Client()
		first, last := i*slots/n, (i+1)*slots/n-1
		if err := clients[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", first, last).Err(); err != nil {
			t.Fatalf("proctest: CLUSTER ADDSLOTSRANGE on :%d: %v", node.Port, err)
		}
	}
	for _, node := range rc.Nodes[1:] {
		if err := clients[0].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(node.Port)).Err(); err != nil {
			t.Fatalf("proctest: CLUSTER MEET :%d: %v", node.Port, err)
		}
	}
	for {
		ok := true
		for _, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				t.Fatalf("proctest: CLUSTER INFO: %v", err)
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				ok = false
			}
		}
		if ok {
			return rc
		}
		select {
		case <-ctx.Done():
			t.Fatal("proctest: the Redis Cluster did not reach cluster_state:ok within 60s")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Addrs are the nodes' host:port.
func (rc *RedisCluster) Addrs() []string {
	var out []string
	for _, n := range rc.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// URL is the REDIS_URL naming the cluster: go-redis's cluster URL form,
// redis://first?addr=second&addr=third.
func (rc *RedisCluster) URL() string {
	addrs := rc.Addrs()
	u := "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

// Client is a cluster client of the test (closed when it ends).
func (rc *RedisCluster) Client(t testing.TB) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}
