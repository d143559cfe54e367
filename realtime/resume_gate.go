package realtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/taskpulse/taskpulse/errs"
)

// errStopped ends catching up without a word to the client: it
// unsubscribed, its connection is gone, or the hub closed.
var errStopped = errors.New("realtime: catching up stopped")

// errFellBehind ends a subscription whose live events outgrew what is held
// for it while it caught up.
var errFellBehind = errs.E(errs.CursorExpired, "fell behind while catching up; refetch, then subscribe again")

// gate is the hub's Sink for a subscription that is catching up: until the
// subscription goes live, the hub's payloads (and its End) are held, in
// order and bounded, while the catching-up goroutine delivers the history
// the subscription missed; then the held ones follow, and the gate lets
// everything through. The hub's dispatch goroutine never waits for it.
//
// out is called by one goroutine at a time: the catching-up goroutine
// until live is set (under mu, with nothing held), the dispatch goroutine
// after.
type gate struct {
	out   Sink
	paced PacedSink // out, if it can wait for room; nil otherwise
	max   int       // payloads held at most
	done  <-chan struct{}

	live atomic.Bool // set once, under mu: payloads go straight to out

	mu       sync.Mutex
	held     []*Payload
	overflow bool  // more than max were held: the subscription fell behind
	ended    bool  // the hub ended the subscription (End held), or anchor did
	endErr   error // with this error
	closed   bool  // catching up failed or stopped: nothing more is kept
	outEnded bool  // out.End was called (by goLive)
}

func newGate(out Sink, maxHeld int, done <-chan struct{}) *gate {
	g := &gate{out: out, max: maxHeld, done: done}
	g.paced, _ = out.(PacedSink)
	return g
}

// Deliver implements Sink for the hub.
func (g *gate) Deliver(p *Payload) {
	if g.live.Load() {
		g.out.Deliver(p)
		return
	}
	g.mu.Lock()
	if g.live.Load() {
		g.mu.Unlock()
		g.out.Deliver(p)
		return
	}
	switch {
	case g.overflow || g.closed || g.ended:
	case len(g.held) >= g.max:
		g.overflow, g.held = true, nil
	default:
		g.held = append(g.held, p)
	}
	g.mu.Unlock()
}

// End implements Sink for the hub.
func (g *gate) End(err error) {
	if g.live.Load() {
		g.out.End(err)
		return
	}
	g.mu.Lock()
	if g.live.Load() {
		g.mu.Unlock()
		g.out.End(err)
		return
	}
	if !g.closed && !g.ended {
		g.ended, g.endErr = true, err
	}
	g.mu.Unlock()
}

// send delivers one payload of the catching up to out, at the client's
// pace when out can wait.
func (g *gate) send(ctx context.Context, p *Payload) error {
	select {
	case <-ctx.Done():
		return errStopped
	case <-g.done:
		return errStopped
	default:
	}
	g.mu.Lock()
	overflow := g.overflow
	g.mu.Unlock()
	if overflow {
		return errFellBehind
	}
	if g.paced == nil {
		g.out.Deliver(p)
		return nil
	}
	if err := g.paced.DeliverWait(ctx, p); err != nil {
		return errStopped
	}
	return nil
}

// goLive delivers the held payloads, then lets the hub's through; or, if
// the hub ended the subscription meanwhile, ends it after them.
func (g *gate) goLive(ctx context.Context) error {
	for {
		g.mu.Lock()
		if g.overflow {
			g.mu.Unlock()
			return errFellBehind
		}
		if len(g.held) == 0 {
			if g.ended {
				g.closed, g.outEnded = true, true
				err := g.endErr
				g.mu.Unlock()
				g.out.End(err)
				return nil
			}
			g.live.Store(true)
			g.mu.Unlock()
			return nil
		}
		batch := g.held
		g.held = nil
		g.mu.Unlock()
		for i, p := range batch {
			if err := g.send(ctx, p); err != nil {
				return err
			}
			batch[i] = nil
		}
	}
}

// fail closes the gate after catching up failed or stopped: nothing held
// is delivered, and the hub's End (if any) is dropped, as the caller ends
// out itself (or, stopped, not at all). It reports whether out may still
// be ended (it was not already).
func (g *gate) fail() (endable bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed, g.held = true, nil
	endable = !g.outEnded
	g.outEnded = true
	return endable
}
