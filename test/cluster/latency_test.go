package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/proctest"
)

// ProbeEnv, set to a number of mutations (e.g. 1000), runs
// TestDeliveryLatency: a measurement, not a check, so it is off by
// default. Run it alone: go test -count=1 -v -run TestDeliveryLatency ./test/cluster/
const ProbeEnv = "TASKPULSE_LATENCY_PROBE"

// TestDeliveryLatency measures how long a change takes from its commit
// (the mutation's response) to a subscriber's socket: on one instance of
// the embedded default, on one instance with PostgreSQL and Redis, and
// across instances (commit on A, socket on B). One subscriber, sequential
// createTask mutations over HTTP, after a warm-up.
func TestDeliveryLatency(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(ProbeEnv))
	if n <= 0 {
		t.Skip(ProbeEnv + " is not set to a number of mutations: the latency probe is off")
	}
	const warmup = 50
	setups := []struct {
		name string
		opts func(t *testing.T) proctest.Options
		two  bool
	}{
		{"single instance, embedded (SQLite, in-process hub)", func(t *testing.T) proctest.Options {
			return proctest.Options{NoRedis: true, DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "taskpulse.db")}
		}, false},
		{"single instance, PostgreSQL + Redis", func(*testing.T) proctest.Options { return proctest.Options{} }, false},
		{"across instances, PostgreSQL + Redis (commit on A, socket on B)", func(*testing.T) proctest.Options { return proctest.Options{} }, true},
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			c := proctest.New(t, s.opts(t))
			c.Users("alice")
			writer := c.Start("A", nil)
			reader := writer
			if s.two {
				reader = c.Start("B", nil)
			}
			sub := reader.Subscribe("alice", taskQ, nil)
			// Arrival times are taken by a reader of their own, so a
			// frame that comes before the mutation's response is timed
			// when it comes.
			type arrival struct {
				title string
				at    time.Time
			}
			arrivals := make(chan arrival, n+warmup)
			go func() {
				for {
					r, err := sub.Wait(time.Minute)
					if err != nil {
						close(arrivals)
						return
					}
					at := time.Now()
					var root map[string]event
					_ = json.Unmarshal(r.Data, &root) // a bad frame shows as a wrong title
					arrivals <- arrival{root["taskUpdates"].title(), at}
				}
			}()
			defer sub.Conn.Close()
			var fromResp, fromReq []time.Duration
			for i := range n + warmup {
				title := "probe " + strconv.Itoa(i)
				t0 := time.Now()
				if err := tryCreateTask(writer, "alice", title, ""); err != nil {
					t.Fatal(err)
				}
				t1 := time.Now()
				a, ok := <-arrivals
				if !ok || a.title != title {
					t.Fatalf("waiting for %q: got %q (open %v)", title, a.title, ok)
				}
				if i >= warmup {
					fromResp = append(fromResp, max(0, a.at.Sub(t1)))
					fromReq = append(fromReq, a.at.Sub(t0))
				}
			}
			t.Logf("%s, %d mutations:\n  commit (response) → socket: %s\n  request → socket:           %s", s.name, n, summary(fromResp), summary(fromReq))
		})
	}
}

func summary(d []time.Duration) string {
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return fmt.Sprintf("p50 %v  p90 %v  p99 %v  max %v", q(0.50).Round(time.Microsecond), q(0.90).Round(time.Microsecond), q(0.99).Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
}
