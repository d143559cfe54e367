// Package transport owns taskpulse's streaming GraphQL transports: the
// WebSocket transport (graphql-transport-ws, and the legacy graphql-ws of
// subscriptions-transport-ws) on gorilla/websocket, and graphql-sse in
// distinct connections mode. Both are gqlgen graphql.Transports that execute
// through gqlgen's executor, and both hand subscriptions to the realtime hub
// through realtime.Target instead of iterating gqlgen's response stream.
//
// # Costs per connection and per delivery
//
// A WebSocket has one long-lived goroutine, its reader. Outbound frames go
// into a bounded per-connection queue (a mutex and a slice); enqueueing never
// blocks, and when no writer is running it starts one, which drains the
// queue and exits. An idle connection therefore holds no writer goroutine and
// no write buffer (gorilla takes one from a shared pool only while writing).
// A queue that reaches Options.SendQueue frames means the client does not
// keep up: the connection is closed with CloseSlowConsumer (4010) and its
// queue dropped, so one slow client never delays anyone else.
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
// event's subtree must not depend on who receives it.
//
// # Close codes
//
// graphql-transport-ws codes are exact (see the constants). Project codes:
// 4010 "slow consumer" — the client did not read fast enough and its queue
// overflowed; graphql-ws clients retry after it, and a resubscribing client
// should refetch what it may have missed.
package transport
