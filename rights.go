package main

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/resolvers"
)

// currentRights gives every operation on a long-lived connection (a
// WebSocket's queries, mutations and subscribes; an SSE stream's one
// operation) the rights its user has now, not those of connection_init:
// the connection's token (auth.Session) is checked against the stored user
// again (auth.Authenticator.Current), so a demotion, a promotion or a
// disabling applies to the next operation on an open socket. That is one
// read of the user per operation. An HTTP request, which has no session,
// is checked again too: its token was verified from its headers, before
// its body (which may take HTTP_BODY_TIMEOUT to arrive) was read, and an
// admin demoted meanwhile must not run that body with admin rights (it
// could promote itself back). Renderings of events have no session: the
// fan-out never reads the store.
//
// A refused connection gets the refusal as the operation's error
// (UNAUTHENTICATED); a disabled user's sockets are closed by the Disconnect
// control of the same change.
func (m *Main) currentRights(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	var v auth.Viewer
	if sess, ok := auth.SessionFrom(ctx); ok {
		v = sess.Viewer()
	} else if v, ok = auth.ViewerFrom(ctx); !ok {
		return next(ctx)
	}
	v, err := m.authn.Current(ctx, v)
	if err != nil {
		m.operationRefused(ctx, err)
		gerr := resolvers.ErrorPresenter(m.log)(ctx, err)
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{gerr}})
	}
	return next(auth.WithViewer(ctx, v))
}
