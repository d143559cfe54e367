package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
)

// core is what every connection of one transport shares.
type core struct {
	opts   Options
	log    *slog.Logger
	shapes *Shapes
	n      counters
	obs    Observer // never nil
	timed  bool     // an Observer was given: deliveries are sampled for it
	// pool writes for sessions whose wire can write without waiting; nil
	// for transports whose wires cannot (SSE).
	pool *writerPool
	// base is cancelled by Close: the cancellation of every connection's
	// contexts (Authenticate, operations), so Close can stop a handler
	// blocked on something that honours its context.
	base context.Context
	stop context.CancelFunc
}

// init sets c up for opts (defaults applied); pooled: its wires can write
// without waiting, so it runs shared writers.
func (c *core) init(opts Options, pooled bool) {
	opts = opts.withDefaults()
	if opts.Authenticate == nil {
		panic("transport: Options.Authenticate is required")
	}
	c.opts, c.log, c.shapes = opts, opts.Logger, opts.Shapes
	c.obs, c.timed = opts.Observer, opts.Observer != nil
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	c.base, c.stop = context.WithCancel(context.Background())
	if pooled {
		c.pool = newWriterPool(&c.n.framesSent)
	}
}

// proto is the wire format of a session's messages.
type proto uint8

const (
	protoTransportWS proto = iota // graphql-transport-ws
	protoGraphQLWS                // legacy graphql-ws (subscriptions-transport-ws)
	protoSSE                      // graphql-sse, distinct connections mode
)

// name is the protocol's name in realtime.ConnInfo.Transport.
func (p proto) name() string {
	switch p {
	case protoGraphQLWS:
		return ProtocolGraphQLWS
	case protoSSE:
		return TransportSSE
	}
	return ProtocolTransportWS
}

// nextType is the message type of a result.
func (p proto) nextType() string {
	if p == protoGraphQLWS {
		return "data"
	}
	return "next"
}

// frame kinds.
const (
	frameNext  uint8 = iota + 1 // a subscription's payload; composed by the writer
	frameRaw                    // a complete message
	framePing                   // a WebSocket ping
	framePong                   // a WebSocket pong; raw: its payload
	frameClose                  // terminal: close with code and reason
)

// frame is one queued outbound message.
type frame struct {
	kind    uint8
	code    int // frameClose
	sub     *subscription
	payload *realtime.Payload
	raw     []byte // frameRaw: the message; framePong: its payload; frameClose: the reason
}

// wire is how a session's frames reach its client (a WebSocket or an SSE
// response). The session's writer renders a batch of frames into one
// buffer with the append methods and writes it with one call; only the
// session's current writer calls them, one at a time.
type wire interface {
	// appendNext appends a subscription's payload as one message,
	// composing the envelope around the payload bytes without re-encoding
	// them.
	appendNext(b []byte, s *subscription, payload []byte) []byte
	// appendRaw appends one complete message.
	appendRaw(b, msg []byte) []byte
	// appendControl appends a WebSocket ping or pong (nothing for SSE).
	appendControl(b []byte, kind uint8, payload []byte) []byte
	// appendClose appends the wire's end of the connection, if it has one
	// in bytes: the last thing written.
	appendClose(b []byte, code int, reason string) []byte
	// tryWrite writes a prefix of b without waiting for the client: n <
	// len(b) with a nil error means the client's buffer is full. Only
	// called for a pooled session.
	tryWrite(w *rawWrite, b []byte) (n int, err error)
	// write writes b, waiting for the client at most WriteTimeout (after
	// abort(true): at most until the abort's deadline).
	write(b []byte) error
	// closed is called once a batch ending with the close is written.
	closed(code int, reason string)
	// abort hastens the end after a failed write (slow false) or a queue
	// overflow (slow true: the write in progress and the close frame after
	// it get closeGrace more, no longer); the session is already closing.
	// Called with session.mu held: it must not block.
	abort(slow bool)
}

// session is one client connection's state shared by the WebSocket and SSE
// transports: the bounded outbound queue and its writer, the live
// subscriptions and in-flight operations, and the registry entry.
type session struct {
	t     *core
	w     wire
	proto proto
	// pooled: the wire can write without waiting (tryWrite), so the
	// transport's shared writers write it; otherwise a goroutine of the
	// session's own does.
	pooled bool
	exec   graphql.GraphExecutor

	// Set once the connection is authenticated, before any operation runs;
	// read-only afterwards.
	ctx context.Context // the base of every operation: carries the viewer (WebSocket: see wsConn.req)
	// What Info reports (fields, not a ConnInfo: smaller).
	id, userID, userAgent, ip string
	connectedAt               int64 // UnixNano
	// lastActivity is the UnixNano of the last message received.
	lastActivity atomic.Int64

	mu sync.Mutex
	// Outbound queue: frames[head:] wait for the writer; queued is what
	// they count against SendQueueBytes (frame.size). Elements outside
	// [head:len] are zero, so a writer can swap its empty scratch in.
	frames []frame
	head   int
	queued int
	// flushing: a writer owns the session's writing — it is queued in or
	// being written by the pool, or a goroutine of its own writes. One
	// writer at a time keeps frames in order.
	flushing bool
	// flushed, if not nil, is closed when flushing ends (waitFlushed).
	flushed chan struct{}
	// room, if not nil, is closed when the writer takes frames or the
	// queue is dropped (DeliverWait waits on it; pace.go).
	room chan struct{}
	// closing: a terminal frame is queued (or the connection broke);
	// nothing more is accepted. dead: torn down.
	closing bool
	dead    bool
	// connected: Observer.Connected was called (WebSocket).
	connected bool
	// batches counts the batches with events the writer took, for
	// sampling (sampleCommit); only the current writer touches it.
	batches uint8
	// code is the close code of the first close queued or received; 0:
	// none (closeCode).
	code uint16
	// Active subscriptions and operations: slices, as a connection has a
	// few (at most MaxSubsPerConn) and a map would cost more than the rest
	// of an idle connection's state.
	subs []*subscription
	ops  []*operation
	// bg tracks the session's writer and short-lived goroutines
	// (operations); Add only under mu while !dead.
	bg sync.WaitGroup
}

func (s *session) init(t *core, w wire, p proto, exec graphql.GraphExecutor, pooled bool) {
	s.t, s.w, s.proto, s.exec, s.pooled = t, w, p, exec, pooled && t.pool != nil
}

// newConnID returns a random connection id, unique across instances.
func newConnID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Info implements realtime.Conn.
func (s *session) Info() realtime.ConnInfo {
	return realtime.ConnInfo{
		ID:           s.id,
		UserID:       s.userID,
		ConnectedAt:  time.Unix(0, s.connectedAt),
		LastActivity: time.Unix(0, s.lastActivity.Load()),
		UserAgent:    s.userAgent,
		IP:           s.ip,
		Transport:    s.proto.name(),
	}
}

// identify records who connected, and when; it starts LastActivity.
func (s *session) identify(r *http.Request, userID string) {
	s.id, s.userID, s.userAgent, s.ip = newConnID(), userID, r.UserAgent(), s.t.clientIP(r)
	s.connectedAt = time.Now().UnixNano()
	s.lastActivity.Store(s.connectedAt)
}

func (s *session) touch() { s.lastActivity.Store(time.Now().UnixNano()) }

// enqueue queues f and schedules the writer if none owns the session. It
// never blocks. A full queue (SendQueue frames, or SendQueueBytes) makes
// the client a slow consumer: the queue is dropped and the connection
// closed with 4010. False if f was not queued.
func (s *session) enqueue(f frame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enqueueLocked(f)
}

func (s *session) enqueueLocked(f frame) bool {
	if s.closing {
		return false
	}
	if !s.fitsLocked(f, s.t.opts.SendQueue, s.t.opts.SendQueueBytes) {
		s.overflowLocked()
		return false
	}
	s.pushLocked(f)
	return true
}

// fitsLocked reports whether f fits in the queue under limits of frames
// and bytes (a first frame always fits the bytes).
func (s *session) fitsLocked(f frame, frames, bytes int) bool {
	n := len(s.frames) - s.head
	return n < frames && (n == 0 || s.queued+f.size() <= bytes)
}

// size is what f counts against SendQueueBytes: a message's bytes; for a
// payload, its event's data (the payload is rendered later, once for all
// its recipients, and is about as large).
func (f *frame) size() int {
	if f.kind == frameNext {
		return len(f.payload.Event.Data)
	}
	return len(f.raw)
}

// pushLocked appends f, reusing the queue's consumed front when the slice
// is full so its capacity stays bounded by the queue limit.
func (s *session) pushLocked(f frame) {
	if len(s.frames) == cap(s.frames) && s.head > 0 {
		n := copy(s.frames, s.frames[s.head:])
		clear(s.frames[n:])
		s.frames = s.frames[:n]
		s.head = 0
	}
	s.frames = append(s.frames, f)
	s.queued += f.size()
	if !s.flushing && !s.dead {
		s.flushing = true
		s.bg.Add(1)
		if !s.pooled || !s.t.pool.push(s) {
			go s.flushAll()
		}
	}
}

// dropQueueLocked forgets every queued frame (and their payloads).
func (s *session) dropQueueLocked() {
	clear(s.frames)
	s.frames, s.head, s.queued = nil, 0, 0
	s.wakeRoomLocked()
}

func (s *session) overflowLocked() {
	s.t.n.slowConsumers.Add(1)
	s.t.log.Info("transport: slow consumer dropped", "conn", s.id, "user", s.userID, "queued", len(s.frames)-s.head, "bytes", s.queued)
	s.dropQueueLocked()
	s.closeLocked(CloseSlowConsumer, "slow consumer")
	s.w.abort(true)
}

// closeWith closes the connection with code and reason after the frames
// already queued; it returns at once and is idempotent.
func (s *session) closeWith(code int, reason string) {
	s.mu.Lock()
	s.closeLocked(code, reason)
	s.mu.Unlock()
}

func (s *session) closeLocked(code int, reason string) {
	if s.closing {
		return
	}
	s.closing = true
	s.code = uint16(code)
	s.pushLocked(frame{kind: frameClose, code: code, raw: []byte(truncateReason(reason))})
}

func (s *session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// ---- the writer ----
//
// Whoever owns the session's writing (flushing) calls flush until it
// returns false. A pool worker calls it with wait false: it writes what
// the socket takes at once and hands a remainder to finish, on a
// goroutine of the session's own. Wires that cannot write without waiting
// (SSE) and sessions whose pool has closed are written by flushAll.

// flushAll writes the queue on the calling goroutine, waiting for the
// client as needed, until it is empty.
func (s *session) flushAll() {
	var sc scratch
	for s.flush(&sc, true) {
	}
	s.t.n.framesSent.Add(sc.sent)
}

// flush writes one batch of queued frames, counting the messages written
// in sc.sent. It returns true if more frames are queued (the caller still
// owns the writing), false if the caller no longer does: the queue was
// empty (ownership released), the write failed, or the rest of the batch
// went to finish.
func (s *session) flush(sc *scratch, wait bool) bool {
	fs := s.take(sc.frames[:0])
	if len(fs) == 0 {
		return false
	}
	commit := s.sampleCommit(fs)
	b, n, closeF := s.render(sc.buf[:0], fs)
	clear(fs) // let the payloads go
	sc.frames = fs[:0]
	var err error
	switch {
	case len(b) == 0:
	case wait:
		err = s.w.write(b)
	default:
		var m int
		m, err = s.w.tryWrite(&sc.raw, b)
		if err == nil && m < len(b) {
			// The client's buffer is full: the rest waits for it on a
			// goroutine of this session's, not on a worker. A buffer the
			// worker would keep is copied from; a larger one is handed over.
			rest := b[m:]
			if cap(b) <= maxKeptBuf {
				rest = append([]byte(nil), rest...)
				sc.keep(b)
			} else {
				sc.buf = nil
			}
			go s.finish(rest, n, closeF, commit)
			return false
		}
	}
	sc.keep(b)
	if err == nil {
		sc.sent += uint64(n)
		s.delivered(commit)
	}
	return s.wrote(err, closeF)
}

// finish writes the rest of a batch a worker could not write at once,
// waiting for the client (bounded by the write timeout), then goes on
// writing: in the pool again if it runs, otherwise here.
func (s *session) finish(rest []byte, n int, closeF *frame, commit int64) {
	err := s.w.write(rest)
	if err == nil {
		s.t.n.framesSent.Add(uint64(n))
		s.delivered(commit)
	}
	if !s.wrote(err, closeF) {
		return
	}
	if !s.t.pool.push(s) {
		s.flushAll()
	}
}

// take moves up to maxBatchFrames queued frames into fs (empty). With none
// queued (or the session torn down) it releases the writing: flushing
// ends.
func (s *session) take(fs []frame) []frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.head == len(s.frames) {
		s.releaseLocked()
		return fs
	}
	if s.head == 0 && len(s.frames) <= maxBatchFrames {
		// The whole queue is the batch: the writer takes the queue's slice
		// and leaves its own empty scratch in exchange. Nothing is copied,
		// and a queue grown by a burst keeps its capacity while the burst
		// lasts (releaseLocked trims it once the session is idle).
		fs, s.frames = s.frames, fs
	} else {
		end := min(len(s.frames), s.head+maxBatchFrames)
		fs = append(fs, s.frames[s.head:end]...)
		clear(s.frames[s.head:end])
		s.head = end
		if s.head == len(s.frames) {
			s.frames, s.head = s.frames[:0], 0
		}
	}
	for i := range fs {
		s.queued -= fs[i].size()
	}
	s.wakeRoomLocked()
	return fs
}

// idleQueueCap is the largest queue capacity an idle session keeps: a
// few frames' worth, so a connection between events holds little memory.
const idleQueueCap = 16

// releaseLocked ends the current writer's ownership; the queue is empty.
func (s *session) releaseLocked() {
	if s.dead {
		s.dropQueueLocked()
	} else if cap(s.frames) > idleQueueCap {
		s.frames, s.head = nil, 0
	}
	s.flushing = false
	if s.flushed != nil {
		close(s.flushed)
		s.flushed = nil
	}
	s.bg.Done()
}

// render appends the wire bytes of fs to b. n is the number of messages;
// closeF the close frame if the batch ends the connection.
func (s *session) render(b []byte, fs []frame) (_ []byte, n int, closeF *frame) {
	for i := range fs {
		f := &fs[i]
		switch f.kind {
		case frameNext:
			if f.sub.state.Load() == subCancelled {
				continue // the client completed it; nothing more for this id
			}
			p, err := f.payload.Bytes()
			if err != nil || len(p) == 0 {
				// The encoder reports its own failures, once per event:
				// shape.Encode logs and renders an error payload instead.
				continue
			}
			b = s.w.appendNext(b, f.sub, p)
		case frameRaw:
			b = s.w.appendRaw(b, f.raw)
		case framePing, framePong:
			b = s.w.appendControl(b, f.kind, f.raw)
			continue // not a message
		case frameClose:
			b = s.w.appendClose(b, f.code, string(f.raw))
			cf := *f
			return b, n, &cf // the last frame
		}
		n++
	}
	return b, n, nil
}

// wrote finishes a batch: on failure the connection is abandoned; after
// the close frame the wire is told. True if more frames are queued and
// the caller still owns the writing.
func (s *session) wrote(err error, closeF *frame) bool {
	if err != nil {
		s.w.abort(false) // before releasing: teardown waits for the release
		s.mu.Lock()
		s.closing = true
		s.dropQueueLocked()
		s.releaseLocked()
		s.mu.Unlock()
		return false
	}
	if closeF != nil {
		s.w.closed(closeF.code, string(closeF.raw))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.head == len(s.frames) {
		s.releaseLocked()
		return false
	}
	return true
}

// waitFlushed waits until no writer owns the session — what was queued is
// written, or abandoned — for at most d.
func (s *session) waitFlushed(d time.Duration) {
	s.mu.Lock()
	if !s.flushing {
		s.mu.Unlock()
		return
	}
	if s.flushed == nil {
		s.flushed = make(chan struct{})
	}
	ch := s.flushed
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// activeOps is the number of subscriptions and operations: what
// MaxSubsPerConn bounds.
func (s *session) activeOps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs) + len(s.ops)
}

// idInUse reports whether id names an active subscription or operation.
func (s *session) idInUse(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subIndex(id) >= 0 || s.opIndex(id) >= 0
}

func (s *session) subIndex(id string) int {
	for i, sub := range s.subs {
		if sub.id == id {
			return i
		}
	}
	return -1
}

func (s *session) opIndex(id string) int {
	for i, op := range s.ops {
		if op.id == id {
			return i
		}
	}
	return -1
}

// removeSubLocked forgets sub if it is still active.
func (s *session) removeSubLocked(sub *subscription) {
	if i := s.subIndex(sub.id); i >= 0 && s.subs[i] == sub {
		s.subs = removeAt(s.subs, i)
	}
}

// removeAt removes xs[i], not keeping order; an emptied slice is nil.
func removeAt[T any](xs []T, i int) []T {
	last := len(xs) - 1
	xs[i] = xs[last]
	var zero T
	xs[last] = zero
	if last == 0 {
		return nil
	}
	return xs[:last]
}

// teardown ends everything the session owns: subscriptions (the hub
// forgets them), operations (cancelled), queued frames. closeTransport
// makes a writer still blocked on the client fail fast; then teardown waits
// for the session's goroutines. Called once, by the goroutine that owns the
// connection.
func (s *session) teardown(closeTransport func()) {
	s.mu.Lock()
	s.closing, s.dead = true, true
	s.dropQueueLocked()
	subs, ops := s.subs, s.ops
	s.subs, s.ops = nil, nil
	s.mu.Unlock()

	for _, sub := range subs {
		sub.cancel()
	}
	for _, op := range ops {
		op.cancel()
	}
	if closeTransport != nil {
		closeTransport()
	}
	s.bg.Wait()
}

// ---- subscriptions ----

// Subscription states.
const (
	subLive      uint32 = iota
	subEnded            // ended by the hub: its queued frames and the final message go out
	subCancelled        // completed by the client or the connection closed: queued payloads are dropped
)

// subscription is one live subscription: the realtime.Sink the hub
// delivers to.
type subscription struct {
	s      *session
	id     string
	idJSON []byte
	shape  *shape
	target *realtime.Target
	state  atomic.Uint32
	field  string // the root field's name (for the Observer)
}

var _ realtime.Sink = (*subscription)(nil)

// Deliver implements realtime.Sink: it queues the payload.
func (sub *subscription) Deliver(p *realtime.Payload) {
	if sub.state.Load() != subLive {
		return
	}
	sub.s.enqueue(frame{kind: frameNext, sub: sub, payload: p})
}

// End implements realtime.Sink: the hub ended the subscription; err nil
// completes it, otherwise the client gets an error message.
func (sub *subscription) End(err error) {
	if !sub.state.CompareAndSwap(subLive, subEnded) {
		return
	}
	var msg []byte
	if err == nil {
		msg = sub.s.completeMessage(sub.idJSON)
	} else {
		msg = sub.s.errorMessage(sub.idJSON, sub.presentEnd(err))
	}
	s := sub.s
	s.mu.Lock()
	s.removeSubLocked(sub)
	s.enqueueLocked(frame{kind: frameRaw, raw: msg})
	if s.proto == protoSSE {
		s.endStreamLocked(err != nil)
	}
	s.mu.Unlock()
	sub.release()
}

// endStreamLocked ends an SSE stream after its operation ended: one
// operation per stream. After errors (sent as a next event) complete
// follows.
func (s *session) endStreamLocked(afterErrors bool) {
	if afterErrors {
		s.enqueueLocked(frame{kind: frameRaw, raw: s.completeMessage(nil)})
	}
	s.closeLocked(CloseNormal, "")
}

// presentEnd turns the error that ended a subscription into the presented
// GraphQL errors, through the executor so the server's ErrorPresenter maps
// *errs.Error to extensions.code.
func (sub *subscription) presentEnd(err error) gqlerror.List {
	msg := err.Error()
	var e *errs.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	ctx := graphql.WithOperationContext(context.Background(), sub.shape.rc.Load())
	resp := sub.s.exec.DispatchError(ctx, gqlerror.List{{Err: err, Message: msg, Path: sub.shape.root}})
	return resp.Errors
}

// cancel ends a live subscription from the transport's side (client
// complete, connection closed, failed start): the hub forgets it and its
// queued payloads are dropped. False if the hub had ended it already.
func (sub *subscription) cancel() bool {
	if !sub.state.CompareAndSwap(subLive, subCancelled) {
		return false
	}
	if hs := sub.target.Subscription(); hs != nil {
		hs.Unsubscribe()
	}
	sub.release()
	return true
}

func (sub *subscription) release() {
	sub.s.t.shapes.release(sub.shape)
	sub.s.t.n.subs.Add(-1)
	sub.s.t.obs.Subscriptions(sub.s.proto.name(), sub.field, -1)
}

// complete handles a client's complete (legacy: stop) for id: the
// subscription or operation stops and nothing more is sent for it.
func (s *session) complete(id string) {
	var sub *subscription
	var op *operation
	s.mu.Lock()
	if i := s.subIndex(id); i >= 0 {
		sub = s.subs[i]
		s.subs = removeAt(s.subs, i)
	}
	if i := s.opIndex(id); i >= 0 {
		op = s.ops[i]
		s.ops = removeAt(s.ops, i)
	}
	s.mu.Unlock()
	if sub != nil {
		sub.cancel()
	}
	if op != nil {
		op.cancel()
	}
}

// startSubscription runs a subscription operation's resolver with a target
// for the hub. On success the subscription is live and gqlgen's response
// handler is never called again: payloads flow hub → sink → queue. On
// failure the client gets an error message with the resolver's errors.
// Called by the connection's own goroutine, so the client cannot complete
// or reuse id meanwhile (the hub may Deliver or End, though).
func (s *session) startSubscription(ctx context.Context, id string, rc *graphql.OperationContext) {
	sh := s.t.shapes.acquire(s.exec, rc, s.t.opts.WriteTimeout, s.t.log)
	root := rootField(rc) // validated: a subscription has one
	sub := &subscription{s: s, id: id, idJSON: jsonString(id), shape: sh}
	if root != nil {
		sub.field = root.Name
	}
	sub.target = &realtime.Target{Sink: sub, Encoder: sh}
	s.t.n.subs.Add(1)
	s.t.obs.Subscriptions(s.proto.name(), sub.field, 1)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sub.state.Store(subCancelled)
		sub.release()
		return
	}
	s.subs = append(s.subs, sub) // before the resolver runs: the hub may deliver at once
	s.mu.Unlock()

	h, octx := s.exec.DispatchOperation(realtime.WithTarget(ctx, sub.target), rc)
	if sub.target.Subscription() != nil {
		s.t.shapes.confirm(sh, rc)
		if root != nil {
			s.t.obs.Subscribed(s.Info(), root, rc.Variables)
		}
		return // live
	}
	// The resolver failed. A OneShot error response returns at once with a
	// cancelled context; any other handler returns nil.
	cctx, cancel := context.WithCancel(octx)
	cancel()
	var list gqlerror.List
	if resp := h(cctx); resp != nil {
		list = resp.Errors
	}
	if len(list) == 0 {
		list = s.exec.DispatchError(octx, gqlerror.List{{
			Err:     errors.New("transport: subscription resolver registered no subscription"),
			Message: "internal error: the subscription could not be started",
			Path:    sh.root,
		}}).Errors
	}
	s.mu.Lock()
	s.removeSubLocked(sub)
	s.mu.Unlock()
	if sub.cancel() {
		s.mu.Lock()
		s.enqueueLocked(frame{kind: frameRaw, raw: s.errorMessage(sub.idJSON, list)})
		if s.proto == protoSSE {
			s.endStreamLocked(true)
		}
		s.mu.Unlock()
	}
}

// ---- operations (query and mutation over a socket) ----

type operation struct {
	id     string
	cancel context.CancelFunc
}

// startOperation executes a query or mutation on its own goroutine and
// sends its results, then complete; a client complete or the connection's
// end cancels it.
func (s *session) startOperation(ctx context.Context, id string, rc *graphql.OperationContext) {
	octx, cancel := context.WithCancel(ctx)
	op := &operation{id: id, cancel: cancel}
	s.mu.Lock()
	if s.dead || s.closing {
		s.mu.Unlock()
		cancel()
		return
	}
	s.ops = append(s.ops, op)
	s.bg.Add(1)
	s.mu.Unlock()

	idJSON := jsonString(id)
	go func() {
		defer s.bg.Done()
		defer cancel()
		defer func() {
			if r := recover(); r != nil {
				s.t.log.Error("transport: operation panicked", "conn", s.id, "panic", r)
				list := s.exec.DispatchError(graphql.WithOperationContext(octx, rc), gqlerror.List{{Err: fmt.Errorf("panic: %v", r), Message: "internal error"}}).Errors
				s.sendForOp(id, op, s.errorMessage(idJSON, list), true)
			}
		}()
		h, dctx := s.exec.DispatchOperation(octx, rc)
		for octx.Err() == nil {
			resp := h(dctx)
			if resp == nil {
				break
			}
			b, err := json.Marshal(resp)
			if err != nil {
				s.t.log.Error("transport: encoding a response failed", "conn", s.id, "err", err)
				break
			}
			s.sendForOp(id, op, s.message(s.proto.nextType(), idJSON, b), false)
		}
		s.sendForOp(id, op, s.completeMessage(idJSON), true)
	}()
}

// sendForOp queues msg unless the client completed op; last removes op.
func (s *session) sendForOp(id string, op *operation, msg []byte, last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.opIndex(id)
	if i < 0 || s.ops[i] != op {
		return
	}
	if last {
		s.ops = removeAt(s.ops, i)
	}
	s.enqueueLocked(frame{kind: frameRaw, raw: msg})
}

// ---- messages ----

// message builds a message of the session's protocol: {"id":…,"type":…,
// "payload":…} (id and payload optional); for SSE, an event of that type.
func (s *session) message(typ string, idJSON, payload []byte) []byte {
	if s.proto == protoSSE {
		return appendSSEEvent(make([]byte, 0, len(typ)+len(payload)+16), typ, payload)
	}
	return appendMessage(make([]byte, 0, messageLen(typ, idJSON, payload)), typ, idJSON, payload)
}

// appendMessage appends {"id":…,"type":…,"payload":…}; a nil idJSON or
// payload is left out.
func appendMessage(b []byte, typ string, idJSON, payload []byte) []byte {
	b = append(b, '{')
	if idJSON != nil {
		b = append(b, `"id":`...)
		b = append(b, idJSON...)
		b = append(b, ',')
	}
	b = append(b, `"type":"`...)
	b = append(b, typ...)
	b = append(b, '"')
	if payload != nil {
		b = append(b, `,"payload":`...)
		b = append(b, payload...)
	}
	return append(b, '}')
}

// messageLen is the length of appendMessage's message.
func messageLen(typ string, idJSON, payload []byte) int {
	n := len(`{"type":""}`) + len(typ)
	if idJSON != nil {
		n += len(`"id":,`) + len(idJSON)
	}
	if payload != nil {
		n += len(`,"payload":`) + len(payload)
	}
	return n
}

// appendSSEEvent appends an event of type typ. JSON has no raw newlines,
// so data is one data line.
func appendSSEEvent(b []byte, typ string, data []byte) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	if len(data) == 0 {
		return append(b, "\ndata:\n\n"...)
	}
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

func (s *session) completeMessage(idJSON []byte) []byte {
	return s.message("complete", idJSON, nil)
}

// errorMessage is an operation's error message: graphql-ws `error` with
// the error list as payload; SSE (which has no error event) a `next` event
// with {"errors": …}.
func (s *session) errorMessage(idJSON []byte, list gqlerror.List) []byte {
	if s.proto == protoSSE {
		b, _ := json.Marshal(&graphql.Response{Errors: list})
		return s.message("next", nil, b)
	}
	b, err := json.Marshal(list)
	if err != nil {
		b = []byte(`[{"message":"internal error"}]`)
	}
	return s.message("error", idJSON, b)
}

// badInputError is a client error shown with extensions.code BAD_USER_INPUT
// by the server's presenter and by gqlgen's default one alike.
func badInputError(msg string) *gqlerror.Error {
	return &gqlerror.Error{
		Err:        errs.E(errs.BadUserInput, "%s", msg),
		Message:    msg,
		Extensions: map[string]any{"code": string(errs.BadUserInput)},
	}
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
