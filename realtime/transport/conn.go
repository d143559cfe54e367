package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/realtime"
)

// wsConn is one WebSocket. Its reader goroutine (run) is the only
// long-lived goroutine; it alone handles client messages, and it alone
// tears the connection down.
type wsConn struct {
	session
	t    *WebSocket
	ws   *websocket.Conn
	done chan struct{} // closed when torn down

	// Reader goroutine only.
	req     *http.Request   // until connection_init: Authenticate reads it
	baseCtx context.Context // the upgrade request's values, never cancelled
	acked   bool

	// Guarded by session.mu.
	initReceived bool
	registered   bool
	pingTimer    *time.Timer
	initTimer    *time.Timer
	expiryTimer  *time.Timer
}

var _ realtime.Conn = (*wsConn)(nil)

func newWSConn(t *WebSocket, ws *websocket.Conn, r *http.Request, exec graphql.GraphExecutor) *wsConn {
	c := &wsConn{t: t, ws: ws, done: make(chan struct{}), req: r, baseCtx: context.WithoutCancel(r.Context())}
	p := protoTransportWS
	if ws.Subprotocol() == ProtocolGraphQLWS {
		p = protoGraphQLWS
	}
	c.session.init(&t.core, c, p, exec)
	c.info = realtime.ConnInfo{
		ID:          newConnID(),
		ConnectedAt: time.Now(),
		UserAgent:   r.UserAgent(),
		IP:          remoteIP(r.RemoteAddr),
		Transport:   ws.Subprotocol(),
	}
	c.touch()
	return c
}

// CloseWith implements realtime.Conn: the connection closes with code and
// reason once the frames already queued are written. It returns at once.
func (c *wsConn) CloseWith(code int, reason string) { c.closeWith(code, reason) }

// run is the reader: it serves client messages until the connection ends,
// then tears it down.
func (c *wsConn) run() {
	defer close(c.done)
	defer c.teardownWS()

	ws := c.ws
	ws.SetReadLimit(c.t.opts.ReadLimit)
	ws.SetPongHandler(func(string) error {
		c.extendReadDeadline()
		return nil
	})
	ws.SetPingHandler(func(data string) error {
		c.extendReadDeadline()
		// A failed pong means a broken write side; the writer or the read
		// deadline notices, so the error is not the reader's to act on.
		_ = ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.t.opts.WriteTimeout))
		return nil
	})
	c.extendReadDeadline()

	if ws.Subprotocol() == "" {
		c.closeWith(CloseSubprotocolNotAccepted, "Subprotocol not acceptable")
	} else {
		c.startTimers()
	}

	for {
		typ, r, err := ws.NextReader()
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.isClosing() {
			continue // waiting for the peer's close frame; gorilla skips the rest
		}
		c.touch()
		c.extendReadDeadline()
		if typ != websocket.TextMessage {
			c.closeWith(CloseBadRequest, "binary messages are not supported")
			continue
		}
		data, err := io.ReadAll(r)
		if err != nil {
			c.readFailed(err)
			return
		}
		c.handle(data)
	}
}

// extendReadDeadline gives the peer 2×PingInterval to send anything (a
// message, a pong to our ping); a closing connection keeps its deadline.
func (c *wsConn) extendReadDeadline() {
	c.mu.Lock()
	if !c.closing {
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.t.opts.PingInterval))
	}
	c.mu.Unlock()
}

// readFailed handles the end of reading.
func (c *wsConn) readFailed(err error) {
	c.mu.Lock()
	c.closing = true
	c.dropQueueLocked()
	c.mu.Unlock()
	if errors.Is(err, websocket.ErrReadLimit) {
		// gorilla has sent 1009. The peer is still sending the oversized
		// message: drain it (briefly) so our close frame is not lost to a
		// TCP reset when we close with unread data.
		nc := c.ws.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
		_, _ = io.Copy(io.Discard, nc)
	}
}

func (c *wsConn) startTimers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initTimer = time.AfterFunc(c.t.opts.InitTimeout, func() {
		c.mu.Lock()
		if !c.initReceived {
			c.closeLocked(CloseInitTimeout, "Connection initialisation timeout")
		}
		c.mu.Unlock()
	})
	c.pingTimer = time.AfterFunc(c.t.opts.PingInterval, c.ping)
}

// ping sends a keepalive (a ping control frame; legacy graphql-ws also a
// "ka" message) and schedules the next one.
func (c *wsConn) ping() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if c.proto == protoGraphQLWS && c.acked {
		c.enqueueLocked(frame{kind: frameRaw, raw: msgKeepAlive})
	}
	c.bg.Add(1)
	c.mu.Unlock()
	defer c.bg.Done()

	_ = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.t.opts.WriteTimeout))

	c.mu.Lock()
	if !c.closing {
		c.pingTimer.Reset(c.t.opts.PingInterval)
	}
	c.mu.Unlock()
}

// ---- wire ----

var (
	msgConnectionAck = []byte(`{"type":"connection_ack"}`)
	msgKeepAlive     = []byte(`{"type":"ka"}`)
	msgPong          = []byte(`{"type":"pong"}`)
)

func (c *wsConn) writeNext(sub *subscription, payload []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.t.opts.WriteTimeout))
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	// Writes into gorilla's buffer cannot fail before Close flushes.
	_, _ = io.WriteString(w, `{"id":`)
	_, _ = w.Write(sub.idJSON)
	if c.proto == protoGraphQLWS {
		_, _ = io.WriteString(w, `,"type":"data","payload":`)
	} else {
		_, _ = io.WriteString(w, `,"type":"next","payload":`)
	}
	_, _ = w.Write(payload)
	_, _ = io.WriteString(w, `}`)
	return w.Close()
}

func (c *wsConn) writeRaw(b []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.t.opts.WriteTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// writeClose sends the close frame and gives the peer closeGrace to answer
// with its own before the reader gives up and closes TCP.
func (c *wsConn) writeClose(code int, reason string) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(closeGrace))
	c.mu.Lock()
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
	c.mu.Unlock()
}

func (c *wsConn) abort(slow bool) {
	if slow {
		// Called with session.mu held. The writer may be blocked on this
		// client: let its current write last at most closeGrace more.
		_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(closeGrace))
		return
	}
	_ = c.ws.SetReadDeadline(time.Now()) // wake the reader: it tears down
}

// teardownWS ends the connection: subscriptions, operations, timers,
// registry entry, TCP.
func (c *wsConn) teardownWS() {
	c.mu.Lock()
	for _, tm := range []*time.Timer{c.pingTimer, c.initTimer, c.expiryTimer} {
		if tm != nil {
			tm.Stop()
		}
	}
	registered := c.registered
	c.mu.Unlock()
	if registered {
		c.t.opts.Registry.Remove(c)
	}
	c.teardown(func() { _ = c.ws.Close() })
	c.req = nil
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
			c.t.log.Error("transport: handling a message panicked", "conn", c.info.ID, "panic", r)
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
		if len(m.Payload) > 0 && !isNull(m.Payload) {
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

	actx, cancel := context.WithTimeout(c.baseCtx, c.t.opts.InitTimeout)
	opCtx, userID, expiresAt, err := c.t.opts.Authenticate(actx, c.req, payload)
	cancel()
	c.req = nil
	if err != nil {
		if c.proto == protoGraphQLWS {
			b, _ := json.Marshal(map[string]string{"message": err.Error()})
			c.enqueue(frame{kind: frameRaw, raw: c.message("connection_error", nil, b)})
		}
		c.closeWith(CloseForbidden, err.Error())
		return
	}
	if opCtx == nil {
		opCtx = c.baseCtx
	}
	// The authentication deadline must not bound the connection's life.
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(opCtx))
	c.info.UserID = userID

	c.mu.Lock()
	defer c.mu.Unlock()
	c.acked = true // written under mu: the ping timer reads it
	if c.initTimer != nil {
		c.initTimer.Stop()
		c.initTimer = nil // an idle connection keeps only the timers it needs
	}
	c.enqueueLocked(frame{kind: frameRaw, raw: msgConnectionAck})
	if c.proto == protoGraphQLWS {
		c.enqueueLocked(frame{kind: frameRaw, raw: msgKeepAlive})
	}
	if !expiresAt.IsZero() {
		c.expiryTimer = time.AfterFunc(time.Until(expiresAt), func() {
			c.closeWith(CloseForbidden, "Forbidden: token expired")
		})
	}
	if c.t.opts.Registry != nil && !c.closing {
		c.registered = true
		c.t.opts.Registry.Add(c) // never calls back into the connection
	}
}

// execute runs a subscribe (legacy: start) message's operation.
func (c *wsConn) execute(id string, params *graphql.RawParams) {
	ctx := graphql.StartOperationTrace(c.ctx)
	rc, gerrs := c.exec.CreateOperationContext(ctx, params)
	if gerrs == nil && c.activeOps() >= c.t.opts.MaxSubsPerConn {
		gerrs = gqlerror.List{badInputError(fmt.Sprintf("too many subscriptions on this connection (limit %d)", c.t.opts.MaxSubsPerConn))}
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

// ---- payload parsing ----

// parseParams decodes a subscribe/start payload: {query, operationName?,
// variables?, extensions?}.
func parseParams(payload json.RawMessage) (*graphql.RawParams, error) {
	if len(payload) == 0 || isNull(payload) {
		return nil, errors.New("the operation needs a \"payload\"")
	}
	if !isObject(payload) {
		return nil, errors.New("\"payload\" must be an object")
	}
	var p struct {
		Query         *string        `json:"query"`
		OperationName *string        `json:"operationName"`
		Variables     map[string]any `json:"variables"`
		Extensions    map[string]any `json:"extensions"`
	}
	if err := decodeJSON(payload, &p); err != nil {
		return nil, errors.New("\"payload\" must be {query: string, operationName?: string, variables?: object, extensions?: object}")
	}
	if p.Query == nil {
		return nil, errors.New("\"payload\" needs a \"query\" string")
	}
	params := &graphql.RawParams{Query: *p.Query, Variables: p.Variables, Extensions: p.Extensions}
	if p.OperationName != nil {
		params.OperationName = *p.OperationName
	}
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
