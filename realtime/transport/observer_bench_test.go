package transport

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskpulse/taskpulse/realtime"
)

// histObserver times deliveries into a Prometheus histogram, as the
// server's Observer does; the rest is a no-op.
type histObserver struct {
	nopObserver
	h prometheus.Observer
}

func (o histObserver) Delivered(_ string, commit time.Time) {
	o.h.Observe(time.Since(commit).Seconds())
}

func newHistObserver() histObserver {
	return histObserver{h: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: prometheus.DefBuckets})}
}

// BenchmarkFanoutObserved is BenchmarkFanout with deliveries timed for
// the latency histogram: compare the two for the hot path's cost.
//
//	go test -run '^$' -bench 'Fanout(Observed)?$' ./realtime/transport/
func BenchmarkFanoutObserved(b *testing.B) { benchFanout(b, 1, newHistObserver()) }

// BenchmarkDeliverySample is what timing costs a writer per batch of one
// event: nothing observed (no Observer), sampled (the server's: one batch
// in sampleEvery), and — for comparison — every batch timed.
func BenchmarkDeliverySample(b *testing.B) {
	ev := &realtime.Event{Time: time.Now()}
	fs := []frame{{kind: frameNext, payload: &realtime.Payload{Event: ev}}}
	run := func(b *testing.B, obs Observer, every bool) {
		s := &session{t: &core{obs: nopObserver{}}}
		if obs != nil {
			s.t.obs, s.t.timed = obs, true
		}
		b.ReportAllocs()
		for b.Loop() {
			c := s.sampleCommit(fs)
			if every {
				c = ev.Time.UnixNano()
			}
			s.delivered(c)
		}
	}
	b.Run("unobserved", func(b *testing.B) { run(b, nil, false) })
	b.Run("sampled", func(b *testing.B) { run(b, newHistObserver(), false) })
	b.Run("every-batch", func(b *testing.B) { run(b, newHistObserver(), true) })
}
