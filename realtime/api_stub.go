package realtime

// THIS FILE IS A PLACEHOLDER: the realtime helper replaces it with hub.go,
// broker.go, broker_memory.go, registry.go and cursor.go implementing exactly
// these signatures (and may add more).

import (
	"context"
	"log/slog"
	"time"
)

// Position is a place in the event log; its text form is the opaque cursor.
type Position struct {
	Epoch string
	Seq   uint64
}

// Cursor returns the opaque text form of p.
func (p Position) Cursor() string { panic("unimplemented") }

// ParseCursor parses a cursor; malformed → *errs.Error BadUserInput.
func ParseCursor(s string) (Position, error) { panic("unimplemented") }

// Broker is the ordered event log shared by all instances.
type Broker interface {
	// Publish appends ev to the log (setting Seq, Epoch, Cursor) and hands
	// it to every instance's hub. It never waits for subscribers.
	Publish(ctx context.Context, ev *Event) error
	// Start makes deliver receive every event published from now on, in log
	// order, from one goroutine at a time. Called once.
	Start(deliver func(*Event)) error
	Close() error
}

// MemoryBrokerOptions configures the in-process broker.
type MemoryBrokerOptions struct{}

// MemoryBroker is the single-instance Broker.
type MemoryBroker struct{}

// NewMemoryBroker returns an in-process broker with a fresh epoch.
func NewMemoryBroker(opts MemoryBrokerOptions) *MemoryBroker { panic("unimplemented") }

func (b *MemoryBroker) Publish(ctx context.Context, ev *Event) error { panic("unimplemented") }
func (b *MemoryBroker) Start(deliver func(*Event)) error             { panic("unimplemented") }
func (b *MemoryBroker) Close() error                                 { panic("unimplemented") }

// HubOptions configures a Hub.
type HubOptions struct {
	Logger *slog.Logger
}

// Hub fans events out to this instance's subscriptions.
type Hub struct{}

// NewHub starts a hub's dispatch loop; Close stops it.
func NewHub(opts HubOptions) *Hub { panic("unimplemented") }

// Enqueue hands the hub the next event in log order. It never blocks.
func (h *Hub) Enqueue(ev *Event) { panic("unimplemented") }

// Close stops dispatch and ends every subscription (End(nil) is not
// called: transports close their connections themselves).
func (h *Hub) Close() { panic("unimplemented") }

// SubscribeOptions says what one subscription listens to.
type SubscribeOptions struct {
	UserID string
	// Rooms listened to. With Follow they are the rooms besides those given
	// to Ready (e.g. the user's own room).
	Rooms []string
	// Follow makes the rooms follow UserID's Join/Leave controls. A
	// following subscription is pending until Ready.
	Follow bool
	// EndOnLeave ends the subscription with errs.Forbidden when UserID
	// leaves one of Rooms, and completes it when one of Rooms is closed.
	EndOnLeave bool
	// Accept filters events; nil accepts every event of its rooms.
	Accept  func(ev *Event) bool
	Encoder Encoder
	Sink    Sink
}

// Subscription is one registered subscription.
type Subscription struct{}

// Subscribe registers a subscription. It receives events dispatched after
// it returns.
func (h *Hub) Subscribe(opts SubscribeOptions) *Subscription { panic("unimplemented") }

// Ready gives a following subscription its membership rooms, read from the
// store after Subscribe returned; Join/Leave controls for its user seen in
// between are replayed on top, so no change is lost.
func (s *Subscription) Ready(rooms []string) { panic("unimplemented") }

// Unsubscribe removes the subscription; idempotent. A Deliver already in
// flight may still reach the sink, which must ignore it.
func (s *Subscription) Unsubscribe() { panic("unimplemented") }

// Conn is a live client connection as the registry sees it.
type Conn interface {
	Info() ConnInfo
	// CloseWith closes the connection with a WebSocket close code (SSE
	// ends its stream); it returns at once.
	CloseWith(code int, reason string)
}

// ConnInfo describes a connection (GraphQL type Connection).
type ConnInfo struct {
	ID           string
	UserID       string
	ConnectedAt  time.Time
	LastActivity time.Time
	UserAgent    string
	IP           string
	Transport    string
}

// Registry tracks this instance's live connections by user.
type Registry struct{}

func NewRegistry() *Registry                                              { panic("unimplemented") }
func (r *Registry) Add(c Conn)                                            { panic("unimplemented") }
func (r *Registry) Remove(c Conn)                                         { panic("unimplemented") }
func (r *Registry) ByUser(userID string) []ConnInfo                       { panic("unimplemented") }
func (r *Registry) Online(userID string) bool                             { panic("unimplemented") }
func (r *Registry) Disconnect(userID string, code int, reason string) int { panic("unimplemented") }
func (r *Registry) Len() int                                              { panic("unimplemented") }

// Drain closes every connection with code, spread evenly over spread so
// clients do not all reconnect at once, and returns when all are closed or
// ctx ends.
func (r *Registry) Drain(ctx context.Context, spread time.Duration, code int, reason string) {
	panic("unimplemented")
}
