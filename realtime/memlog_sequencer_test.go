package realtime

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func TestMemoryBrokerNumbersEvents(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerOptions{})
	defer b.Close()
	var got []*Event
	if err := b.Start(func(ev *Event) { got = append(got, ev) }); err != nil {
		t.Fatal(err)
	}
	if last := b.Last(); last.Seq != 0 || last.Epoch != b.Epoch() {
		t.Fatalf("Last before any publish = %+v", last)
	}
	for i := 0; i < 5; i++ {
		if err := b.Publish(context.Background(), ev("E", "r")); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 5 {
		t.Fatalf("deliver got %d events, want 5", len(got))
	}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d: seq %d, want %d", i, e.Seq, i+1)
		}
		if e.Epoch != b.Epoch() || e.Epoch == "" {
			t.Errorf("event %d: epoch %q, want the broker's %q", i, e.Epoch, b.Epoch())
		}
		p, err := ParseCursor(e.Cursor)
		if err != nil || p != (Position{Epoch: e.Epoch, Seq: e.Seq}) {
			t.Errorf("event %d: cursor %q parses to %+v, %v", i, e.Cursor, p, err)
		}
	}
	if last := b.Last(); last.Seq != 5 {
		t.Errorf("Last = %+v, want seq 5", last)
	}
}

func TestMemoryBrokerEpochsDiffer(t *testing.T) {
	a, b := NewMemoryBroker(MemoryBrokerOptions{}), NewMemoryBroker(MemoryBrokerOptions{})
	if a.Epoch() == b.Epoch() {
		t.Fatalf("two brokers share epoch %q: a restarted broker would accept old cursors", a.Epoch())
	}
	if !validEpoch(a.Epoch()) {
		t.Fatalf("epoch %q is not a valid cursor epoch", a.Epoch())
	}
}

// Publishing concurrently still yields one gapless order, delivered in it.
func TestMemoryBrokerTotalOrder(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerOptions{})
	defer b.Close()
	var seqs []uint64 // appended by deliver, which the broker serializes
	if err := b.Start(func(ev *Event) { seqs = append(seqs, ev.Seq) }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i := 0; i < 500; i++ {
				if err := b.Publish(context.Background(), ev("E", "r")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("delivery %d has seq %d", i, s)
		}
	}
	if len(seqs) != 2000 {
		t.Fatalf("%d deliveries, want 2000", len(seqs))
	}
}

func TestMemoryBrokerLifecycle(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerOptions{})
	if err := b.Publish(context.Background(), ev("E", "r")); !errors.Is(err, ErrBrokerNotStarted) {
		t.Errorf("Publish before Start: %v, want ErrBrokerNotStarted", err)
	}
	if err := b.Start(nil); err == nil {
		t.Error("Start(nil) succeeded")
	}
	if err := b.Start(func(*Event) {}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(func(*Event) {}); !errors.Is(err, ErrBrokerStarted) {
		t.Errorf("second Start: %v, want ErrBrokerStarted", err)
	}
	e := ev("E", "r")
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), e); err == nil {
		t.Error("publishing the same event twice succeeded")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Publish(context.Background(), ev("E", "r")); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("Publish after Close: %v, want ErrBrokerClosed", err)
	}
	if err := b.Start(func(*Event) {}); !errors.Is(err, ErrBrokerClosed) {
		t.Errorf("Start after Close: %v, want ErrBrokerClosed", err)
	}
}

func TestMemoryBrokerValidates(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerOptions{})
	defer b.Close()
	delivered := 0
	if err := b.Start(func(*Event) { delivered++ }); err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*Event{
		"nil":                  nil,
		"no type":              ev("", "r"),
		"no room, no control":  ev("E"),
		"empty room":           ev("E", "r", ""),
		"unknown op":           ctl("E", Control{Op: 9, Room: "r"}),
		"control without room": ctl("E", Control{Op: CloseRoom}),
		"join without user":    ctl("E", Control{Op: Join, Room: "r"}),
		"leave without user":   ctl("E", Control{Op: Leave, Room: "r"}),
		"demote without user":  ctl("E", Control{Op: Demote}),
		"disconnect w/o user":  ctl("E", Control{Op: Disconnect, Code: 4403}),
		"disconnect w/o code":  ctl("E", Control{Op: Disconnect, UserID: "u"}),
		"disconnect bad code":  ctl("E", Control{Op: Disconnect, UserID: "u", Code: 5000}),
	} {
		if err := b.Publish(context.Background(), e); err == nil {
			t.Errorf("%s: Publish succeeded", name)
		}
	}
	if delivered != 0 || b.Last().Seq != 0 {
		t.Errorf("rejected events were delivered (%d) or numbered (last %d)", delivered, b.Last().Seq)
	}
	// A control alone (no rooms) is a valid event.
	for _, c := range []Control{{Op: CloseRoom, Room: "r"}, {Op: Demote, UserID: "u"}, {Op: Disconnect, UserID: "u", Code: 4403, Reason: "x"}} {
		if err := b.Publish(context.Background(), ctl("E", c)); err != nil {
			t.Errorf("control-only event %+v: %v", c, err)
		}
	}
}
