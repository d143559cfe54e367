package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeServer is a scripted graphql-transport-ws server: it acks any init
// (closing 4403 for the token "bad"), answers pings, and for a subscribe
// whose query is "count N" sends N results then complete; "fail" gets an
// error message; "close" closes the socket with 4409.
func fakeServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(fakeHandler())
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func fakeHandler() http.Handler {
	up := websocket.Upgrader{Subprotocols: []string{ProtocolTransportWS, ProtocolGraphQLWS}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		legacy := ws.Subprotocol() == ProtocolGraphQLWS
		send := func(v map[string]any) {
			b, _ := json.Marshal(v)
			_ = ws.WriteMessage(websocket.TextMessage, b)
		}
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var m struct {
				ID      string
				Type    string
				Payload json.RawMessage
			}
			if json.Unmarshal(data, &m) != nil {
				send(map[string]any{"type": "echo", "payload": string(data)})
				continue
			}
			switch m.Type {
			case "connection_init":
				if strings.Contains(string(m.Payload), "bad") {
					_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4403, "Forbidden"), time.Now().Add(time.Second))
					continue
				}
				send(map[string]any{"type": "connection_ack"})
				if legacy {
					send(map[string]any{"type": "ka"})
				}
			case "ping":
				send(map[string]any{"type": "pong"})
			case "subscribe", "start":
				var p struct{ Query string }
				_ = json.Unmarshal(m.Payload, &p)
				next := "next"
				if legacy {
					next = "data"
				}
				switch {
				case strings.HasPrefix(p.Query, "count "):
					var n int
					fmt.Sscan(strings.TrimPrefix(p.Query, "count "), &n)
					for i := range n {
						send(map[string]any{"id": m.ID, "type": next, "payload": map[string]any{"data": map[string]any{"i": i}}})
					}
					send(map[string]any{"id": m.ID, "type": "complete"})
				case p.Query == "fail":
					send(map[string]any{"id": m.ID, "type": "error", "payload": []any{map[string]any{"message": "nope", "extensions": map[string]any{"code": "BAD_USER_INPUT"}}}})
				case p.Query == "close":
					_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4409, "Subscriber for "+m.ID+" already exists"), time.Now().Add(time.Second))
				}
			}
		}
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func dial(t *testing.T, url string, opts DialOptions) *Client {
	t.Helper()
	c, err := Dial(ctx(t), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestDemultiplexing(t *testing.T) {
	url := fakeServer(t)
	c := dial(t, url, DialOptions{})
	if c.Subprotocol() != ProtocolTransportWS {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	if err := c.Init(ctx(t), map[string]any{"token": "x"}); err != nil {
		t.Fatal(err)
	}
	// Two operations interleaved on the wire, read one after the other:
	// nothing is lost, each sees its own results in order.
	a, err := c.Subscribe(ctx(t), "a", "count 50", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Subscribe(ctx(t), "b", "count 3", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		sub *Sub
		n   int
	}{{b, 3}, {a, 50}} {
		for i := range s.n {
			r, err := s.sub.Next(ctx(t))
			if err != nil || string(r.Data) != fmt.Sprintf(`{"i":%d}`, i) {
				t.Fatalf("%s[%d] = %s, %v", s.sub.ID, i, r.Data, err)
			}
		}
		if _, err := s.sub.Next(ctx(t)); !errors.Is(err, ErrCompleted) {
			t.Fatalf("%s: %v, want ErrCompleted", s.sub.ID, err)
		}
	}

	r, err := c.Execute(ctx(t), "count 1", nil)
	if err != nil || string(r.Data) != `{"i":0}` {
		t.Fatalf("Execute = %s, %v", r.Data, err)
	}

	f, err := c.Subscribe(ctx(t), "f", "fail", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Next(ctx(t))
	var oe *OperationError
	if !errors.As(err, &oe) || oe.Errors[0].Message != "nope" || oe.Errors[0].Code() != "BAD_USER_INPUT" {
		t.Fatalf("error message: %v", err)
	}

	if err := c.WriteRaw("not json"); err != nil {
		t.Fatal(err)
	}
	m, err := c.ReadMessage(ctx(t))
	if err != nil || m.Type != "echo" {
		t.Fatalf("ReadMessage = %+v, %v", m, err)
	}
}

func TestCloses(t *testing.T) {
	url := fakeServer(t)

	c := dial(t, url, DialOptions{})
	err := c.Init(ctx(t), map[string]any{"token": "bad"})
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4403 || ce.Reason != "Forbidden" {
		t.Fatalf("Init = %v, want close 4403", err)
	}

	c = dial(t, url, DialOptions{})
	if err := c.Init(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	s, err := c.Subscribe(ctx(t), "x", "close", nil)
	if err != nil {
		t.Fatal(err)
	}
	ce, err = c.WaitClose(ctx(t))
	if err != nil || ce.Code != 4409 || ce.Reason != "Subscriber for x already exists" {
		t.Fatalf("WaitClose = %v, %v", ce, err)
	}
	if _, err := s.Next(ctx(t)); !errors.As(err, &ce) {
		t.Fatalf("Next after close = %v, want the close error", err)
	}
	if _, err := c.Subscribe(ctx(t), "y", "count 1", nil); !errors.As(err, &ce) {
		t.Fatalf("Subscribe after close = %v, want the close error", err)
	}
}

func TestLegacy(t *testing.T) {
	url := fakeServer(t)
	c := dial(t, url, DialOptions{Subprotocol: ProtocolGraphQLWS})
	if err := c.Init(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	r, err := c.Execute(ctx(t), "count 1", nil)
	if err != nil || string(r.Data) != `{"i":0}` {
		t.Fatalf("Execute = %s, %v", r.Data, err)
	}
	if c.KeepAlives() != 1 {
		t.Errorf("keepalives = %d, want 1", c.KeepAlives())
	}
}

func TestHandshakeError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	_, err := Dial(ctx(t), "ws"+strings.TrimPrefix(srv.URL, "http"), DialOptions{})
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("Dial = %v, want HTTP 403", err)
	}
}

// TestEndRepeats: once an operation has ended, every later Next returns
// how it ended again, at once, instead of waiting for messages that will
// never come.
func TestEndRepeats(t *testing.T) {
	c := dial(t, fakeServer(t), DialOptions{})
	if err := c.Init(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		query string
		is    func(error) bool
	}{
		{"count 0", func(err error) bool { return errors.Is(err, ErrCompleted) }},
		{"fail", func(err error) bool {
			var oe *OperationError
			return errors.As(err, &oe) && oe.Errors[0].Message == "nope"
		}},
	}
	for _, tc := range cases {
		s, err := c.Subscribe(ctx(t), tc.query, tc.query, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			short, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := s.Next(short)
			cancel()
			if !tc.is(err) {
				t.Fatalf("%s: Next #%d = %v, want the operation's end again", tc.query, i+1, err)
			}
		}
	}
}

// TestIDInUse: an id can be reused once its operation has ended or been
// completed, not while it runs.
func TestIDInUse(t *testing.T) {
	c := dial(t, fakeServer(t), DialOptions{})
	if err := c.Init(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	s, err := c.Subscribe(ctx(t), "x", "idle", nil) // the server never answers it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx(t), "x", "count 1", nil); err == nil || !strings.Contains(err.Error(), `"x" is in use`) {
		t.Fatalf("second Subscribe with the id of a running operation = %v, want an error", err)
	}
	if err := s.Complete(); err != nil {
		t.Fatal(err)
	}
	again, err := c.Subscribe(ctx(t), "x", "count 1", nil)
	if err != nil {
		t.Fatalf("Subscribe after Complete: %v", err)
	}
	if r, err := again.Next(ctx(t)); err != nil || string(r.Data) != `{"i":0}` {
		t.Fatalf("reused id: %s, %v", r.Data, err)
	}
	if _, err := again.Next(ctx(t)); !errors.Is(err, ErrCompleted) {
		t.Fatalf("reused id: %v, want complete", err)
	}
	if _, err := c.Subscribe(ctx(t), "x", "count 1", nil); err != nil {
		t.Fatalf("Subscribe after the server's complete: %v", err)
	}
}

// TestMailboxTakeAllocates: taking a message reuses the mailbox's slice.
func TestMailboxTakeAllocates(t *testing.T) {
	b := newMailbox()
	for range 200 {
		b.put(Message{Type: "next"})
	}
	c := context.Background()
	if allocs := testing.AllocsPerRun(100, func() { _, _, _ = b.take(c, nil) }); allocs != 0 {
		t.Errorf("take allocates %.0f times, want 0", allocs)
	}
}
