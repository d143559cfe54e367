package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	gqltransport "github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/graph"
	"github.com/taskpulse/taskpulse/graph/model"
	"github.com/taskpulse/taskpulse/internal/wsclient"
	"github.com/taskpulse/taskpulse/realtime"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ---- authentication ----

type viewerKey struct{}

// testToken is the token of a connection_init payload's "token" or, for
// SSE and upgrades, of the Authorization header ("Bearer <token>").
func testToken(r *http.Request, init map[string]any) string {
	tok, _ := init["token"].(string)
	if tok == "" {
		tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	return tok
}

// testAuth accepts tokens "ok:<user>" and "ok:<user>:<ttl>" (a Go
// duration).
func testAuth(ctx context.Context, r *http.Request, init map[string]any) (context.Context, string, time.Time, error) {
	tok := testToken(r, init)
	if tok == "" {
		return nil, "", time.Time{}, errs.E(errs.Unauthenticated, "missing token")
	}
	parts := strings.Split(tok, ":")
	if len(parts) < 2 || parts[0] != "ok" || parts[1] == "" {
		return nil, "", time.Time{}, errs.E(errs.Unauthenticated, "invalid token")
	}
	var exp time.Time
	if len(parts) == 3 {
		ttl, err := time.ParseDuration(parts[2])
		if err != nil {
			return nil, "", time.Time{}, errs.E(errs.Unauthenticated, "invalid token")
		}
		exp = time.Now().Add(ttl)
	}
	return context.WithValue(ctx, viewerKey{}, parts[1]), parts[1], exp, nil
}

func viewer(ctx context.Context) (string, error) {
	if v, ok := ctx.Value(viewerKey{}).(string); ok {
		return v, nil
	}
	return "", errs.E(errs.Unauthenticated, "no viewer")
}

// testPresenter maps errors like the server's presenter: *errs.Error keeps
// its message and gets extensions.code; gqlgen's document errors are
// BAD_USER_INPUT; anything else is INTERNAL without details.
func testPresenter(ctx context.Context, err error) *gqlerror.Error {
	var gerr *gqlerror.Error
	if !errors.As(err, &gerr) {
		gerr = gqlerror.WrapPath(graphql.GetPath(ctx), err)
	}
	setCode := func(c string) {
		if gerr.Extensions == nil {
			gerr.Extensions = map[string]any{}
		}
		gerr.Extensions["code"] = c
	}
	var e *errs.Error
	switch {
	case errors.As(err, &e):
		gerr.Message = e.Message
		setCode(string(e.Code))
	case gerr.Err == nil:
		setCode(string(errs.BadUserInput))
	default:
		gerr.Message, gerr.Err = "internal error", nil
		setCode(string(errs.Internal))
	}
	return gerr
}

// ---- resolvers ----

// eventData is the JSON test events carry.
type eventData struct {
	Message string         `json:"message,omitempty"`
	Task    *model.Task    `json:"task,omitempty"`
	Project *model.Project `json:"project,omitempty"`
}

func decodeEventData(b []byte) (any, error) {
	var d eventData
	err := json.Unmarshal(b, &d)
	return &d, err
}

// testRoot resolves the real generated schema: Query.me, and the
// subscriptions in both modes — rendering (the transport's Encoder) and
// live (registering with the real hub through realtime.Target).
type testRoot struct {
	hub     *realtime.Hub
	renders atomic.Int64 // subscription resolver calls in render mode
	// release ends the renderings stuck on a project named "slow" (see
	// projectRes.Members): closed when the test ends.
	release chan struct{}
}

func (r *testRoot) Query() graph.QueryResolver               { return queryRes{} }
func (r *testRoot) Subscription() graph.SubscriptionResolver { return subRes{r} }
func (r *testRoot) Mutation() graph.MutationResolver         { return nil }
func (r *testRoot) Project() graph.ProjectResolver           { return projectRes{r} }
func (r *testRoot) Team() graph.TeamResolver                 { return nil }
func (r *testRoot) User() graph.UserResolver                 { return userRes{} }

type queryRes struct{ graph.QueryResolver }

func (queryRes) Me(ctx context.Context) (*model.User, error) {
	id, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	return &model.User{ID: id, Name: "User " + id}, nil
}

type userRes struct{}

func (userRes) Online(context.Context, *model.User) (bool, error)              { return true, nil }
func (userRes) Presence(context.Context, *model.User) (*model.Presence, error) { return nil, nil }

type projectRes struct{ r *testRoot }

// Members of a project named "slow" play a store read that hangs while an
// event is rendered: it returns when the rendering's context ends (or the
// test does).
func (p projectRes) Members(ctx context.Context, obj *model.Project) ([]*model.User, error) {
	if _, rendering := realtime.RenderFrom(ctx); rendering && obj.Name == "slow" {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.r.release:
			return nil, errors.New("test over")
		}
	}
	return []*model.User{}, nil
}

type subRes struct{ r *testRoot }

// stream answers a subscription field: in render mode the event alone; in
// live mode a hub subscription with the transport's sink and encoder.
func stream[T any](ctx context.Context, r *testRoot, convert func(*realtime.Event, *eventData) T, opts func(user string) (realtime.SubscribeOptions, error)) (<-chan T, error) {
	if ev, ok := realtime.RenderFrom(ctx); ok {
		r.renders.Add(1)
		d, err := ev.Decoded(decodeEventData)
		if err != nil {
			return nil, err
		}
		ch := make(chan T, 1)
		ch <- convert(ev, d.(*eventData))
		close(ch)
		return ch, nil
	}
	user, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	target, ok := realtime.TargetFrom(ctx)
	if !ok {
		return nil, errs.E(errs.BadUserInput, "subscriptions need a realtime transport")
	}
	so, err := opts(user)
	if err != nil {
		return nil, err
	}
	so.UserID, so.Encoder, so.Sink = user, target.Encoder, target.Sink
	target.SetSubscription(r.hub.Subscribe(so))
	return make(chan T), nil
}

func (s subRes) SystemUpdates(ctx context.Context) (<-chan *model.SystemEvent, error) {
	return stream(ctx, s.r, func(ev *realtime.Event, d *eventData) *model.SystemEvent {
		return &model.SystemEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Message: d.Message}
	}, func(string) (realtime.SubscribeOptions, error) {
		return realtime.SubscribeOptions{Rooms: []string{realtime.RoomAll}}, nil
	})
}

func (s subRes) TaskUpdates(ctx context.Context, after *string) (<-chan *model.TaskEvent, error) {
	return stream(ctx, s.r, func(ev *realtime.Event, d *eventData) *model.TaskEvent {
		return &model.TaskEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Task: d.Task}
	}, func(user string) (realtime.SubscribeOptions, error) {
		return realtime.SubscribeOptions{Rooms: []string{realtime.RoomUser(user)}}, nil
	})
}

func (s subRes) ProjectUpdates(ctx context.Context, projectID string, after *string) (<-chan *model.ProjectEvent, error) {
	return stream(ctx, s.r, func(ev *realtime.Event, d *eventData) *model.ProjectEvent {
		return &model.ProjectEvent{Type: model.EventType(ev.Type), Cursor: ev.Cursor, Timestamp: ev.Time, Project: d.Project, Task: d.Task}
	}, func(string) (realtime.SubscribeOptions, error) {
		if projectID == "forbidden" {
			return realtime.SubscribeOptions{}, errs.E(errs.Forbidden, "you are not a member of project %s", projectID)
		}
		return realtime.SubscribeOptions{Rooms: []string{realtime.RoomProject(projectID)}, EndOnLeave: true}, nil
	})
}

func (s subRes) Notifications(ctx context.Context, after *string) (<-chan *model.NotificationEvent, error) {
	return nil, errs.E(errs.BadUserInput, "not in these tests")
}

func (s subRes) UserActivity(ctx context.Context, userID string) (<-chan *model.ActivityEvent, error) {
	return nil, errs.E(errs.BadUserInput, "not in these tests")
}

func (s subRes) TeamUpdates(ctx context.Context, teamID string, after *string) (<-chan *model.TeamEvent, error) {
	return nil, errs.E(errs.BadUserInput, "not in these tests")
}

// ---- harness ----

type harness struct {
	hub  *realtime.Hub
	reg  *realtime.Registry
	root *testRoot
	ws   *WebSocket
	sse  *SSE
	srv  *httptest.Server
	url  string // ws://…/graphql
	seq  atomic.Uint64
	logs *logCounter // what the transports logged
	// authBlocked receives a value each time Authenticate starts blocking
	// for the token "block" (it then returns when its context ends, or the
	// test does).
	authBlocked chan struct{}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// logCounter is a slog.Handler that counts records by message.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }

func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[r.Message]++
	return nil
}

func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

// count is how many records had a message containing substr.
func (l *logCounter) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for m, c := range l.msgs {
		if strings.Contains(m, substr) {
			n += c
		}
	}
	return n
}

// newHarness serves the real schema with both transports on 127.0.0.1.
func newHarness(t testing.TB, mod func(*Options)) *harness {
	t.Helper()
	return newHarnessSndbuf(t, mod, 0)
}

// newHarnessSndbuf is newHarness with the server's socket send buffers
// fixed at sndbuf bytes (Linux doubles it) instead of autotuned up to
// megabytes, so a stalled client blocks the server's writes quickly.
func newHarnessSndbuf(t testing.TB, mod func(*Options), sndbuf int) *harness {
	t.Helper()
	h := &harness{hub: realtime.NewHub(realtime.HubOptions{Logger: quiet}), reg: realtime.NewRegistry(),
		logs: &logCounter{msgs: map[string]int{}}, authBlocked: make(chan struct{}, 16)}
	h.root = &testRoot{hub: h.hub, release: make(chan struct{})}
	auth := func(ctx context.Context, r *http.Request, init map[string]any) (context.Context, string, time.Time, error) {
		if testToken(r, init) == "block" {
			h.authBlocked <- struct{}{}
			select {
			case <-ctx.Done():
				return nil, "", time.Time{}, ctx.Err()
			case <-h.root.release: // the test is over: do not hold its cleanup
				return nil, "", time.Time{}, errors.New("test over")
			}
		}
		return testAuth(ctx, r, init)
	}
	// One shape registry for both transports, as the server has.
	opts := Options{Authenticate: auth, Registry: h.reg, Logger: slog.New(h.logs), Shapes: NewShapes()}
	if mod != nil {
		mod(&opts)
	}
	h.ws, h.sse = NewWebSocket(opts), NewSSE(opts)
	srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: h.root}))
	srv.AddTransport(h.ws)
	srv.AddTransport(h.sse)
	srv.AddTransport(gqltransport.POST{})
	srv.SetErrorPresenter(testPresenter)
	mux := http.NewServeMux()
	mux.Handle("/graphql", srv)
	h.srv = httptest.NewUnstartedServer(mux)
	if sndbuf > 0 {
		h.srv.Listener = sndbufListener{h.srv.Listener, sndbuf}
	}
	h.srv.Start()
	h.url = "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/graphql"
	t.Cleanup(func() {
		h.ws.Close()
		h.sse.Close()
		h.srv.Close()
		h.hub.Close()
	})
	t.Cleanup(func() { close(h.root.release) }) // first: a stuck rendering must not hold Close
	return h
}

// connOf returns the registered WebSocket of user (nil if none), found
// through the registry: a connection's id is set before it is tracked,
// its user only once registered.
func (h *harness) connOf(user string) *wsConn {
	infos := h.reg.ByUser(user)
	if len(infos) == 0 {
		return nil
	}
	h.ws.mu.Lock()
	defer h.ws.mu.Unlock()
	for c := range h.ws.conns {
		if c.id == infos[0].ID {
			return c
		}
	}
	return nil
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dial opens a client, closed at the end of the test.
func (h *harness) dial(t testing.TB, opts wsclient.DialOptions) *wsclient.Client {
	t.Helper()
	c, err := wsclient.Dial(testCtx(t), h.url, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// connect dials and initializes as user.
func (h *harness) connect(t testing.TB, user string) *wsclient.Client {
	t.Helper()
	c := h.dial(t, wsclient.DialOptions{})
	if err := c.Init(testCtx(t), map[string]any{"token": "ok:" + user}); err != nil {
		t.Fatalf("init: %v", err)
	}
	return c
}

// subscribe starts a subscription and waits until the server has
// registered it (messages are handled in order, so a ping's pong proves
// the subscribe before it was processed).
func subscribe(t testing.TB, c *wsclient.Client, id, query string, vars map[string]any) *wsclient.Sub {
	t.Helper()
	ctx := testCtx(t)
	s, err := c.Subscribe(ctx, id, query, vars)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after subscribe: %v", err)
	}
	return s
}

// publish hands the hub an event with data.
func (h *harness) publish(t testing.TB, typ string, rooms []string, data eventData, ctl *realtime.Control) *realtime.Event {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	n := h.seq.Add(1)
	ev := &realtime.Event{Type: typ, Rooms: rooms, Data: b, Time: time.Unix(1700000000, 0).UTC(), Control: ctl,
		Seq: n, Epoch: "test", Cursor: "c" + strconv.FormatUint(n, 10)}
	h.hub.Enqueue(ev)
	return ev
}

func (h *harness) system(t testing.TB, msg string) {
	h.publish(t, "SYSTEM_UPDATE", []string{realtime.RoomAll}, eventData{Message: msg}, nil)
}

// eventually polls cond for up to 5s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// next reads a result and fails the test on anything else.
func next(t testing.TB, s *wsclient.Sub) wsclient.Result {
	t.Helper()
	r, err := s.Next(testCtx(t))
	if err != nil {
		t.Fatalf("sub %s: next: %v", s.ID, err)
	}
	if len(r.Errors) > 0 {
		t.Fatalf("sub %s: result errors: %+v", s.ID, r.Errors)
	}
	return r
}

// opError reads the next message and requires an error message; it
// returns its first error.
func opError(t testing.TB, s *wsclient.Sub) wsclient.GQLError {
	t.Helper()
	_, err := s.Next(testCtx(t))
	var oe *wsclient.OperationError
	if !errors.As(err, &oe) || len(oe.Errors) == 0 {
		t.Fatalf("sub %s: want an error message, got %v", s.ID, err)
	}
	return oe.Errors[0]
}

// waitClose requires the server to close c with code and a reason
// containing reason.
func waitClose(t testing.TB, c *wsclient.Client, code int, reason string) {
	t.Helper()
	ce, err := c.WaitClose(testCtx(t))
	if err != nil {
		t.Fatalf("want close %d %q, got %v", code, reason, err)
	}
	if ce.Code != code || !strings.Contains(ce.Reason, reason) {
		t.Fatalf("close = %d %q, want %d containing %q", ce.Code, ce.Reason, code, reason)
	}
}

const systemQuery = `subscription { systemUpdates { type cursor message } }`

func systemMessage(t testing.TB, r wsclient.Result) string {
	t.Helper()
	var d struct {
		SystemUpdates struct{ Message string } `json:"systemUpdates"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatalf("data %s: %v", r.Data, err)
	}
	return d.SystemUpdates.Message
}

// ---- a raw client: no goroutine, no buffers (slow consumers, memory) ----

// rawConn is a WebSocket client made of a bare TCP socket: it writes
// frames and reads only when asked.
type rawConn struct{ net.Conn }

// dialRaw upgrades a TCP connection; rcvbuf > 0 sets a small receive
// buffer first (before connect, so the window stays small).
func dialRaw(t testing.TB, addr string, rcvbuf int) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial raw: %v", err)
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	_, err = fmt.Fprintf(c, "GET /graphql HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n",
		addr, base64.StdEncoding.EncodeToString(key[:]))
	if err != nil {
		t.Fatalf("raw handshake: %v", err)
	}
	var buf [512]byte
	n := 0
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
		m, err := c.Read(buf[n:])
		if err != nil {
			t.Fatalf("raw handshake: %v", err)
		}
		n += m
	}
	_ = c.SetReadDeadline(time.Time{})
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101")) {
		t.Fatalf("raw handshake: %q", buf[:n])
	}
	return &rawConn{c}
}

// writeText sends a masked text frame (the zero mask: legal, and no copy).
func (c *rawConn) writeText(t testing.TB, s string) {
	t.Helper()
	c.writeFrame(t, opText, s)
}

// writeFrame sends a final frame with opcode op, masked with the zero mask.
func (c *rawConn) writeFrame(t testing.TB, op byte, s string) {
	t.Helper()
	hdr := []byte{0x80 | op, 0}
	switch n := len(s); {
	case n < 126:
		hdr[1] = 0x80 | byte(n)
	case n < 1<<16:
		hdr[1] = 0x80 | 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 0x80 | 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	hdr = append(hdr, 0, 0, 0, 0)
	if _, err := c.Write(append(hdr, s...)); err != nil {
		t.Fatalf("raw write: %v", err)
	}
}

// readFrame reads one server frame (unmasked): its opcode and payload.
func (c *rawConn) readFrame(t testing.TB) (op byte, payload []byte) {
	t.Helper()
	op, payload, err := c.nextFrame()
	if err != nil {
		t.Fatalf("raw read: %v", err)
	}
	return op, payload
}

// nextFrame is readFrame for any goroutine: it returns the error.
func (c *rawConn) nextFrame() (op byte, payload []byte, err error) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(c, ext[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(c, ext[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if hdr[0]&0x80 == 0 || hdr[1]&0x80 != 0 || n > 1<<20 {
		return 0, nil, fmt.Errorf("unexpected frame header %x (length %d)", hdr, n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0] & 0x0f, payload, nil
}

// closeCode is a close frame's code and reason.
func closeCode(payload []byte) (int, string) {
	if len(payload) < 2 {
		return closeNoStatus, ""
	}
	return int(binary.BigEndian.Uint16(payload)), string(payload[2:])
}

// sndbufListener sets SO_SNDBUF on accepted connections.
type sndbufListener struct {
	net.Listener
	size int
}

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		_ = c.(*net.TCPConn).SetWriteBuffer(l.size)
	}
	return c, err
}
