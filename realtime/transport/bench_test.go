package transport

import (
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fan-out benchmarks compare the cost of delivering one event to n
// subscribed sockets through the whole path (hub dispatch, one encoding
// per shape, per-socket queue, shared writers, framing) with the floor:
// the same bytes written to n sockets with one write(2) each.
// Clients are bare sockets drained by one goroutine each, in all cases.
// Reported: wall ns per delivery and process CPU ns per delivery (which
// includes the identical client-side reads).
//
// BenchmarkFanout has one event in flight, as a live fan-out does: each
// event is written to every socket before the next is published, one
// write(2) per socket, like BenchmarkBareWrite. BenchmarkFanoutBurst keeps
// up to 64 events in flight: a socket's queued frames then go out
// together, several per write(2).
//
//	go test -run '^$' -bench 'Fanout|BareWrite' ./realtime/transport/

var fanouts = []int{1, 100, 1000}

func BenchmarkFanout(b *testing.B)      { benchFanout(b, 1, nil) }
func BenchmarkFanoutBurst(b *testing.B) { benchFanout(b, 64, nil) }

// benchFanout publishes b.N events to n sockets with at most inFlight
// events not yet written to every socket; obs, if set, is the transport's
// Observer.
func benchFanout(b *testing.B, inFlight int, obs Observer) {
	for _, n := range fanouts {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h := newHarness(b, func(o *Options) { o.SendQueue = 4096; o.Observer = obs })
			addr := h.srv.Listener.Addr().String()
			sub := `{"id":"s","type":"subscribe","payload":{"query":"` + systemQuery + `"}}`
			for range n {
				c := dialRaw(b, addr, 0)
				c.writeText(b, `{"type":"connection_init","payload":{"token":"ok:bench"}}`)
				c.writeText(b, sub)
				go func() { _, _ = io.Copy(io.Discard, c) }()
				b.Cleanup(func() { _ = c.Close() })
			}
			eventually(b, "subscribed", func() bool { return h.ws.Stats().Subscriptions == n })
			msg := strings.Repeat("m", 200) // a typical small event
			base := h.ws.Stats().FramesSent
			done := func() int { return int(h.ws.Stats().FramesSent-base) / n }

			cpu0 := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				h.system(b, msg)
				for i+1-done() >= inFlight { // at most inFlight-1 events left behind
					time.Sleep(20 * time.Microsecond)
				}
			}
			for done() < b.N {
				time.Sleep(20 * time.Microsecond)
			}
			b.StopTimer()
			report(b, n, cpuTime()-cpu0)
		})
	}
}

func BenchmarkBareWrite(b *testing.B) {
	for _, n := range fanouts {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			servers := make([]net.Conn, n)
			for i := range n {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				s, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				servers[i] = s
				go func() { _, _ = io.Copy(io.Discard, c) }()
				b.Cleanup(func() { _ = c.Close(); _ = s.Close() })
			}
			// The frame BenchmarkFanout writes: header + next envelope + payload.
			frame := []byte("\x81\x7e\x01\x40" + `{"id":"s","type":"next","payload":{"data":{"systemUpdates":{"type":"SYSTEM_UPDATE","cursor":"c1","message":"` + strings.Repeat("m", 200) + `"}}}}`)

			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				for _, s := range servers {
					if _, err := s.Write(frame); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			report(b, n, cpuTime()-cpu0)
		})
	}
}

func report(b *testing.B, n int, cpu time.Duration) {
	deliveries := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
