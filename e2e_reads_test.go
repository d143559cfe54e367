package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// openFDs is the number of file descriptors this process has open.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(es)
}

// openSockets counts this process's open sockets: the store's pool may
// open (and keep) more database files under load, which is not a leak.
func openSockets(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, e := range es {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// slowRequest sends a request's head on a raw connection and then its
// body one byte every interval, until the server answers or closes.
type slowRequest struct {
	conn net.Conn
	stop chan struct{}
	wg   sync.WaitGroup
}

func startSlowRequest(t *testing.T, addr, head string, interval time.Duration) *slowRequest {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	s := &slowRequest{conn: c, stop: make(chan struct{})}
	t.Cleanup(func() { s.close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatalf("write head: %v", err)
	}
	s.wg.Go(func() {
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(interval):
			}
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	})
	return s
}

func (s *slowRequest) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	_ = s.conn.Close()
	s.wg.Wait()
}

// response reads the server's answer, then requires the connection to be
// closed after it; it waits at most within.
func (s *slowRequest) response(within time.Duration) (*http.Response, []byte, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(within))
	br := bufio.NewReader(s.conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("no response: %w", err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return res, body, fmt.Errorf("reading the body: %w", err)
	}
	// Closed: EOF, or a reset when the server closed with bytes of ours
	// unread (this client keeps trickling).
	if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		return res, body, fmt.Errorf("connection not closed after the answer: %d bytes, %v", n, err)
	}
	return res, body, nil
}

// slowHead is the head of a POST /graphql whose body will trickle in.
func slowHead(token, accept string) string {
	return "POST /graphql HTTP/1.1\r\nHost: taskpulse\r\nContent-Type: application/json\r\nAccept: " + accept +
		"\r\nAuthorization: Bearer " + token + "\r\nContent-Length: 1000\r\n\r\n"
}

// requireRefusal checks an answer is status with a BAD_USER_INPUT error
// whose message contains msg.
func requireRefusal(t *testing.T, res *http.Response, body []byte, status int, msg string) {
	t.Helper()
	var r gqlResponse
	if res.StatusCode != status || json.Unmarshal(body, &r) != nil || len(r.Errors) != 1 ||
		r.Errors[0].code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, msg) {
		t.Fatalf("got %d %s; want %d with a BAD_USER_INPUT error about %q", res.StatusCode, body, status, msg)
	}
}

// TestSlowBodyIs408: a POST or SSE request whose body has not arrived
// within HTTP_BODY_TIMEOUT is answered 408 and its connection closed.
func TestSlowBodyIs408(t *testing.T) {
	const timeout = 500 * time.Millisecond
	e := start(t, map[string]string{"HTTP_BODY_TIMEOUT": timeout.String()})
	e.users("alice")
	addr := strings.TrimPrefix(e.m.URL(), "http://")
	for _, accept := range []string{"application/json", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			began := time.Now()
			s := startSlowRequest(t, addr, slowHead(e.token("alice"), accept), 100*time.Millisecond)
			res, body, err := s.response(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(began)
			requireRefusal(t, res, body, http.StatusRequestTimeout, "did not arrive within 500ms")
			if !res.Close {
				t.Error("the answer does not say Connection: close")
			}
			if took < timeout || took > timeout+time.Second {
				t.Errorf("answered after %v, want after the %v timeout and within a second of it", took, timeout)
			}
		})
	}
}

// TestSlowBodyElsewhereIsCut: routes that ignore a body still have
// net/http read it before answering; a body trickling in is cut there too.
func TestSlowBodyElsewhereIsCut(t *testing.T) {
	const timeout = 500 * time.Millisecond
	e := start(t, map[string]string{"HTTP_BODY_TIMEOUT": timeout.String()})
	addr := strings.TrimPrefix(e.m.URL(), "http://")
	for _, head := range []string{"GET /healthz", "POST /healthz", "GET /", "PUT /nowhere"} {
		t.Run(head, func(t *testing.T) {
			began := time.Now()
			s := startSlowRequest(t, addr, head+" HTTP/1.1\r\nHost: taskpulse\r\nContent-Length: 1000\r\n\r\n", 100*time.Millisecond)
			res, _, err := s.response(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(began); took > timeout+time.Second {
				t.Errorf("%d, connection closed after %v; want within a second of the %v timeout", res.StatusCode, took, timeout)
			}
		})
	}
}

// TestBodyDeadlineEndsWithTheBody: a body that trickles in but completes
// in time is served, and the deadline is lifted once it is in: an SSE
// stream lives on well past HTTP_BODY_TIMEOUT and still delivers.
func TestBodyDeadlineEndsWithTheBody(t *testing.T) {
	const timeout = 400 * time.Millisecond
	e := start(t, map[string]string{"HTTP_BODY_TIMEOUT": timeout.String()})
	e.users("alice", "ops!")

	pr, pw := io.Pipe()
	go func() {
		for _, part := range []string{`{"query":`, `"{ me { id } }"`, `}`} {
			time.Sleep(timeout / 5)
			_, _ = pw.Write([]byte(part))
		}
		_ = pw.Close()
	}()
	req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", pr) // chunked: no length
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token("alice"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"alice"`) {
		t.Fatalf("slow but timely body: %d %s", res.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "POST", e.m.URL()+"/graphql",
		strings.NewReader(`{"query":"subscription { systemUpdates { message } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+e.token("alice"))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("SSE: %d", res.StatusCode)
	}
	time.Sleep(3 * timeout)
	e.do("ops", `mutation { publishSystemUpdate(message: "still here") }`, nil, nil)
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "still here") {
			return
		}
	}
	t.Fatalf("the stream ended before the event: %v", sc.Err())
}

// TestSlowBodiesCannotExhaustFiles is the attack of many clients sending
// their bodies a byte at a time (POST and SSE). Each is cut off after
// HTTP_BODY_TIMEOUT, open connections never exceed MAX_CONNS (the process's
// file descriptors are bounded by it, so accept never fails), a normal
// request is still served, and the descriptors come back.
func TestSlowBodiesCannotExhaustFiles(t *testing.T) {
	const (
		clients  = 120
		maxConns = 40
		timeout  = 500 * time.Millisecond
	)
	e := start(t, map[string]string{"HTTP_BODY_TIMEOUT": timeout.String(), "MAX_CONNS": fmt.Sprint(maxConns)})
	e.users("alice")
	token := e.token("alice")
	addr := strings.TrimPrefix(e.m.URL(), "http://")
	base, baseSockets := openFDs(t), openSockets(t)

	var peak int
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, openFDs(t))
			select {
			case <-stopSampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	began := time.Now()
	slow := make([]*slowRequest, clients)
	for i := range slow {
		accept := "application/json"
		if i%2 == 1 {
			accept = "text/event-stream"
		}
		slow[i] = startSlowRequest(t, addr, slowHead(token, accept), 100*time.Millisecond)
	}
	// Queued behind the attack, a normal request is served once slots free.
	served := make(chan int, 1)
	go func() {
		status, _ := e.post("alice", `{ me { id } }`, nil)
		served <- status
	}()

	// The server takes maxConns at a time and answers each batch after
	// the timeout: the last batch is done after ceil(clients/maxConns)
	// timeouts; a second each for a loaded machine.
	batches := (clients + maxConns - 1) / maxConns
	bound := time.Duration(batches) * (timeout + time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, s := range slow {
		wg.Go(func() {
			res, body, err := s.response(bound + 2*time.Second)
			switch {
			case err != nil:
				errs <- fmt.Errorf("client %d: %w", i, err)
			case res.StatusCode != http.StatusRequestTimeout:
				errs <- fmt.Errorf("client %d: %d %s, want 408", i, res.StatusCode, body)
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	close(errs)
	if n := len(errs); n > 0 {
		t.Errorf("%d of %d slow clients were not answered 408 and closed; the first: %v", n, clients, <-errs)
	}
	if took > bound {
		t.Errorf("the %d slow clients were all answered after %v, want within %v", clients, took, bound)
	}
	select {
	case status := <-served:
		if status != http.StatusOK {
			t.Errorf("a normal request during the attack: %d", status)
		}
	case <-time.After(5 * time.Second):
		t.Error("a normal request during the attack was not served")
	}
	close(stopSampling)
	<-sampled

	// This process holds both ends: the clients' sockets (all connected:
	// the kernel completes handshakes the server has not accepted yet)
	// and at most maxConns accepted by the server.
	t.Logf("file descriptors: %d before, peak %d (%d clients, MAX_CONNS %d), answered in %v", base, peak, clients, maxConns, took)
	if limit := base + clients + maxConns + 8; peak > limit {
		t.Errorf("peak of %d open files, want at most %d: the server held more than MAX_CONNS=%d connections", peak, limit, maxConns)
	}
	for _, s := range slow {
		s.close()
	}
	http.DefaultClient.CloseIdleConnections() // the normal request's keep-alive
	for end := time.Now().Add(5 * time.Second); openSockets(t) > baseSockets; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d sockets open 5s after the attack, want the %d of before", openSockets(t), baseSockets)
		}
	}
}

// TestAutoMaxConns: unset, MAX_CONNS is the open-file limit minus a tenth
// (at least 64) kept for the store, logs and certificates.
func TestAutoMaxConns(t *testing.T) {
	for _, c := range []struct{ limit, want int }{
		{20000, 18000}, {1024, 922}, {100, 36}, {10, 1},
	} {
		if got := autoMaxConns(c.limit); got != c.want {
			t.Errorf("autoMaxConns(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}

// TestOversizedChunkedBodyIs413: a body without a declared length
// (Transfer-Encoding: chunked) is cut at HTTP_MAX_BODY with the same 413
// as a declared one.
func TestOversizedChunkedBodyIs413(t *testing.T) {
	e := start(t, map[string]string{"HTTP_MAX_BODY": "4096"})
	e.users("alice")
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(e.m.URL(), "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"query":"{ me { id } }","variables":{"pad":"` + strings.Repeat("x", 5000) + `"}}`
	fmt.Fprintf(c, "POST /graphql HTTP/1.1\r\nHost: taskpulse\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", e.token("alice"), len(body), body)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	requireRefusal(t, res, got, http.StatusRequestEntityTooLarge, "larger than 4096 bytes")
}

// TestOtherMethodsAre405: /graphql serves GET and POST (and OPTIONS);
// anything else is 405 with Allow.
func TestOtherMethodsAre405(t *testing.T) {
	e := start(t, nil)
	e.users("alice")
	for _, method := range []string{"PUT", "DELETE", "PATCH", "HEAD", "TRACE", "CONNECT", "PROPFIND"} {
		t.Run(method, func(t *testing.T) {
			req, _ := http.NewRequest(method, e.m.URL()+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.token("alice"))
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, POST, OPTIONS" {
				t.Fatalf("%s: %d Allow %q %s; want 405 with Allow: GET, POST, OPTIONS", method, res.StatusCode, res.Header.Get("Allow"), body)
			}
		})
	}
}

// TestErrorsDoNotEchoTheBody: a request that is refused does not get its
// body (or a piece of it) back: nothing reflected, nothing a log or a
// proxy would copy.
func TestErrorsDoNotEchoTheBody(t *testing.T) {
	e := start(t, nil)
	e.users("alice")
	const marker = "SECRET-MARKER-7f3a"
	wsKey := "dGhlIHNhbXBsZSBub25jZQ=="
	cases := []struct {
		name, method, body string
		header             map[string]string
	}{
		{"bad JSON", "POST", `{"query": "{ me { id } }", "variables": {"x": "` + marker + `"`, nil},
		{"query not a string", "POST", `{"query": 1, "variables": {"x": "` + marker + `"}}`, nil},
		{"variables not an object", "POST", `{"query": "{ me { id } }", "variables": ["` + marker + `"]}`, nil},
		{"a batch", "POST", `[{"query": "{ me { id } }", "x": "` + marker + `"}]`, nil},
		{"a string", "POST", `"` + marker + `"`, nil},
		{"SSE bad JSON", "POST", `{"query": "` + marker, map[string]string{"Accept": "text/event-stream"}},
		{"GET with a body", "GET", `{"query": "` + marker + `"}`, nil},
		{"upgrade without a key", "GET", marker, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}},
		{"upgrade with a bad version", "GET", marker, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "12", "Sec-WebSocket-Key": wsKey}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, e.m.URL()+"/graphql", strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.token("alice"))
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode < 400 {
				t.Fatalf("accepted: %d %s", res.StatusCode, body)
			}
			if strings.Contains(string(body), marker) || strings.Contains(string(body), "SECRET") {
				t.Fatalf("%d echoes the request body: %s", res.StatusCode, body)
			}
		})
	}
}

// TestUpgradeHeaderAndInitMustNameOneUser: a WebSocket may authenticate
// with its upgrade's Authorization header, its connection_init token, or
// both when they name the same user; different users are refused 4403.
func TestUpgradeHeaderAndInitMustNameOneUser(t *testing.T) {
	e := start(t, nil)
	e.users("alice", "bob")
	wsURL := "ws" + strings.TrimPrefix(e.m.URL(), "http") + "/graphql"
	cases := []struct {
		name, header, init string
		code               int // 0: acknowledged
	}{
		{"header only", "alice", "", 0},
		{"init only", "", "alice", 0},
		{"both, same user", "alice", "alice", 0},
		{"header alice, init bob", "alice", "bob", 4403},
		{"header bob, init alice", "bob", "alice", 4403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			h := http.Header{}
			if c.header != "" {
				h.Set("Authorization", "Bearer "+e.token(c.header))
			}
			cl, err := wsclient.Dial(ctx, wsURL, wsclient.DialOptions{Header: h})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			payload := map[string]any{}
			if c.init != "" {
				payload["token"] = e.token(c.init)
			}
			err = cl.Init(ctx, payload)
			var ce *wsclient.CloseError
			switch {
			case c.code == 0 && err != nil:
				t.Fatalf("want connection_ack, got %v", err)
			case c.code != 0 && (!errors.As(err, &ce) || ce.Code != c.code):
				t.Fatalf("want close %d, got %v", c.code, err)
			case c.code != 0 && !strings.Contains(ce.Reason, "different users"):
				t.Errorf("close reason %q does not say why", ce.Reason)
			}
			if c.code != 0 {
				return
			}
			var me struct{ Me struct{ ID string } }
			r, err := cl.Execute(ctx, `{ me { id } }`, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(r.Data, &me); err != nil || me.Me.ID != "alice" {
				t.Fatalf("me = %s, want alice", r.Data)
			}
		})
	}
}
