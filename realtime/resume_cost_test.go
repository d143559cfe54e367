package realtime

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bigEventBytes is about the largest event a client can make: a task with
// a 10,000-character description (up to 40 KB of UTF-8) and its project's
// member list.
const bigEventBytes = 48 << 10

// freshReader reads l as a database would: every read allocates new
// copies of the entries' data, which the replay holds until it lets the
// page go.
func freshReader(l *memLog) LogReader {
	return func(ctx context.Context, after uint64, limit int) ([]*Event, error) {
		page, err := l.read(ctx, after, limit)
		out := make([]*Event, len(page))
		for i, e := range page {
			c := &Event{Type: e.Type, Rooms: e.Rooms, Seq: e.Seq, Epoch: e.Epoch, Cursor: e.Cursor}
			c.Data = make([]byte, bigEventBytes)
			out[i] = c
		}
		return out, err
	}
}

// slowSink takes the history at a client's pace and keeps nothing.
type slowSink struct{ n atomic.Int64 }

func (s *slowSink) Deliver(p *Payload) {
	if _, err := p.Bytes(); err != nil {
		panic(err)
	}
	s.n.Add(1)
}
func (s *slowSink) End(error) {}
func (s *slowSink) DeliverWait(ctx context.Context, p *Payload) error {
	if s.n.Load()%64 == 0 {
		time.Sleep(time.Millisecond)
	}
	s.Deliver(p)
	return nil
}

// The worst a client can make replays cost: many resumes at once, each
// from the oldest cursor over a history of the largest events. The heap
// they hold stays near MaxReplays × PageSize events, whatever the number of
// resumes or the length of the history.
func TestReplayMemoryIsBoundedByPages(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap")
	}
	const history, resumes = 2000, 40
	_, r := newResumer(t, ResumerOptions{})
	log := &memLog{}
	log.fill(history, p1)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	})
	sinks := make([]*slowSink, resumes)
	began := time.Now()
	for i := range sinks {
		sinks[i] = &slowSink{}
		mustSubscribe(t, r, SubscribeOptions{After: history, Sink: sinks[i]}, &Replay{From: 0, Read: freshReader(log)})
	}
	r.Wait()
	close(stop)
	sampler.Wait()
	for i, s := range sinks {
		if got := s.n.Load(); got != history {
			t.Fatalf("resume %d got %d events, want %d", i, got, history)
		}
	}
	held := float64(peak.Load()-min(peak.Load(), base.HeapInuse)) / (1 << 20)
	// Each running replay holds one page, and the collector lets garbage
	// pages linger (GOGC 100, later under load): 4× that. With 1,000-entry
	// pages (the limit before) the peak was 810 MiB.
	bound := float64(DefaultMaxReplays*DefaultPageSize*bigEventBytes) / (1 << 20) * 4
	t.Logf("%d resumes × %d events of %d KB: heap peak +%.1f MiB (bound %.1f MiB) in %v",
		resumes, history, bigEventBytes>>10, held, bound, time.Since(began))
	if held > bound {
		t.Errorf("replays held %.1f MiB at their peak, want at most %.1f MiB", held, bound)
	}
}
