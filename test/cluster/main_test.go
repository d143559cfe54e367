// Package cluster holds taskpulse's multi-process tests: several real
// server processes (internal/proctest) sharing one PostgreSQL database and
// one Redis, as in production behind a load balancer, each test with a
// database and key prefix of its own so the tests run in parallel. They
// assert what clients see: a change made through one instance reaches
// subscribers on every instance, in the database's commit order, exactly
// once, across crashes, Redis restarts and outages.
package cluster

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/internal/proctest"
)

func TestMain(m *testing.M) {
	code := proctest.Main(m)
	// Every client a test opened is closed by then: sockets, readers.
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}
