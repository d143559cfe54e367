package realtime

import (
	"context"
	"fmt"
)

// Broker is the ordered event log every taskpulse instance reads.
//
// Publish appends an event and gives it its place (Seq, Epoch, Cursor) in
// one total order; every instance's hub then receives every event in that
// order through the deliver function given to Start. A publisher never waits
// for subscribers: deliver only queues (it is a Hub's Enqueue).
//
// MemoryBroker is the one-instance implementation. A Redis broker (one
// stream read by many instances, REDIS_URL) will satisfy the same interface
// beside it, as broker_redis.go. History and resume — reading the events
// after a client's `after` cursor, kept for HISTORY_TTL and at most
// HISTORY_MAX per stream, and CURSOR_EXPIRED for anything older or from
// another epoch — will be added to this interface in a later change; Seq and
// Epoch are designed for it: Seq is gapless within an epoch, and an epoch is
// a fresh random name for each history, so a restarted in-process broker
// cannot mistake an old cursor for one of its own.
type Broker interface {
	// Publish appends ev to the log, setting ev.Seq, ev.Epoch and ev.Cursor,
	// and hands it to every instance's hub. It never waits for subscribers.
	// The event must have a Type and at least one room or a Control, and
	// must not have been published before; it is immutable afterwards.
	// Publishing before Start or after Close is an error.
	Publish(ctx context.Context, ev *Event) error
	// Last returns the position of the last event published (Seq 0 before
	// the first). Read while no publish can happen (under the publisher's
	// ordering lock, service.Service.Ordered) it is the log position a
	// store read made under the same lock reflects, which is what
	// SubscribeOptions.After anchors a subscription to. A Redis broker
	// implements it too (the last entry of its stream).
	Last() Position
	// Start makes deliver receive every event published from now on, in log
	// order, from one goroutine at a time. deliver must return at once and
	// must not call Publish. Start is called once.
	Start(deliver func(*Event)) error
	// Close stops the broker: later Publish calls fail. It is idempotent.
	Close() error
}

// brokerError is the type of the broker's sentinel errors; being a string
// type they can be constants.
type brokerError string

func (e brokerError) Error() string { return string(e) }

// Errors a Broker returns for misuse of its lifecycle. They carry no errs
// code: they are internal, never shown to a client as they are.
const (
	ErrBrokerNotStarted = brokerError("realtime: broker not started")
	ErrBrokerStarted    = brokerError("realtime: broker already started")
	ErrBrokerClosed     = brokerError("realtime: broker closed")
)

// validateEvent checks what every Broker requires of a published event.
func validateEvent(ev *Event) error {
	if ev == nil {
		return fmt.Errorf("realtime: publish: nil event")
	}
	if ev.Type == "" {
		return fmt.Errorf("realtime: publish: event has no type")
	}
	if len(ev.Rooms) == 0 && ev.Control == nil {
		return fmt.Errorf("realtime: publish %s: event has no room and no control", ev.Type)
	}
	for _, r := range ev.Rooms {
		if r == "" {
			return fmt.Errorf("realtime: publish %s: empty room name", ev.Type)
		}
	}
	if c := ev.Control; c != nil {
		if err := validateControl(c); err != nil {
			return fmt.Errorf("realtime: publish %s: %w", ev.Type, err)
		}
	}
	return nil
}

// validateControl checks that a control has what its op needs.
func validateControl(c *Control) error {
	switch c.Op {
	case Join, Leave, CloseRoom:
		if c.Room == "" {
			return fmt.Errorf("control has no room")
		}
		if c.Op != CloseRoom && c.UserID == "" {
			return fmt.Errorf("join or leave control has no user")
		}
	case Demote, Disconnect:
		if c.UserID == "" {
			return fmt.Errorf("demote or disconnect control has no user")
		}
		if c.Op == Disconnect && (c.Code < 1000 || c.Code > 4999) {
			return fmt.Errorf("disconnect control has close code %d, want 1000-4999", c.Code)
		}
	default:
		return fmt.Errorf("unknown control op %d", c.Op)
	}
	return nil
}
