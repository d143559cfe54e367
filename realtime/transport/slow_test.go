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

// TestSlowConsumer: a client that never reads while large events flow is
// dropped (4010) without delaying the clients that read.
func TestSlowConsumer(t *testing.T) {
	h := newHarnessSndbuf(t, func(o *Options) {
		o.SendQueue = 64
		o.WriteTimeout = slowWriteTimeout
	}, 16<<10)
	const fast, events = 4, 200
	pad := strings.Repeat("x", 4<<10) // 4 KiB: a dozen fill the stalled client's window and the send buffer

	subs := make([]*wsclient.Sub, fast)
	for i := range subs {
		subs[i] = subscribe(t, h.connect(t, fmt.Sprint("fast", i)), "s", systemQuery, nil)
	}
	stalled := dialRaw(t, h.srv.Listener.Addr().String(), 4096)
	t.Cleanup(func() { _ = stalled.Close() })
	stalled.writeText(t, `{"type":"connection_init","payload":{"token":"ok:stalled"}}`)
	stalled.writeText(t, `{"id":"s","type":"subscribe","payload":{"query":"`+systemQuery+`"}}`)
	eventually(t, "all subscribed", func() bool { return h.ws.Stats().Subscriptions == fast+1 })

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
	for range events {
		h.system(t, fmt.Sprintf("%d|%s", time.Now().UnixNano(), pad))
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()

	if len(lat) != fast*events {
		t.Fatalf("fast clients received %d events, want %d", len(lat), fast*events)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("fast clients' delivery latency: p50 %v, p99 %v, max %v", p50, p99, lat[len(lat)-1])
	// Had the stalled client held anyone's writes, they would have waited
	// for its write timeout; the bound sits far below that and far above
	// what a loaded CI machine under -race adds to a healthy delivery.
	if p99 > slowWriteTimeout/5 {
		t.Errorf("p99 latency %v with a stalled client present, want < %v (its write timeout is %v)", p99, slowWriteTimeout/5, slowWriteTimeout)
	}
	eventually(t, "stalled client dropped", func() bool {
		st := h.ws.Stats()
		return st.SlowConsumerDrops == 1 && st.Connections == fast && !h.reg.Online("stalled")
	})
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
