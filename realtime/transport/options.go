package transport

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/taskpulse/taskpulse/realtime"
)

// Close codes. The 44xx codes and their reasons are graphql-transport-ws's
// (enisdenjo/graphql-ws PROTOCOL.md); 4010 is taskpulse's own; 1007 and
// 1008 are RFC 6455's.
const (
	CloseNormal                 = 1000
	CloseGoingAway              = 1001
	CloseInvalidPayload         = 1007 // a text message that is not UTF-8
	ClosePolicyViolation        = 1008 // a message not finished within MessageTimeout; also the server's abuse block
	CloseInternalError          = 4500
	CloseBadRequest             = 4400
	CloseUnauthorized           = 4401
	CloseForbidden              = 4403
	CloseSubprotocolNotAccepted = 4406
	CloseInitTimeout            = 4408
	CloseSubscriberExists       = 4409
	CloseTooManyInitRequests    = 4429
	// CloseSlowConsumer: the connection's send queue overflowed. Clients
	// retry (graphql-ws retries every code it does not know as fatal).
	CloseSlowConsumer = 4010
)

// Subprotocol and transport names, as negotiated and as shown in
// realtime.ConnInfo.Transport.
const (
	ProtocolTransportWS = "graphql-transport-ws"
	ProtocolGraphQLWS   = "graphql-ws"
	TransportSSE        = "sse"
)

// Defaults for zero Options fields.
const (
	DefaultInitTimeout    = 3 * time.Second
	DefaultPingInterval   = 20 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultReadLimit      = 1 << 20
	DefaultMessageTimeout = 10 * time.Second
	DefaultSendQueue      = 512
	DefaultSendQueueBytes = 4 << 20
	DefaultMaxSubsPerConn = 100
)

// MaxIDLength bounds an operation id a client may choose.
const MaxIDLength = 128

// closeGrace is how long a closing connection waits for the peer's close
// frame before closing TCP, so the peer reliably reads the close code.
const closeGrace = time.Second

// maxPingEcho is the largest graphql-transport-ws ping payload echoed in
// the pong (the echo is optional): a client must not make the server queue
// large pongs it never reads. A larger ping gets a pong without payload.
const maxPingEcho = 1 << 10

// maxCloseReason is the longest close reason a close frame can carry (125
// bytes of control payload minus the 2-byte code).
const maxCloseReason = 123

// Options configures a WebSocket or SSE transport.
type Options struct {
	// Authenticate checks a connection's credentials: the connection_init
	// payload (nil for SSE) and the HTTP request that opened it. It returns
	// the base context of every operation of the connection (derived from
	// ctx; it carries the viewer), the user id, and when the credentials
	// expire (zero: never). ctx ends when the transport closes (WebSocket:
	// also after InitTimeout). Its error text is the 4403 close reason
	// (legacy graphql-ws: the connection_error message; SSE: a 401 with an
	// UNAUTHENTICATED error). Required.
	Authenticate func(ctx context.Context, r *http.Request, initPayload map[string]any) (opCtx context.Context, userID string, expiresAt time.Time, err error)
	// Registry, if set, receives every authenticated connection.
	Registry *realtime.Registry
	// ClientIP is the client address a connection reports
	// (realtime.ConnInfo.IP) and is counted under: the one place that
	// decides it, so honouring X-Forwarded-For / Forwarded from trusted
	// proxies is a function given here. Nil: the host of the request's
	// RemoteAddr.
	ClientIP func(*http.Request) string
	// CheckOrigin decides the WebSocket upgrade's Origin check (refused:
	// 403). Nil: gorilla's default (no Origin, or Origin equal to Host).
	CheckOrigin func(*http.Request) bool
	// InitTimeout is how long a socket may wait before connection_init
	// (4408). Default 3s.
	InitTimeout time.Duration
	// PingInterval is how often the server pings (WebSocket ping frames;
	// legacy graphql-ws also gets "ka"; SSE a comment line). A peer silent
	// for twice this long is dropped. Default 20s.
	PingInterval time.Duration
	// WriteTimeout bounds how long a write may wait for a client whose
	// socket buffer is full; a client that does not take what is written
	// within it is dropped. It also bounds the rendering of an event for a
	// shape, which runs on the shared writers. Default 10s.
	WriteTimeout time.Duration
	// ReadLimit is the largest message a client may send (1009 above it;
	// SSE: the largest request body). Default 1 MiB.
	ReadLimit int64
	// MessageTimeout is how long a WebSocket message may take to arrive
	// once its first frame has; a message still unfinished then (fragments
	// without FIN, a frame trickling in) closes the socket with 1008. Pings
	// and pongs between fragments do not extend it. It bounds how long a
	// client can hold up to ReadLimit bytes of the server's memory. (An SSE
	// request body is bounded by the HTTP server.) Default 10s.
	MessageTimeout time.Duration
	// SendQueue is how many frames may wait for a connection's writer
	// before the client is dropped as a slow consumer (4010). Default 512.
	SendQueue int
	// SendQueueBytes is how many bytes may wait for a connection's writer
	// before the client is dropped as a slow consumer (4010): a message
	// counts its bytes, an event payload its event's data (the payload is
	// rendered later, once for all its recipients, and is about as large).
	// A frame that finds the queue empty is always accepted. Default 4 MiB.
	SendQueueBytes int
	// MaxSubsPerConn bounds the active operations of one connection. One
	// more gets an error message (BAD_USER_INPUT, extensions.limit
	// "MAX_SUBS_PER_CONN") and OnLimit is told; the connection stays.
	// Default 100.
	MaxSubsPerConn int
	// Admit, if set, is asked before a WebSocket is upgraded and before an
	// SSE request is read, and may refuse it: an *errs.Error with code
	// RATE_LIMITED is answered 429 with Retry-After (its RetryAfter, in
	// whole seconds, at least 1) and a GraphQL error; any other error 503.
	// Once admitted, release is called exactly once when the connection
	// (or the SSE request) is over, however it ends. See admit.go.
	Admit func(r *http.Request) (release func(), err error)
	// OnLimit, if set, is told when a transport limit refuses a client's
	// operation (limit: "MAX_SUBS_PER_CONN"); ctx is the connection's
	// (it carries the viewer), with the refused operation's
	// OperationContext. The client gets an error; the connection stays.
	OnLimit func(ctx context.Context, limit string)
	// Shapes is the registry of subscription shapes. Give the WebSocket and
	// SSE transports of a server the same one, so a query subscribed over
	// both is rendered once per event. Nil: the transport makes its own.
	Shapes *Shapes
	// Observer, if set, is told of connections, authentication failures,
	// subscriptions, close codes and a sample of deliveries (observer.go).
	Observer Observer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.InitTimeout <= 0 {
		o.InitTimeout = DefaultInitTimeout
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.MessageTimeout <= 0 {
		o.MessageTimeout = DefaultMessageTimeout
	}
	if o.SendQueue <= 0 {
		o.SendQueue = DefaultSendQueue
	}
	if o.SendQueueBytes <= 0 {
		o.SendQueueBytes = DefaultSendQueueBytes
	}
	if o.MaxSubsPerConn <= 0 {
		o.MaxSubsPerConn = DefaultMaxSubsPerConn
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ClientIP == nil {
		o.ClientIP = RemoteIP
	}
	if o.Shapes == nil {
		o.Shapes = NewShapes()
	}
	return o
}

// Stats are a transport's counters, for /metrics.
type Stats struct {
	Connections       int    // open connections (WebSocket: upgraded; SSE: streams)
	Subscriptions     int    // live subscriptions
	Shapes            int    // distinct subscription shapes (one encoding per event each), of every transport sharing Options.Shapes
	FramesSent        uint64 // messages written to clients
	SlowConsumerDrops uint64 // connections dropped because their queue overflowed
}

// counters is the mutable side of Stats.
type counters struct {
	conns         atomic.Int64
	subs          atomic.Int64
	framesSent    atomic.Uint64
	slowConsumers atomic.Uint64
}

func (c *counters) stats(shapes int) Stats {
	return Stats{
		Connections:       int(c.conns.Load()),
		Subscriptions:     int(c.subs.Load()),
		Shapes:            shapes,
		FramesSent:        c.framesSent.Load(),
		SlowConsumerDrops: c.slowConsumers.Load(),
	}
}

// truncateReason cuts a close reason to what a close frame can carry,
// on a UTF-8 boundary.
func truncateReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	i := maxCloseReason
	for i > 0 && s[i]&0xC0 == 0x80 { // continuation byte: back up to a rune start
		i--
	}
	return s[:i]
}
