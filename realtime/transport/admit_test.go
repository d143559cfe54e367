package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// admissions is an Options.Admit that counts what it admitted and what
// was given back, and catches a slot given back twice.
type admissions struct {
	mu       sync.Mutex
	max      int // refuse beyond this many held (0: never)
	admitted int
	held     int
	doubled  int
	refused  int
}

func (a *admissions) admit(*http.Request) (func(), error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.max > 0 && a.held >= a.max {
		a.refused++
		return nil, &errs.Error{Code: errs.RateLimited, Message: "too many connections", RetryAfter: 1500 * time.Millisecond}
	}
	a.admitted++
	a.held++
	released := false
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if released {
			a.doubled++
			return
		}
		released = true
		a.held--
	}, nil
}

func (a *admissions) counts() (admitted, held, doubled int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.admitted, a.held, a.doubled
}

// TestAdmitReleasedOnEveryClose: every WebSocket and SSE request is
// admitted once, and gives its slot back exactly once however it ends —
// by the client, by the server, for any reason, before or after
// connection_init.
func TestAdmitReleasedOnEveryClose(t *testing.T) {
	const ping = 200 * time.Millisecond
	adm := &admissions{}
	h := newHarnessSndbuf(t, func(o *Options) {
		o.Admit = adm.admit
		o.PingInterval = ping
		o.InitTimeout = 300 * time.Millisecond
		o.SendQueueBytes = 64 << 10
		o.CheckOrigin = func(r *http.Request) bool { return r.Header.Get("Origin") != "http://evil.example" }
	}, 16<<10)
	addr := h.srv.Listener.Addr().String()

	cases := []struct {
		name string
		// run opens one connection (or request) and makes it end.
		run func(t *testing.T)
	}{
		{"ws client close", func(t *testing.T) {
			c := h.connect(t, "alice")
			subscribe(t, c, "s", systemQuery, nil)
			_ = c.Close()
		}},
		{"ws client vanishes without a close frame", func(t *testing.T) {
			c := dialRaw(t, addr, 4096)
			c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:alice"}}`)
			eventually(t, "registered", func() bool { return h.reg.Online("alice") })
			_ = c.Close()
		}},
		{"ws slow consumer 4010", func(t *testing.T) {
			c := dialRaw(t, addr, 4096)
			defer c.Close()
			c.writeText(t, `{"type":"connection_init","payload":{"token":"ok:pinger"}}`)
			eventually(t, "registered", func() bool { return h.reg.Online("pinger") })
			before := h.ws.Stats().SlowConsumerDrops
			big := `{"type":"ping","payload":{"pad":"` + strings.Repeat("p", maxPingEcho-16) + `"}}`
			for i := 0; i < 1000 && h.ws.Stats().SlowConsumerDrops == before; i++ {
				c.writeText(t, big)
			}
			eventually(t, "dropped as a slow consumer", func() bool { return h.ws.Stats().SlowConsumerDrops == before+1 })
		}},
		{"ws keepalive timeout", func(t *testing.T) {
			c := h.dial(t, wsclient.DialOptions{IgnorePings: true})
			if err := c.Init(testCtx(t), map[string]any{"token": "ok:bob"}); err != nil {
				t.Fatal(err)
			}
			// No close frame: TCP is closed (gorilla reports 1006).
			if ce, err := c.WaitClose(testCtx(t)); err != nil || ce.Code != 1006 {
				t.Fatalf("silent peer's end: %v %v, want its TCP connection closed (1006)", ce, err)
			}
		}},
		{"ws token expiry 4403", func(t *testing.T) {
			c := h.dial(t, wsclient.DialOptions{})
			if err := c.Init(testCtx(t), map[string]any{"token": "ok:alice:300ms"}); err != nil {
				t.Fatal(err)
			}
			waitClose(t, c, CloseForbidden, "token expired")
		}},
		{"ws drain 1001", func(t *testing.T) {
			c := h.connect(t, "alice")
			h.reg.Drain(testCtx(t), 0, CloseGoingAway, "server shutting down")
			waitClose(t, c, CloseGoingAway, "shutting down")
		}},
		{"ws blocked 1008 (Registry.Disconnect)", func(t *testing.T) {
			c := h.connect(t, "alice")
			h.reg.Disconnect("alice", ClosePolicyViolation, "blocked")
			waitClose(t, c, ClosePolicyViolation, "blocked")
		}},
		{"ws no connection_init 4408", func(t *testing.T) {
			waitClose(t, h.dial(t, wsclient.DialOptions{}), CloseInitTimeout, "timeout")
		}},
		{"ws refused credentials 4403", func(t *testing.T) {
			c := h.dial(t, wsclient.DialOptions{})
			_ = c.Init(testCtx(t), map[string]any{"token": "bad"})
			waitClose(t, c, CloseForbidden, "invalid token")
		}},
		{"ws protocol error 4400", func(t *testing.T) {
			c := h.connect(t, "alice")
			_ = c.WriteRaw(`{"type":"bogus"}`)
			waitClose(t, c, CloseBadRequest, "unknown type")
		}},
		{"ws no subprotocol 4406", func(t *testing.T) {
			waitClose(t, h.dial(t, wsclient.DialOptions{NoSubprotocol: true}), CloseSubprotocolNotAccepted, "Subprotocol")
		}},
		{"ws upgrade refused (Origin) 403", func(t *testing.T) {
			_, err := wsclient.Dial(testCtx(t), h.url, wsclient.DialOptions{Header: http.Header{"Origin": {"http://evil.example"}}})
			var he *wsclient.HandshakeError
			if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
				t.Fatalf("dial from a refused origin: %v, want 403", err)
			}
		}},
		{"sse stream, client goes away", func(t *testing.T) {
			s := openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil)
			eventually(t, "registered", func() bool { return h.reg.Online("alice") })
			_ = s.resp.Body.Close()
		}},
		{"sse stream, server closes it", func(t *testing.T) {
			s := openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil)
			eventually(t, "registered", func() bool { return h.reg.Online("alice") })
			h.reg.Disconnect("alice", ClosePolicyViolation, "blocked")
			s.wantEnd()
		}},
		{"sse subscription refused by its resolver", func(t *testing.T) {
			s := openSSE(t, h, http.MethodPost, body(`subscription { projectUpdates(projectId: "forbidden") { type } }`, nil), nil)
			s.want("next", "")
			s.want("complete", "")
		}},
		{"sse query", func(t *testing.T) {
			s := openSSE(t, h, http.MethodPost, body(`{ me { id } }`, nil), nil)
			s.want("next", `{"data":{"me":{"id":"alice"}}}`)
			s.want("complete", "")
		}},
		{"sse refused credentials 401", func(t *testing.T) {
			s := openSSE(t, h, http.MethodPost, body(systemQuery, nil), map[string]string{"Authorization": "Bearer bad"})
			if s.resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", s.resp.StatusCode)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, _, _ := adm.counts()
			c.run(t)
			eventually(t, "the slot given back", func() bool { _, held, _ := adm.counts(); return held == 0 })
			admitted, _, doubled := adm.counts()
			if admitted != before+1 {
				t.Errorf("%d admissions, want 1", admitted-before)
			}
			if doubled != 0 {
				t.Fatalf("a slot was given back twice (%d)", doubled)
			}
		})
	}

	t.Run("server Close", func(t *testing.T) {
		for _, u := range []string{"alice", "bob", "carol"} {
			subscribe(t, h.connect(t, u), "s", systemQuery, nil)
		}
		_ = h.dial(t, wsclient.DialOptions{}) // not yet initialised
		streams := []*sseStreamReader{
			openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil),
			openSSE(t, h, http.MethodPost, body(systemQuery, nil), map[string]string{"Authorization": "Bearer ok:dave"}),
		}
		eventually(t, "all open", func() bool { _, held, _ := adm.counts(); return held == 6 })
		h.ws.Close()
		h.sse.Close()
		for _, s := range streams {
			s.wantEnd()
		}
		eventually(t, "every slot given back", func() bool { _, held, _ := adm.counts(); return held == 0 })
		if _, _, doubled := adm.counts(); doubled != 0 {
			t.Fatalf("a slot was given back twice (%d)", doubled)
		}
	})
}

// TestAdmitRefuses: past Admit's limit a WebSocket upgrade and an SSE
// request are answered 429 with Retry-After (whole seconds, rounded up)
// and a RATE_LIMITED error, before any upgrade or authentication; a slot
// given back admits the next.
func TestAdmitRefuses(t *testing.T) {
	adm := &admissions{max: 2}
	h := newHarness(t, func(o *Options) { o.Admit = adm.admit })
	a := h.connect(t, "alice")
	b := openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil)
	eventually(t, "both registered", func() bool { return len(h.reg.ByUser("alice")) == 2 })

	check := func(what string, status int, header http.Header, raw []byte) {
		t.Helper()
		if status != http.StatusTooManyRequests || header.Get("Retry-After") != "2" {
			t.Fatalf("%s: %d Retry-After %q, want 429 and 2 (1.5 s rounded up)", what, status, header.Get("Retry-After"))
		}
		var resp struct {
			Errors []wsclient.GQLError `json:"errors"`
		}
		if err := json.Unmarshal(raw, &resp); err != nil || len(resp.Errors) != 1 {
			t.Fatalf("%s: body %s", what, raw)
		}
		e := resp.Errors[0]
		if e.Code() != string(errs.RateLimited) || e.Extensions["retryAfter"] != float64(2) || e.Message != "too many connections" {
			t.Fatalf("%s: error %+v, want RATE_LIMITED, retryAfter 2", what, e)
		}
	}
	d := websocket.Dialer{Subprotocols: []string{ProtocolTransportWS}}
	_, res, err := d.DialContext(testCtx(t), h.url, nil)
	if err == nil || res == nil {
		t.Fatalf("third connection upgraded: %v", err)
	}
	raw, _ := io.ReadAll(res.Body)
	check("WebSocket", res.StatusCode, res.Header, raw)

	s := openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil)
	raw, _ = io.ReadAll(s.resp.Body)
	check("SSE", s.resp.StatusCode, s.resp.Header, raw)

	if got := len(h.reg.ByUser("alice")); got != 2 {
		t.Fatalf("%d connections registered, want the 2 admitted", got)
	}
	// The admitted ones are untouched; closing one admits a new one.
	if err := a.Ping(testCtx(t)); err != nil {
		t.Fatalf("an admitted socket broke: %v", err)
	}
	_ = b.resp.Body.Close()
	eventually(t, "a slot free", func() bool { _, held, _ := adm.counts(); return held == 1 })
	h.connect(t, "bob")
}

// TestMaxSubsPerConn: one subscription past MaxSubsPerConn is refused with
// BAD_USER_INPUT naming the limit, OnLimit is told, and the connection and
// its subscriptions go on; completing one makes room.
func TestMaxSubsPerConn(t *testing.T) {
	var mu sync.Mutex
	var limits []string
	var users []string
	h := newHarness(t, func(o *Options) {
		o.MaxSubsPerConn = 2
		o.OnLimit = func(ctx context.Context, limit string) {
			u, _ := viewer(ctx)
			mu.Lock()
			limits, users = append(limits, limit), append(users, u)
			mu.Unlock()
		}
	})
	c := h.connect(t, "alice")
	s1 := subscribe(t, c, "1", systemQuery, nil)
	s2 := subscribe(t, c, "2", systemQuery, nil)
	s3, err := c.Subscribe(testCtx(t), "3", systemQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := opError(t, s3)
	if e.Code() != string(errs.BadUserInput) || e.Extensions["limit"] != LimitMaxSubsPerConn || !strings.Contains(e.Message, "limit 2") {
		t.Fatalf("third subscription: %+v, want BAD_USER_INPUT naming MAX_SUBS_PER_CONN and 2", e)
	}
	mu.Lock()
	if len(limits) != 1 || limits[0] != LimitMaxSubsPerConn || users[0] != "alice" {
		t.Fatalf("OnLimit calls %v for %v, want one MAX_SUBS_PER_CONN for alice", limits, users)
	}
	mu.Unlock()
	h.system(t, "still here")
	for _, s := range []*wsclient.Sub{s1, s2} {
		if m := systemMessage(t, next(t, s)); m != "still here" {
			t.Fatalf("sub %s: %q", s.ID, m)
		}
	}
	if err := s1.Complete(); err != nil {
		t.Fatal(err)
	}
	s4 := subscribe(t, c, "4", systemQuery, nil)
	h.system(t, "room again")
	if m := systemMessage(t, next(t, s4)); m != "room again" {
		t.Fatalf("sub 4: %q", m)
	}
}

// TestClientIPAndCloseError: Options.ClientIP is what ConnInfo shows, and
// an Authenticate error carrying a CloseError closes with its code.
func TestClientIPAndCloseError(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.ClientIP = func(r *http.Request) string { return "203.0.113.9" }
		inner := o.Authenticate
		o.Authenticate = func(ctx context.Context, r *http.Request, init map[string]any) (context.Context, string, time.Time, error) {
			if init["token"] == "blocked" {
				return nil, "", time.Time{}, &CloseError{Code: ClosePolicyViolation, Reason: "blocked for a while"}
			}
			return inner(ctx, r, init)
		}
	})
	h.connect(t, "alice")
	openSSE(t, h, http.MethodPost, body(systemQuery, nil), map[string]string{"Authorization": "Bearer ok:bob"})
	eventually(t, "both registered", func() bool { return h.reg.Online("alice") && h.reg.Online("bob") })
	for _, u := range []string{"alice", "bob"} {
		if ip := h.reg.ByUser(u)[0].IP; ip != "203.0.113.9" {
			t.Errorf("%s's connection IP %q, want Options.ClientIP's", u, ip)
		}
	}
	c := h.dial(t, wsclient.DialOptions{})
	_ = c.Init(testCtx(t), map[string]any{"token": "blocked"})
	waitClose(t, c, ClosePolicyViolation, "blocked for a while")
}
