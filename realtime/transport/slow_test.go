package transport

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// slowWriteTimeout is the write timeout of the slow-client tests: what a
// reading client would wait if a stalled one could hold its writes.
const slowWriteTimeout = 5 * time.Second

// TestSlowConsumer: clients that stop reading while large events flow are
// dropped (4010) without delaying the clients that read. What a dropped
// client gets: its queue is dropped and the 4010 close frame goes out
// after the batch being written to it, within closeGrace of the overflow.
// So a client that resumes reading in time receives a prefix of the events,
// in order, then the 4010; one that never reads is disconnected without
// it once that deadline passes — well before its write timeout.
func TestSlowConsumer(t *testing.T) {
	h := newHarnessSndbuf(t, func(o *Options) {
		o.SendQueue = 64
		o.WriteTimeout = slowWriteTimeout
	}, 16<<10)
	const fast, events = 4, 200
	pad := strings.Repeat("x", 4<<10) // 4 KiB: a dozen fill a stalled client's window and the send buffer

	subs := make([]*wsclient.Sub, fast)
	for i := range subs {
		subs[i] = subscribe(t, h.connect(t, fmt.Sprint("fast", i)), "s", systemQuery, nil)
	}
	stalled := func(user string) (*rawConn, *wsConn) {
		c := dialRaw(t, h.srv.Listener.Addr().String(), 4096)
		t.Cleanup(func() { _ = c.Close() })
		c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:`+user+`"}}`)
		c.writeText(t, `{"id":"s","type":"subscribe","payload":{"query":"`+systemQuery+`"}}`)
		var sc *wsConn
		eventually(t, user+" subscribed", func() bool { sc = h.connOf(user); return sc != nil && sc.activeOps() == 1 })
		return c, sc
	}
	resumes, resumesConn := stalled("resumes")
	_, neverConn := stalled("never")

	// The resuming client reads again as soon as it has been dropped.
	type received struct {
		msgs  []string // the messages of the events received, in order
		close []byte   // the close frame's payload
		err   error
	}
	// dropped returns when c is closing (or the test's time is up).
	dropped := func(c *wsConn) time.Time {
		for deadline := time.Now().Add(10 * time.Second); !c.isClosing() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		return time.Now()
	}
	got := make(chan received, 1)
	go func() {
		var r received
		defer func() { got <- r }()
		dropped(resumesConn)
		for {
			op, p, err := resumes.nextFrame()
			switch {
			case err != nil:
				r.err = err
				return
			case op == opClose:
				r.close = p
				return
			case op == opText && strings.Contains(string(p), `"type":"next"`):
				_, msg, _ := strings.Cut(string(p), `"message":"`)
				r.msgs = append(r.msgs, msg)
			}
		}
	}()
	neverDropped := make(chan time.Time, 1)
	go func() { neverDropped <- dropped(neverConn) }()

	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range events {
				r, err := s.Next(testCtx(t))
				got := time.Now()
				if err != nil {
					t.Errorf("fast client: %v", err)
					return
				}
				// The publish time leads the message; cheaper than decoding.
				_, msg, _ := strings.Cut(string(r.Data), `"message":"`)
				sent, _, _ := strings.Cut(msg, "|")
				ns, err := strconv.ParseInt(sent, 10, 64)
				if err != nil {
					t.Errorf("unexpected data %.80s", r.Data)
					return
				}
				mu.Lock()
				lat = append(lat, got.Sub(time.Unix(0, ns)))
				mu.Unlock()
			}
		}()
	}
	for i := range events {
		h.system(t, fmt.Sprintf("%d|%d|%s", time.Now().UnixNano(), i, pad))
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()

	if len(lat) != fast*events {
		t.Fatalf("fast clients received %d events, want %d", len(lat), fast*events)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("fast clients' delivery latency: p50 %v, p99 %v, max %v", p50, p99, lat[len(lat)-1])
	// Had a stalled client held anyone's writes, they would have waited
	// for its write timeout; the bound sits far below that and far above
	// what a loaded CI machine under -race adds to a healthy delivery.
	if p99 > slowWriteTimeout/5 {
		t.Errorf("p99 latency %v with stalled clients present, want < %v (their write timeout is %v)", p99, slowWriteTimeout/5, slowWriteTimeout)
	}

	r := <-got
	if r.err != nil {
		t.Fatalf("the resuming client's read ended with %v after %d events, want the 4010 close frame", r.err, len(r.msgs))
	}
	if code, reason := closeCode(r.close); code != CloseSlowConsumer || reason != "slow consumer" {
		t.Errorf("close frame %d %q, want 4010 \"slow consumer\"", code, reason)
	}
	if len(r.msgs) == 0 || len(r.msgs) >= events {
		t.Errorf("the resuming client received %d events before the close, want a prefix of the %d", len(r.msgs), events)
	}
	for i, m := range r.msgs {
		if _, rest, _ := strings.Cut(m, "|"); !strings.HasPrefix(rest, fmt.Sprintf("%d|", i)) {
			t.Fatalf("event %d the resuming client received is %.40q: want the events in order, none missing", i, m)
		}
	}

	var neverGone time.Time
	eventually(t, "stalled clients dropped", func() bool {
		if h.reg.Online("never") {
			return false
		}
		if neverGone.IsZero() {
			neverGone = time.Now()
		}
		st := h.ws.Stats()
		return st.SlowConsumerDrops == 2 && st.Connections == fast && !h.reg.Online("resumes")
	})
	// Its end: the abort's deadline (closeGrace), not the write timeout.
	if d := neverGone.Sub(<-neverDropped); d > slowWriteTimeout-closeGrace {
		t.Errorf("the client that never reads was disconnected %v after its drop, want about %v (not its write timeout, %v)", d, closeGrace, slowWriteTimeout)
	}
}

// TestSendQueueBytes: the queue is bounded in bytes as well as frames. A
// client that pings with large payloads and never reads the pongs is
// dropped (4010) once the echoes waiting for it exceed SendQueueBytes,
// although far fewer frames than SendQueue wait; reading again, it gets
// the pongs written before the drop, then the 4010.
func TestSendQueueBytes(t *testing.T) {
	h := newHarnessSndbuf(t, func(o *Options) {
		o.SendQueue = 4096
		o.SendQueueBytes = 64 << 10
	}, 16<<10)
	c := dialRaw(t, h.srv.Listener.Addr().String(), 4096)
	defer c.Close()
	c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:pinger"}}`)
	var sc *wsConn
	eventually(t, "connected", func() bool { sc = h.connOf("pinger"); return sc != nil })
	ping := `{"type":"ping","payload":{"pad":"` + strings.Repeat("p", maxPingEcho-16) + `"}}` // echoed: within maxPingEcho
	sent := 0
	for ; sent < 1000 && !sc.isClosing(); sent++ {
		c.writeText(t, ping)
	}
	eventually(t, "dropped as a slow consumer", func() bool { return h.ws.Stats().SlowConsumerDrops == 1 })
	if sent*len(ping) < 64<<10 {
		t.Fatalf("dropped after %d pings (%d bytes): before the byte budget was spent", sent, sent*len(ping))
	}

	pongs := 0
	for {
		op, p := c.readFrame(t)
		if op == opClose {
			if code, reason := closeCode(p); code != CloseSlowConsumer || reason != "slow consumer" {
				t.Fatalf("close frame %d %q, want 4010", code, reason)
			}
			break
		}
		switch {
		case strings.HasPrefix(string(p), `{"type":"pong","payload":{"pad":"ppp`):
			pongs++
		case string(p) != `{"type":"connection_ack"}`:
			t.Fatalf("unexpected frame %#x %.60q", op, p)
		}
	}
	if pongs == 0 || pongs >= sent {
		t.Errorf("received %d pongs for %d pings before the 4010, want some, not all", pongs, sent)
	}
}

// TestWriteTimeout: clients that stop reading while their queues still
// have room are dropped once a write to them has waited WriteTimeout (not
// as slow consumers: nothing overflowed), and their stuck writes — more of
// them than the transport has shared writers — never delay a client that
// reads.
func TestWriteTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	h := newHarnessSndbuf(t, func(o *Options) {
		o.SendQueue = 4096 // never full here: only the write timeout can drop the client
		o.WriteTimeout = timeout
	}, 16<<10)
	stalled := h.ws.pool.size + 2
	for i := range stalled {
		c := dialRaw(t, h.srv.Listener.Addr().String(), 4096)
		t.Cleanup(func() { _ = c.Close() })
		c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:stalled"}}`)
		c.writeText(t, `{"id":"s","type":"subscribe","payload":{"query":"`+systemQuery+`"}}`)
		eventually(t, "subscribed", func() bool { return h.ws.Stats().Subscriptions == i+1 })
	}
	// Subscribed last, the fast client is served after the stalled ones.
	fast := subscribe(t, h.connect(t, "fast"), "s", systemQuery, nil)

	// 40 events of 4 KiB: the stalled clients' socket buffers take a few,
	// then writes to them wait; the fast client gets each event meanwhile.
	pad := strings.Repeat("x", 4<<10)
	start := time.Now()
	var worst time.Duration
	for i := range 40 {
		sent := time.Now()
		h.system(t, fmt.Sprintf("%d|%s", i, pad))
		if got := systemMessage(t, next(t, fast)); !strings.HasPrefix(got, fmt.Sprintf("%d|", i)) {
			t.Fatalf("fast client got %.20q, want event %d", got, i)
		}
		worst = max(worst, time.Since(sent))
	}
	if worst > timeout/2 {
		t.Errorf("the reading client waited up to %v for an event while another client's write was stuck; want < %v", worst, timeout/2)
	}

	eventually(t, "stalled clients dropped", func() bool { return h.ws.Stats().Connections == 1 && !h.reg.Online("stalled") })
	if d := time.Since(start); d < timeout {
		t.Errorf("stalled clients dropped %v after their writes began, before the write timeout (%v)", d, timeout)
	}
	if n := h.ws.Stats().SlowConsumerDrops; n != 0 {
		t.Errorf("SlowConsumerDrops = %d: clients were dropped for their queues, not for stuck writes", n)
	}
	if err := fast.Complete(); err != nil {
		t.Fatalf("the reading client's connection broke: %v", err)
	}
}
