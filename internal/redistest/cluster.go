package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// Cluster is a Redis Cluster of one test's own: masters only, each a
// Server on loopback ports, the slots split evenly between them. It is
// killed when the test ends.
type Cluster struct {
	Masters []*Server
}

// StartCluster starts n (at least 3, as Redis requires of a real cluster)
// redis-server processes in cluster mode, joins them, assigns every slot
// and waits until each node reports the cluster ok.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a Redis Cluster has at least 3 masters, asked for %d", n)
	}
	c := &Cluster{}
	for range n {
		bus, err := freePort()
		if err != nil {
			t.Fatalf("redistest: no free port: %v", err)
		}
		s := StartServer(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "5000")
		if s == nil {
			return nil
		}
		c.Masters = append(c.Masters, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes := make([]*redis.Client, n)
	for i, s := range c.Masters {
		nodes[i] = s.Client(t)
	}
	// Each node's bus port is what it was started with; MEET names it.
	for i, s := range c.Masters {
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		if err := nodes[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("redistest: cluster addslots on %s: %v", s.Addr, err)
		}
		if i > 0 {
			bus, err := nodes[i].ConfigGet(ctx, "cluster-port").Result()
			if err != nil {
				t.Fatalf("redistest: cluster-port of %s: %v", s.Addr, err)
			}
			if err := nodes[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", s.Port, bus["cluster-port"]).Err(); err != nil {
				t.Fatalf("redistest: cluster meet %s: %v", s.Addr, err)
			}
		}
	}
	for i, node := range nodes {
		if err := waitClusterOK(ctx, node, n); err != nil {
			t.Fatalf("redistest: cluster node %s: %v", c.Masters[i].Addr, err)
		}
	}
	return c
}

// Client returns a Cluster client of c, closed when t ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	addrs := make([]string, len(c.Masters))
	for i, s := range c.Masters {
		addrs[i] = s.Addr
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// waitClusterOK waits until node sees the cluster ok with n masters.
func waitClusterOK(ctx context.Context, node *redis.Client, n int) error {
	var last string
	for {
		info, err := node.ClusterInfo(ctx).Result()
		if err == nil {
			if strings.Contains(info, "cluster_state:ok") && strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) &&
				strings.Contains(info, fmt.Sprintf("cluster_size:%d", n)) {
				return nil
			}
			last = info
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ok in time: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
