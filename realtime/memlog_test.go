package realtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
)

// MemoryBrokerOptions configures the in-process broker. It has no fields
// yet; history settings (HISTORY_TTL, HISTORY_MAX) will go here.
type MemoryBrokerOptions struct{}

// MemoryBroker numbers events in this process and hands them to one deliver
// function (a hub's Enqueue): the hub tests' stand-in for the feed, which
// in the server delivers the database's log.
// Each MemoryBroker has a fresh random epoch, so cursors from before a
// restart are recognisably from a lost history.
type MemoryBroker struct {
	epoch string

	mu      sync.Mutex
	seq     uint64
	deliver func(*Event)
	closed  bool
}

// NewMemoryBroker returns an in-process broker with a fresh epoch.
func NewMemoryBroker(opts MemoryBrokerOptions) *MemoryBroker {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return &MemoryBroker{epoch: hex.EncodeToString(b[:])}
}

// Epoch returns the broker's epoch, fixed for its lifetime.
func (b *MemoryBroker) Epoch() string { return b.epoch }

// Last returns the position of the last published event (Seq 0 before the
// first one).
func (b *MemoryBroker) Last() Position {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Position{Epoch: b.epoch, Seq: b.seq}
}

// Publish numbers ev (seq = last+1) and hands it to deliver under one mutex,
// so the order in which events are delivered is the order of their Seq.
// deliver only queues, so Publish never waits for subscribers. ctx is not
// consulted: nothing here waits, and an event of a committed change must go
// out even if the request that made it is gone.
func (b *MemoryBroker) Publish(ctx context.Context, ev *Event) error {
	if err := validateEvent(ev); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrBrokerClosed
	case b.deliver == nil:
		return ErrBrokerNotStarted
	case ev.Seq != 0 || ev.Epoch != "":
		return fmt.Errorf("realtime: publish %s: event already published at seq %d", ev.Type, ev.Seq)
	}
	b.seq++
	ev.Seq, ev.Epoch = b.seq, b.epoch
	ev.Cursor = Position{Epoch: b.epoch, Seq: b.seq}.Cursor()
	b.deliver(ev)
	return nil
}

// Start installs deliver; events published from now on reach it in order,
// called from the publishing goroutine while the broker's lock is held.
func (b *MemoryBroker) Start(deliver func(*Event)) error {
	if deliver == nil {
		return fmt.Errorf("realtime: broker start: nil deliver function")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrBrokerClosed
	case b.deliver != nil:
		return ErrBrokerStarted
	}
	b.deliver = deliver
	return nil
}

// Close makes later Publish calls fail with ErrBrokerClosed. It is
// idempotent and does not close the hub it delivers to.
func (b *MemoryBroker) Close() error {
	b.mu.Lock()
	b.closed = true
	b.deliver = nil
	b.mu.Unlock()
	return nil
}

// brokerError is the type of the test sequencer's sentinel errors.
type brokerError string

func (e brokerError) Error() string { return string(e) }

// Errors of the test sequencer's lifecycle.
const (
	ErrBrokerNotStarted = brokerError("realtime: broker not started")
	ErrBrokerStarted    = brokerError("realtime: broker already started")
	ErrBrokerClosed     = brokerError("realtime: broker closed")
)
