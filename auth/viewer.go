// Package auth owns who is asking: it verifies and issues taskpulse's HS256
// JWTs, keeps the authenticated Viewer in a context, and adapts the two
// places a token arrives — the HTTP Authorization header (Middleware,
// BearerToken) and the graphql-ws connection_init payload
// (TokenFromInitPayload). It also provides the signing key when none is
// configured (LoadOrCreateSecret).
//
// Deciding what a viewer may do is not this package's job: resolvers and
// the service layer do that with the Viewer found here.
package auth

import (
	"context"
	"time"

	"github.com/taskpulse/taskpulse/errs"
)

// Viewer is the authenticated user of a request or connection.
type Viewer struct {
	UserID string
	// Admin is true for users stored as admins, and for role "admin"
	// tokens issued after the user's last demotion (see Authenticator.Current).
	Admin bool
	// Service is true for role "service" tokens (a backend that may publish).
	Service bool
	// ExpiresAt is the token's exp: a long-lived connection must end then.
	ExpiresAt time.Time
	// Role and IssuedAt are the token's role and iat claims (zero when
	// absent): what the rights are recomputed from while a connection
	// lives.
	Role     string
	IssuedAt time.Time
}

// viewerKey is the context key of the Viewer; unexported so no other package
// can set or shadow it.
type viewerKey struct{}

// WithViewer returns ctx carrying v.
func WithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// ViewerFrom returns the Viewer in ctx, if any.
func ViewerFrom(ctx context.Context) (Viewer, bool) {
	v, ok := ctx.Value(viewerKey{}).(Viewer)
	return v, ok
}

// Require returns the Viewer in ctx, or an errs.Unauthenticated error for an
// anonymous request.
func Require(ctx context.Context) (Viewer, error) {
	v, ok := ViewerFrom(ctx)
	if !ok {
		return Viewer{}, errs.E(errs.Unauthenticated, "authentication required")
	}
	return v, nil
}
