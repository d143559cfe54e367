package realtime

import (
	"context"
	"time"
)

// Renewable is a connection whose credentials can be replaced while it
// stays open (the refreshConnection mutation): the transport moves the
// time at which it closes the connection for expired credentials.
type Renewable interface {
	Conn
	// Renew makes the connection close for expired credentials at
	// expiresAt (zero: never) instead of the previous expiry. False if the
	// connection is closing already.
	Renew(expiresAt time.Time) bool
}

type connKey struct{}

// WithConn marks ctx as belonging to the live connection c: the base of
// every operation a transport runs on c.
func WithConn(ctx context.Context, c Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// ConnFrom returns the connection an operation runs on; none for a plain
// HTTP request.
func ConnFrom(ctx context.Context) (Conn, bool) {
	c, ok := ctx.Value(connKey{}).(Conn)
	return c, ok
}
