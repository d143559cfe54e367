package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	shapes *shapeRegistry
	n      counters
}

// proto is the wire format of a session's messages.
type proto uint8

const (
	protoTransportWS proto = iota // graphql-transport-ws
	protoGraphQLWS                // legacy graphql-ws (subscriptions-transport-ws)
	protoSSE                      // graphql-sse, distinct connections mode
)

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
	frameClose                  // terminal: close with code and reason
)

// frame is one queued outbound message.
type frame struct {
	kind    uint8
	code    int // frameClose
	sub     *subscription
	payload *realtime.Payload
	raw     []byte // frameRaw: the message; frameClose: the reason
}

// wire is how a session's frames reach its client (a WebSocket or an SSE
// response). Its write methods are called by the session's flusher only,
// one at a time.
type wire interface {
	// writeNext writes a subscription's payload as one message, composing
	// the envelope around the payload bytes without re-encoding them.
	writeNext(s *subscription, payload []byte) error
	// writeRaw writes one complete message.
	writeRaw(b []byte) error
	// writeClose ends the connection: it is the last frame written.
	writeClose(code int, reason string)
	// abort hastens the end after a failed write (slow false) or a queue
	// overflow (slow true); the session is already closing.
	abort(slow bool)
}

// session is one client connection's state shared by the WebSocket and SSE
// transports: the bounded outbound queue and its on-demand flusher, the
// live subscriptions and in-flight operations, and the registry entry.
type session struct {
	t     *core
	w     wire
	proto proto
	exec  graphql.GraphExecutor

	// Set once the connection is authenticated, before any operation runs;
	// read-only afterwards.
	ctx    context.Context // the base of every operation: carries the viewer
	cancel context.CancelFunc
	info   realtime.ConnInfo // ID, UserID, ConnectedAt, UserAgent, IP, Transport
	// lastActivity is the UnixNano of the last message received.
	lastActivity atomic.Int64

	mu sync.Mutex
	// Outbound queue: frames[head:] wait for the flusher.
	frames   []frame
	head     int
	flushing bool // a flusher goroutine is running
	// closing: a terminal frame is queued (or the connection broke);
	// nothing more is accepted. dead: torn down.
	closing bool
	dead    bool
	subs    map[string]*subscription
	ops     map[string]*operation
	// bg tracks the session's short-lived goroutines (flusher, timer
	// callbacks, operations); Add only under mu while !dead.
	bg sync.WaitGroup
}

func (s *session) init(t *core, w wire, p proto, exec graphql.GraphExecutor) {
	s.t, s.w, s.proto, s.exec = t, w, p, exec
}

// newConnID returns a random connection id, unique across instances.
func newConnID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Info implements realtime.Conn.
func (s *session) Info() realtime.ConnInfo {
	info := s.info
	info.LastActivity = time.Unix(0, s.lastActivity.Load())
	return info
}

func (s *session) touch() { s.lastActivity.Store(time.Now().UnixNano()) }

// goBG runs f on a goroutine the teardown waits for; false (f not run) if
// the session is already torn down.
func (s *session) goBG(f func()) bool {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return false
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		f()
	}()
	return true
}

// enqueue queues f and starts a flusher if none runs. It never blocks. A
// full queue makes the client a slow consumer: the queue is dropped and
// the connection closed with 4010. False if f was not queued.
func (s *session) enqueue(f frame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enqueueLocked(f)
}

func (s *session) enqueueLocked(f frame) bool {
	if s.closing {
		return false
	}
	if len(s.frames)-s.head >= s.t.opts.SendQueue {
		s.overflowLocked()
		return false
	}
	s.pushLocked(f)
	return true
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
	if !s.flushing && !s.dead {
		s.flushing = true
		s.bg.Add(1)
		go s.flush()
	}
}

// dropQueueLocked forgets every queued frame (and their payloads).
func (s *session) dropQueueLocked() {
	clear(s.frames)
	s.frames, s.head = nil, 0
}

func (s *session) overflowLocked() {
	s.t.n.slowConsumers.Add(1)
	s.t.log.Info("transport: slow consumer dropped", "conn", s.info.ID, "user", s.info.UserID, "queued", len(s.frames)-s.head)
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
	s.pushLocked(frame{kind: frameClose, code: code, raw: []byte(truncateReason(reason))})
}

func (s *session) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// flush writes queued frames in order until the queue is empty.
func (s *session) flush() {
	defer s.bg.Done()
	for {
		s.mu.Lock()
		if s.head == len(s.frames) || s.dead {
			if cap(s.frames) > 16 || s.dead {
				s.dropQueueLocked() // an idle connection keeps no queue memory
			} else {
				s.frames, s.head = s.frames[:0], 0
			}
			s.flushing = false
			s.mu.Unlock()
			return
		}
		f := s.frames[s.head]
		s.frames[s.head] = frame{}
		s.head++
		s.mu.Unlock()

		var err error
		switch f.kind {
		case frameNext:
			if f.sub.state.Load() == subCancelled {
				continue // the client completed it; nothing more for this id
			}
			b, encErr := f.payload.Bytes()
			if encErr != nil {
				s.t.log.Error("transport: encoding an event failed; frame skipped", "conn", s.info.ID, "event", f.payload.Event.Type, "err", encErr)
				continue
			}
			err = s.w.writeNext(f.sub, b)
		case frameRaw:
			err = s.w.writeRaw(f.raw)
		case frameClose:
			s.w.writeClose(f.code, string(f.raw))
			continue
		}
		if err != nil {
			s.mu.Lock()
			s.closing = true
			s.dropQueueLocked()
			s.flushing = false
			s.mu.Unlock()
			s.w.abort(false)
			return
		}
		s.t.n.framesSent.Add(1)
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
	return s.subs[id] != nil || s.ops[id] != nil
}

// teardown ends everything the session owns; called once, by the goroutine
// that owns the connection, after its transport is closed (so writers fail
// fast) or about to be (closeTransport is called before waiting).
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
	if s.cancel != nil {
		s.cancel()
	}
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
	if s.subs[sub.id] == sub {
		delete(s.subs, sub.id)
	}
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
	ctx := graphql.WithOperationContext(context.Background(), sub.shape.rc)
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
}

// complete handles a client's complete (legacy: stop) for id: the
// subscription or operation stops and nothing more is sent for it.
func (s *session) complete(id string) {
	s.mu.Lock()
	sub, op := s.subs[id], s.ops[id]
	delete(s.subs, id)
	delete(s.ops, id)
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
	sh := s.t.shapes.acquire(s.exec, rc)
	sub := &subscription{s: s, id: id, idJSON: jsonString(id), shape: sh}
	sub.target = &realtime.Target{Sink: sub, Encoder: sh}
	s.t.n.subs.Add(1)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		sub.state.Store(subCancelled)
		sub.release()
		return
	}
	if s.subs == nil {
		s.subs = make(map[string]*subscription)
	}
	s.subs[id] = sub // before the resolver runs: the hub may deliver at once
	s.mu.Unlock()

	h, octx := s.exec.DispatchOperation(realtime.WithTarget(ctx, sub.target), rc)
	if sub.target.Subscription() != nil {
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
	if s.subs[id] == sub {
		delete(s.subs, id)
	}
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
	cancel context.CancelFunc
}

// startOperation executes a query or mutation on its own goroutine and
// sends its results, then complete; a client complete or the connection's
// end cancels it.
func (s *session) startOperation(ctx context.Context, id string, rc *graphql.OperationContext) {
	octx, cancel := context.WithCancel(ctx)
	op := &operation{cancel: cancel}
	s.mu.Lock()
	if s.dead || s.closing {
		s.mu.Unlock()
		cancel()
		return
	}
	if s.ops == nil {
		s.ops = make(map[string]*operation)
	}
	s.ops[id] = op
	s.bg.Add(1)
	s.mu.Unlock()

	idJSON := jsonString(id)
	go func() {
		defer s.bg.Done()
		defer cancel()
		defer func() {
			if r := recover(); r != nil {
				s.t.log.Error("transport: operation panicked", "conn", s.info.ID, "panic", r)
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
				s.t.log.Error("transport: encoding a response failed", "conn", s.info.ID, "err", err)
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
	if s.ops[id] != op {
		return
	}
	if last {
		delete(s.ops, id)
	}
	s.enqueueLocked(frame{kind: frameRaw, raw: msg})
}

// ---- messages ----

// message builds {"id":…,"type":…,"payload":…} (id and payload optional)
// in the session's protocol; for SSE, an event of that type.
func (s *session) message(typ string, idJSON, payload []byte) []byte {
	if s.proto == protoSSE {
		b := make([]byte, 0, len(typ)+len(payload)+16)
		b = append(b, "event: "...)
		b = append(b, typ...)
		b = append(b, "\ndata: "...)
		b = append(b, payload...)
		return append(b, "\n\n"...)
	}
	b := make([]byte, 0, len(idJSON)+len(typ)+len(payload)+32)
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

func (s *session) completeMessage(idJSON []byte) []byte {
	if s.proto == protoSSE {
		return []byte("event: complete\ndata:\n\n")
	}
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
