package auth

import (
	"context"
	"sync/atomic"
)

// Session is the credentials of a long-lived connection (a WebSocket): the
// Viewer of the token it authenticated with, which refreshConnection
// replaces by a newer token's. Each operation on the connection recomputes
// its rights from the session's Viewer and the stored user
// (Authenticator.Current), so a change of rights applies to open
// connections at once, and a refreshed token to the next operation.
type Session struct {
	v atomic.Pointer[Viewer]
}

// NewSession returns a session holding v.
func NewSession(v Viewer) *Session {
	s := &Session{}
	s.v.Store(&v)
	return s
}

// Viewer returns the session's current token's Viewer.
func (s *Session) Viewer() Viewer { return *s.v.Load() }

// Replace swaps in the Viewer of a new token of the same user; the caller
// checks the user.
func (s *Session) Replace(v Viewer) { s.v.Store(&v) }

type sessionKey struct{}

// WithSession returns ctx carrying the connection's session.
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// SessionFrom returns the session of the connection ctx belongs to, if any
// (none for a plain HTTP request).
func SessionFrom(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*Session)
	return s, ok
}
