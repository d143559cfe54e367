package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/realtime"
)

// wsConn is one WebSocket. Its reader goroutine (run) is the only
// long-lived goroutine; it alone handles client messages, and it alone
// tears the connection down.
//
// All the server's frames — messages, pings, pongs, the close — are framed
// here and written by the session's writer, never by gorilla's writer: one
// writer per socket, so a batch of frames is one write(2) and never
// interleaves with another. gorilla writes only the close frames of its own
// protocol errors (1002, 1009), on a connection that is ending.
//
// Its timers — keepalive pings, the silence limit, the init timeout, the
// credentials' expiry, an unfinished message — are the transport's sweeper
// (keepalive.go), which
// reads the atomics below: no timer, read deadline or goroutine per
// connection.
type wsConn struct {
	session
	t   *WebSocket
	ws  *websocket.Conn
	raw syscall.RawConn // the TCP socket, for writes that never wait; nil if unavailable

	// heard is the UnixNano of the last frame received, pongs included.
	heard atomic.Int64
	// deadline is the UnixNano at which the connection closes unless
	// something changes: connection_init's timeout (4408) before it, the
	// credentials' expiry (4403) after; 0: none.
	deadline atomic.Int64
	// msgStart is the UnixNano at which the message being read began (its
	// first frame's header arrived); 0 between messages. The sweeper closes
	// the connection when it is older than MessageTimeout.
	msgStart atomic.Int64
	// nextPing is when the sweeper pings next; the sweeper's alone.
	nextPing int64
	// abortBy is the UnixNano by which the writes of a slow consumer's end
	// (the batch in progress, then the 4010 close frame) must be done; 0
	// until abort(true). No write sets a later deadline.
	abortBy atomic.Int64

	// Message handling only (one message at a time). Until connection_init
	// session.ctx has the upgrade request's values (see connCtx), the base
	// of Authenticate's.
	req   *http.Request // until connection_init: Authenticate reads it
	acked bool          // written under session.mu: ping reads it

	// Guarded by session.mu.
	initReceived bool
	registered   bool

	// release gives back the socket's admission (Options.Admit); called
	// once, by untrack.
	release func()
}

var _ realtime.Conn = (*wsConn)(nil)

func newWSConn(t *WebSocket, ws *websocket.Conn, r *http.Request, exec graphql.GraphExecutor) *wsConn {
	c := &wsConn{t: t, ws: ws, req: r}
	c.ctx = &connCtx{Context: t.base, vals: r.Context()}
	if sc, ok := ws.NetConn().(syscall.Conn); ok && rawWriteSupported {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
		}
	}
	p := protoTransportWS
	if ws.Subprotocol() == ProtocolGraphQLWS {
		p = protoGraphQLWS
	}
	c.session.init(&t.core, c, p, exec, c.raw != nil)
	c.identify(r, "")
	now := c.connectedAt
	c.heard.Store(now)
	c.nextPing = now + int64(t.opts.PingInterval)
	c.deadline.Store(now + int64(t.opts.InitTimeout))
	return c
}

// CloseWith implements realtime.Conn: the connection closes with code and
// reason once the frames already queued are written. It returns at once.
func (c *wsConn) CloseWith(code int, reason string) { c.closeWith(code, reason) }

// run is the reader: it serves client messages until the connection ends,
// then tears it down.
//
// The reader is parked in gorilla's read for most of the connection's
// life, so it is kept shallow: parked, it holds about 1.1 KiB of frames,
// mostly gorilla's and net's, which fits a 2 KiB stack (1120 usable
// bytes) and keeps the average by which the runtime sizes new goroutines'
// stacks at 2 KiB. The margin is small — a few more bytes here and every
// goroutine starts at 4 KiB; TestMemoryPerConnection guards it — so
// message handling runs aside (handleAside), pings and pongs only queue
// and stamp, and run itself keeps few locals.
func (c *wsConn) run() {
	defer c.end()
	c.start()
	ws := c.ws
	for {
		typ, r, err := ws.NextReader()
		if err != nil {
			c.readFailed(err)
			return
		}
		if !c.received(typ, r) {
			return
		}
	}
}

// start installs the connection's handlers.
func (c *wsConn) start() {
	ws := c.ws
	ws.SetReadLimit(c.t.opts.ReadLimit)
	ws.SetPongHandler(func(string) error {
		c.heard.Store(time.Now().UnixNano())
		return nil
	})
	ws.SetPingHandler(func(data string) error {
		c.heard.Store(time.Now().UnixNano())
		c.enqueue(frame{kind: framePong, raw: []byte(data)})
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		c.peerClosed(code)
		return nil
	})
	if ws.Subprotocol() == "" {
		c.closeWith(CloseSubprotocolNotAccepted, "Subprotocol not acceptable")
	}
}

// end tears the connection down when reading ends.
func (c *wsConn) end() {
	// Messages are handled under their own recover; this is the last line
	// so a bug costs one connection, not the process.
	if r := recover(); r != nil {
		c.t.log.Error("transport: connection reader panicked", "conn", c.id, "panic", r)
	}
	c.teardownWS()
}

// received handles a message whose frame header has been read; false when
// reading has ended.
func (c *wsConn) received(typ int, r io.Reader) bool {
	if c.isClosing() {
		return true // waiting for the peer's close frame; gorilla skips the rest
	}
	c.touch()
	now := c.lastActivity.Load()
	c.heard.Store(now)
	if typ != websocket.TextMessage {
		c.closeWith(CloseBadRequest, "binary messages are not supported")
		return true
	}
	// Its further frames, and the control frames between them, are read
	// by ReadAll (gorilla's reader): the sweeper bounds the whole of it.
	c.msgStart.Store(now)
	data, err := io.ReadAll(r)
	c.msgStart.Store(0)
	if err != nil {
		c.readFailed(err)
		return false
	}
	// RFC 6455 §8.1: a text message must be UTF-8; gorilla does not check.
	if !utf8.Valid(data) {
		c.closeWith(CloseInvalidPayload, "Invalid message received: text is not valid UTF-8")
		return true
	}
	c.handleAside(data)
	return true
}

// messageTimedOut closes a connection whose message is still unfinished
// after MessageTimeout (called by the sweeper). The reader, still reading
// that message, is given closeGrace to take the peer's close frame, as
// after any close, even if the writer is held up by this client.
func (c *wsConn) messageTimedOut() {
	c.mu.Lock()
	already := c.closing // then that close bounds the reader
	c.closeLocked(ClosePolicyViolation, fmt.Sprintf("Message not completed within %v", c.t.opts.MessageTimeout))
	c.mu.Unlock()
	if !already {
		_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
	}
}

// handleAside handles a message on a short-lived goroutine and waits for
// it. Handling a subscribe (gqlgen's parse, validate and execute) or a
// connection_init (authentication) grows a stack to tens of KB; on the
// reader, which lives as long as the connection, that stack would stay
// grown until a collection shrinks it. Messages are still handled one at
// a time, in order: a client's ping after a subscribe is answered after
// the subscription is registered.
func (c *wsConn) handleAside(data []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.handle(data)
	}()
	<-done
}

// peerClosed answers the peer's close frame (called by gorilla's reader):
// queued frames are dropped and the close goes out with the peer's code,
// unless the server's own close is already queued.
func (c *wsConn) peerClosed(code int) {
	c.mu.Lock()
	if !c.closing {
		c.dropQueueLocked()
		c.closeLocked(code, "")
	}
	c.mu.Unlock()
}

// readFailed handles the end of reading.
func (c *wsConn) readFailed(err error) {
	if _, ok := err.(*websocket.CloseError); ok {
		// The peer closed. Its answer is queued (peerClosed): let the
		// writer send it before TCP closes.
		c.waitFlushed(closeGrace)
		return
	}
	tooBig := errors.Is(err, websocket.ErrReadLimit)
	c.mu.Lock()
	if tooBig && !c.closing {
		c.code = CloseMessageTooBig // gorilla sent it
	}
	c.closing = true
	c.dropQueueLocked()
	c.mu.Unlock()
	if tooBig {
		// gorilla has sent 1009. The peer is still sending the oversized
		// message: drain it (briefly) so our close frame is not lost to a
		// TCP reset when we close with unread data.
		nc := c.ws.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
		_, _ = io.Copy(io.Discard, nc)
	}
}

// ping queues a keepalive: a ping control frame; legacy graphql-ws also
// gets a "ka" message. Called by the sweeper.
func (c *wsConn) ping() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	if c.proto == protoGraphQLWS && c.acked {
		c.enqueueLocked(frame{kind: frameRaw, raw: msgKeepAlive})
	}
	c.enqueueLocked(frame{kind: framePing})
}

// expire closes the connection if its deadline has passed: no
// connection_init in time (4408), or expired credentials (4403). Called by
// the sweeper.
func (c *wsConn) expire(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.deadline.Load(); d == 0 || now < d {
		return // connection_init came, or the deadline moved
	}
	c.deadline.Store(0)
	if !c.initReceived {
		c.closeLocked(CloseInitTimeout, "Connection initialisation timeout")
	} else {
		c.closeLocked(CloseForbidden, "Forbidden: token expired")
	}
}

// ---- wire ----

var (
	msgConnectionAck = []byte(`{"type":"connection_ack"}`)
	msgKeepAlive     = []byte(`{"type":"ka"}`)
	msgPong          = []byte(`{"type":"pong"}`)
)

func (c *wsConn) appendNext(b []byte, sub *subscription, payload []byte) []byte {
	typ := c.proto.nextType()
	b = appendFrameHeader(b, opText, messageLen(typ, sub.idJSON, payload))
	return appendMessage(b, typ, sub.idJSON, payload)
}

func (c *wsConn) appendRaw(b, msg []byte) []byte {
	return append(appendFrameHeader(b, opText, len(msg)), msg...)
}

func (c *wsConn) appendControl(b []byte, kind uint8, payload []byte) []byte {
	op := byte(opPing)
	if kind == framePong {
		op = opPong
	}
	return append(appendFrameHeader(b, op, len(payload)), payload...)
}

func (c *wsConn) appendClose(b []byte, code int, reason string) []byte {
	return appendCloseFrame(b, code, reason)
}

func (c *wsConn) tryWrite(w *rawWrite, b []byte) (int, error) { return w.write(c.raw, b) }

// write is the writer's waiting write: the client's buffer was full (or
// the socket offers no raw access). It alone sets a write deadline, and
// clears it after, so writes that do not wait never pay for one.
func (c *wsConn) write(b []byte) error {
	nc := c.ws.NetConn()
	d := time.Now().Add(c.t.opts.WriteTimeout)
	_ = nc.SetWriteDeadline(d)
	if by := c.abortBy.Load(); by != 0 && by < d.UnixNano() {
		// A slow consumer's end: abort's deadline wins, whether abort ran
		// before this write or during the set above (it stores abortBy
		// before setting its deadline).
		_ = nc.SetWriteDeadline(time.Unix(0, by))
	}
	if _, err := nc.Write(b); err != nil {
		return err
	}
	_ = nc.SetWriteDeadline(time.Time{})
	return nil
}

// closed gives the peer closeGrace to answer the close frame with its own
// before the reader gives up and closes TCP.
func (c *wsConn) closed(int, string) {
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
}

func (c *wsConn) abort(slow bool) {
	if slow {
		// The writer may be blocked on this client: it gets closeGrace to
		// finish the batch in progress and write the 4010 after it. A
		// client still reading gets the close; one that is not is dropped
		// when the deadline passes (the write fails).
		by := time.Now().Add(closeGrace)
		c.abortBy.Store(by.UnixNano())
		_ = c.ws.NetConn().SetWriteDeadline(by)
		return
	}
	_ = c.ws.SetReadDeadline(time.Now()) // wake the reader: it tears down
}

// teardownWS ends the connection: subscriptions, operations, registry
// entry, TCP.
func (c *wsConn) teardownWS() {
	c.mu.Lock()
	registered, connected := c.registered, c.connected
	c.mu.Unlock()
	if registered {
		c.t.opts.Registry.Remove(c)
	}
	c.teardown(func() { _ = c.ws.Close() })
	c.req = nil
	c.t.obs.Disconnected(c.Info(), c.closeCode(), connected)
	c.t.untrack(c)
}

// ---- client messages ----

// inbound is a client message's envelope; fields stay raw so their JSON
// types can be checked.
type inbound struct {
	ID      json.RawMessage `json:"id"`
	Type    json.RawMessage `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// protocolError closes the connection with 4400 and reason.
func (c *wsConn) protocolError(format string, args ...any) {
	c.closeWith(CloseBadRequest, fmt.Sprintf(format, args...))
}

func (c *wsConn) handle(data []byte) {
	defer func() {
		if r := recover(); r != nil {
			c.t.log.Error("transport: handling a message panicked", "conn", c.id, "panic", r)
			c.closeWith(CloseInternalError, "Internal server error")
		}
	}()
	var m inbound
	if err := json.Unmarshal(data, &m); err != nil {
		c.protocolError("Invalid message received: not a JSON object")
		return
	}
	if len(m.Type) == 0 {
		c.protocolError("Invalid message received: missing \"type\"")
		return
	}
	var typ string
	if err := json.Unmarshal(m.Type, &typ); err != nil {
		c.protocolError("Invalid message received: \"type\" must be a string")
		return
	}
	if c.proto == protoGraphQLWS {
		c.handleLegacy(typ, &m)
		return
	}
	switch typ {
	case "connection_init":
		c.connectionInit(&m)
	case "ping":
		if !isObjectOrAbsent(m.Payload) {
			c.protocolError("Invalid message received: \"ping\" payload must be an object")
			return
		}
		pong := msgPong
		if len(m.Payload) > 0 && len(m.Payload) <= maxPingEcho && !isNull(m.Payload) {
			pong = c.message("pong", nil, m.Payload)
		}
		c.enqueue(frame{kind: frameRaw, raw: pong})
	case "pong":
		// A reply to nothing we sent as a message, or a unidirectional
		// heartbeat: accepted and ignored.
	case "subscribe":
		if !c.acked {
			c.closeWith(CloseUnauthorized, "Unauthorized")
			return
		}
		id, ok := c.operationID(&m, typ)
		if !ok {
			return
		}
		params, err := parseParams(m.Payload)
		if err != nil {
			c.protocolError("Invalid message received: %v", err)
			return
		}
		if c.idInUse(id) {
			c.closeWith(CloseSubscriberExists, "Subscriber for "+id+" already exists")
			return
		}
		c.execute(id, params)
	case "complete":
		if id, ok := c.operationID(&m, typ); ok {
			c.complete(id)
		}
	case "connection_ack", "next", "error":
		c.protocolError("Invalid message received: %q is a server message", typ)
	default:
		c.protocolError("Invalid message received: unknown type %q", truncateReason(typ))
	}
}

// handleLegacy serves subscriptions-transport-ws clients. Choices where
// that protocol is silent or gqlgen's and Apollo's servers differ:
//   - A message that is not a JSON object with a string "type" closes the
//     socket with 4400, as in graphql-transport-ws; an unknown type, a
//     server-only type, or a start/stop without a valid id gets an `error`
//     message (payload: a GraphQL error list) and the socket stays, as
//     subscriptions-transport-ws's server does.
//   - Authentication failure: `connection_error` {"message"} then close
//     4403. A second connection_init: 4429. start before connection_init:
//     4401.
//   - start with the id of an active operation replaces it (the old one is
//     stopped silently), as subscriptions-transport-ws's server does.
//   - Errors of an operation (validation, resolver, End with an error) are
//     an `error` message whose payload is the GraphQL error list, as gqlgen
//     sends it; results are `data`, the end is `complete`.
//   - connection_terminate closes with 1000.
func (c *wsConn) handleLegacy(typ string, m *inbound) {
	switch typ {
	case "connection_init":
		c.connectionInit(m)
	case "start":
		if !c.acked {
			c.closeWith(CloseUnauthorized, "Unauthorized")
			return
		}
		id, ok := c.operationID(m, typ)
		if !ok {
			return
		}
		params, err := parseParams(m.Payload)
		if err != nil {
			c.legacyError(m.ID, err.Error())
			return
		}
		c.complete(id)
		c.execute(id, params)
	case "stop":
		if id, ok := c.operationID(m, typ); ok {
			c.complete(id)
		}
	case "connection_terminate":
		c.closeWith(CloseNormal, "")
	default:
		c.legacyError(m.ID, fmt.Sprintf("unknown message type %q", typ))
	}
}

// legacyError sends a graphql-ws `error` message for a bad client message,
// echoing its id when it has a usable one.
func (c *wsConn) legacyError(rawID json.RawMessage, msg string) {
	var idJSON []byte
	var id string
	if json.Unmarshal(rawID, &id) == nil && id != "" && len(id) <= MaxIDLength {
		idJSON = jsonString(id)
	}
	b, _ := json.Marshal(gqlerror.List{{Message: msg}})
	c.enqueue(frame{kind: frameRaw, raw: c.message("error", idJSON, b)})
}

// operationID validates a message's id: a non-empty string of at most
// MaxIDLength bytes. On failure the client is told (4400; legacy: an error
// message) and ok is false.
func (c *wsConn) operationID(m *inbound, typ string) (id string, ok bool) {
	var problem string
	switch {
	case len(m.ID) == 0 || isNull(m.ID):
		problem = fmt.Sprintf("%q needs an \"id\"", typ)
	case json.Unmarshal(m.ID, &id) != nil:
		problem = "\"id\" must be a string"
	case id == "":
		problem = "\"id\" must not be empty"
	case len(id) > MaxIDLength:
		problem = fmt.Sprintf("\"id\" is longer than %d bytes", MaxIDLength)
	default:
		return id, true
	}
	if c.proto == protoGraphQLWS {
		c.legacyError(nil, problem)
	} else {
		c.protocolError("Invalid message received: %s", problem)
	}
	return "", false
}

// connectionInit authenticates the connection and acknowledges it.
func (c *wsConn) connectionInit(m *inbound) {
	c.mu.Lock()
	again := c.initReceived
	c.initReceived = true
	c.deadline.Store(0) // InitTimeout now bounds Authenticate alone
	c.mu.Unlock()
	if again {
		c.closeWith(CloseTooManyInitRequests, "Too many initialisation requests")
		return
	}
	var payload map[string]any
	if len(m.Payload) > 0 && !isNull(m.Payload) {
		if !isObject(m.Payload) || decodeJSON(m.Payload, &payload) != nil {
			c.protocolError("Invalid message received: \"connection_init\" payload must be an object")
			return
		}
	}

	actx, cancel := context.WithTimeout(c.ctx, c.t.opts.InitTimeout)
	opCtx, userID, expiresAt, err := c.t.opts.Authenticate(actx, c.req, payload)
	cancel()
	c.req = nil
	if err != nil {
		c.t.obs.AuthFailed(c.Info(), err)
		if c.proto == protoGraphQLWS {
			b, _ := json.Marshal(map[string]string{"message": err.Error()})
			c.enqueue(frame{kind: frameRaw, raw: c.message("connection_error", nil, b)})
		}
		c.closeWith(closeCodeOf(err))
		return
	}
	if opCtx == nil {
		opCtx = c.ctx
	}
	// Authenticate's values, the transport's cancellation: the
	// authentication deadline must not bound the connection's life.
	// Operations have their own cancel, and a subscription ends through the
	// hub, so a cancelCtx per connection would be memory for nothing.
	c.ctx = &connCtx{Context: c.t.base, vals: realtime.WithConn(opCtx, c)}
	c.userID = userID

	c.mu.Lock()
	c.acked = true // written under mu: ping reads it
	c.enqueueLocked(frame{kind: frameRaw, raw: msgConnectionAck})
	if c.proto == protoGraphQLWS {
		c.enqueueLocked(frame{kind: frameRaw, raw: msgKeepAlive})
	}
	if !expiresAt.IsZero() {
		c.deadline.Store(expiresAt.UnixNano())
	}
	if c.t.opts.Registry != nil && !c.closing {
		c.registered = true
		c.t.opts.Registry.Add(c) // never calls back into the connection
	}
	c.connected = !c.closing
	connected := c.connected
	c.mu.Unlock()
	if connected {
		// The reader waits for this message's handling, so teardown
		// (Disconnected) cannot come first.
		c.t.obs.Connected(c.Info())
	}
}

// execute runs a subscribe (legacy: start) message's operation.
func (c *wsConn) execute(id string, params *graphql.RawParams) {
	ctx := graphql.StartOperationTrace(c.ctx)
	rc, gerrs := c.exec.CreateOperationContext(ctx, params)
	if gerrs == nil && c.activeOps() >= c.t.opts.MaxSubsPerConn {
		e := badInputError(fmt.Sprintf("too many subscriptions on this connection (limit %d)", c.t.opts.MaxSubsPerConn))
		e.Extensions["limit"] = LimitMaxSubsPerConn
		gerrs = gqlerror.List{e}
		c.t.limitRefused(graphql.WithOperationContext(c.ctx, rc), LimitMaxSubsPerConn) // OnLimit may name the operation
	}
	if gerrs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), gerrs)
		c.enqueue(frame{kind: frameRaw, raw: c.errorMessage(jsonString(id), resp.Errors)})
		return
	}
	if rc.Operation.Operation == ast.Subscription {
		c.startSubscription(ctx, id, rc)
		return
	}
	c.startOperation(ctx, id, rc)
}

// connCtx is a WebSocket's base context: the values of vals (the upgrade
// request's, then Authenticate's) and the cancellation of the transport's
// context, which Close cancels. One small struct per connection, where a
// context merging both cancellations would keep a cancelCtx and a
// registration per connection.
type connCtx struct {
	context.Context // the transport's base: Deadline, Done, Err
	vals            context.Context
}

// Value asks the transport's context first. It holds no values of its
// own, but it answers the context package's lookup of the cancelCtx
// behind Done, so a context derived from this one, directly or below
// WithValue (an operation's, an Authenticate timeout), registers with the
// transport's context instead of starting a goroutine to watch it
// (TestConnCtx).
func (c *connCtx) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.vals.Value(key)
}

// ---- payload parsing ----

// request is a GraphQL request as a client sends it: a subscribe/start
// payload, or an SSE request's body or query parameters.
type request struct {
	Query         *string        `json:"query"`
	OperationName *string        `json:"operationName"`
	Variables     map[string]any `json:"variables"`
	Extensions    map[string]any `json:"extensions"`
}

// errRequestShape is the error of a request that is not a GraphQL request.
const errRequestShape = "{query: string, operationName?: string, variables?: object, extensions?: object}"

// decodeRequest decodes a JSON object into a request.
func decodeRequest(b []byte) (*request, error) {
	var p request
	if !isObject(b) || decodeJSON(b, &p) != nil {
		return nil, errors.New("must be " + errRequestShape)
	}
	return &p, nil
}

// params returns the request's gqlgen parameters; the query must be set.
func (p *request) params() *graphql.RawParams {
	params := &graphql.RawParams{Query: *p.Query, Variables: p.Variables, Extensions: p.Extensions}
	if p.OperationName != nil {
		params.OperationName = *p.OperationName
	}
	return params
}

// parseParams decodes a subscribe/start payload: {query, operationName?,
// variables?, extensions?}.
func parseParams(payload json.RawMessage) (*graphql.RawParams, error) {
	if len(payload) == 0 || isNull(payload) {
		return nil, errors.New("the operation needs a \"payload\"")
	}
	if !isObject(payload) {
		return nil, errors.New("\"payload\" must be an object")
	}
	p, err := decodeRequest(payload)
	if err != nil {
		return nil, fmt.Errorf("\"payload\" %w", err)
	}
	if p.Query == nil {
		return nil, errors.New("\"payload\" needs a \"query\" string")
	}
	params := p.params()
	now := graphql.Now()
	params.ReadTime = graphql.TraceTiming{Start: now, End: now}
	return params, nil
}

// decodeJSON decodes with json.Number for numbers, as gqlgen's transports
// do, so large integer variables keep their precision.
func decodeJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func isNull(b json.RawMessage) bool { return string(bytes.TrimSpace(b)) == "null" }

func isObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

func isObjectOrAbsent(b json.RawMessage) bool {
	return len(b) == 0 || isNull(b) || isObject(b)
}
