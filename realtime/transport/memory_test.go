package transport

import (
	"net"
	"runtime"
	"testing"
	"time"
)

// TestMemoryPerConnection opens 2,000 real, initialized sockets with one
// subscription each and reports what each costs the server: the growth of
// heap in use plus stacks in use, per connection. The clients are bare TCP
// sockets (no goroutine, no buffers); their share is measured with plain
// TCP pairs and taken out. Without the race detector the figure must stay
// within the 12 KB per connection budget, and the stacks within 2.5 KiB
// per connection: the reader's 2 KiB (see wsConn.run) and nothing else.
func TestMemoryPerConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 sockets")
	}
	const n = 2000
	h := newHarness(t, nil)
	addr := h.srv.Listener.Addr().String()
	sub := `{"id":"s","type":"subscribe","payload":{"query":"` + systemQuery + `"}}`

	before, stackBefore := inUse()
	conns := make([]*rawConn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for range n {
		c := dialRaw(t, addr, 0)
		c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:alice"}}`)
		c.writeText(t, sub)
		conns = append(conns, c)
	}
	eventually(t, "all subscribed", func() bool { return h.ws.Stats().Subscriptions == n })
	after, stackAfter := inUse()
	total := float64(after-before) / n
	stack := float64(stackAfter-stackBefore) / n

	client := tcpPairCost(t, n) / 2
	server := total - client
	t.Logf("per connection: %.0f B in total, %.0f B for a bare client socket, %.0f B (%.1f KiB) on the server, of which %.0f B stack (race detector: %v)",
		total, client, server, server/1024, stack, raceEnabled)
	if !raceEnabled && server > 12*1024 {
		t.Errorf("a connection costs the server %.0f B, over the 12 KB budget", server)
	}
	if !raceEnabled && stack > 2.5*1024 {
		t.Errorf("a connection holds %.0f B of goroutine stack, want the reader's 2 KiB", stack)
	}

	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	eventually(t, "all torn down", func() bool {
		st := h.ws.Stats()
		return st.Connections == 0 && st.Subscriptions == 0 && st.Shapes == 0 && h.reg.Len() == 0
	})
}

// tcpPairCost is the memory of n connected TCP socket pairs (both ends),
// per pair.
func tcpPairCost(t *testing.T, n int) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	before, _ := inUse()
	var a, b []net.Conn
	defer func() {
		for _, c := range append(a, b...) {
			_ = c.Close()
		}
	}()
	for range n {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		a, b = append(a, c), append(b, s)
	}
	after, _ := inUse()
	return float64(after-before) / float64(n)
}

// inUse is heap in use plus goroutine stacks in use, and the stacks
// alone, after a collection.
func inUse() (total, stacks int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse), int64(ms.StackInuse)
}
