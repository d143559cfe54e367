package transport

import (
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/taskpulse/taskpulse/realtime"
)

// Observer is told what happens to a transport's connections, for the
// server's metrics and audit log. Its methods run on the transport's
// goroutines, never with a connection's lock held, and must return at
// once (count, or queue a line). Options.Observer nil: nobody is told.
type Observer interface {
	// Connected: c authenticated (WebSocket: connection_init accepted;
	// SSE: a subscription stream starts).
	Connected(c realtime.ConnInfo)
	// AuthFailed: c's credentials were refused (WebSocket: connection_init,
	// closed 4403; SSE: the request, answered 401). err is Authenticate's
	// error, whose text never quotes a token.
	AuthFailed(c realtime.ConnInfo, err error)
	// Subscribed: a subscription of c is live; field is its root field
	// (arguments unevaluated: see ast.Field.ArgumentMap with vars).
	Subscribed(c realtime.ConnInfo, field *ast.Field, vars map[string]any)
	// Subscriptions: the transport's subscriptions on root field field
	// changed by delta (+1 when one starts, -1 when it ends, whether or
	// not it went live): what Stats.Subscriptions counts, by field.
	Subscriptions(transport, field string, delta int)
	// Disconnected: a connection ended. code is the close code sent or
	// received, CloseAbnormal if there was none (the connection broke, or
	// an SSE client went away). connected: Connected was called for it.
	Disconnected(c realtime.ConnInfo, code int, connected bool)
	// Delivered reports a sample of deliveries (see sampleEvery): a batch
	// of events was written to one client's socket; commit is the commit
	// time (realtime.Event.Time) of the oldest event in it.
	Delivered(transport string, commit time.Time)
}

// CloseAbnormal is the code a connection that ended without a close frame
// reports (RFC 6455 1006; it is never sent).
const CloseAbnormal = 1006

// CloseMessageTooBig is the code gorilla sends for a message over ReadLimit.
const CloseMessageTooBig = 1009

// sampleEvery: one batch in sampleEvery of a connection's batches carrying
// events is reported to Observer.Delivered (its first batch, then every
// sampleEvery-th). A sample costs a clock read and a histogram update
// (tens of ns, a shared cache line between writers); unsampled batches
// cost a counter increment. Connections receiving the same events sample
// the same ones, so a sampled event's whole fan-out is measured, first
// socket to last.
const sampleEvery = 8

// nopObserver is the Observer of a transport given none.
type nopObserver struct{}

func (nopObserver) Connected(realtime.ConnInfo)                              {}
func (nopObserver) AuthFailed(realtime.ConnInfo, error)                      {}
func (nopObserver) Subscribed(realtime.ConnInfo, *ast.Field, map[string]any) {}
func (nopObserver) Subscriptions(string, string, int)                        {}
func (nopObserver) Disconnected(realtime.ConnInfo, int, bool)                {}
func (nopObserver) Delivered(string, time.Time)                              {}

// sampleCommit counts a batch and, if it carries events and is one to
// sample, returns the commit time of its oldest event (UnixNano); 0
// otherwise. Called by the session's current writer only, which alone
// touches s.batches.
func (s *session) sampleCommit(fs []frame) int64 {
	if !s.t.timed {
		return 0
	}
	i := 0
	for i < len(fs) && fs[i].kind != frameNext {
		i++
	}
	if i == len(fs) {
		return 0
	}
	s.batches++
	if s.batches%sampleEvery != 1 {
		return 0
	}
	var oldest int64
	for ; i < len(fs); i++ {
		if fs[i].kind != frameNext || fs[i].payload.Event.Time.IsZero() {
			continue
		}
		if t := fs[i].payload.Event.Time.UnixNano(); oldest == 0 || t < oldest {
			oldest = t
		}
	}
	return oldest
}

// delivered reports a sampled batch once it is written.
func (s *session) delivered(commit int64) {
	if commit != 0 {
		s.t.obs.Delivered(s.proto.name(), time.Unix(0, commit))
	}
}

// closeCode is the code the connection ended with: the close frame sent or
// received first, CloseAbnormal if none. Called after teardown.
func (s *session) closeCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.code == 0 {
		return CloseAbnormal
	}
	return int(s.code)
}

// rootField is rc's first root field (a subscription has exactly one),
// nil if there is none.
func rootField(rc *graphql.OperationContext) *ast.Field {
	if rc == nil || rc.Operation == nil {
		return nil
	}
	var find func(set ast.SelectionSet) *ast.Field
	find = func(set ast.SelectionSet) *ast.Field {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				return s
			case *ast.InlineFragment:
				if f := find(s.SelectionSet); f != nil {
					return f
				}
			case *ast.FragmentSpread:
				if def := rc.Doc.Fragments.ForName(s.Name); def != nil {
					if f := find(def.SelectionSet); f != nil {
						return f
					}
				}
			}
		}
		return nil
	}
	return find(rc.Operation.SelectionSet)
}

// refused tells the Observer of an SSE request whose credentials were
// refused: the connection it would have been.
func (t *SSE) refused(r *http.Request, err error) {
	var c session
	c.t, c.proto = &t.core, protoSSE // identify asks the core for the client's address
	c.identify(r, "")
	t.obs.AuthFailed(c.Info(), err)
}
