package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/realtime"
)

// subOf returns user's only live subscription, as the hub sees it.
func subOf(t *testing.T, h *harness, user string) *subscription {
	t.Helper()
	var sc *wsConn
	eventually(t, user+" subscribed", func() bool { sc = h.connOf(user); return sc != nil && sc.activeOps() == 1 })
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.subs[0]
}

// systemPayload is a SYSTEM_UPDATE carrying msg, encoded for sub.
func systemPayload(t *testing.T, sub *subscription, seq int, msg string) *realtime.Payload {
	t.Helper()
	b, err := json.Marshal(eventData{Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	ev := &realtime.Event{Type: "SYSTEM_UPDATE", Rooms: []string{realtime.RoomAll}, Data: b,
		Time: time.Unix(1700000000, 0).UTC(), Seq: uint64(seq), Epoch: "test", Cursor: fmt.Sprint("c", seq)}
	return realtime.NewPayload(ev, sub.target.Encoder)
}

// A replay of far more events than the send queue holds reaches a client
// that reads, all of them in order, through DeliverWait; the same burst
// through Deliver drops the client as a slow consumer (which is why a
// replay waits).
func TestDeliverWaitPacesABurstToTheClient(t *testing.T) {
	const burst = 2000
	h := newHarness(t, func(o *Options) { o.SendQueue = 8 })

	paced := subscribe(t, h.connect(t, "paced"), "s", systemQuery, nil)
	sub := subOf(t, h, "paced")
	errc := make(chan error, 1)
	go func() {
		for i := range burst {
			if err := sub.DeliverWait(testCtx(t), systemPayload(t, sub, i+1, fmt.Sprint(i))); err != nil {
				errc <- fmt.Errorf("DeliverWait %d: %w", i, err)
				return
			}
		}
		errc <- nil
	}()
	for i := range burst {
		if got := systemMessage(t, next(t, paced)); got != fmt.Sprint(i) {
			t.Fatalf("event %d is %q: want the burst in order, none missing", i, got)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := h.ws.Stats().SlowConsumerDrops; n != 0 {
		t.Fatalf("%d slow-consumer drops while pacing", n)
	}

	c := h.connect(t, "unpaced")
	subscribe(t, c, "s", systemQuery, nil)
	unpaced := subOf(t, h, "unpaced")
	for i := range burst {
		unpaced.Deliver(systemPayload(t, unpaced, i+1, fmt.Sprint(i)))
	}
	waitClose(t, c, CloseSlowConsumer, "slow consumer")
}

// A client that takes nothing is not waited for beyond the write timeout:
// DeliverWait gives up and the connection closes as a slow consumer. A
// waiting DeliverWait also returns when its context ends.
func TestDeliverWaitGivesUpOnAStalledClient(t *testing.T) {
	const timeout = 500 * time.Millisecond
	h := newHarnessSndbuf(t, func(o *Options) {
		o.SendQueue = 8
		o.WriteTimeout = timeout
	}, 16<<10)
	stalled := func(user string) *subscription {
		c := dialRaw(t, h.srv.Listener.Addr().String(), 4096)
		t.Cleanup(func() { _ = c.Close() })
		c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:`+user+`"}}`)
		c.writeText(t, `{"id":"s","type":"subscribe","payload":{"query":"`+systemQuery+`"}}`)
		return subOf(t, h, user)
	}
	pad := strings.Repeat("x", 4<<10)

	sub := stalled("stalled")
	start := time.Now()
	var err error
	for i := 0; err == nil && i < 1000; i++ {
		err = sub.DeliverWait(context.Background(), systemPayload(t, sub, i+1, pad))
	}
	if err == nil {
		t.Fatal("1000 payloads of 4 KiB queued for a client that reads nothing")
	}
	if d := time.Since(start); d > 5*timeout {
		t.Errorf("DeliverWait gave up after %v, want about the write timeout (%v)", d, timeout)
	}
	eventually(t, "the stalled client dropped", func() bool { return !h.reg.Online("stalled") })

	sub = stalled("cancelled")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; err == nil; i++ {
			err = sub.DeliverWait(ctx, systemPayload(t, sub, i+1, pad))
		}
		done <- err
	}()
	time.Sleep(timeout / 5) // the queue is full by now: the call waits
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("DeliverWait returned %v after its context was cancelled, want context.Canceled", err)
		}
	case <-time.After(timeout / 2):
		t.Error("DeliverWait still waiting after its context was cancelled")
	}
}
