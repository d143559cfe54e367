package realtime

import (
	"context"
	"sync"
)

// Encoder turns an event into the bytes of one subscription shape (one
// query document, operation and set of relevant variables). Encode must be
// safe for concurrent use and must not depend on who receives the bytes.
type Encoder interface {
	Encode(ev *Event) ([]byte, error)
}

// Payload is an event as one Encoder renders it, encoded lazily and at most
// once: the hub creates one per (event, encoder) and hands the same pointer
// to every subscription of that shape; the first writer encodes, the others
// reuse the bytes.
type Payload struct {
	Event *Event
	enc   Encoder
	once  sync.Once
	data  []byte
	err   error
}

// NewPayload prepares ev for enc without encoding it yet.
func NewPayload(ev *Event, enc Encoder) *Payload { return &Payload{Event: ev, enc: enc} }

// Bytes returns the encoded payload, encoding it on first use.
func (p *Payload) Bytes() ([]byte, error) {
	p.once.Do(func() { p.data, p.err = p.enc.Encode(p.Event) })
	return p.data, p.err
}

// Sink is where a subscription's payloads go: a transport's per-connection
// queue. Both methods are called by the hub's dispatch loop and must return
// at once: a sink that cannot keep up drops its connection, never the hub.
// While a subscription catches up (Resumer) they are called by its
// catching-up goroutine instead, never by both at once: one caller at a
// time, in log order.
type Sink interface {
	// Deliver queues a payload. Never called after End.
	Deliver(p *Payload)
	// End finishes the subscription: err nil completes it, otherwise err (an
	// *errs.Error) ends it with that error. Called at most once.
	End(err error)
}

// PacedSink is a Sink that can also wait for room in its queue. A resumed
// subscription delivers the history it missed through DeliverWait, at the
// client's pace, where Deliver would drop a client for taking a burst of
// a thousand events less than instantly. Sinks without it get Deliver.
type PacedSink interface {
	Sink
	// DeliverWait queues p like Deliver, first waiting while the queue is
	// full. It returns an error, and queues nothing, when p can never be
	// queued: ctx ended, or the subscription or its connection ended (a
	// client that stays too slow for too long included: its connection
	// closes as a slow consumer). Never called after End.
	DeliverWait(ctx context.Context, p *Payload) error
}

// Target is what a transport puts in the context of a subscribe operation
// so the subscription resolver can register with the hub: where payloads
// go (Sink) and how they are encoded (Encoder). The resolver stores the
// resulting Subscription back so the transport can cancel it.
type Target struct {
	Sink    Sink
	Encoder Encoder

	mu  sync.Mutex
	sub *Subscription
}

// SetSubscription records the hub subscription the resolver created.
func (t *Target) SetSubscription(s *Subscription) {
	t.mu.Lock()
	t.sub = s
	t.mu.Unlock()
}

// Subscription returns the hub subscription, nil if none was created.
func (t *Target) Subscription() *Subscription {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sub
}

type targetKey struct{}
type renderKey struct{}

// WithTarget marks ctx as a live subscribe by a transport with target t.
func WithTarget(ctx context.Context, t *Target) context.Context {
	return context.WithValue(ctx, targetKey{}, t)
}

// TargetFrom returns the transport's target of a live subscribe.
func TargetFrom(ctx context.Context) (*Target, bool) {
	t, ok := ctx.Value(targetKey{}).(*Target)
	return t, ok
}

// WithRender marks ctx as the one-shot rendering of ev by an Encoder: the
// subscription resolver then returns ev alone, without authorizing or
// subscribing (both happened when the subscription started).
func WithRender(ctx context.Context, ev *Event) context.Context {
	return context.WithValue(ctx, renderKey{}, ev)
}

// RenderFrom returns the event being rendered, if ctx is a rendering.
func RenderFrom(ctx context.Context) (*Event, bool) {
	ev, ok := ctx.Value(renderKey{}).(*Event)
	return ev, ok
}
