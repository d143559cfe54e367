package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
)

// SSE is the graphql-sse transport in distinct connections mode: one
// operation per request, its results streamed as `next` events and ended
// by a `complete` event. A subscription's stream uses the same shapes,
// bounded queue and slow-consumer rule as a WebSocket.
//
// Request problems (a body that is not a GraphQL request) are answered
// 400 with a JSON error; everything after that — failed authentication
// (UNAUTHENTICATED), validation errors, resolver errors — is a `next`
// event carrying {"errors": …} followed by `complete`, as graphql-sse's
// PROTOCOL.md asks for validation errors, so EventSource-like clients see
// why. A stream the server ends (CloseWith: drain, token expiry, slow
// consumer) ends without `complete`, so clients reconnect.
type SSE struct {
	core

	mu     sync.Mutex
	conns  map[*sseConn]struct{}
	closed bool
}

var _ graphql.Transport = (*SSE)(nil)

// NewSSE returns an SSE transport; zero Options fields take their defaults
// (CheckOrigin and InitTimeout do not apply).
func NewSSE(opts Options) *SSE {
	opts = opts.withDefaults()
	if opts.Authenticate == nil {
		panic("transport: Options.Authenticate is required")
	}
	return &SSE{
		core:  core{opts: opts, log: opts.Logger, shapes: newShapeRegistry()},
		conns: make(map[*sseConn]struct{}),
	}
}

// Supports reports whether r asks for an event stream: a POST, or a GET
// with a query parameter, accepting text/event-stream.
func (t *SSE) Supports(r *http.Request) bool {
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return false
	}
	switch r.Method {
	case http.MethodPost:
		return true
	case http.MethodGet:
		return r.URL.Query().Has("query")
	}
	return false
}

// Stats returns the transport's counters (Connections: live subscription
// streams).
func (t *SSE) Stats() Stats { return t.n.stats(t.shapes.len()) }

// Close ends every subscription stream (without complete, so clients
// reconnect elsewhere) and refuses new ones; it waits until they are torn
// down, for at most WriteTimeout plus a grace second.
func (t *SSE) Close() {
	t.mu.Lock()
	t.closed = true
	conns := make([]*sseConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.CloseWith(CloseGoingAway, "server shutting down")
	}
	// Streams end once their queued events are written, each write bounded
	// by WriteTimeout; only a resolver still running could hold one longer.
	timer := time.NewTimer(t.opts.WriteTimeout + closeGrace)
	defer timer.Stop()
	for _, c := range conns {
		select {
		case <-c.torn:
		case <-timer.C:
			t.log.Warn("transport: SSE streams still busy after Close", "conn", c.id)
			return
		}
	}
}

// Do serves one request.
func (t *SSE) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		writeJSONError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	start := graphql.Now()
	params, status, err := readSSEParams(w, r, t.opts.ReadLimit)
	if err != nil {
		writeJSONError(w, status, err.Error())
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	params.Headers = r.Header

	rwc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies must not buffer the stream
	w.WriteHeader(http.StatusOK)
	if err := rwc.Flush(); err != nil {
		t.log.Error("transport: SSE needs a flushable response", "err", err)
		return
	}
	s := &sseStream{w: w, rc: rwc, timeout: t.opts.WriteTimeout}
	defer s.resetDeadline()

	opCtx, userID, expiresAt, err := t.opts.Authenticate(r.Context(), r, nil)
	if err != nil {
		var e *errs.Error
		if !errors.As(err, &e) {
			e = errs.E(errs.Unauthenticated, "%s", err.Error())
		}
		resp := exec.DispatchError(r.Context(), gqlerror.List{{Err: e, Message: e.Message}})
		s.errorsThenComplete(resp.Errors)
		return
	}
	if opCtx == nil {
		opCtx = r.Context()
	}
	ctx := graphql.StartOperationTrace(opCtx)
	rc, gerrs := exec.CreateOperationContext(ctx, params)
	if gerrs != nil {
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, rc), gerrs)
		s.errorsThenComplete(resp.Errors)
		return
	}
	if rc.Operation.Operation != ast.Subscription {
		handler, dctx := exec.DispatchOperation(ctx, rc)
		for {
			resp := handler(dctx)
			if resp == nil {
				break
			}
			b, err := json.Marshal(resp)
			if err != nil || s.write(sseEvent("next", b)) != nil {
				return
			}
		}
		_ = s.write(sseComplete)
		return
	}
	t.serveSubscription(s, r, exec, ctx, rc, userID, expiresAt)
}

// serveSubscription runs a subscription stream until it ends, the client
// goes away or the server closes it. The request's goroutine is the
// stream's one long-lived goroutine; writes go through the session queue.
func (t *SSE) serveSubscription(s *sseStream, r *http.Request, exec graphql.GraphExecutor,
	ctx context.Context, rc *graphql.OperationContext, userID string, expiresAt time.Time) {
	c := &sseConn{t: t, sseStream: s, done: make(chan struct{}), torn: make(chan struct{})}
	defer close(c.torn)
	c.session.init(&t.core, c, protoSSE, exec)
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.identify(r, userID)

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.conns[c] = struct{}{}
	t.n.conns.Add(1)
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.conns, c)
		t.n.conns.Add(-1)
		t.mu.Unlock()
	}()

	c.startSubscription(c.ctx, "", rc)

	c.mu.Lock()
	if !c.closing {
		c.keepalive = time.AfterFunc(t.opts.PingInterval, c.keepAlive)
		if !expiresAt.IsZero() {
			c.expiry = time.AfterFunc(time.Until(expiresAt), func() {
				c.closeWith(CloseForbidden, "Forbidden: token expired")
			})
		}
		if t.opts.Registry != nil {
			c.registered = true
			t.opts.Registry.Add(c)
		}
	}
	c.mu.Unlock()

	select {
	case <-c.done:
	case <-r.Context().Done():
	}

	c.mu.Lock()
	for _, tm := range []*time.Timer{c.keepalive, c.expiry} {
		if tm != nil {
			tm.Stop()
		}
	}
	registered := c.registered
	c.mu.Unlock()
	if registered {
		t.opts.Registry.Remove(c)
	}
	// A writer still blocked on this client gets closeGrace more.
	c.teardown(func() { _ = c.rc.SetWriteDeadline(time.Now().Add(closeGrace)) })
}

// sseStream writes events to a response.
type sseStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

var sseComplete = []byte("event: complete\ndata:\n\n")

func sseEvent(typ string, data []byte) []byte {
	b := make([]byte, 0, len(typ)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// write writes b and flushes it within the write timeout.
func (s *sseStream) write(b []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sseStream) errorsThenComplete(list gqlerror.List) {
	b, _ := json.Marshal(&graphql.Response{Errors: list})
	if s.write(sseEvent("next", b)) == nil {
		_ = s.write(sseComplete)
	}
}

// resetDeadline lifts the per-write deadline so a kept-alive connection's
// next request is not cut short by it.
func (s *sseStream) resetDeadline() { _ = s.rc.SetWriteDeadline(time.Time{}) }

// sseConn is a subscription stream as the session and the registry see it.
type sseConn struct {
	session
	*sseStream
	t    *SSE
	done chan struct{} // closed (once) when the stream must end
	once sync.Once
	torn chan struct{} // closed when torn down

	// Guarded by session.mu.
	keepalive  *time.Timer
	expiry     *time.Timer
	registered bool
}

var _ realtime.Conn = (*sseConn)(nil)

// CloseWith implements realtime.Conn: the stream ends (without complete)
// once the events already queued are written; code and reason only show
// in logs.
func (c *sseConn) CloseWith(code int, reason string) { c.closeWith(code, reason) }

func (c *sseConn) keepAlive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.enqueueLocked(frame{kind: frameRaw, raw: sseKeepAlive})
	c.keepalive.Reset(c.t.opts.PingInterval)
}

var sseKeepAlive = []byte(":\n\n")

func (c *sseConn) end() { c.once.Do(func() { close(c.done) }) }

// appendNext appends a next event. JSON has no raw newlines, so the
// payload is one data line.
func (c *sseConn) appendNext(b []byte, _ *subscription, payload []byte) []byte {
	b = append(b, "event: next\ndata: "...)
	b = append(b, payload...)
	return append(b, "\n\n"...)
}

func (c *sseConn) appendRaw(b, msg []byte) []byte { return append(b, msg...) }

func (c *sseConn) appendControl(b []byte, _ uint8, _ []byte) []byte { return b }

func (c *sseConn) appendClose(b []byte, _ int, _ string) []byte { return b }

// canTry: a response cannot be written without waiting; the session's
// writer is a goroutine of its own, as its stream's writes are rare.
func (c *sseConn) canTry() bool { return false }

func (c *sseConn) tryWrite(*rawWrite, []byte) (int, error) { return 0, http.ErrNotSupported }

func (c *sseConn) closed(code int, reason string) {
	if code != CloseNormal {
		c.t.log.Debug("transport: SSE stream closed by the server", "conn", c.id, "code", code, "reason", reason)
	}
	c.end()
}

func (c *sseConn) abort(slow bool) {
	if slow {
		_ = c.rc.SetWriteDeadline(time.Now().Add(closeGrace)) // session.mu held; never blocks
	}
	c.end()
}

// readSSEParams reads the GraphQL request: a JSON body (POST) or query
// parameters (GET).
func readSSEParams(w http.ResponseWriter, r *http.Request, limit int64) (*graphql.RawParams, int, error) {
	var p struct {
		Query         *string        `json:"query"`
		OperationName *string        `json:"operationName"`
		Variables     map[string]any `json:"variables"`
		Extensions    map[string]any `json:"extensions"`
	}
	switch r.Method {
	case http.MethodPost:
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/json" {
				return nil, http.StatusUnsupportedMediaType, errors.New("the request body must be application/json")
			}
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the request body is larger than %d bytes", limit)
			}
			return nil, http.StatusBadRequest, errors.New("the request body could not be read")
		}
		if !isObject(body) || decodeJSON(body, &p) != nil {
			return nil, http.StatusBadRequest, errors.New("the request body must be {query: string, operationName?: string, variables?: object, extensions?: object}")
		}
	case http.MethodGet:
		q := r.URL.Query()
		query, op := q.Get("query"), q.Get("operationName")
		p.Query, p.OperationName = &query, &op
		for name, dst := range map[string]*map[string]any{"variables": &p.Variables, "extensions": &p.Extensions} {
			if v := q.Get(name); v != "" {
				if !isObject([]byte(v)) || decodeJSON([]byte(v), dst) != nil {
					return nil, http.StatusBadRequest, fmt.Errorf("the %q parameter must be a JSON object", name)
				}
			}
		}
	default:
		return nil, http.StatusMethodNotAllowed, errors.New("use POST or GET")
	}
	if p.Query == nil || *p.Query == "" {
		return nil, http.StatusBadRequest, errors.New("the request needs a \"query\"")
	}
	params := &graphql.RawParams{Query: *p.Query, Variables: p.Variables, Extensions: p.Extensions}
	if p.OperationName != nil {
		params.OperationName = *p.OperationName
	}
	return params, 0, nil
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(&graphql.Response{Errors: gqlerror.List{{Message: msg}}})
	_, _ = w.Write(b)
}
