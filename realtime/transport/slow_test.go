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

// TestSlowConsumer: a client that never reads while large events flow is
// dropped (4010) without delaying the clients that read.
func TestSlowConsumer(t *testing.T) {
	h := newHarnessSndbuf(t, func(o *Options) {
		o.SendQueue = 64
		o.WriteTimeout = 2 * time.Second
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
	if p99 > 100*time.Millisecond {
		t.Errorf("p99 latency %v with a stalled client present, want < 100ms", p99)
	}
	eventually(t, "stalled client dropped", func() bool {
		st := h.ws.Stats()
		return st.SlowConsumerDrops == 1 && st.Connections == fast && !h.reg.Online("stalled")
	})
}
