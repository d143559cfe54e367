package feed_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/feed"
	"github.com/taskpulse/taskpulse/internal/redistest"
	"github.com/taskpulse/taskpulse/realtime"
)

// arrivals records when each seq reached a Deliver.
type arrivals struct {
	mu sync.Mutex
	at map[uint64]time.Time
	c  chan uint64
}

func newArrivals() *arrivals {
	return &arrivals{at: map[uint64]time.Time{}, c: make(chan uint64, 1<<16)}
}

func (a *arrivals) deliver(ev *realtime.Event) {
	now := time.Now()
	a.mu.Lock()
	a.at[ev.Seq] = now
	a.mu.Unlock()
	select {
	case a.c <- ev.Seq:
	default:
	}
}

func (a *arrivals) wait(b *testing.B, seq uint64) time.Time {
	timeout := time.After(10 * time.Second)
	for {
		a.mu.Lock()
		t, ok := a.at[seq]
		a.mu.Unlock()
		if ok {
			return t
		}
		select {
		case <-a.c:
		case <-timeout:
			b.Fatalf("seq %d not delivered", seq)
		}
	}
}

func startBench(b *testing.B, opts feed.Options) (*feed.Feed, *arrivals) {
	a := newArrivals()
	opts.Deliver = a.deliver
	f, err := feed.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	return f, a
}

func reportPercentiles(b *testing.B, name string, ds []time.Duration) {
	slices.Sort(ds)
	p := func(q float64) float64 { return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.50), name+"-p50-ms")
	b.ReportMetric(p(0.99), name+"-p99-ms")
}

// BenchmarkDeliveryLatency is the time from a commit on instance A (Update
// returned, Committed called) to Deliver on instance B, over PostgreSQL and
// Redis, one commit at a time; beside it the same instance's Deliver
// (a-ms) and, for the single-instance figure, direct mode without Redis
// (direct-ms).
func BenchmarkDeliveryLatency(b *testing.B) {
	rdb, prefix := redistest.New(b)
	url, sa := newPG(b)
	sb := openPG(b, url)
	opts := feed.Options{Redis: rdb, Prefix: prefix}
	opts.Log = sa
	fa, aa := startBench(b, opts)
	opts.Log = sb
	_, ab := startBench(b, opts)

	_, sd := newPG(b)
	fd, ad := startBench(b, feed.Options{Log: sd})

	var toB, toA, direct []time.Duration
	for b.Loop() {
		seq := commit(b, sa, "a", 1)[0]
		committed := time.Now()
		fa.Committed()
		toB = append(toB, ab.wait(b, uint64(seq)).Sub(committed))
		toA = append(toA, aa.wait(b, uint64(seq)).Sub(committed))

		seq = commit(b, sd, "d", 1)[0]
		committed = time.Now()
		fd.Committed()
		direct = append(direct, ad.wait(b, uint64(seq)).Sub(committed))
	}
	reportPercentiles(b, "b", toB)
	reportPercentiles(b, "a", toA)
	reportPercentiles(b, "direct", direct)
}

// BenchmarkRelayThroughput is how fast one relay moves a backlog of the
// database log into an empty stream (entries/s): the database holds
// 20,000 entries, a feed starts on a new stream with StreamMax 20,000.
func BenchmarkRelayThroughput(b *testing.B) {
	const n = 20000
	rdb := redistest.Client(b)
	_, s := newPG(b)
	for range n / 500 {
		commit(b, s, "backlog", 500)
	}
	var total time.Duration
	for b.Loop() {
		prefix := redistest.Prefix(b, rdb)
		began := time.Now()
		f, _ := startBench(b, feed.Options{Log: s, Redis: rdb, Prefix: prefix, StreamMax: n, Poll: time.Hour, TrimEvery: -1})
		deadline := time.Now().Add(time.Minute)
		for f.Stats().Relayed < n {
			if time.Now().After(deadline) {
				b.Fatalf("relayed %d of %d in a minute", f.Stats().Relayed, n)
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(began)
		_ = f.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "entries/s")
}

// BenchmarkFollowThroughput is how fast instance B delivers a burst that
// writers on A commit (units of 10 entries from 4 goroutines): end to end,
// commit included (entries/s).
func BenchmarkFollowThroughput(b *testing.B) {
	rdb, prefix := redistest.New(b)
	url, sa := newPG(b)
	sb := openPG(b, url)
	fa, _ := startBench(b, feed.Options{Log: sa, Redis: rdb, Prefix: prefix})
	_, ab := startBench(b, feed.Options{Log: sb, Redis: rdb, Prefix: prefix})
	const units, per = 400, 10
	var total time.Duration
	for b.Loop() {
		began := time.Now()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for range units / 4 {
					commit(b, sa, fmt.Sprint("w", w), per)
					fa.Committed()
				}
			})
		}
		wg.Wait()
		h, err := sa.LogHead(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		ab.wait(b, uint64(h))
		total += time.Since(began)
	}
	b.ReportMetric(float64(units*per)*float64(b.N)/total.Seconds(), "entries/s")
}
