package transport

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
)

// readBufferSize is each connection's read buffer. gorilla would otherwise
// keep net/http's 4 KiB hijacked reader for the life of the connection.
// It must hold a control frame's payload (≤ 125 bytes), which gorilla
// peeks whole after the header; client messages are small and rare, and
// larger ones are read through it in pieces.
const readBufferSize = 128

// WebSocket is the graphql-transport-ws (and legacy graphql-ws) transport.
type WebSocket struct {
	core
	upgrader websocket.Upgrader
	sweep    sweeper

	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	closed  bool
	readers sync.WaitGroup // one per connection until torn down; Add under mu while !closed
}

var _ graphql.Transport = (*WebSocket)(nil)

// NewWebSocket returns a WebSocket transport; zero Options fields take
// their defaults.
func NewWebSocket(opts Options) *WebSocket {
	t := &WebSocket{conns: make(map[*wsConn]struct{})}
	t.core.init(opts, true)
	opts = t.opts // with defaults
	t.upgrader = websocket.Upgrader{
		HandshakeTimeout: opts.WriteTimeout,
		ReadBufferSize:   readBufferSize,
		// gorilla's message writer is not used (wsConn frames and writes
		// itself); with a pool, gorilla allocates no per-connection write
		// buffer for it.
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
	release, ok := t.admit(w, r)
	if !ok {
		return // answered 429 (Options.Admit)
	}
	ws, err := t.upgrader.Upgrade(w, r, nil)
	if err != nil {
		release()
		return // the upgrader answered (400, 403 for a refused Origin, …)
	}
	c := newWSConn(t, ws, r, exec)
	c.release = release
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(CloseGoingAway, "server shutting down"), time.Now().Add(closeGrace))
		_ = ws.Close()
		release()
		return
	}
	t.conns[c] = struct{}{}
	t.n.conns.Add(1)
	t.readers.Add(1)
	t.sweep.startLocked(t)
	t.mu.Unlock()
	go c.run()
}

// untrack forgets a torn-down connection and gives back its admission
// (Options.Admit): every way a socket ends comes through here.
func (t *WebSocket) untrack(c *wsConn) {
	t.mu.Lock()
	if _, ok := t.conns[c]; ok {
		delete(t.conns, c)
		t.n.conns.Add(-1)
		t.readers.Done()
	}
	t.mu.Unlock()
	c.release()
}

// Stats returns the transport's counters.
func (t *WebSocket) Stats() Stats { return t.n.stats(t.shapes.len()) }

// Close refuses new sockets and closes the open ones with 1001 (after the
// frames already queued), cancels the context of everything running for
// them (authentication, resolvers, operations), and waits until they are
// torn down. After WriteTimeout plus a grace second the stragglers' TCP
// connections are closed, and after one more second Close stops waiting.
// Then the sweeper and the shared writers stop (a straggler writes on its
// own goroutine). Registry.Drain is the gentle way to empty a server
// first; Close is the backstop.
func (t *WebSocket) Close() {
	defer func() {
		t.sweep.stop(t)
		if !t.pool.close(closeGrace) {
			t.log.Warn("transport: shared writers still busy after Close")
		}
	}()
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
	// After the closes are queued: a handler stopped by this finds its
	// connection closing and queues nothing more.
	t.stop()
	torn := make(chan struct{})
	go func() {
		t.readers.Wait() // no Add after closed
		close(torn)
	}()
	timer := time.NewTimer(t.opts.WriteTimeout + closeGrace)
	defer timer.Stop()
	select {
	case <-torn:
		return
	case <-timer.C:
	}
	t.mu.Lock()
	conns = conns[:0]
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.NetConn().Close() // the reader fails and tears down
	}
	// A reader can only be held up by a resolver still running in it; give
	// those one more grace period, then stop waiting.
	timer.Reset(closeGrace)
	select {
	case <-torn:
	case <-timer.C:
		t.log.Warn("transport: sockets still busy after Close", "sockets", t.n.conns.Load())
	}
}

// RemoteIP is the host part of r.RemoteAddr: the peer's address, which
// behind a proxy is the proxy's (the default Options.ClientIP).
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
