package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/graph/model"
	"github.com/taskpulse/taskpulse/internal/wsclient"
	"github.com/taskpulse/taskpulse/realtime"
)

// tokenTTL is the lifetime of the token that expires while connected.
const tokenTTL = 300 * time.Millisecond

// TestCloseCodes is the graphql-transport-ws conformance table: each case
// drives a real socket into a close and checks code and reason.
func TestCloseCodes(t *testing.T) {
	const sub = `{"id":"1","type":"subscribe","payload":{"query":"subscription { systemUpdates { type } }"}}`
	type step func(t *testing.T, h *harness, c *wsclient.Client)
	send := func(msgs ...string) step {
		return func(t *testing.T, _ *harness, c *wsclient.Client) {
			for _, m := range msgs {
				if err := c.WriteRaw(m); err != nil {
					t.Fatalf("write %q: %v", m, err)
				}
			}
		}
	}
	initOK := `{"type":"connection_init","payload":{"token":"ok:alice"}}`
	cases := []struct {
		name   string
		opts   func(*Options)
		dial   wsclient.DialOptions
		steps  step
		code   int
		reason string
	}{
		{name: "bad JSON", steps: send(initOK, `{"type":`), code: 4400, reason: "not a JSON object"},
		{name: "array", steps: send(`[]`), code: 4400, reason: "not a JSON object"},
		{name: "number", steps: send(`5`), code: 4400, reason: "not a JSON object"},
		{name: "null", steps: send(`null`), code: 4400, reason: `missing "type"`},
		{name: "no type", steps: send(`{"id":"1"}`), code: 4400, reason: `missing "type"`},
		{name: "type not a string", steps: send(`{"type":5}`), code: 4400, reason: `"type" must be a string`},
		{name: "unknown type", steps: send(initOK, `{"type":"hello"}`), code: 4400, reason: `unknown type "hello"`},
		{name: "server-only type", steps: send(initOK, `{"id":"1","type":"next","payload":{}}`), code: 4400, reason: `"next" is a server message`},
		{name: "subscribe without id", steps: send(initOK, `{"type":"subscribe","payload":{"query":"{ me { id } }"}}`), code: 4400, reason: `needs an "id"`},
		{name: "id not a string", steps: send(initOK, `{"id":1,"type":"subscribe","payload":{"query":"{ me { id } }"}}`), code: 4400, reason: `"id" must be a string`},
		{name: "empty id", steps: send(initOK, `{"id":"","type":"subscribe","payload":{"query":"{ me { id } }"}}`), code: 4400, reason: `must not be empty`},
		{name: "id longer than 128 bytes", steps: send(initOK, `{"id":"`+strings.Repeat("x", 129)+`","type":"subscribe","payload":{"query":"{ me { id } }"}}`), code: 4400, reason: "longer than 128 bytes"},
		{name: "complete without id", steps: send(initOK, `{"type":"complete"}`), code: 4400, reason: `needs an "id"`},
		{name: "missing payload", steps: send(initOK, `{"id":"1","type":"subscribe"}`), code: 4400, reason: `needs a "payload"`},
		{name: "payload not an object", steps: send(initOK, `{"id":"1","type":"subscribe","payload":"x"}`), code: 4400, reason: `"payload" must be an object`},
		{name: "query not a string", steps: send(initOK, `{"id":"1","type":"subscribe","payload":{"query":5}}`), code: 4400, reason: `"payload" must be`},
		{name: "no query", steps: send(initOK, `{"id":"1","type":"subscribe","payload":{}}`), code: 4400, reason: `needs a "query"`},
		{name: "init payload not an object", steps: send(`{"type":"connection_init","payload":[1]}`), code: 4400, reason: "payload must be an object"},
		{name: "ping payload not an object", steps: send(`{"type":"ping","payload":"x"}`), code: 4400, reason: "payload must be an object"},
		{name: "binary frame", steps: func(t *testing.T, _ *harness, c *wsclient.Client) {
			if err := c.WriteBinary([]byte(`{"type":"ping"}`)); err != nil {
				t.Fatal(err)
			}
		}, code: 4400, reason: "binary"},
		{name: "subscribe before init", steps: send(sub), code: 4401, reason: "Unauthorized"},
		{name: "bad token", steps: send(`{"type":"connection_init","payload":{"token":"nope"}}`), code: 4403, reason: "invalid token"},
		{name: "missing token", steps: send(`{"type":"connection_init"}`), code: 4403, reason: "missing token"},
		{name: "no subprotocol", dial: wsclient.DialOptions{NoSubprotocol: true}, code: 4406, reason: "Subprotocol not acceptable"},
		{name: "unknown subprotocol", dial: wsclient.DialOptions{Subprotocol: "graphql-sse"}, code: 4406, reason: "Subprotocol not acceptable"},
		{name: "init timeout", opts: func(o *Options) { o.InitTimeout = 100 * time.Millisecond }, code: 4408, reason: "Connection initialisation timeout"},
		{name: "duplicate subscriber", steps: send(initOK, sub, sub), code: 4409, reason: "Subscriber for 1 already exists"},
		{name: "second init", steps: send(initOK, initOK), code: 4429, reason: "Too many initialisation requests"},
		{name: "message over the read limit", opts: func(o *Options) { o.ReadLimit = 1024 },
			steps: func(t *testing.T, _ *harness, c *wsclient.Client) {
				// The server may close before the client has written the
				// whole message, so the write can fail: the close decides.
				_ = c.WriteRaw(`{"type":"ping","payload":{"x":"` + strings.Repeat("y", 4096) + `"}}`)
			}, code: 1009},
		{name: "token expiry while connected", steps: send(`{"type":"connection_init","payload":{"token":"ok:alice:` + tokenTTL.String() + `"}}`), code: 4403, reason: "token expired"},
		{name: "drain", steps: func(t *testing.T, h *harness, c *wsclient.Client) {
			if err := c.Init(testCtx(t), map[string]any{"token": "ok:alice"}); err != nil {
				t.Fatal(err)
			}
			h.reg.Drain(testCtx(t), 0, CloseGoingAway, "server shutting down")
		}, code: 1001, reason: "server shutting down"},
		{name: "disconnect user", steps: func(t *testing.T, h *harness, c *wsclient.Client) {
			if err := c.Init(testCtx(t), map[string]any{"token": "ok:alice"}); err != nil {
				t.Fatal(err)
			}
			if n := h.reg.Disconnect("alice", CloseForbidden, "Forbidden: disconnected by an admin"); n != 1 {
				t.Errorf("Disconnect closed %d connections, want 1", n)
			}
		}, code: 4403, reason: "disconnected by an admin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.opts)
			c := h.dial(t, tc.dial)
			start := time.Now()
			if tc.steps != nil {
				tc.steps(t, h, c)
			}
			waitClose(t, c, tc.code, tc.reason)
			if tc.name == "token expiry while connected" {
				// Never before the expiry; after it, within a sweep tick
				// (≤ 500ms: TestSweepTick), plus a second for a loaded
				// machine under -race. A connection missed by the sweeper
				// would live on until the test's 10s context.
				tick := sweepTick(Options{}.withDefaults())
				if d := time.Since(start); d < tokenTTL || d > tokenTTL+tick+time.Second {
					t.Errorf("closed after %v, want at the token's expiry (%v) plus at most a sweep tick (%v)", d, tokenTTL, tick)
				}
			}
			// The server tore the connection down and forgot it.
			eventually(t, "no connections", func() bool { return h.ws.Stats().Connections == 0 && h.reg.Len() == 0 })
		})
	}
}

func TestIDOfMaxLengthIsAccepted(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t, "alice")
	id := strings.Repeat("x", MaxIDLength)
	r, err := c.Subscribe(testCtx(t), id, `{ me { id } }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := next(t, r); !strings.Contains(string(got.Data), `"alice"`) {
		t.Errorf("data = %s", got.Data)
	}
}

func TestPingPong(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t, wsclient.DialOptions{})
	ctx := testCtx(t)
	// Before connection_init too.
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping before init: %v", err)
	}
	if err := c.WriteRaw(`{"type":"ping","payload":{"n":1}}`); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadMessage(ctx)
	if err != nil || m.Type != "pong" || string(m.Payload) != `{"n":1}` {
		t.Fatalf("pong = %+v (%s), %v; want the payload echoed", m, m.Raw, err)
	}
	// A large payload is not echoed (a client must not make the server
	// queue big pongs): the pong comes without one.
	big := `{"pad":"` + strings.Repeat("p", maxPingEcho) + `"}`
	if err := c.WriteRaw(`{"type":"ping","payload":` + big + `}`); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ReadMessage(ctx); err != nil || string(m.Raw) != `{"type":"pong"}` {
		t.Fatalf("pong = %.60s, %v; want a pong without payload", m.Raw, err)
	}
	// A pong is accepted and ignored; the connection stays.
	if err := c.WriteRaw(`{"type":"pong"}`); err != nil {
		t.Fatal(err)
	}
	if err := c.Init(ctx, map[string]any{"token": "ok:alice"}); err != nil {
		t.Fatalf("init after pings: %v", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after init: %v", err)
	}
}

func TestKeepalive(t *testing.T) {
	const interval = 200 * time.Millisecond
	h := newHarness(t, func(o *Options) { o.PingInterval = interval })
	tick := sweepTick(h.ws.opts)

	t.Run("answering peer stays", func(t *testing.T) {
		c := h.connect(t, "alice")
		time.Sleep(5 * interval)
		if n := c.PingsReceived(); n < 2 {
			t.Errorf("client saw %d server pings in %v, want ≥ 2", n, 5*interval)
		}
		if err := c.Ping(testCtx(t)); err != nil {
			t.Fatalf("a peer answering pings was dropped: %v", err)
		}
	})

	t.Run("silent peer dropped after 2× the interval", func(t *testing.T) {
		c := h.dial(t, wsclient.DialOptions{IgnorePings: true})
		if err := c.Init(testCtx(t), map[string]any{"token": "ok:bob"}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ce, err := c.WaitClose(testCtx(t))
		d := time.Since(start)
		// No close frame: the peer is not listening, its TCP connection is
		// closed (gorilla reports that as 1006).
		if err != nil || ce.Code != 1006 {
			t.Errorf("silent peer's end = %v, %v; want TCP closed without a close frame (1006)", ce, err)
		}
		// The silence rule (2× the interval since the last frame heard,
		// noticed within a sweep tick), plus a second for a loaded machine
		// under -race; not earlier than the first unanswered ping.
		if d < interval || d > 2*interval+tick+time.Second {
			t.Errorf("silent peer dropped after %v, want 2×%v plus at most a sweep tick (%v)", d, interval, tick)
		}
		if c.PingsReceived() == 0 {
			t.Error("the silent peer was never pinged")
		}
		eventually(t, "bob gone", func() bool { return !h.reg.Online("bob") })
	})
}

// TestSweepTick: the sweeper's period serves the shortest timer and never
// exceeds 500ms, so an expired token's connection closes within a second
// of the expiry (CONTRACT), whatever the ping interval.
func TestSweepTick(t *testing.T) {
	cases := []struct {
		name     string
		ping     time.Duration
		init     time.Duration
		wantTick time.Duration
	}{
		{"defaults", 0, 0, 500 * time.Millisecond},
		{"long timers", time.Hour, time.Hour, 500 * time.Millisecond},
		{"short ping interval", 100 * time.Millisecond, 0, 25 * time.Millisecond},
		{"short init timeout", 0, 200 * time.Millisecond, 50 * time.Millisecond},
		{"tiny timers", time.Millisecond, time.Millisecond, 5 * time.Millisecond},
	}
	for _, tc := range cases {
		if got := sweepTick(Options{PingInterval: tc.ping, InitTimeout: tc.init}.withDefaults()); got != tc.wantTick {
			t.Errorf("%s: tick %v, want %v", tc.name, got, tc.wantTick)
		}
	}
}

// TestCloseStopsBlockedHandlers: Close cancels the context of what runs
// for a connection, so a handler blocked on something that honours it (an
// Authenticate fetching keys, a resolver reading the store) ends, and
// Close does not wait out its timeouts.
func TestCloseStopsBlockedHandlers(t *testing.T) {
	const writeTimeout = 5 * time.Second
	h := newHarness(t, func(o *Options) {
		o.WriteTimeout = writeTimeout
		o.InitTimeout = time.Minute // only Close can end the blocked Authenticate
	})

	t.Run("WebSocket", func(t *testing.T) {
		c := h.dial(t, wsclient.DialOptions{})
		if err := c.WriteRaw(`{"type":"connection_init","payload":{"token":"block"}}`); err != nil {
			t.Fatal(err)
		}
		<-h.authBlocked
		start := time.Now()
		h.ws.Close()
		if d := time.Since(start); d > writeTimeout/2 {
			t.Errorf("Close took %v with a blocked Authenticate; want it cancelled, not waited for (write timeout %v)", d, writeTimeout)
		}
		waitClose(t, c, CloseGoingAway, "server shutting down")
	})

	t.Run("SSE", func(t *testing.T) {
		type result struct {
			status int
			body   string
			err    error
		}
		done := make(chan result, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(body(systemQuery, nil)))
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer block")
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			done <- result{resp.StatusCode, string(b), err}
		}()
		<-h.authBlocked
		h.sse.Close()
		select {
		case r := <-done:
			if r.err != nil || r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "server shutting down") {
				t.Errorf("response = %d %s, %v; want 503 server shutting down", r.status, r.body, r.err)
			}
		case <-time.After(writeTimeout):
			t.Fatal("the request blocked in Authenticate was not ended by Close")
		}
	})
}

func TestSubscriptionLifecycle(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t, "alice")
	// No goroutine per subscription: none may outlive what the subscription
	// itself starts (writers exit when their queue is empty).
	idle := goleak.IgnoreCurrent()
	defer goleak.VerifyNone(t, idle)
	a := subscribe(t, c, "a", systemQuery, nil)
	if st := h.ws.Stats(); st.Subscriptions != 1 || st.Shapes != 1 {
		t.Fatalf("stats = %+v, want 1 subscription, 1 shape", st)
	}
	for _, m := range []string{"one", "two", "three"} {
		h.system(t, m)
	}
	for _, want := range []string{"one", "two", "three"} {
		if got := systemMessage(t, next(t, a)); got != want {
			t.Fatalf("message = %q, want %q (in order)", got, want)
		}
	}

	// Client complete: no message back, no more deliveries.
	if err := a.Complete(); err != nil {
		t.Fatal(err)
	}
	b := subscribe(t, c, "b", systemQuery, nil)
	eventually(t, "a unsubscribed", func() bool { return h.hub.Stats().Subscriptions == 1 })
	h.system(t, "four")
	if got := systemMessage(t, next(t, b)); got != "four" {
		t.Fatalf("b got %q", got)
	}
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		m, err := c.ReadMessage(ctx)
		cancel()
		if err != nil {
			break
		}
		if m.ID == "a" {
			t.Fatalf("completed subscription a still received %s", m.Raw)
		}
	}
	if st := h.ws.Stats(); st.Subscriptions != 1 || st.Shapes != 1 {
		t.Fatalf("stats = %+v, want 1 subscription, 1 shape", st)
	}

	// The id of a completed subscription can be reused.
	a2 := subscribe(t, c, "a", systemQuery, nil)
	h.system(t, "five")
	if got := systemMessage(t, next(t, a2)); got != "five" {
		t.Fatalf("reused id got %q", got)
	}
}

func TestServerEndsSubscription(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t, "alice")
	const q = `subscription($p: ID!) { projectUpdates(projectId: $p) { type project { id } } }`
	left := subscribe(t, c, "left", q, map[string]any{"p": "p1"})
	closed := subscribe(t, c, "closed", q, map[string]any{"p": "p2"})

	// Leave: the event that removes alice still reaches her, then the
	// subscription ends with FORBIDDEN.
	h.publish(t, "PROJECT_MEMBER_REMOVED", []string{realtime.RoomProject("p1")},
		eventData{Project: projectP("p1")}, &realtime.Control{Op: realtime.Leave, UserID: "alice", Room: realtime.RoomProject("p1")})
	next(t, left)
	e := opError(t, left)
	if e.Code() != "FORBIDDEN" || len(e.Path) != 1 || e.Path[0] != "projectUpdates" {
		t.Errorf("error = %+v, want FORBIDDEN at [projectUpdates]", e)
	}

	// CloseRoom: complete.
	h.publish(t, "PROJECT_DELETED", []string{realtime.RoomProject("p2")},
		eventData{Project: projectP("p2")}, &realtime.Control{Op: realtime.CloseRoom, Room: realtime.RoomProject("p2")})
	next(t, closed)
	if _, err := closed.Next(testCtx(t)); !errors.Is(err, wsclient.ErrCompleted) {
		t.Fatalf("after CloseRoom: %v, want complete", err)
	}
	eventually(t, "subscriptions released", func() bool {
		st := h.ws.Stats()
		return st.Subscriptions == 0 && st.Shapes == 0
	})
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatalf("connection did not stay: %v", err)
	}
}

func TestSubscribeErrors(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxSubsPerConn = 2 })
	c := h.connect(t, "alice")
	ctx := testCtx(t)

	// A validation error is an error message; the connection stays usable.
	bad, err := c.Subscribe(ctx, "bad", `subscription { nope }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := opError(t, bad); !strings.Contains(e.Message, "nope") || e.Code() != "BAD_USER_INPUT" {
		t.Errorf("validation error = %+v", e)
	}

	// A resolver that refuses: its error, and nothing is left behind.
	denied, err := c.Subscribe(ctx, "denied", `subscription { projectUpdates(projectId: "forbidden") { type } }`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := opError(t, denied); e.Code() != "FORBIDDEN" || !strings.Contains(e.Message, "not a member") {
		t.Errorf("resolver error = %+v", e)
	}
	if st := h.ws.Stats(); st.Subscriptions != 0 || st.Shapes != 0 {
		t.Errorf("after a failed subscribe: %+v", st)
	}

	// MaxSubsPerConn: one more gets BAD_USER_INPUT; the connection stays.
	subscribe(t, c, "s1", systemQuery, nil)
	s2 := subscribe(t, c, "s2", systemQuery, nil)
	over, err := c.Subscribe(ctx, "s3", systemQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := opError(t, over)
	if e.Code() != "BAD_USER_INPUT" || e.Message != "too many subscriptions on this connection (limit 2)" {
		t.Errorf("limit error = %+v", e)
	}
	if err := s2.Complete(); err != nil {
		t.Fatal(err)
	}
	s3 := subscribe(t, c, "s3", systemQuery, nil)
	h.system(t, "after the limit")
	if got := systemMessage(t, next(t, s3)); got != "after the limit" {
		t.Errorf("got %q", got)
	}
}

func TestQueryOverSocket(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t, "alice")
	r, err := c.Execute(testCtx(t), `query Me { me { id name online } }`, nil)
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	if string(r.Data) != `{"me":{"id":"alice","name":"User alice","online":true}}` {
		t.Errorf("data = %s", r.Data)
	}
	// A query is no subscription: nothing stays registered.
	eventually(t, "operation done", func() bool { return h.ws.Stats().Subscriptions == 0 })
}

func TestOriginRefused(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.CheckOrigin = func(r *http.Request) bool { return r.Header.Get("Origin") == "" }
	})
	_, err := wsclient.Dial(testCtx(t), h.url, wsclient.DialOptions{Header: http.Header{"Origin": {"https://evil.example"}}})
	var he *wsclient.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("dial from a refused origin: %v, want HTTP 403", err)
	}
	h.dial(t, wsclient.DialOptions{}) // no Origin: allowed
}

func TestRegistryInfo(t *testing.T) {
	h := newHarness(t, nil)
	c := h.dial(t, wsclient.DialOptions{})
	if h.reg.Len() != 0 {
		t.Fatal("registered before connection_init")
	}
	if err := c.Init(testCtx(t), map[string]any{"token": "ok:alice"}); err != nil {
		t.Fatal(err)
	}
	infos := h.reg.ByUser("alice")
	if len(infos) != 1 {
		t.Fatalf("ByUser = %+v", infos)
	}
	in := infos[0]
	if in.Transport != ProtocolTransportWS || in.IP != "127.0.0.1" || in.UserAgent == "" || in.ID == "" || in.UserID != "alice" {
		t.Errorf("info = %+v", in)
	}
	time.Sleep(20 * time.Millisecond)
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if after := h.reg.ByUser("alice")[0].LastActivity; !after.After(in.LastActivity) {
		t.Errorf("lastActivity not updated by a message: %v then %v", in.LastActivity, after)
	}
	_ = c.Close()
	eventually(t, "unregistered", func() bool { return h.reg.Len() == 0 && h.ws.Stats().Connections == 0 })
}

func TestLegacyProtocol(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.PingInterval = 100 * time.Millisecond })
	ctx := testCtx(t)

	t.Run("happy path", func(t *testing.T) {
		c := h.dial(t, wsclient.DialOptions{Subprotocol: wsclient.ProtocolGraphQLWS})
		if c.Subprotocol() != ProtocolGraphQLWS {
			t.Fatalf("negotiated %q", c.Subprotocol())
		}
		if err := c.Init(ctx, map[string]any{"token": "ok:alice"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "ka after ack", func() bool { return c.KeepAlives() >= 1 })
		s, err := c.Subscribe(ctx, "1", systemQuery, nil)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "subscribed", func() bool { return h.ws.Stats().Subscriptions == 1 })
		h.system(t, "legacy")
		if got := systemMessage(t, next(t, s)); got != "legacy" {
			t.Errorf("data = %q", got)
		}
		r, err := c.Execute(ctx, `{ me { id } }`, nil)
		if err != nil || string(r.Data) != `{"me":{"id":"alice"}}` {
			t.Errorf("query: %s, %v", r.Data, err)
		}
		if err := s.Complete(); err != nil { // stop
			t.Fatal(err)
		}
		eventually(t, "stopped", func() bool { return h.ws.Stats().Subscriptions == 0 })
		eventually(t, "periodic ka", func() bool { return c.KeepAlives() >= 3 })
		if err := c.WriteRaw(`{"type":"connection_terminate"}`); err != nil {
			t.Fatal(err)
		}
		waitClose(t, c, 1000, "")
	})

	t.Run("auth failure", func(t *testing.T) {
		c := h.dial(t, wsclient.DialOptions{Subprotocol: wsclient.ProtocolGraphQLWS})
		err := c.Init(ctx, map[string]any{"token": "nope"})
		var ce *wsclient.ConnectionError
		if !errors.As(err, &ce) || !strings.Contains(string(ce.Payload), "invalid token") {
			t.Fatalf("init: %v, want connection_error", err)
		}
		waitClose(t, c, 4403, "invalid token")
	})

	t.Run("bad messages", func(t *testing.T) {
		c := h.dial(t, wsclient.DialOptions{Subprotocol: wsclient.ProtocolGraphQLWS})
		if err := c.Init(ctx, map[string]any{"token": "ok:alice"}); err != nil {
			t.Fatal(err)
		}
		// Unknown type: an error message, the connection stays.
		if err := c.WriteRaw(`{"type":"subscribe","id":"x"}`); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMessage(ctx)
		if err != nil || m.Type != "error" || m.ID != "x" || !strings.Contains(string(m.Payload), "unknown message type") {
			t.Fatalf("got %s, %v", m.Raw, err)
		}
		// Not JSON: 4400.
		if err := c.WriteRaw(`nope`); err != nil {
			t.Fatal(err)
		}
		waitClose(t, c, 4400, "not a JSON object")
	})
}

func TestCloseRefusesNewConnections(t *testing.T) {
	h := newHarness(t, nil)
	c := h.connect(t, "alice")
	h.ws.Close()
	waitClose(t, c, 1001, "server shutting down")
	_, err := wsclient.Dial(testCtx(t), h.url, wsclient.DialOptions{})
	var he *wsclient.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after Close: %v, want 503", err)
	}
}

func projectP(id string) *model.Project {
	return &model.Project{ID: id, Name: "Project " + id, OwnerID: "alice"}
}

// jsonEqual compares two JSON documents.
func jsonEqual(t testing.TB, got, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal([]byte(got), &a); err != nil {
		t.Fatalf("bad JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad JSON %s: %v", want, err)
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return string(ab) == string(bb)
}

// TestServerFrames checks the frames the server writes itself, on a raw
// socket: messages, a pong answering a ping (with its payload), and the
// close handshake started by either side — the server answers a client's
// close with the client's code, and closes TCP after.
func TestServerFrames(t *testing.T) {
	h := newHarness(t, nil)
	addr := h.srv.Listener.Addr().String()

	t.Run("messages and pong", func(t *testing.T) {
		c := dialRaw(t, addr, 0)
		defer c.Close()
		c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:alice"}}`)
		if op, p := c.readFrame(t); op != opText || string(p) != `{"type":"connection_ack"}` {
			t.Fatalf("frame %#x %q, want the ack as a text frame", op, p)
		}
		c.writeFrame(t, opPing, "are you there")
		if op, p := c.readFrame(t); op != opPong || string(p) != "are you there" {
			t.Fatalf("frame %#x %q, want a pong with the ping's payload", op, p)
		}
		// A message longer than 125 bytes has a 16-bit length.
		c.writeText(t, `{"type":"ping","payload":{"pad":"`+strings.Repeat("p", 300)+`"}}`)
		if op, p := c.readFrame(t); op != opText || !strings.HasPrefix(string(p), `{"type":"pong","payload":{"pad":"ppp`) || len(p) < 300 {
			t.Fatalf("frame %#x %.40q (%d bytes), want the pong message", op, p, len(p))
		}
	})

	t.Run("client closes", func(t *testing.T) {
		c := dialRaw(t, addr, 0)
		defer c.Close()
		c.writeFrame(t, opClose, "\x0f\xa0bye") // 4000 "bye"
		op, p := c.readFrame(t)
		if op != opClose || len(p) < 2 || int(p[0])<<8|int(p[1]) != 4000 {
			t.Fatalf("frame %#x %q, want a close with code 4000", op, p)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("read %d bytes after the close handshake, want the end of the stream", n)
		}
		eventually(t, "torn down", func() bool { return h.ws.Stats().Connections == 0 })
	})

	t.Run("server closes", func(t *testing.T) {
		c := dialRaw(t, addr, 0)
		defer c.Close()
		c.writeText(t, `{"type":"nope"}`) // before init: 4400
		op, p := c.readFrame(t)
		if op != opClose || len(p) < 2 || int(p[0])<<8|int(p[1]) != CloseBadRequest {
			t.Fatalf("frame %#x %q, want a close with code 4400", op, p)
		}
		c.writeFrame(t, opClose, string(p[:2])) // the client's answer
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("read %d bytes after the close handshake, want the end of the stream", n)
		}
		if d := time.Since(start); d > closeGrace/2 {
			t.Errorf("TCP closed %v after the client's close answer, want at once", d)
		}
	})
}

// TestConnCtx: a connection's base context has its values and the
// transport's cancellation, and contexts derived from it — directly or
// below values, as an operation's is — cost no goroutine.
func TestConnCtx(t *testing.T) {
	type key struct{}
	base, stop := context.WithCancel(context.Background())
	defer stop()
	vals, cancelVals := context.WithCancel(context.WithValue(context.Background(), key{}, "viewer"))
	cancelVals() // the values' own cancellation does not matter
	c := &connCtx{Context: base, vals: vals}
	if c.Value(key{}) != "viewer" || c.Err() != nil {
		t.Fatalf("value %v, err %v; want the values', not cancelled", c.Value(key{}), c.Err())
	}

	before := runtime.NumGoroutine()
	var derived []context.Context
	for range 50 {
		ctx, cancel := context.WithCancel(graphql.StartOperationTrace(c))
		defer cancel()
		derived = append(derived, ctx)
		ctx, cancel = context.WithTimeout(c, time.Hour)
		defer cancel()
		derived = append(derived, ctx)
	}
	if n := runtime.NumGoroutine() - before; n > 0 {
		t.Errorf("100 derived contexts started %d goroutines, want none", n)
	}
	stop()
	for _, ctx := range derived {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a derived context was not cancelled with the transport's")
		}
	}
}
