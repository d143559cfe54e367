package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/taskpulse/taskpulse/audit"
	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// Helpers of the limit tests (e2e_limits_test.go, e2e_connlimits_test.go).

const limCreateTask = `mutation($t: String!) { createTask(input: {title: $t}) { id } }`

// limRefusal is what a client sees of one refused operation.
type limRefusal struct {
	code       string
	retryAfter float64 // extensions.retryAfter; -1 if absent
	message    string
}

func refusalOf(extensions map[string]any, message string) limRefusal {
	r := limRefusal{message: message, retryAfter: -1}
	r.code, _ = extensions["code"].(string)
	if v, ok := extensions["retryAfter"].(float64); ok {
		r.retryAfter = v
	}
	return r
}

// wantRateLimited requires RATE_LIMITED with an integer retryAfter in
// [lo, hi] seconds.
func wantRateLimited(t *testing.T, what string, r limRefusal, lo, hi float64) {
	t.Helper()
	if r.code != "RATE_LIMITED" || r.retryAfter < lo || r.retryAfter > hi || r.retryAfter != float64(int(r.retryAfter)) {
		t.Fatalf("%s: %+v, want RATE_LIMITED with a whole retryAfter in [%v, %v]", what, r, lo, hi)
	}
}

// httpOp sends one operation over HTTP with token: nil if it succeeded,
// else its first error.
func (e *env) httpOp(token, query string, vars map[string]any) (status int, ref *limRefusal) {
	e.t.Helper()
	status, r := e.postWith(token, query, vars)
	if len(r.Errors) == 0 {
		return status, nil
	}
	x := refusalOf(r.Errors[0].Extensions, r.Errors[0].Message)
	return status, &x
}

// wsOp runs a query or mutation over c: nil if it succeeded.
func wsOp(t *testing.T, c *wsclient.Client, query string, vars map[string]any) *limRefusal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Execute(ctx, query, vars)
	if err != nil {
		t.Fatalf("over WebSocket: %v", err)
	}
	if len(r.Errors) == 0 {
		return nil
	}
	x := refusalOf(r.Errors[0].Extensions, r.Errors[0].Message)
	return &x
}

// wsSubscribe subscribes over c and waits until the server answered
// (a pong after it): nil if the subscription is live.
func wsSubscribe(t *testing.T, c *wsclient.Client, id, query string) (*wsclient.Sub, *limRefusal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.Subscribe(ctx, id, query, nil)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after subscribe: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	_, err = s.Next(short)
	if oe, ok := err.(*wsclient.OperationError); ok && len(oe.Errors) > 0 {
		x := refusalOf(oe.Errors[0].Extensions, oe.Errors[0].Message)
		return s, &x
	}
	return s, nil
}

// sseLive opens an SSE subscription as user and waits until it is live:
// the 200 comes before the operation runs.
func (e *env) sseLive(user, token, query string) *sseStream {
	e.t.Helper()
	n := len(e.m.registry.ByUser(user))
	s := e.openSSE(token, query)
	waitFor(e.t, user+"'s SSE stream registered", func() bool { return len(e.m.registry.ByUser(user)) == n+1 })
	return s
}

// sseRequest sends a request for an event stream and reads the response
// to its end (for an operation that ends: a query, a mutation, a refused
// subscription). events are the data of its `next` events.
func (e *env) sseRequest(token, query string, vars map[string]any, header http.Header) (status int, h http.Header, events []string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.m.URL()+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("SSE request: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, []string{string(raw)}
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, d)
		}
	}
	return res.StatusCode, res.Header, events
}

// sseRefusal is the first error of an SSE response's first event (nil if
// it has none).
func sseRefusal(t *testing.T, events []string) *limRefusal {
	t.Helper()
	if len(events) == 0 {
		t.Fatal("SSE: no event")
	}
	var r gqlResponse
	if err := json.Unmarshal([]byte(events[0]), &r); err != nil {
		t.Fatalf("SSE event %q: %v", events[0], err)
	}
	if len(r.Errors) == 0 {
		return nil
	}
	x := refusalOf(r.Errors[0].Extensions, r.Errors[0].Message)
	return &x
}

// dialRaw upgrades with gorilla directly, so a refusal's status, headers
// and body can be read. header may carry Authorization or X-Forwarded-For.
func (e *env) dialRaw(header http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{wsclient.ProtocolTransportWS}, HandshakeTimeout: 5 * time.Second}
	return d.Dial("ws"+strings.TrimPrefix(e.m.URL(), "http")+"/graphql", header)
}

// dialWS opens a graphql-ws client with header on the upgrade, closed at
// the end of the test.
func (e *env) dialWS(header http.Header) (*wsclient.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(e.m.URL(), "http")+"/graphql", wsclient.DialOptions{Header: header})
	if err == nil {
		e.t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// want429 requires a 429 answer with a whole Retry-After in [lo, hi]
// seconds and a RATE_LIMITED body whose retryAfter matches it.
func want429(t *testing.T, what string, status int, h http.Header, body []byte, lo, hi int) {
	t.Helper()
	ra, err := strconv.Atoi(h.Get("Retry-After"))
	if status != http.StatusTooManyRequests || err != nil || ra < lo || ra > hi {
		t.Fatalf("%s: %d Retry-After %q (%s), want 429 with Retry-After in [%d, %d]", what, status, h.Get("Retry-After"), body, lo, hi)
	}
	var r gqlResponse
	if err := json.Unmarshal(body, &r); err != nil || len(r.Errors) != 1 {
		t.Fatalf("%s: body %s, want one GraphQL error", what, body)
	}
	got := refusalOf(r.Errors[0].Extensions, r.Errors[0].Message)
	wantRateLimited(t, what, got, float64(ra), float64(ra))
}

// upgradeRefused dials and requires a 429 (see want429).
func (e *env) upgradeRefused(what string, header http.Header, lo, hi int) {
	e.t.Helper()
	c, res, err := e.dialRaw(header)
	if err == nil {
		c.Close()
		e.t.Fatalf("%s: upgraded, want 429", what)
	}
	if res == nil {
		e.t.Fatalf("%s: %v, want 429", what, err)
	}
	body, _ := io.ReadAll(res.Body)
	want429(e.t, what, res.StatusCode, res.Header, body, lo, hi)
}

// postRefused sends an HTTP request with header and requires a 429.
func (e *env) postRefused(what string, header http.Header, lo, hi int) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.m.URL()+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	want429(e.t, what, res.StatusCode, res.Header, body, lo, hi)
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// auditRecords reads the audit log's records of kind.
func (e *env) auditRecords(kind audit.Kind) []audit.Record {
	e.t.Helper()
	raw, err := os.ReadFile(e.m.cfg.AuditLog)
	if err != nil {
		e.t.Fatalf("audit log: %v", err)
	}
	var out []audit.Record
	for line := range strings.SplitSeq(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			e.t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedWith waits for c's close and requires code.
func closedWith(t *testing.T, who string, c *wsclient.Client, code int) *wsclient.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ce, err := c.WaitClose(ctx)
	if err != nil || ce.Code != code {
		t.Fatalf("%s: closed %v %v, want %d", who, ce, err, code)
	}
	return ce
}
