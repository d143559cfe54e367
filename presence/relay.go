package presence

import "sync"

// Relay hands changes to a slow handler (one that publishes events: store
// reads, the event log) on one goroutine of its own, in the order Handle
// received them. Handle never blocks, so it is what Options.OnChange is
// given: a Presence calls OnChange under its lock, and its callers (a
// connection opening, holding its own lock) must not wait for a publish.
type Relay struct {
	fn func(Change)

	mu     sync.Mutex
	queue  []Change
	busy   int // taken from the queue, not yet handled
	closed bool
	wake   chan struct{} // capacity 1: "the queue is not empty"
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// NewRelay starts a relay calling fn; Close stops it.
func NewRelay(fn func(Change)) *Relay {
	r := &Relay{fn: fn, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r
}

// Handle queues ch for the handler; it never blocks. Changes handed in after
// Close are dropped.
func (r *Relay) Handle(ch Change) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.queue = append(r.queue, ch)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Len is the number of changes not yet handled (waiting or being handled).
func (r *Relay) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue) + r.busy
}

func (r *Relay) run() {
	defer close(r.done)
	var batch []Change
	for {
		select {
		case <-r.quit:
			return
		case <-r.wake:
		}
		r.mu.Lock()
		batch, r.queue = r.queue, batch[:0]
		r.busy = len(batch)
		r.mu.Unlock()
		for i, ch := range batch {
			select {
			case <-r.quit:
				return
			default:
			}
			r.fn(ch)
			batch[i] = Change{}
			r.mu.Lock()
			if !r.closed {
				r.busy--
			}
			r.mu.Unlock()
		}
		if cap(batch) > 1024 {
			batch = nil // a burst's memory is not kept
		}
	}
}

// Close stops the relay: the change being handled finishes, the queued
// ones are dropped (presence is not history: the next change carries the
// state). Idempotent.
func (r *Relay) Close() {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.queue, r.busy = nil, 0
		r.mu.Unlock()
		close(r.quit)
	})
	<-r.done
}
