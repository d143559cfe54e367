package transport

import (
	"sync"
	"time"
)

// sweeper is a WebSocket transport's one timer. Every tick it walks the
// connections and, for each one due, pings it (every PingInterval), drops
// it when silent for twice PingInterval (the reader's read is ended, so
// it tears down), closes it past its deadline (no connection_init within
// InitTimeout: 4408; credentials expired: 4403), or closes it when a
// message it started is still unfinished after MessageTimeout (1008). A
// connection therefore holds no timer and sets no read deadline while it
// is healthy, and the checks cost a few atomic loads per connection per
// tick.
type sweeper struct {
	tick time.Duration
	// quit is nil until started, closed to stop; both under the
	// transport's mu.
	quit    chan struct{}
	stopped bool
	done    sync.WaitGroup
	due     []*wsConn // the sweeper goroutine's, reused between ticks
}

// maxSweepTick bounds the sweeper's period: a connection is closed at
// most this long after its credentials expire, well within the contract's
// second (the verifier's leeway is already in the expiry).
const maxSweepTick = 500 * time.Millisecond

// sweepTick is the sweeper's period for the transport's options: fine
// enough for the shortest timer it serves, at most maxSweepTick.
func sweepTick(o Options) time.Duration {
	return min(max(min(o.PingInterval, o.InitTimeout, o.MessageTimeout)/4, 5*time.Millisecond), maxSweepTick)
}

// startLocked starts the sweeper with the first connection (a transport
// that serves none runs no goroutine). Called with t.mu held.
func (s *sweeper) startLocked(t *WebSocket) {
	if s.quit != nil || s.stopped {
		return
	}
	s.tick = sweepTick(t.opts)
	s.quit = make(chan struct{})
	s.done.Add(1)
	go s.run(t)
}

// stop ends the sweeper for good; it is idempotent.
func (s *sweeper) stop(t *WebSocket) {
	t.mu.Lock()
	if s.quit != nil && !s.stopped {
		close(s.quit)
	}
	s.stopped = true
	t.mu.Unlock()
	s.done.Wait()
}

func (s *sweeper) run(t *WebSocket) {
	defer s.done.Done()
	tk := time.NewTicker(s.tick)
	defer tk.Stop()
	for {
		select {
		case <-s.quit:
			return
		case now := <-tk.C:
			s.sweep(t, now.UnixNano())
		}
	}
}

// sweep checks every connection under the transport's lock (atomics
// only) and acts on the due ones after releasing it.
func (s *sweeper) sweep(t *WebSocket, now int64) {
	silence := 2 * int64(t.opts.PingInterval)
	msgLimit := int64(t.opts.MessageTimeout)
	t.mu.Lock()
	for c := range t.conns {
		d, ms := c.deadline.Load(), c.msgStart.Load()
		if now >= c.nextPing || now-c.heard.Load() > silence || d != 0 && now >= d || ms != 0 && now-ms > msgLimit {
			s.due = append(s.due, c)
		}
	}
	t.mu.Unlock()
	for i, c := range s.due {
		s.due[i] = nil
		if now-c.heard.Load() > silence {
			// Silent peer: end its read, as a read deadline would; no
			// close frame, the peer is not listening.
			_ = c.ws.SetReadDeadline(time.Unix(0, now))
			continue
		}
		if ms := c.msgStart.Load(); ms != 0 && now-ms > msgLimit && c.msgStart.CompareAndSwap(ms, 0) {
			c.messageTimedOut()
		}
		if d := c.deadline.Load(); d != 0 && now >= d {
			c.expire(now)
		}
		if now >= c.nextPing {
			c.nextPing = now + int64(t.opts.PingInterval)
			c.ping()
		}
	}
	if cap(s.due) > 1<<12 {
		s.due = nil // a burst of due connections is not kept for ever
	}
	s.due = s.due[:0]
}
