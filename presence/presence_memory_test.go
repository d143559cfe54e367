package presence_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/presence/presencetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemory(t *testing.T) {
	presencetest.Run(t, func(t *testing.T, opts presence.Options) presence.Presence {
		return presence.NewMemory(opts)
	})
}

// TestMemorySweeperRuns checks the sweeper goroutine applies timers on its
// own (real time, short durations) and stops on Close.
func TestMemorySweeperRuns(t *testing.T) {
	got := make(chan presence.Change, 4)
	m := presence.NewMemory(presence.Options{
		OfflineGrace: 30 * time.Millisecond, AwayAfter: time.Hour, ActivityInterval: time.Millisecond,
		OnChange: func(ch presence.Change) { got <- ch },
	})
	defer m.Close()
	ctx := context.Background()
	_ = m.Connect(ctx, "ann", "c1")
	_ = m.Disconnect(ctx, "ann", "c1")
	for _, want := range []presence.Kind{presence.KindOnline, presence.KindOffline} {
		select {
		case ch := <-got:
			if ch.Kind != want {
				t.Fatalf("change %v, want %v", ch.Kind, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %v change", want)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

func TestWithDefaults(t *testing.T) {
	o := presence.Options{}.WithDefaults()
	if o.OfflineGrace != 30*time.Second || o.AwayAfter != 5*time.Minute || o.ActivityInterval != time.Second {
		t.Errorf("defaults %+v", o)
	}
	if o.SweepEvery != 250*time.Millisecond {
		t.Errorf("sweep every %v, want 250ms", o.SweepEvery)
	}
	o = presence.Options{OfflineGrace: 8 * time.Millisecond, AwayAfter: time.Second, ActivityInterval: time.Second}.WithDefaults()
	if o.SweepEvery != 5*time.Millisecond {
		t.Errorf("sweep every %v, want the 5ms floor", o.SweepEvery)
	}
}

func TestRelayKeepsOrderAndStops(t *testing.T) {
	var n atomic.Int64
	release := make(chan struct{})
	seen := make(chan int, 1000)
	r := presence.NewRelay(func(ch presence.Change) {
		<-release
		seen <- ch.State.LastSeen.Nanosecond()
		n.Add(1)
	})
	for i := range 1000 {
		r.Handle(presence.Change{Kind: presence.KindActivity, State: presence.State{LastSeen: time.Unix(0, int64(i))}})
	}
	close(release)
	for i := range 1000 {
		select {
		case got := <-seen:
			if got != i {
				t.Fatalf("change %d handled as number %d", got, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d changes handled", i)
		}
	}
	r.Close()
	r.Handle(presence.Change{}) // dropped after Close
	r.Close()
	if n.Load() != 1000 || r.Len() != 0 {
		t.Errorf("handled %d, queued %d", n.Load(), r.Len())
	}
}

// BenchmarkTouch is the cost presence adds to every operation: one Touch
// of a connected, active user (the common case), among 10,000 users.
func BenchmarkTouch(b *testing.B) {
	m := presence.NewMemory(presence.Options{SweepEvery: -1})
	defer m.Close()
	ctx := context.Background()
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprint("user-", i)
		_ = m.Connect(ctx, ids[i], "c")
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		_ = m.Touch(ctx, ids[i%len(ids)])
		i++
	}
}

// BenchmarkTouchParallel is Touch from every core at once (one mutex).
func BenchmarkTouchParallel(b *testing.B) {
	m := presence.NewMemory(presence.Options{SweepEvery: -1})
	defer m.Close()
	ctx := context.Background()
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprint("user-", i)
		_ = m.Connect(ctx, ids[i], "c")
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			_ = m.Touch(ctx, ids[i%len(ids)])
			i++
		}
	})
}

// BenchmarkUpdate is one updatePresence's state change (coalesced: most
// calls emit nothing).
func BenchmarkUpdate(b *testing.B) {
	m := presence.NewMemory(presence.Options{SweepEvery: -1})
	defer m.Close()
	ctx := context.Background()
	_ = m.Connect(ctx, "ann", "c")
	pages := []string{"/a", "/b"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, _ = m.Update(ctx, "ann", presence.Update{CurrentPage: &pages[i&1]})
		i++
	}
}
