// cluster.go: a Redis Cluster of redis-server processes on loopback, made
// by the test that needs it.

package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// slots is the number of hash slots of a Redis Cluster.
const slots = 16384

// Cluster is a Redis Cluster of masters only (no replicas), each a Server
// with cluster mode on, the slots split evenly among them. It is killed
// when the test ends.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts masters redis-server processes (3 is the smallest
// cluster redis-cli accepts, and what issue 7 tests), joins them and
// assigns the slots, and returns once every node sees the whole cluster
// healthy. Without the binary the test is skipped, or fails under CI=true.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 1 {
		t.Fatalf("redistest: a cluster needs a master, got %d", masters)
	}
	c := &Cluster{}
	for range masters {
		s := startServer(t, true,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "yes")
		if s == nil {
			return nil // skipped
		}
		c.Nodes = append(c.Nodes, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.form(ctx); err != nil {
		t.Fatalf("redistest: forming a cluster of %d: %v", masters, err)
	}
	return c
}

// Addrs are the nodes' host:port, in start order.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr
	}
	return out
}

// Client returns a cluster client seeded with every node, closed when
// the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// form assigns each node an even share of the slots, introduces the
// others to the first (gossip spreads the rest), and waits until every
// node reports the cluster ok with all nodes known and all slots served.
func (c *Cluster) form(ctx context.Context) error {
	n := len(c.Nodes)
	clients := make([]*redis.Client, n)
	for i, s := range c.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr})
		defer clients[i].Close()
	}
	for i, rdb := range clients {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if err := rdb.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			return fmt.Errorf("node %s: ADDSLOTSRANGE %d %d: %w", c.Nodes[i].Addr, lo, hi, err)
		}
	}
	for _, s := range c.Nodes[1:] {
		host, port, _ := strings.Cut(s.Addr, ":")
		if err := clients[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			return fmt.Errorf("CLUSTER MEET %s: %w", s.Addr, err)
		}
	}
	want := []string{"cluster_state:ok", fmt.Sprintf("cluster_slots_ok:%d", slots), fmt.Sprintf("cluster_known_nodes:%d", n)}
	for {
		pending := ""
		for i, rdb := range clients {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return fmt.Errorf("node %s: CLUSTER INFO: %w", c.Nodes[i].Addr, err)
			}
			for _, w := range want {
				if !strings.Contains(info, w+"\r\n") {
					pending = fmt.Sprintf("node %s lacks %s", c.Nodes[i].Addr, w)
				}
			}
			if pending == "" {
				// Every node must also know where every slot is served.
				ranges, err := rdb.ClusterSlots(ctx).Result()
				if err != nil {
					return fmt.Errorf("node %s: CLUSTER SLOTS: %w", c.Nodes[i].Addr, err)
				}
				if len(ranges) != n {
					pending = fmt.Sprintf("node %s sees %d slot ranges", c.Nodes[i].Addr, len(ranges))
				}
			}
			if pending != "" {
				break
			}
		}
		if pending == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy in time: %s", pending)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
