package transport

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/realtime"
)

// sseStreamReader reads an event stream the way a client does.
type sseStreamReader struct {
	t        testing.TB
	resp     *http.Response
	r        *bufio.Reader
	comments int
}

type sseEv struct{ event, data string }

// openSSE starts a request for an event stream; header may add or
// override headers (an empty value removes one).
func openSSE(t testing.TB, h *harness, method, body string, header map[string]string) *sseStreamReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	target := h.srv.URL + "/graphql"
	var rd io.Reader
	if method == http.MethodGet {
		target += "?" + body
	} else {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer ok:alice")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("request: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
	})
	return &sseStreamReader{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next event; io.EOF when the stream ended.
func (s *sseStreamReader) next() (sseEv, error) {
	var ev sseEv
	seen := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if err == io.EOF && seen {
				return ev, io.ErrUnexpectedEOF
			}
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if seen {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			s.comments++
		case strings.HasPrefix(line, "event: "):
			ev.event, seen = strings.TrimPrefix(line, "event: "), true
		case strings.HasPrefix(line, "data:"):
			ev.data, seen = strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "), true
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

func (s *sseStreamReader) want(event, data string) {
	s.t.Helper()
	ev, err := s.next()
	if err != nil {
		s.t.Fatalf("want %s event, got %v", event, err)
	}
	if ev.event != event || (data != "" && !jsonEqual(s.t, ev.data, data)) {
		s.t.Fatalf("event %s %s, want %s %s", ev.event, ev.data, event, data)
	}
}

func (s *sseStreamReader) wantEnd() {
	s.t.Helper()
	if ev, err := s.next(); !errors.Is(err, io.EOF) {
		s.t.Fatalf("want the end of the stream, got %+v %v", ev, err)
	}
}

func body(query string, vars map[string]any) string {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return string(b)
}

func TestSSESubscription(t *testing.T) {
	h := newHarness(t, nil)
	s := openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil)
	if ct := s.resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") || s.resp.StatusCode != 200 {
		t.Fatalf("response %d %q", s.resp.StatusCode, ct)
	}
	// The stream registers right after its subscription starts.
	eventually(t, "subscribed and registered", func() bool {
		return h.sse.Stats().Subscriptions == 1 && len(h.reg.ByUser("alice")) == 1
	})
	infos := h.reg.ByUser("alice")
	if len(infos) != 1 || infos[0].Transport != TransportSSE {
		t.Fatalf("registry = %+v", infos)
	}
	h.system(t, "one")
	h.system(t, "two")
	s.want("next", `{"data":{"systemUpdates":{"type":"SYSTEM_UPDATE","cursor":"c1","message":"one"}}}`)
	s.want("next", `{"data":{"systemUpdates":{"type":"SYSTEM_UPDATE","cursor":"c2","message":"two"}}}`)

	// The server closes it (drain, disconnect): the stream ends without
	// complete, so the client reconnects.
	if n := h.reg.Disconnect("alice", CloseGoingAway, "bye"); n != 1 {
		t.Fatalf("Disconnect = %d", n)
	}
	s.wantEnd()
	eventually(t, "torn down", func() bool {
		st := h.sse.Stats()
		return st.Connections == 0 && st.Subscriptions == 0 && st.Shapes == 0 && h.reg.Len() == 0
	})
}

func TestSSEServerEnds(t *testing.T) {
	h := newHarness(t, nil)
	const q = `subscription($p: ID!) { projectUpdates(projectId: $p) { type project { id } } }`

	done := openSSE(t, h, http.MethodPost, body(q, map[string]any{"p": "p1"}), nil)
	left := openSSE(t, h, http.MethodPost, body(q, map[string]any{"p": "p2"}), nil)
	eventually(t, "subscribed", func() bool { return h.sse.Stats().Subscriptions == 2 })
	if st := h.sse.Stats(); st.Shapes != 1 {
		t.Errorf("shapes = %d, want 1 (root arguments are not part of the shape)", st.Shapes)
	}

	h.publish(t, "PROJECT_DELETED", []string{realtime.RoomProject("p1")}, eventData{Project: projectP("p1")},
		&realtime.Control{Op: realtime.CloseRoom, Room: realtime.RoomProject("p1")})
	done.want("next", `{"data":{"projectUpdates":{"type":"PROJECT_DELETED","project":{"id":"p1"}}}}`)
	done.want("complete", "")
	done.wantEnd()

	h.publish(t, "PROJECT_MEMBER_REMOVED", []string{realtime.RoomProject("p2")}, eventData{Project: projectP("p2")},
		&realtime.Control{Op: realtime.Leave, UserID: "alice", Room: realtime.RoomProject("p2")})
	left.want("next", `{"data":{"projectUpdates":{"type":"PROJECT_MEMBER_REMOVED","project":{"id":"p2"}}}}`)
	ev, err := left.next()
	if err != nil || ev.event != "next" || !strings.Contains(ev.data, `"FORBIDDEN"`) {
		t.Fatalf("want a next event with FORBIDDEN, got %+v %v", ev, err)
	}
	left.want("complete", "")
	left.wantEnd()
}

func TestSSEOneShot(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		name, method, body string
		header             map[string]string
		want               string // the next event's data
	}{
		{"query", http.MethodPost, body(`{ me { id } }`, nil), nil, `{"data":{"me":{"id":"alice"}}}`},
		{"query over GET", http.MethodGet, "query=" + url.QueryEscape(`query($x: Boolean!) { me { id @include(if: $x) name } }`) + "&variables=" + url.QueryEscape(`{"x":true}`), nil,
			`{"data":{"me":{"id":"alice","name":"User alice"}}}`},
		{"resolver error", http.MethodPost, body(`subscription { projectUpdates(projectId: "forbidden") { type } }`, nil), nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openSSE(t, h, tc.method, tc.body, tc.header)
			if s.resp.StatusCode != 200 {
				t.Fatalf("status %d", s.resp.StatusCode)
			}
			ev, err := s.next()
			if err != nil || ev.event != "next" {
				t.Fatalf("got %+v %v, want a next event", ev, err)
			}
			if tc.want != "" {
				if !jsonEqual(t, ev.data, tc.want) {
					t.Errorf("data %s, want %s", ev.data, tc.want)
				}
			} else {
				var r struct {
					Errors []struct {
						Message    string
						Extensions map[string]any
					}
				}
				if err := json.Unmarshal([]byte(ev.data), &r); err != nil || len(r.Errors) == 0 || r.Errors[0].Extensions["code"] == nil {
					t.Errorf("data %s, want errors with a code", ev.data)
				}
			}
			s.want("complete", "")
			s.wantEnd()
		})
	}
	if st := h.sse.Stats(); st.Subscriptions != 0 || st.Shapes != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestSSERefusals: what is decided before the stream starts is an HTTP
// status with a JSON body, never a 200 stream with errors.
func TestSSERefusals(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ReadLimit = 256 })
	get := func(query string) string { return "query=" + url.QueryEscape(query) }
	cases := []struct {
		name, method, body string
		header             map[string]string
		status             int
		code               string // extensions.code of the first error, if the GraphQL layer presents it
		message            string // part of the first error's message
	}{
		{name: "not JSON", method: http.MethodPost, body: `query`, status: http.StatusBadRequest, message: "must be {query"},
		{name: "no query", method: http.MethodPost, body: `{"variables":{}}`, status: http.StatusBadRequest, message: `needs a "query"`},
		{name: "wrong content type", method: http.MethodPost, body: `{"query":"{ me { id } }"}`, header: map[string]string{"Content-Type": "text/plain"},
			status: http.StatusUnsupportedMediaType, message: "application/json"},
		{name: "too large", method: http.MethodPost, body: `{"query":"` + strings.Repeat(" ", 300) + `{ me { id } }"}`, status: http.StatusRequestEntityTooLarge, message: "larger than 256 bytes"},
		{name: "unauthenticated", method: http.MethodPost, body: body(systemQuery, nil), header: map[string]string{"Authorization": ""},
			status: http.StatusUnauthorized, code: "UNAUTHENTICATED", message: "missing token"},
		{name: "bad token", method: http.MethodPost, body: body(systemQuery, nil), header: map[string]string{"Authorization": "Bearer nope"},
			status: http.StatusUnauthorized, code: "UNAUTHENTICATED", message: "invalid token"},
		{name: "validation error", method: http.MethodPost, body: body(`subscription { nope }`, nil), status: http.StatusBadRequest, code: "BAD_USER_INPUT", message: "nope"},
		{name: "validation error over GET", method: http.MethodGet, body: get(`{ nope }`), status: http.StatusBadRequest, code: "BAD_USER_INPUT", message: "nope"},
		{name: "mutation over GET", method: http.MethodGet, body: get(`mutation { deleteTask(id: "t1") }`), status: http.StatusMethodNotAllowed, message: "mutations are not allowed over GET"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openSSE(t, h, tc.method, tc.body, tc.header)
			if s.resp.StatusCode != tc.status || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("status %d %s, want %d JSON", s.resp.StatusCode, s.resp.Header.Get("Content-Type"), tc.status)
			}
			var r struct {
				Errors []struct {
					Message    string
					Extensions map[string]any
				}
			}
			if err := json.NewDecoder(s.resp.Body).Decode(&r); err != nil || len(r.Errors) == 0 {
				t.Fatalf("body: %+v, %v; want GraphQL errors", r, err)
			}
			e := r.Errors[0]
			if !strings.Contains(e.Message, tc.message) || tc.code != "" && e.Extensions["code"] != tc.code {
				t.Errorf("error %+v, want a message containing %q and code %q", e, tc.message, tc.code)
			}
		})
	}
	if st := h.sse.Stats(); st.Subscriptions != 0 || st.Connections != 0 {
		t.Errorf("stats after refusals = %+v", st)
	}
}

func TestSSEKeepaliveAndClose(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.PingInterval = 30 * time.Millisecond })
	s := openSSE(t, h, http.MethodPost, body(systemQuery, nil), nil)
	eventually(t, "subscribed", func() bool { return h.sse.Stats().Subscriptions == 1 })
	time.Sleep(150 * time.Millisecond)
	h.system(t, "hi")
	s.want("next", "")
	if s.comments < 2 {
		t.Errorf("saw %d keepalive comments in 150ms at a 30ms interval", s.comments)
	}
	h.sse.Close()
	s.wantEnd()
}

// TestSSEKeepaliveStopsForGood: a keepalive that fired just as the stream
// ends (it waits for the lock while the timers are stopped) neither queues
// a comment nor re-arms its timer.
func TestSSEKeepaliveStopsForGood(t *testing.T) {
	tr := NewSSE(Options{Authenticate: testAuth, Logger: quiet, PingInterval: time.Hour})
	defer tr.Close()
	rec := httptest.NewRecorder()
	c := &sseConn{t: tr, sseStream: &sseStream{w: rec, rc: http.NewResponseController(rec), timeout: time.Second},
		done: make(chan struct{}), torn: make(chan struct{})}
	c.session.init(&tr.core, c, protoSSE, nil, false)
	c.mu.Lock()
	c.keepalive = time.AfterFunc(time.Hour, c.keepAlive)
	c.mu.Unlock()

	c.stopTimers()
	c.keepAlive() // the callback that had already fired
	c.teardown(nil)
	if c.keepalive.Stop() {
		t.Error("the keepalive timer was re-armed after the stream's timers stopped")
	}
	if rec.Body.Len() != 0 {
		t.Errorf("wrote %q after the stream's end", rec.Body)
	}
}
