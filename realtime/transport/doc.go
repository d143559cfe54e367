// Package transport owns taskpulse's streaming GraphQL transports: the
// WebSocket transport (graphql-transport-ws, and the legacy graphql-ws of
// subscriptions-transport-ws) on gorilla/websocket, and graphql-sse in
// distinct connections mode. Both are gqlgen graphql.Transports that execute
// through gqlgen's executor, and both hand subscriptions to the realtime hub
// through realtime.Target instead of iterating gqlgen's response stream.
//
// # Costs per connection and per delivery
//
// A WebSocket has one long-lived goroutine, its reader, kept shallow so its
// stack stays at 2 KiB: client messages are handled on a short-lived
// goroutine the reader waits for (gqlgen's parse, validate and execute of a
// subscribe would otherwise leave the reader's stack grown). Its timers —
// pings, the silence limit, the init timeout, the credentials' expiry, a
// client message unfinished after MessageTimeout — are one sweeper per
// transport reading a few atomics per connection per tick, so a healthy
// connection holds no timer and sets no deadline.
//
// Outbound frames go into a bounded per-connection queue (a mutex and a
// slice); enqueueing never blocks. A connection with frames is queued once
// for the transport's shared writers, a few long-lived goroutines
// (GOMAXPROCS, at least 2). A writer frames everything the connection has
// queued — messages, pings, pongs, the close; server frames are unmasked,
// header and payload — into one buffer and writes it with one write(2)
// that never waits (through the socket's syscall.RawConn). If the client's
// socket buffer is full, the rest goes to a goroutine of that connection's
// own, which waits for the client under a WriteTimeout deadline and then
// hands the connection back: one stuck client costs its own goroutine,
// never a shared writer's time, and a write stuck beyond WriteTimeout
// drops the client. This design was chosen over a pool of writers that do
// blocking writes watched by a watchdog: there a stuck socket holds a
// writer until the watchdog notices, so a fan-out to many slow clients
// stalls everyone; here nothing shared ever waits, and no per-write
// deadline, goroutine start or stack growth is paid on the hot path.
// gorilla's writer is not used (it would set a deadline per frame); gorilla
// reads, and writes only the close frame of its own protocol errors (which
// could land inside a half-written batch to a client that is not reading;
// that connection is ending anyway). The first writer to need an event's
// payload renders it (Encode) for every connection of its shape, under a
// deadline (see Encode once).
//
// A queue that reaches Options.SendQueue frames or Options.SendQueueBytes
// bytes means the client does not keep up: the connection is closed with
// CloseSlowConsumer (4010) and its queue dropped, so one slow client never
// delays anyone else. The byte bound is what a client can make the server
// hold for it: a message counts its bytes, an event payload its event's
// data. What a client can make the server echo is small besides: a
// graphql-transport-ws ping's payload is echoed in the pong only up to
// 1 KiB (the echo is optional; a larger ping gets a pong without payload).
// SSE streams use the same queue; their writes (a response writer cannot
// write without waiting) run on a goroutine of the stream's own.
//
// The 4010 close frame is attempted, not promised: it goes out after the
// batch being written when the queue overflowed (frames are never cut),
// and that write and the close frame together get closeGrace (1 s) from
// the overflow, not WriteTimeout. A client still reading within that time
// receives what was in flight — a prefix of its events, in order — then
// the 4010; one that is not reading is disconnected without it when the
// deadline passes (its socket is closed: 1006 on its side).
//
// Measured on 2 shared cores, server and load tool on loopback, 10,000
// sockets × 60 events 300 ms apart (tpload fanout; ranges over 4–7 runs,
// before and after interleaved):
//
//	                             before                  after
//	server CPU per delivery      26.9–33.6 µs            21.0–23.8 µs (median 22.4)
//	per receipt p50 / p99        187–223 / 468–1333 ms   134–155 / 275–399 ms
//	publish → last socket, p50   285–317 ms              221–249 ms
//	server RSS per connection    16.3–18.6 KB            10.6–11.4 KB
//
// The floor, the same frame written to the same 10,000 sockets with one
// write(2) each by a process doing nothing else (tpload floor -conns 10000
// -writes 60), costs 17.0–18.6 µs per write: the fan-out is about 1.27×
// it.
//
// The write(2) calls are 85–87% of the server's CPU during the fan-out
// (57% before); the rest is per-connection bookkeeping, mostly cache
// misses. Latency is CPU-bound on this box: the load tool's reads compete
// for the same two cores.
//
// # Encode once
//
// Subscriptions with the same shape — the same query text and operation
// name, and the same values for the variables that affect rendering — share
// one Encoder. The hub creates one realtime.Payload per event and encoder, so
// gqlgen executes the subscription's selection set and json.Marshals the
// result once per event and shape, however many sockets receive it; the
// writer of each socket composes the graphql-ws envelope around those bytes
// without re-encoding them. Root-field arguments (projectId, after, …) select
// events, they do not change how an event renders, so they are not part of
// the shape. The rendering context carries no viewer: the resolvers of an
// event's subtree must not depend on who receives it. The shape registry
// (Shapes, in Options) is shared by a server's WebSocket and SSE
// transports, so a query subscribed over both renders once per event too.
//
// A rendering runs on the shared writers (the first writer to need a
// payload renders it), so it is bounded: its context has a WriteTimeout
// deadline, which stops resolvers that honour their context (a store
// read in project { members }). A rendering that fails — past the
// deadline, or panicking — is logged once per event and shape, and every
// recipient gets {"errors":[{"message":"internal error","extensions":
// {"code":"INTERNAL"}}],"data":null} as that event's payload: the client
// learns it missed an event, the subscription goes on. A resolver that
// ignores its context can still hold a writer; the deadline is
// cooperative, as any Go deadline is.
//
// Shapes cost renderings, and a client chooses them: each subscription
// holds one shape, and a query text of its own (even differing in
// whitespace) makes a new one. A connection therefore holds at most
// MaxSubsPerConn shapes, and one event costs at most MaxSubsPerConn
// renderings per connection; there is no separate limit on shapes.
//
// # Lifetimes
//
// Close cancels the transport's base context, the cancellation of every
// context it hands out — Authenticate's, operations', subscribe
// resolvers' — so a handler blocked on something that honours its context
// ends, instead of Close waiting it out. The sweeper's tick is at most
// 500 ms, so a connection whose credentials expire is closed (4403) within
// that of the expiry (the verifier's leeway is in the expiry).
//
// # Observing
//
// Options.Observer is told of connections (authenticated, refused,
// ended with their close code), subscriptions by root field, and a
// sample of deliveries for the commit → socket write latency: a
// connection's first batch of events and every 8th after (sampleEvery).
// A sample is a clock read and a histogram update, about 70 ns with
// client_golang; an unsampled batch costs a counter increment, so timing
// adds about 9 ns per batch (BenchmarkDeliverySample), lost in the
// fan-out's 6–8 µs per delivery (BenchmarkFanoutObserved). Connections
// receiving the same events sample the same ones, so a sampled event's
// fan-out is measured whole, first socket to last.
//
// # Close codes
//
// graphql-transport-ws codes are exact (see the constants). Project codes:
// 4010 "slow consumer" — the client did not read fast enough and its queue
// overflowed; graphql-ws clients retry after it, and a resubscribing client
// should refetch what it may have missed. RFC 6455 codes for bad reads:
// 1007 a text message that is not UTF-8, 1008 a message not finished
// within MessageTimeout of its first frame, 1009 one over ReadLimit.
package transport
