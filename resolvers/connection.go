package resolvers

import (
	"context"
	"time"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
)

// refreshConnection swaps the token of the WebSocket the mutation is sent
// on for a newer one of the same user, without reconnecting: the
// connection's next operations use the new token's rights, and it closes
// (4403) at the new token's expiry instead of the old one's. Its
// subscriptions keep running.
//
// A token of another user is FORBIDDEN, not BAD_USER_INPUT: the token is
// valid, but a connection belongs to the user it authenticated, as its
// subscriptions were authorized for that user (a socket whose upgrade and
// connection_init name different users is refused with 4403 alike). For
// the same reason a token that grants fewer rights than the connection has
// (an admin's without the admin rights, a service's without its role) is
// FORBIDDEN: subscriptions authorized by those rights would outlive them;
// such a client reconnects with the new token.
func (r *Resolver) refreshConnection(ctx context.Context, token string) (*time.Time, error) {
	conn, onConn := realtime.ConnFrom(ctx)
	renew, renewable := conn.(realtime.Renewable)
	sess, hasSession := auth.SessionFrom(ctx)
	if !onConn || !renewable || !hasSession {
		return nil, errs.E(errs.BadUserInput, "refreshConnection is sent over a WebSocket, to renew that connection's token; over HTTP, just send the new token with the next request")
	}
	cur, err := auth.Require(ctx) // this operation's rights, recomputed from the store
	if err != nil {
		return nil, err
	}
	next, err := r.Auth.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	switch {
	case next.UserID != cur.UserID:
		return nil, errs.E(errs.Forbidden, "the token is another user's: a connection keeps the user it authenticated; open a new connection for another user")
	case cur.Admin && !next.Admin, cur.Service && !next.Service:
		return nil, errs.E(errs.Forbidden, "the token grants fewer rights than this connection has: open a new connection with it")
	}
	sess.Replace(next)
	if !renew.Renew(next.ExpiresAt.Add(auth.MaxLeeway)) {
		return nil, errs.E(errs.Unauthenticated, "the connection is closing")
	}
	exp := next.ExpiresAt
	return &exp, nil
}
