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
	"sync/atomic"
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
// Everything decided before the stream starts is an HTTP status with a
// JSON body ({"errors": …}), as graphql-sse's reference handler answers: a
// request that is not a GraphQL request 400 (415 for another content
// type, 413 over ReadLimit, 405 for another method); failed
// authentication 401 (UNAUTHENTICATED); validation errors 400; a mutation
// over GET 405 (GraphQL-over-HTTP: GET must not change state); a server
// shutting down 503. After that the response is 200 and the stream: a
// resolver's errors are a `next` event carrying {"errors": …} followed by
// `complete`. A stream the server ends (CloseWith: drain, token expiry,
// slow consumer) ends without `complete`, so clients reconnect.
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
	t := &SSE{conns: make(map[*sseConn]struct{})}
	t.core.init(opts, false)
	return t
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
// reconnect elsewhere), cancels the context of every request in progress
// and refuses new ones; it waits until the streams are torn down, for at
// most WriteTimeout plus a grace second.
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
	t.stop()
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
	if t.base.Err() != nil {
		writeJSONError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	release, ok := t.admit(w, r)
	if !ok {
		return // answered 429 (Options.Admit)
	}
	defer release() // every way the request ends returns here
	start := graphql.Now()
	params, status, err := readSSEParams(w, r, t.opts.ReadLimit)
	if err != nil {
		writeJSONError(w, status, err.Error())
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	params.Headers = r.Header

	// The request's context, cancelled too when the transport closes.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(t.base, cancel)()

	opCtx, userID, expiresAt, err := t.opts.Authenticate(ctx, r, nil)
	if err != nil {
		if t.base.Err() != nil {
			writeJSONError(w, http.StatusServiceUnavailable, "server shutting down")
			return
		}
		var e *errs.Error
		if !errors.As(err, &e) {
			e = errs.E(errs.Unauthenticated, "%s", err.Error())
		}
		t.refused(r, err)
		writeJSON(w, http.StatusUnauthorized, exec.DispatchError(ctx, gqlerror.List{{Err: e, Message: e.Message}}))
		return
	}
	if opCtx == nil {
		opCtx = ctx
	}
	octx := graphql.StartOperationTrace(opCtx)
	rc, gerrs := exec.CreateOperationContext(octx, params)
	if gerrs != nil {
		writeJSON(w, http.StatusBadRequest, exec.DispatchError(graphql.WithOperationContext(octx, rc), gerrs))
		return
	}
	if r.Method == http.MethodGet && rc.Operation.Operation == ast.Mutation {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "mutations are not allowed over GET")
		return
	}

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

	if rc.Operation.Operation != ast.Subscription {
		handler, dctx := exec.DispatchOperation(octx, rc)
		for {
			resp := handler(dctx)
			if resp == nil {
				break
			}
			b, err := json.Marshal(resp)
			if err != nil || s.write(appendSSEEvent(nil, "next", b)) != nil {
				return
			}
		}
		_ = s.write(sseComplete)
		return
	}
	t.serveSubscription(ctx, s, r, exec, octx, rc, userID, expiresAt)
}

// serveSubscription runs a subscription stream until it ends, the client
// goes away or the server closes it (done: the request's context, also
// cancelled by Close). The request's goroutine is the stream's one
// long-lived goroutine; writes go through the session queue.
func (t *SSE) serveSubscription(done context.Context, s *sseStream, r *http.Request, exec graphql.GraphExecutor,
	ctx context.Context, rc *graphql.OperationContext, userID string, expiresAt time.Time) {
	c := &sseConn{t: t, sseStream: s, done: make(chan struct{}), torn: make(chan struct{})}
	defer close(c.torn)
	c.session.init(&t.core, c, protoSSE, exec, false)
	c.ctx = ctx
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

	// A stream is a connection from here on, as a WebSocket is from its
	// connection_init: connected, then its subscription (or its refusal),
	// then its end.
	t.obs.Connected(c.Info())
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
	case <-done.Done():
	}

	if c.stopTimers() {
		t.opts.Registry.Remove(c)
	}
	// A writer still blocked on this client gets closeGrace more.
	c.teardown(func() { c.abortWrites() })
	t.obs.Disconnected(c.Info(), c.closeCode(), true)
}

// sseStream writes events to a response.
type sseStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	// abortBy: as wsConn.abortBy, the deadline of the last writes once the
	// stream is being dropped; 0 until then.
	abortBy atomic.Int64
}

var sseComplete = appendSSEEvent(nil, "complete", nil)

// write writes b and flushes it within the write timeout (or the abort's
// deadline, if earlier).
func (s *sseStream) write(b []byte) error {
	d := time.Now().Add(s.timeout)
	if err := s.rc.SetWriteDeadline(d); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if by := s.abortBy.Load(); by != 0 && by < d.UnixNano() {
		_ = s.rc.SetWriteDeadline(time.Unix(0, by))
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// abortWrites gives a write in progress, and any after it, closeGrace
// more. It never blocks.
func (s *sseStream) abortWrites() {
	by := time.Now().Add(closeGrace)
	s.abortBy.Store(by.UnixNano())
	_ = s.rc.SetWriteDeadline(by)
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

// stopTimers ends the stream's keepalive and expiry for good; it reports
// whether the stream is registered.
func (c *sseConn) stopTimers() (registered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Closing before the timers stop: a keepalive already fired and waiting
	// for the lock then neither queues nor re-arms its timer.
	c.closing = true
	for _, tm := range []*time.Timer{c.keepalive, c.expiry} {
		if tm != nil {
			tm.Stop()
		}
	}
	return c.registered
}

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

func (c *sseConn) appendNext(b []byte, _ *subscription, payload []byte) []byte {
	return appendSSEEvent(b, "next", payload)
}

func (c *sseConn) appendRaw(b, msg []byte) []byte { return append(b, msg...) }

func (c *sseConn) appendControl(b []byte, _ uint8, _ []byte) []byte { return b }

func (c *sseConn) appendClose(b []byte, _ int, _ string) []byte { return b }

// tryWrite is never called: a response cannot be written without waiting,
// so a stream's writer is a goroutine of its own (its writes are rare).
func (c *sseConn) tryWrite(*rawWrite, []byte) (int, error) { return 0, http.ErrNotSupported }

func (c *sseConn) closed(code int, reason string) {
	if code != CloseNormal {
		c.t.log.Debug("transport: SSE stream closed by the server", "conn", c.id, "code", code, "reason", reason)
	}
	c.end()
}

func (c *sseConn) abort(slow bool) {
	if slow {
		c.abortWrites() // session.mu held; never blocks
	}
	c.end()
}

// readSSEParams reads the GraphQL request: a JSON body (POST) or query
// parameters (GET).
func readSSEParams(w http.ResponseWriter, r *http.Request, limit int64) (*graphql.RawParams, int, error) {
	var p *request
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
		if p, err = decodeRequest(body); err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("the request body %w", err)
		}
	case http.MethodGet:
		q := r.URL.Query()
		query, op := q.Get("query"), q.Get("operationName")
		p = &request{Query: &query, OperationName: &op}
		for name, dst := range map[string]*map[string]any{"variables": &p.Variables, "extensions": &p.Extensions} {
			if v := q.Get(name); v != "" {
				if !isObject([]byte(v)) || decodeJSON([]byte(v), dst) != nil {
					return nil, http.StatusBadRequest, fmt.Errorf("the %q parameter must be a JSON object", name)
				}
			}
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		return nil, http.StatusMethodNotAllowed, errors.New("use POST or GET")
	}
	if p.Query == nil || *p.Query == "" {
		return nil, http.StatusBadRequest, errors.New("the request needs a \"query\"")
	}
	return p.params(), 0, nil
}

// writeJSONError answers status with one error message, no code: the
// request is not one the GraphQL layer can present errors for.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, &graphql.Response{Errors: gqlerror.List{{Message: msg}}})
}

// writeJSON answers status with a GraphQL response.
func writeJSON(w http.ResponseWriter, status int, resp *graphql.Response) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	b, _ := json.Marshal(resp)
	_, _ = w.Write(b)
}
