package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/internal/wsclient"
)

// Waits of the client side. Instances are separate processes on a shared,
// busy machine: an event may take a while, but never this long.
const (
	// EventTimeout bounds the wait for an expected event or answer.
	EventTimeout = 15 * time.Second
	// Quiet is how long a test watches to be sure nothing arrives.
	Quiet = 500 * time.Millisecond
)

// Response is a GraphQL response as a client sees it.
type Response struct {
	Status int
	Data   json.RawMessage
	Errors []wsclient.GQLError
}

// Code is the first error's extensions.code ("" without errors).
func (r Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Code()
}

// Post sends one GraphQL request over HTTP as user ("" = no token). Only
// a failure to get an answer is an error; GraphQL errors are in the
// Response. Safe to call from any goroutine.
func (i *Instance) Post(ctx context.Context, user, query string, vars map[string]any) (Response, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, "POST", i.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+i.c.Token(user))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("instance %s: POST /graphql: %w", i.Name, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return Response{}, fmt.Errorf("instance %s: reading the answer: %w", i.Name, err)
	}
	r := Response{Status: res.StatusCode}
	var wire struct {
		Data   json.RawMessage     `json:"data"`
		Errors []wsclient.GQLError `json:"errors"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return r, fmt.Errorf("instance %s: answer %d is not JSON: %.200s", i.Name, res.StatusCode, raw)
	}
	r.Data, r.Errors = wire.Data, wire.Errors
	return r, nil
}

// Try is Post with EventTimeout that decodes data into out (if not nil)
// and turns GraphQL errors into an error. Safe from any goroutine.
func (i *Instance) Try(user, query string, vars map[string]any, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), EventTimeout)
	defer cancel()
	r, err := i.Post(ctx, user, query, vars)
	if err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		return &RequestError{Instance: i.Name, User: user, Query: firstLine(query), Errors: r.Errors}
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			return fmt.Errorf("instance %s: decode %s: %w", i.Name, r.Data, err)
		}
	}
	return nil
}

// RequestError is a request answered with GraphQL errors.
type RequestError struct {
	Instance, User, Query string
	Errors                []wsclient.GQLError
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("instance %s: %s as %s: %s (%s)", e.Instance, e.Query, e.User, e.Errors[0].Message, e.Errors[0].Code())
}

// Code is the first error's extensions.code.
func (e *RequestError) Code() string { return e.Errors[0].Code() }

// CodeOf is err's GraphQL extensions.code, or "" if err is no RequestError.
func CodeOf(err error) string {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Code()
	}
	return ""
}

// Do runs a query or mutation that must succeed and decodes its data
// into out (if not nil).
func (i *Instance) Do(user, query string, vars map[string]any, out any) {
	i.t.Helper()
	if err := i.Try(user, query, vars, out); err != nil {
		i.t.Fatal(err)
	}
}

// Fails runs a request that must fail with extensions.code code, and
// returns the error.
func (i *Instance) Fails(user, query string, vars map[string]any, code string) wsclient.GQLError {
	i.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), EventTimeout)
	defer cancel()
	r, err := i.Post(ctx, user, query, vars)
	if err != nil {
		i.t.Fatal(err)
	}
	if len(r.Errors) == 0 {
		i.t.Fatalf("instance %s: %s as %s: want error %s, got data %s", i.Name, firstLine(query), user, code, r.Data)
	}
	if got := r.Code(); got != code {
		i.t.Fatalf("instance %s: %s as %s: want code %s, got %s (%s)", i.Name, firstLine(query), user, code, got, r.Errors[0].Message)
	}
	return r.Errors[0]
}

// WSURL is the instance's GraphQL WebSocket endpoint.
func (i *Instance) WSURL() string { return "ws" + strings.TrimPrefix(i.URL, "http") + "/graphql" }

// Conn is one authenticated graphql-transport-ws connection: a browser tab.
type Conn struct {
	*wsclient.Client
	User string
	t    testing.TB
	i    *Instance
	ids  atomic.Int64
}

// Connect opens a connection of user and waits for connection_ack; it is
// closed when the test ends.
func (i *Instance) Connect(user string) *Conn {
	i.t.Helper()
	c, err := i.TryConnect(user)
	if err != nil {
		i.t.Fatal(err)
	}
	i.t.Cleanup(func() { c.Close() })
	return c
}

// TryConnect is Connect returning its error (safe from any goroutine);
// the caller closes the connection.
func (i *Instance) TryConnect(user string) (*Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), EventTimeout)
	defer cancel()
	wc, err := wsclient.Dial(ctx, i.WSURL(), wsclient.DialOptions{})
	if err != nil {
		return nil, fmt.Errorf("instance %s: dial as %s: %w", i.Name, user, err)
	}
	if err := wc.Init(ctx, map[string]any{"token": i.c.Token(user)}); err != nil {
		wc.Close()
		return nil, fmt.Errorf("instance %s: connection_init as %s: %w", i.Name, user, err)
	}
	return &Conn{Client: wc, User: user, t: i.t, i: i}, nil
}

// Subscribe starts an operation on the connection and returns once the
// server has registered it: the server handles a subscribe before the
// connection's next frame, so the pong that follows proves it.
func (c *Conn) Subscribe(query string, vars map[string]any) *Sub {
	c.t.Helper()
	s, err := c.TrySubscribe(query, vars)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// TrySubscribe is Subscribe returning its error.
func (c *Conn) TrySubscribe(query string, vars map[string]any) (*Sub, error) {
	ctx, cancel := context.WithTimeout(context.Background(), EventTimeout)
	defer cancel()
	id := "s" + strconv.FormatInt(c.ids.Add(1), 10)
	ws, err := c.Client.Subscribe(ctx, id, query, vars)
	if err != nil {
		return nil, fmt.Errorf("instance %s: subscribe as %s: %w", c.i.Name, c.User, err)
	}
	if err := c.Ping(ctx); err != nil {
		return nil, fmt.Errorf("instance %s: ping after subscribe as %s: %w", c.i.Name, c.User, err)
	}
	return &Sub{Sub: ws, Conn: c, t: c.t}, nil
}

// Execute runs a query or mutation over the connection; it must succeed.
func (c *Conn) Execute(query string, vars map[string]any, out any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), EventTimeout)
	defer cancel()
	r, err := c.Client.Execute(ctx, query, vars)
	if err != nil {
		c.t.Fatalf("instance %s: %s over a socket as %s: %v", c.i.Name, firstLine(query), c.User, err)
	}
	if len(r.Errors) > 0 {
		c.t.Fatalf("instance %s: %s over a socket as %s: %+v", c.i.Name, firstLine(query), c.User, r.Errors)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			c.t.Fatalf("decode %s: %v", r.Data, err)
		}
	}
}

// Subscribe opens a connection of user of its own and subscribes on it.
func (i *Instance) Subscribe(user, query string, vars map[string]any) *Sub {
	i.t.Helper()
	return i.Connect(user).Subscribe(query, vars)
}

// Sub is one subscription of one connection.
type Sub struct {
	*wsclient.Sub
	Conn *Conn
	t    testing.TB
}

// Who names the subscription in messages: user@instance.
func (s *Sub) Who() string { return s.Conn.User + "@" + s.Conn.i.Name }

// Wait returns the next result within d.
func (s *Sub) Wait(d time.Duration) (wsclient.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Sub.Next(ctx)
}

// NextData waits (EventTimeout) for the next result and decodes its data
// into out (e.g. *struct{ TaskUpdates T }); an error, a GraphQL error or
// bad data fails the test.
func (s *Sub) NextData(out any) {
	s.t.Helper()
	r, err := s.Wait(EventTimeout)
	if err != nil {
		s.t.Fatalf("%s: waiting for an event: %v", s.Who(), err)
	}
	if len(r.Errors) > 0 {
		s.t.Fatalf("%s: errors %+v", s.Who(), r.Errors)
	}
	if err := json.Unmarshal(r.Data, out); err != nil {
		s.t.Fatalf("%s: decode %s: %v", s.Who(), r.Data, err)
	}
}

// Nothing asserts that no message arrives within d.
func (s *Sub) Nothing(d time.Duration) {
	s.t.Helper()
	r, err := s.Wait(d)
	switch {
	case err == nil:
		s.t.Fatalf("%s received %s, want nothing", s.Who(), r.Data)
	case !errors.Is(err, context.DeadlineExceeded):
		s.t.Fatalf("%s: want silence, got %v", s.Who(), err)
	}
}

// Error waits for the operation's error message and returns its first
// error; anything else fails the test.
func (s *Sub) Error() wsclient.GQLError {
	s.t.Helper()
	r, err := s.Wait(EventTimeout)
	var oe *wsclient.OperationError
	if !errors.As(err, &oe) || len(oe.Errors) == 0 {
		s.t.Fatalf("%s: want an error message, got %s %v", s.Who(), r.Data, err)
	}
	return oe.Errors[0]
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i > 0 {
		return s[:i]
	}
	return s
}

// Metric is the value of an unlabelled metric (e.g. "go_goroutines") in
// the instance's /metrics.
func (i *Instance) Metric(name string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), EventTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", i.URL+"/metrics", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("instance %s: no metric %s in /metrics", i.Name, name)
}
