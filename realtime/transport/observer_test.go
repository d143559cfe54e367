package transport

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/taskpulse/taskpulse/internal/wsclient"
	"github.com/taskpulse/taskpulse/realtime"
)

// recorder is an Observer that writes down what it is told, one line per
// call, and the delivery samples.
type recorder struct {
	mu      sync.Mutex
	lines   []string
	subs    map[string]int // transport/field → live count
	samples []time.Duration
}

func newRecorder() *recorder { return &recorder{subs: map[string]int{}} }

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *recorder) Connected(c realtime.ConnInfo) {
	r.add("connected %s %s", c.Transport, c.UserID)
}

func (r *recorder) AuthFailed(c realtime.ConnInfo, err error) {
	r.add("authfailed %s ip=%v %v", c.Transport, c.IP != "", err)
}

func (r *recorder) Subscribed(c realtime.ConnInfo, f *ast.Field, vars map[string]any) {
	args := f.ArgumentMap(vars)
	r.add("subscribed %s %s %s %v", c.Transport, c.UserID, f.Name, args["projectId"])
}

func (r *recorder) Subscriptions(transport, field string, delta int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs[transport+"/"+field] += delta
}

func (r *recorder) Disconnected(c realtime.ConnInfo, code int, connected bool) {
	r.add("disconnected %s %s %d %v", c.Transport, c.UserID, code, connected)
}

func (r *recorder) Delivered(transport string, commit time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, time.Since(commit))
}

func (r *recorder) has(line string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if l == line {
			return true
		}
	}
	return false
}

func (r *recorder) waitFor(t *testing.T, line string) {
	t.Helper()
	eventually(t, line, func() bool { return r.has(line) })
}

func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func (r *recorder) live(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.subs[key]
}

func (r *recorder) sampleCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples)
}

func observed(t *testing.T, mod func(*Options)) (*harness, *recorder) {
	rec := newRecorder()
	h := newHarness(t, func(o *Options) {
		o.Observer = rec
		if mod != nil {
			mod(o)
		}
	})
	return h, rec
}

// publishNow publishes a system event committed now (the harness's
// events carry a fixed old time).
func (h *harness) publishNow(msg string) {
	n := h.seq.Add(1)
	h.hub.Enqueue(&realtime.Event{Type: "SYSTEM_UPDATE", Rooms: []string{realtime.RoomAll},
		Data: []byte(`{"message":"` + msg + `"}`), Time: time.Now(), Seq: n, Epoch: "test", Cursor: fmt.Sprint("c", n)})
}

// A WebSocket's life as the Observer sees it: connected, subscribed (with
// its root field and arguments), deliveries sampled one batch in
// sampleEvery, and the client's close code.
func TestObserverSeesAWebSocketsLife(t *testing.T) {
	h, rec := observed(t, nil)
	c := h.connect(t, "alice")
	rec.waitFor(t, "connected graphql-transport-ws alice")
	s := subscribe(t, c, "p", `subscription($p: ID!) { projectUpdates(projectId: $p) { type } }`, map[string]any{"p": "proj_7"})
	rec.waitFor(t, "subscribed graphql-transport-ws alice projectUpdates proj_7")
	sys := subscribe(t, c, "s", systemQuery, nil)
	if n := rec.live("graphql-transport-ws/systemUpdates"); n != 1 {
		t.Fatalf("live systemUpdates = %d, want 1", n)
	}

	const events = 2*sampleEvery + 1
	for i := range events {
		h.publishNow(fmt.Sprint("m", i))
		next(t, sys) // one event per batch
	}
	// Batches 1, 1+sampleEvery, 1+2·sampleEvery are sampled.
	eventually(t, "3 samples", func() bool { return rec.sampleCount() == 3 })
	for _, d := range rec.samples {
		if d < 0 || d > 5*time.Second {
			t.Fatalf("commit → write latency %v", d)
		}
	}
	_ = s
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "disconnected graphql-transport-ws alice 1000 true")
	eventually(t, "subscriptions released", func() bool {
		return rec.live("graphql-transport-ws/systemUpdates") == 0 && rec.live("graphql-transport-ws/projectUpdates") == 0
	})
}

// Every way a WebSocket ends reports its close code: the server's, the
// client's, gorilla's 1009, or 1006 when there is none.
func TestObserverCloseCodes(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, h *harness)
		want string
	}{
		{"client closes", func(t *testing.T, h *harness) {
			_ = h.connect(t, "bob").Close()
		}, "disconnected graphql-transport-ws bob 1000 true"},
		{"invalid message", func(t *testing.T, h *harness) {
			c := h.connect(t, "bob")
			_ = c.WriteRaw(`{"type":"nonsense"}`)
			waitClose(t, c, CloseBadRequest, "")
		}, "disconnected graphql-transport-ws bob 4400 true"},
		{"token expires", func(t *testing.T, h *harness) {
			c := h.dial(t, wsclient.DialOptions{})
			if err := c.Init(testCtx(t), map[string]any{"token": "ok:bob:50ms"}); err != nil {
				t.Fatal(err)
			}
			waitClose(t, c, CloseForbidden, "expired")
		}, "disconnected graphql-transport-ws bob 4403 true"},
		{"refused token", func(t *testing.T, h *harness) {
			c := h.dial(t, wsclient.DialOptions{})
			_ = c.Init(testCtx(t), map[string]any{"token": "nope"})
			waitClose(t, c, CloseForbidden, "invalid token")
		}, "disconnected graphql-transport-ws  4403 false"},
		{"no connection_init", func(t *testing.T, h *harness) {
			waitClose(t, h.dial(t, wsclient.DialOptions{}), CloseInitTimeout, "")
		}, "disconnected graphql-transport-ws  4408 false"},
		{"message too big", func(t *testing.T, h *harness) {
			c := dialRaw(t, h.srv.Listener.Addr().String(), 0)
			defer c.Close()
			c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:bob"}}`)
			c.readFrame(t) // ack
			c.writeText(t, strings.Repeat(" ", 4096))
		}, "disconnected graphql-transport-ws bob 1009 true"},
		{"connection lost", func(t *testing.T, h *harness) {
			c := dialRaw(t, h.srv.Listener.Addr().String(), 0)
			c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:bob"}}`)
			c.readFrame(t) // ack
			_ = c.Close()
		}, "disconnected graphql-transport-ws bob 1006 true"},
		{"legacy protocol", func(t *testing.T, h *harness) {
			c := h.dial(t, wsclient.DialOptions{Subprotocol: wsclient.ProtocolGraphQLWS})
			if err := c.Init(testCtx(t), map[string]any{"token": "ok:bob"}); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
		}, "disconnected graphql-ws bob 1000 true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, rec := observed(t, func(o *Options) {
				o.InitTimeout = 100 * time.Millisecond
				o.ReadLimit = 1024
			})
			tc.run(t, h)
			rec.waitFor(t, tc.want)
			if n := rec.count("disconnected"); n != 1 {
				t.Fatalf("%d disconnects reported: %v", n, rec.lines)
			}
		})
	}
}

// A refused connection_init is an authentication failure, with the
// server's reason and the client's address.
func TestObserverAuthFailure(t *testing.T) {
	h, rec := observed(t, nil)
	c := h.dial(t, wsclient.DialOptions{})
	_ = c.Init(testCtx(t), map[string]any{"token": "nope"})
	rec.waitFor(t, "authfailed graphql-transport-ws ip=true UNAUTHENTICATED: invalid token")
	if rec.count("connected") != 0 {
		t.Fatalf("a refused socket was reported connected: %v", rec.lines)
	}
}

// An SSE stream is counted like a WebSocket: connected, subscribed,
// and its end — the server's code, or 1006 when the client goes away.
func TestObserverSSE(t *testing.T) {
	h, rec := observed(t, nil)
	s := openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil)
	rec.waitFor(t, "subscribed sse alice systemUpdates <nil>")
	if !rec.has("connected sse alice") {
		t.Fatalf("no connect before the subscription: %v", rec.lines)
	}
	h.publishNow("hello")
	s.want("next", "")
	eventually(t, "a sample", func() bool { return rec.sampleCount() == 1 })
	h.reg.Disconnect("alice", CloseForbidden, "disconnected by an administrator")
	s.wantEnd()
	rec.waitFor(t, "disconnected sse alice 4403 true")

	gone := openSSE(t, h, http.MethodPost, body(systemQuery, nil), map[string]string{"Authorization": "Bearer ok:carol"})
	rec.waitFor(t, "subscribed sse carol systemUpdates <nil>")
	_ = gone.resp.Body.Close()
	rec.waitFor(t, "disconnected sse carol 1006 true")
	eventually(t, "subscriptions released", func() bool { return rec.live("sse/systemUpdates") == 0 })

	refused := openSSE(t, h, http.MethodPost, body(systemQuery, nil), map[string]string{"Authorization": "Bearer nope"})
	if refused.resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", refused.resp.StatusCode)
	}
	rec.waitFor(t, "authfailed sse ip=true UNAUTHENTICATED: invalid token")
}
