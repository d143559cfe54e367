package realtime

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// countSink counts deliveries and signals when it has seen want of them.
type countSink struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (s *countSink) Deliver(*Payload) {
	if s.n.Add(1) == s.want {
		close(s.done)
	}
}
func (s *countSink) End(error) {}

// BenchmarkFanout measures the hub's own cost of one event reaching subs
// subscriptions that share one Encoder, through the real inbox and
// dispatch goroutine, with no-op sinks (a transport's sink only queues).
// ns/op is per event; ns/delivery divides it by the recipients.
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			h := NewHub(HubOptions{})
			defer h.Close()
			enc := &countEnc{}
			for i := 0; i < subs-1; i++ {
				h.Subscribe(SubscribeOptions{UserID: "u", Rooms: []string{p1}, Encoder: enc, Sink: nopSink{}})
			}
			last := &countSink{want: int64(b.N), done: make(chan struct{})}
			h.Subscribe(SubscribeOptions{UserID: "u", Rooms: []string{p1}, Encoder: enc, Sink: last})
			e := ev("TASK_UPDATED", p1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.Enqueue(e)
			}
			<-last.done
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(subs), "ns/delivery")
		})
	}
}

// BenchmarkFanoutMultiRoom is BenchmarkFanout for events addressed to three
// rooms that every subscription listens to: the dedupe path.
func BenchmarkFanoutMultiRoom(b *testing.B) {
	const subs = 10_000
	h := NewHub(HubOptions{})
	defer h.Close()
	enc := &countEnc{}
	rooms := []string{p1, p2, u1}
	for i := 0; i < subs-1; i++ {
		h.Subscribe(SubscribeOptions{UserID: "u", Rooms: rooms, Encoder: enc, Sink: nopSink{}})
	}
	last := &countSink{want: int64(b.N), done: make(chan struct{})}
	h.Subscribe(SubscribeOptions{UserID: "u", Rooms: rooms, Encoder: enc, Sink: last})
	e := ev("TASK_UPDATED", rooms...)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Enqueue(e)
	}
	<-last.done
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/subs, "ns/delivery")
}

// BenchmarkPublishToDeliver measures one event's latency from Publish to
// its Sink, one at a time: broker numbering, inbox, waking the dispatch
// goroutine, delivery.
func BenchmarkPublishToDeliver(b *testing.B) {
	br := NewMemoryBroker(MemoryBrokerOptions{})
	h := NewHub(HubOptions{})
	defer h.Close()
	defer br.Close()
	if err := br.Start(h.Enqueue); err != nil {
		b.Fatal(err)
	}
	got := make(chan struct{}, 1)
	h.Subscribe(SubscribeOptions{Rooms: []string{p1}, Encoder: &countEnc{}, Sink: &funcSink{deliver: func(*Payload) { got <- struct{}{} }}})
	ctx := context.Background()
	rooms := []string{p1}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := br.Publish(ctx, &Event{Type: "TASK_UPDATED", Rooms: rooms}); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
