package main

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
)

// presenceWriter feeds a presence kept in Redis with the registry's
// connections opening and closing and with operations' activity. Those
// callers must not wait on the network — the registry's observer runs
// under a connection's lock, and an operation should not pay a round trip
// for a LastSeen — so the writer queues their changes and applies them on
// its own goroutines:
//   - in order per user: a user's changes all go to one shard, applied one
//     at a time;
//   - coalesced: a connection closed before its opening was written is
//     never written; a user's touches wait as one;
//   - bounded: one entry per live connection (or per connection closed
//     after it was written), one per touching user up to maxPendingTouches;
//   - retried while Redis is away, so presence is right once it is back.
//
// It also reports this instance's connections' activity to the directory
// every connActivityEvery (what connections(userId) shows elsewhere), and
// opens again any connection the directory lost: a Redis restarted empty
// forgets them, the instance does not.
type presenceWriter struct {
	p   presence.Presence
	dir presence.Directory
	reg *realtime.Registry
	log *slog.Logger

	seed   maphash.Seed
	shards [writerShards]*writerShard

	ctx    context.Context // cancelled when Close gives up draining
	cancel context.CancelFunc
	quit   chan struct{} // closed by Close: drain, then stop
	wg     sync.WaitGroup

	mu sync.Mutex
	// local is this instance's open connections: userID → connID → the
	// activity last reported to the directory.
	local  map[string]map[string]time.Time
	closed bool
}

// Tuning of the writer.
const (
	writerShards      = 4
	connActivityEvery = 5 * time.Second
	// fullReportEvery: every this many reports, all connections are
	// reported, not only those active since the last — idle ones too are
	// found if Redis lost them.
	fullReportEvery   = 12
	activityBatch     = 500
	maxPendingTouches = 10000 // per shard
	// writeTimeout bounds one Redis call; retryMax the wait between tries.
	writeTimeout = 5 * time.Second
	retryMin     = 50 * time.Millisecond
	retryMax     = 2 * time.Second
	// drainTimeout is how long Close waits for queued changes (the
	// drained connections' closes) to be written.
	drainTimeout = 3 * time.Second
)

type opKind uint8

const (
	opOpen opKind = iota + 1
	opClose
	opTouch
)

type writeOp struct {
	kind   opKind
	info   realtime.ConnInfo // opOpen, opClose
	userID string
}

// writerShard is a queue of changes keyed by what they change ("c:"+conn,
// "t:"+user), in arrival order, each key pending at most once.
type writerShard struct {
	mu      sync.Mutex
	pending map[string]writeOp
	order   []string // keys; one whose change was coalesced away is skipped
	touches int
	wake    chan struct{} // 1-buffered
	failing bool          // the last write failed (logged once per streak)
}

// newPresenceWriter starts the writer's goroutines; Close stops them.
func newPresenceWriter(p presence.Presence, dir presence.Directory, reg *realtime.Registry, log *slog.Logger) *presenceWriter {
	ctx, cancel := context.WithCancel(context.Background())
	w := &presenceWriter{
		p: p, dir: dir, reg: reg, log: log, seed: maphash.MakeSeed(),
		ctx: ctx, cancel: cancel, quit: make(chan struct{}),
		local: make(map[string]map[string]time.Time),
	}
	for i := range w.shards {
		sh := &writerShard{pending: make(map[string]writeOp), wake: make(chan struct{}, 1)}
		w.shards[i] = sh
		w.wg.Add(1)
		go w.work(sh)
	}
	w.wg.Add(1)
	go w.report()
	return w
}

func (w *presenceWriter) shard(userID string) *writerShard {
	return w.shards[maphash.String(w.seed, userID)%writerShards]
}

// Opened implements realtime.ConnObserver: queued, never waits.
func (w *presenceWriter) Opened(c realtime.ConnInfo) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	conns := w.local[c.UserID]
	if conns == nil {
		conns = make(map[string]time.Time)
		w.local[c.UserID] = conns
	}
	conns[c.ID] = c.LastActivity
	w.mu.Unlock()
	w.shard(c.UserID).put("c:"+c.ID, writeOp{kind: opOpen, info: c})
}

// Closed implements realtime.ConnObserver: queued, never waits.
func (w *presenceWriter) Closed(c realtime.ConnInfo) {
	w.mu.Lock()
	if conns := w.local[c.UserID]; conns != nil {
		delete(conns, c.ID)
		if len(conns) == 0 {
			delete(w.local, c.UserID)
		}
	}
	w.mu.Unlock()
	w.shard(c.UserID).put("c:"+c.ID, writeOp{kind: opClose, info: c})
}

// touch queues activity of userID (an operation).
func (w *presenceWriter) touch(userID string) {
	w.shard(userID).put("t:"+userID, writeOp{kind: opTouch, userID: userID})
}

// put queues op under key, coalescing with what is pending there.
func (sh *writerShard) put(key string, op writeOp) {
	sh.mu.Lock()
	old, pending := sh.pending[key]
	switch {
	case op.kind == opClose && pending && old.kind == opOpen:
		delete(sh.pending, key) // opened and closed before anything was written
		sh.mu.Unlock()
		return
	case op.kind == opTouch && pending:
		sh.mu.Unlock()
		return
	case op.kind == opTouch && sh.touches >= maxPendingTouches:
		sh.mu.Unlock()
		return // activity is a LastSeen: dropping some under a backlog costs little
	}
	if !pending {
		sh.order = append(sh.order, key)
		if op.kind == opTouch {
			sh.touches++
		}
	}
	sh.pending[key] = op
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest pending change; ok is false once quit is closed
// and nothing is pending.
func (sh *writerShard) next(quit <-chan struct{}) (writeOp, bool) {
	for {
		sh.mu.Lock()
		for len(sh.order) > 0 {
			key := sh.order[0]
			sh.order = sh.order[1:]
			if op, ok := sh.pending[key]; ok {
				delete(sh.pending, key)
				if op.kind == opTouch {
					sh.touches--
				}
				sh.mu.Unlock()
				return op, true
			}
		}
		sh.order = nil // give back a backlog's array
		sh.mu.Unlock()
		select {
		case <-sh.wake:
		case <-quit:
			select {
			case <-sh.wake: // one more look: a change may have come with quit
			default:
				return writeOp{}, false
			}
		}
	}
}

// work applies one shard's changes in order, retrying each while the
// error is one that passes (Redis away), until Close gives up.
func (w *presenceWriter) work(sh *writerShard) {
	defer w.wg.Done()
	for {
		op, ok := sh.next(w.quit)
		if !ok {
			return
		}
		wait := retryMin
		for {
			err := w.apply(op)
			if err == nil {
				if sh.failing {
					sh.failing = false
					w.log.Info("presence: writing to Redis again")
				}
				break
			}
			if !transient(err) {
				w.log.Warn("presence: change not recorded", "user", opUser(op), "err", err)
				break
			}
			if !sh.failing {
				sh.failing = true
				w.log.Warn("presence: Redis unavailable; changes wait and are retried", "err", err)
			}
			select {
			case <-w.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, retryMax)
		}
	}
}

func opUser(op writeOp) string {
	if op.kind == opTouch {
		return op.userID
	}
	return op.info.UserID
}

func (w *presenceWriter) apply(op writeOp) error {
	ctx, cancel := context.WithTimeout(w.ctx, writeTimeout)
	defer cancel()
	switch op.kind {
	case opOpen:
		return w.dir.Open(ctx, connOf(op.info))
	case opClose:
		return w.p.Disconnect(ctx, op.info.UserID, op.info.ID)
	default:
		return w.p.Touch(ctx, op.userID)
	}
}

func connOf(c realtime.ConnInfo) presence.Conn {
	return presence.Conn{
		ID: c.ID, UserID: c.UserID, ConnectedAt: c.ConnectedAt, LastActivity: c.LastActivity,
		UserAgent: c.UserAgent, IP: c.IP, Transport: c.Transport,
	}
}

// transient: an error that waiting may cure — no answer (network,
// timeout), or an answer saying Redis is not ready yet. Other replies
// (a bug, a script error) and presence's own refusals are not retried.
func transient(err error) bool {
	if errors.Is(err, presence.ErrContention) || errors.Is(err, context.Canceled) {
		return false
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return true
	}
	for _, p := range []string{"LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "READONLY"} {
		if strings.HasPrefix(rerr.Error(), p) {
			return true
		}
	}
	return false
}

// report sends the connections' activity every connActivityEvery.
func (w *presenceWriter) report() {
	defer w.wg.Done()
	tk := time.NewTicker(connActivityEvery)
	defer tk.Stop()
	for n := 1; ; n++ {
		select {
		case <-w.quit:
			return
		case <-tk.C:
			w.reportActivity(n%fullReportEvery == 0)
		}
	}
}

// reportActivity reports the activity of this instance's connections
// (all, or those active since their last report) and opens again those
// the directory does not hold.
func (w *presenceWriter) reportActivity(all bool) {
	w.mu.Lock()
	users := make([]string, 0, len(w.local))
	for u := range w.local {
		users = append(users, u)
	}
	w.mu.Unlock()
	var acts []presence.Activity
	infos := make(map[string]realtime.ConnInfo)
	for _, u := range users {
		for _, c := range w.reg.ByUser(u) {
			w.mu.Lock()
			last, ok := w.local[u][c.ID]
			w.mu.Unlock()
			if ok && (all || c.LastActivity.After(last)) {
				acts = append(acts, presence.Activity{UserID: u, ConnID: c.ID, At: c.LastActivity})
				infos[c.ID] = c
			}
		}
	}
	for len(acts) > 0 {
		batch := acts[:min(len(acts), activityBatch)]
		acts = acts[len(batch):]
		ctx, cancel := context.WithTimeout(w.ctx, writeTimeout)
		missing, err := w.dir.Active(ctx, batch)
		cancel()
		if err != nil {
			return // Redis away: the workers say so; the next report tries again
		}
		w.mu.Lock()
		for _, a := range batch {
			if conns := w.local[a.UserID]; conns != nil {
				if _, open := conns[a.ConnID]; open {
					conns[a.ConnID] = a.At
				}
			}
		}
		w.mu.Unlock()
		for _, a := range missing {
			w.mu.Lock()
			_, open := w.local[a.UserID][a.ConnID]
			w.mu.Unlock()
			if open {
				// Still open here, unknown there: Redis lost it (or its
				// opening is still queued, and this coalesces with it).
				w.shard(a.UserID).put("c:"+a.ConnID, writeOp{kind: opOpen, info: infos[a.ConnID]})
			}
		}
	}
}

// Close stops the activity reports, writes what is queued (the closes of
// the connections a drain just closed) for up to drainTimeout, then
// stops. Idempotent.
func (w *presenceWriter) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	for _, sh := range w.shards {
		select {
		case sh.wake <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		w.log.Warn("presence: Redis writes still queued at shutdown dropped; other instances close this one's connections after PRESENCE_INSTANCE_TTL")
		w.cancel()
		<-done
	}
	w.cancel()
}
