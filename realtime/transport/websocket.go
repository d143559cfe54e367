package transport

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
)

// writeBufferSize is the size of the pooled write buffers: a typical event
// message fits in one, so it is written with one write(2); larger ones go
// out as several frames.
const writeBufferSize = 4096

// readBufferSize is each connection's read buffer. gorilla would otherwise
// keep net/http's 4 KiB hijacked reader for the life of the connection.
// It must hold a control frame (≤ 125 bytes of payload plus header), which
// gorilla peeks whole; client messages are small and rare, and larger ones
// are read through it in pieces.
const readBufferSize = 256

// WebSocket is the graphql-transport-ws (and legacy graphql-ws) transport.
type WebSocket struct {
	core
	upgrader websocket.Upgrader

	mu     sync.Mutex
	conns  map[*wsConn]struct{}
	closed bool
}

var _ graphql.Transport = (*WebSocket)(nil)

// NewWebSocket returns a WebSocket transport; zero Options fields take
// their defaults.
func NewWebSocket(opts Options) *WebSocket {
	opts = opts.withDefaults()
	if opts.Authenticate == nil {
		panic("transport: Options.Authenticate is required")
	}
	t := &WebSocket{
		core:  core{opts: opts, log: opts.Logger, shapes: newShapeRegistry()},
		conns: make(map[*wsConn]struct{}),
	}
	t.upgrader = websocket.Upgrader{
		HandshakeTimeout: opts.WriteTimeout,
		ReadBufferSize:   readBufferSize,
		WriteBufferSize:  writeBufferSize,
		// One pool for the process: a connection holds a buffer only while
		// it writes a message.
		WriteBufferPool:   &sync.Pool{},
		Subprotocols:      []string{ProtocolTransportWS, ProtocolGraphQLWS},
		CheckOrigin:       opts.CheckOrigin,
		EnableCompression: false,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Sec-Websocket-Version", "13")
			http.Error(w, reason.Error(), status)
		},
	}
	return t
}

// Supports reports whether r is a WebSocket upgrade.
func (t *WebSocket) Supports(r *http.Request) bool {
	return r.Method == http.MethodGet && websocket.IsWebSocketUpgrade(r)
}

// Do upgrades the request and serves the socket on a goroutine of its own,
// returning at once so net/http can free its per-request state.
func (t *WebSocket) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := t.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered (400, 403 for a refused Origin, …)
	}
	c := newWSConn(t, ws, r, exec)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseGoingAway, "server shutting down"), time.Now().Add(closeGrace))
		_ = ws.Close()
		return
	}
	t.conns[c] = struct{}{}
	t.n.conns.Add(1)
	t.mu.Unlock()
	go c.run()
}

func (t *WebSocket) untrack(c *wsConn) {
	t.mu.Lock()
	if _, ok := t.conns[c]; ok {
		delete(t.conns, c)
		t.n.conns.Add(-1)
	}
	t.mu.Unlock()
}

// Stats returns the transport's counters.
func (t *WebSocket) Stats() Stats { return t.n.stats(t.shapes.len()) }

// Close refuses new sockets and closes the open ones with 1001 (after the
// frames already queued), waiting until they are torn down or a bounded
// time (WriteTimeout plus the close grace) has passed, after which the
// stragglers' TCP connections are closed. Registry.Drain is the gentle way
// to empty a server first; Close is the backstop.
func (t *WebSocket) Close() {
	t.mu.Lock()
	t.closed = true
	conns := make([]*wsConn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		c.CloseWith(CloseGoingAway, "server shutting down")
	}
	timer := time.NewTimer(t.opts.WriteTimeout + closeGrace)
	defer timer.Stop()
	expired := false
	for _, c := range conns {
		if !expired {
			select {
			case <-c.done:
				continue
			case <-timer.C:
				expired = true
			}
		}
		_ = c.ws.NetConn().Close() // the reader fails and tears down
		<-c.done
	}
}

// remoteIP is the host part of a RemoteAddr.
func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
